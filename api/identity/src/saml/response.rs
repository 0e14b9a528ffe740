//! The IdP's answers: a `Response` carrying a signed `Assertion` (and
//! signed itself when the SP asks), an error `Response` (`NoPassive`,
//! `RequestDenied`, ...), and a `LogoutResponse` or `LogoutRequest` to an
//! SP. Signatures are enveloped, exclusive C14N, RSA-SHA256 over SHA-256
//! digests, made by [`super::dsig`] over the templates here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::SamlError;
use super::metadata::IdpEndpoints;
use super::providers::{AttributeMapping, NameIdFormat, ServiceProvider};
use super::wire::escape;

pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const STATUS_VERSION_MISMATCH: &str = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch";
pub const STATUS_REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
pub const STATUS_UNSUPPORTED_BINDING: &str =
    "urn:oasis:names:tc:SAML:2.0:status:UnsupportedBinding";
pub const STATUS_INVALID_NAME_ID_POLICY: &str =
    "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
/// Second-level status of an `IsPassive` request that would need a login
/// page.
pub const STATUS_NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";

/// `AuthnContextClassRef` of a sign-in with a password alone, and of one
/// with a second factor (REFEDS MFA profile, understood by most SPs).
pub const CLASS_PASSWORD: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
pub const CLASS_MFA: &str = "https://refeds.org/profile/mfa";

/// The key that signs and its certificate (DER).
pub struct SigningMaterial<'a> {
    pub signer: &'a crate::keys::Signer,
    pub certificate: &'a [u8],
}

/// What an assertion says about its subject.
pub struct Subject<'a> {
    pub name_id: &'a str,
    pub name_id_format: NameIdFormat,
    pub user_id: &'a str,
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub attributes: &'a serde_json::Map<String, serde_json::Value>,
    /// When the user authenticated (ms).
    pub authn_instant_ms: u64,
    pub session_index: &'a str,
    /// A second factor was used.
    pub mfa: bool,
}

/// The answer to one request.
pub struct Answer<'a> {
    pub idp: &'a IdpEndpoints,
    pub sp: &'a ServiceProvider,
    pub in_response_to: Option<&'a str>,
    pub destination: &'a str,
    pub now_ms: u64,
}

/// A fresh message id (an NCName: starts with a letter or `_`).
pub fn new_id() -> String {
    format!("_{}", uuid::Uuid::new_v4().simple())
}

/// xs:dateTime in UTC, to the millisecond.
pub fn instant(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

pub(super) fn signature_template(reference_id: &str, certificate: &[u8]) -> String {
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>"#,
            r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#,
            r#"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data>"#,
            r#"<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#
        ),
        id = reference_id,
        cert = STANDARD.encode(certificate)
    )
}

/// Sign the one signature template of `xml` (the first in document order).
fn sign(xml: &str, key: &SigningMaterial<'_>) -> Result<String, SamlError> {
    super::dsig::sign_enveloped(xml, key.signer)
}

fn attribute_values(mapping: &AttributeMapping, subject: &Subject<'_>) -> Vec<String> {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match mapping.source.as_str() {
        "email" => subject.email.map(str::to_string).into_iter().collect(),
        "username" => vec![subject.username.to_string()],
        "id" => vec![subject.user_id.to_string()],
        other => match other
            .strip_prefix("attributes.")
            .and_then(|name| subject.attributes.get(name))
        {
            Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
            Some(v) => scalar(v).into_iter().collect(),
            None => Vec::new(),
        },
    }
}

/// The signed assertion for `subject`.
fn assertion(
    answer: &Answer<'_>,
    subject: &Subject<'_>,
    key: &SigningMaterial<'_>,
) -> Result<String, SamlError> {
    let id = new_id();
    let now = instant(answer.now_ms);
    let not_after = instant(answer.now_ms + answer.sp.assertion_lifetime_secs * 1000);
    let in_response_to = answer
        .in_response_to
        .map(|r| format!(r#" InResponseTo="{}""#, escape(r)))
        .unwrap_or_default();
    let mut attributes = String::new();
    for mapping in &answer.sp.attributes {
        let values = attribute_values(mapping, subject);
        if values.is_empty() {
            continue;
        }
        let friendly = mapping
            .friendly_name
            .as_deref()
            .map(|f| format!(r#" FriendlyName="{}""#, escape(f)))
            .unwrap_or_default();
        let format = mapping
            .name_format
            .as_deref()
            .unwrap_or("urn:oasis:names:tc:SAML:2.0:attrname-format:basic");
        attributes.push_str(&format!(
            r#"<saml:Attribute Name="{}" NameFormat="{}"{friendly}>"#,
            escape(&mapping.name),
            escape(format)
        ));
        for value in values {
            attributes.push_str(&format!(
                r#"<saml:AttributeValue xsi:type="xs:string">{}</saml:AttributeValue>"#,
                escape(&value)
            ));
        }
        attributes.push_str("</saml:Attribute>");
    }
    let attribute_statement = if attributes.is_empty() {
        String::new()
    } else {
        format!("<saml:AttributeStatement>{attributes}</saml:AttributeStatement>")
    };
    let class = if subject.mfa {
        CLASS_MFA
    } else {
        CLASS_PASSWORD
    };
    let xml = format!(
        concat!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
            r#"xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
            r#"ID="{id}" Version="2.0" IssueInstant="{now}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>{signature}"#,
            r#"<saml:Subject><saml:NameID Format="{format}" SPNameQualifier="{sp}">{name_id}</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
            r#"<saml:SubjectConfirmationData{in_response_to} NotOnOrAfter="{not_after}" Recipient="{recipient}"/>"#,
            r#"</saml:SubjectConfirmation></saml:Subject>"#,
            r#"<saml:Conditions NotBefore="{now}" NotOnOrAfter="{not_after}">"#,
            r#"<saml:AudienceRestriction><saml:Audience>{sp}</saml:Audience></saml:AudienceRestriction>"#,
            r#"</saml:Conditions>"#,
            r#"<saml:AuthnStatement AuthnInstant="{authn}" SessionIndex="{session_index}">"#,
            r#"<saml:AuthnContext><saml:AuthnContextClassRef>{class}</saml:AuthnContextClassRef></saml:AuthnContext>"#,
            r#"</saml:AuthnStatement>{attribute_statement}</saml:Assertion>"#
        ),
        id = id,
        now = now,
        issuer = escape(&answer.idp.entity_id),
        signature = signature_template(&id, key.certificate),
        format = subject.name_id_format.uri(),
        sp = escape(&answer.sp.entity_id),
        name_id = escape(subject.name_id),
        in_response_to = in_response_to,
        not_after = not_after,
        recipient = escape(answer.destination),
        authn = instant(subject.authn_instant_ms),
        session_index = escape(subject.session_index),
        class = class,
        attribute_statement = attribute_statement,
    );
    sign(&xml, key)
}

/// A successful `Response` for `subject`, base64 for the POST binding;
/// its assertion encrypted when the SP asks.
pub fn success(
    answer: &Answer<'_>,
    subject: &Subject<'_>,
    key: &SigningMaterial<'_>,
) -> Result<String, SamlError> {
    let mut assertion = assertion(answer, subject, key)?;
    if answer.sp.encrypt_assertions {
        let certificate = answer
            .sp
            .encryption_certificate
            .as_deref()
            .and_then(|c| STANDARD.decode(c).ok())
            .ok_or_else(|| SamlError::internal("no encryption certificate"))?;
        assertion = super::encryption::encrypt_assertion(&assertion, &certificate)?;
    }
    response(
        answer,
        STATUS_SUCCESS,
        None,
        None,
        &assertion,
        answer.sp.sign_response,
        key,
    )
}

/// An error `Response` (no assertion): `status` is the top-level code,
/// `second` the second-level one (e.g. `NoPassive`), `message` shown to
/// the SP's operator. Signed.
pub fn failure(
    answer: &Answer<'_>,
    status: &str,
    second: Option<&str>,
    message: &str,
    key: &SigningMaterial<'_>,
) -> Result<String, SamlError> {
    response(answer, status, second, Some(message), "", true, key)
}

fn status_xml(status: &str, second: Option<&str>, message: Option<&str>) -> String {
    let inner = second
        .map(|s| format!(r#"<samlp:StatusCode Value="{}"/>"#, escape(s)))
        .unwrap_or_default();
    let message = message
        .map(|m| format!("<samlp:StatusMessage>{}</samlp:StatusMessage>", escape(m)))
        .unwrap_or_default();
    format!(
        r#"<samlp:Status><samlp:StatusCode Value="{}">{inner}</samlp:StatusCode>{message}</samlp:Status>"#,
        escape(status)
    )
}

fn response(
    answer: &Answer<'_>,
    status: &str,
    second: Option<&str>,
    message: Option<&str>,
    assertion: &str,
    signed: bool,
    key: &SigningMaterial<'_>,
) -> Result<String, SamlError> {
    let id = new_id();
    let in_response_to = answer
        .in_response_to
        .map(|r| format!(r#" InResponseTo="{}""#, escape(r)))
        .unwrap_or_default();
    let signature = if signed {
        signature_template(&id, key.certificate)
    } else {
        String::new()
    };
    let xml = format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{now}" Destination="{destination}"{in_response_to}>"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>{signature}{status}{assertion}</samlp:Response>"#
        ),
        id = id,
        now = instant(answer.now_ms),
        destination = escape(answer.destination),
        in_response_to = in_response_to,
        issuer = escape(&answer.idp.entity_id),
        signature = signature,
        status = status_xml(status, second, message),
        assertion = assertion,
    );
    let xml = if signed { sign(&xml, key)? } else { xml };
    Ok(STANDARD.encode(xml.as_bytes()))
}

/// A `LogoutResponse` to an SP's LogoutRequest, XML: with an enveloped
/// signature by `key` for the POST binding, or without (`None`) for the
/// Redirect binding, whose signature is over the query
/// ([`crate::saml`] callers sign it there).
pub fn logout_response(
    answer: &Answer<'_>,
    status: &str,
    key: Option<&SigningMaterial<'_>>,
) -> Result<String, SamlError> {
    let id = new_id();
    let in_response_to = answer
        .in_response_to
        .map(|r| format!(r#" InResponseTo="{}""#, escape(r)))
        .unwrap_or_default();
    let xml = format!(
        concat!(
            r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{now}" Destination="{destination}"{in_response_to}>"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>{signature}{status}</samlp:LogoutResponse>"#
        ),
        id = id,
        now = instant(answer.now_ms),
        destination = escape(answer.destination),
        in_response_to = in_response_to,
        issuer = escape(&answer.idp.entity_id),
        signature = key
            .map(|k| signature_template(&id, k.certificate))
            .unwrap_or_default(),
        status = status_xml(status, None, None),
    );
    match key {
        Some(key) => sign(&xml, key),
        None => Ok(xml),
    }
}

/// A `LogoutRequest` from the IdP to an SP (single logout of a session it
/// took part in), unsigned XML for the Redirect binding, whose signature
/// is over the query.
pub fn logout_request(
    answer: &Answer<'_>,
    name_id: &str,
    name_id_format: NameIdFormat,
    session_index: &str,
) -> String {
    format!(
        concat!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{now}" Destination="{destination}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
            r#"<saml:NameID Format="{format}" SPNameQualifier="{sp}">{name_id}</saml:NameID>"#,
            r#"<samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#
        ),
        id = new_id(),
        now = instant(answer.now_ms),
        destination = escape(answer.destination),
        issuer = escape(&answer.idp.entity_id),
        format = name_id_format.uri(),
        sp = escape(&answer.sp.entity_id),
        name_id = escape(name_id),
        session_index = escape(session_index),
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::saml::providers::Registration;
    use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, ReduceMode};

    /// An RSA key and a self-signed certificate for it.
    pub(crate) fn test_key() -> (Vec<u8>, Vec<u8>) {
        let pair =
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
        use aws_lc_rs::encoding::AsDer;
        let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().expect("der");
        let pkcs8 = pkcs8.as_ref().to_vec();
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.as_slice().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .expect("rcgen key");
        let cert = rcgen::CertificateParams::new(vec!["idp.test".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (pkcs8, cert.der().to_vec())
    }

    /// The signer of `pkcs8` (an RS256 key), as `KeyService` keeps it.
    pub(crate) fn signer(pkcs8: &[u8]) -> crate::keys::Signer {
        crate::keys::Signer::new("test".into(), crate::keys::SigningAlg::RS256, pkcs8)
            .expect("signer")
    }

    fn sp(sign_response: bool) -> ServiceProvider {
        Registration {
            entity_id: Some("https://sp.test/metadata".into()),
            acs_url: Some("https://sp.test/acs".into()),
            sign_response: Some(sign_response),
            ..Registration::default()
        }
        .into_provider(0)
        .expect("sp")
    }

    fn signed_response(sign_response: bool, email: &str) -> (String, Vec<u8>) {
        answered(&sp(sign_response), email)
    }

    /// The decoded `Response` to `sp` for a user with `email`, and the
    /// IdP's certificate.
    fn answered(sp: &ServiceProvider, email: &str) -> (String, Vec<u8>) {
        let (pkcs8, cert) = test_key();
        let subject = Subject {
            email: Some(email),
            ..subject(&EMPTY)
        };
        let xml = signed(sp, &subject, &signer(&pkcs8), &cert, "_req1");
        (xml, cert)
    }

    static EMPTY: std::sync::LazyLock<serde_json::Map<String, serde_json::Value>> =
        std::sync::LazyLock::new(serde_json::Map::new);

    fn subject<'a>(attributes: &'a serde_json::Map<String, serde_json::Value>) -> Subject<'a> {
        Subject {
            name_id: "opaque-id",
            name_id_format: NameIdFormat::Persistent,
            user_id: "u1",
            username: "alice",
            email: Some("alice@example.com"),
            attributes,
            authn_instant_ms: 1_800_000_000_000,
            session_index: "_s1",
            mfa: false,
        }
    }

    /// The Response XML for `subject` to `sp`, signed by `signer`.
    fn signed(
        sp: &ServiceProvider,
        subject: &Subject<'_>,
        signer: &crate::keys::Signer,
        cert: &[u8],
        in_response_to: &str,
    ) -> String {
        let idp = IdpEndpoints::of("https://idp.test/t/acme");
        let answer = Answer {
            idp: &idp,
            sp,
            in_response_to: Some(in_response_to),
            destination: "https://sp.test/acs",
            now_ms: 1_800_000_000_000,
        };
        let key = SigningMaterial {
            signer,
            certificate: cert,
        };
        let b64 = success(&answer, subject, &key).expect("response");
        String::from_utf8(STANDARD.decode(b64).expect("base64")).expect("utf8")
    }

    fn verified(xml: &str, cert: &[u8]) -> Result<String, samael::crypto::CryptoError> {
        use samael::crypto::{Crypto, CryptoProvider};
        Crypto::reduce_xml_to_signed_with_allowed_algorithms(
            xml,
            &[CertificateDer::from(cert.to_vec())],
            ReduceMode::ValidateAndMarkNoAncestors,
            Some(&[AllowedSignatureAlgorithm::RsaSha256]),
        )
    }

    #[test]
    fn the_assertion_is_signed_with_rsa_sha256_over_a_sha256_digest() {
        let (xml, cert) = signed_response(false, "alice@example.com");
        assert!(
            xml.contains("http://www.w3.org/2001/04/xmlenc#sha256"),
            "{xml}"
        );
        assert!(!xml.contains("xmldsig#sha1"), "{xml}");
        assert!(
            !xml.contains("<ds:DigestValue></ds:DigestValue>"),
            "filled in: {xml}"
        );
        let signed = verified(&xml, &cert).expect("verifies");
        assert!(signed.contains("alice@example.com"), "{signed}");
        assert!(signed.contains("opaque-id"));
        // Tampering with the signed assertion breaks the signature.
        let tampered = xml.replace("alice@example.com", "mallory@example.com");
        assert!(verified(&tampered, &cert).is_err());
        // Another key's certificate does not verify it.
        assert!(verified(&xml, &test_key().1).is_err());
    }

    #[test]
    fn a_signed_response_carries_two_signatures_that_both_verify() {
        let (xml, cert) = signed_response(true, "a&b<c>@example.com");
        assert_eq!(xml.matches("<ds:SignatureValue>").count(), 2, "{xml}");
        let signed = verified(&xml, &cert).expect("verifies");
        assert!(signed.contains("a&amp;b&lt;c&gt;@example.com"), "{signed}");
    }

    #[test]
    fn an_encrypted_assertion_opens_with_the_sp_key_and_its_signature_verifies() {
        use crate::saml::encryption::tests::{decrypt, recipient};
        let (sp_key, sp_cert) = recipient(2048);
        let pem = openssl::x509::X509::from_der(&sp_cert)
            .and_then(|c| c.to_pem())
            .expect("pem");
        let sp = Registration {
            entity_id: Some("https://sp.test/metadata".into()),
            acs_url: Some("https://sp.test/acs".into()),
            encrypt_assertions: Some(true),
            encryption_certificate_pem: Some(String::from_utf8(pem).expect("pem")),
            sign_response: Some(true),
            ..Registration::default()
        }
        .into_provider(0)
        .expect("sp");
        let (xml, cert) = answered(&sp, "alice@example.com");
        assert!(!xml.contains("alice@example.com"), "{xml}");
        assert!(!xml.contains("<saml:Assertion"), "{xml}");
        assert!(xml.contains("<saml:EncryptedAssertion>"), "{xml}");
        // The Response's own signature covers the encrypted element.
        verified(&xml, &cert).expect("the response verifies");
        let assertion = decrypt(&xml, &sp_key).expect("opens");
        let signed = verified(&assertion, &cert).expect("the assertion verifies");
        assert!(signed.contains("alice@example.com"), "{signed}");
    }

    #[test]
    fn encryption_needs_an_rsa_certificate() {
        let sp = Registration {
            entity_id: Some("https://sp.test/metadata".into()),
            acs_url: Some("https://sp.test/acs".into()),
            encrypt_assertions: Some(true),
            ..Registration::default()
        };
        assert!(matches!(sp.into_provider(0), Err(SamlError::Invalid(_))));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Whatever the names, values and identifiers hold (markup
        /// characters, quotes, tabs, line ends, non-ASCII), libxmlsec1
        /// verifies both signatures as an SP would, and reads the values
        /// back.
        #[test]
        fn any_content_is_signed_so_that_libxmlsec1_verifies_it(
            name_id in "[a-zA-Z0-9 &<>\"'\t\n\r=/:;#%é€\u{1F600}]{1,40}",
            username in "[a-z &<>\"'\t\n\r\u{e9}]{1,20}",
            value in "[ -~\t\n\r\u{e9}\u{2028}]{0,40}",
            friendly in "[ -~\t\n]{1,20}",
            request in "[_a-z][a-z0-9&<>\"' \t]{0,20}",
        ) {
            let (pkcs8, cert) = KEY.clone();
            let mut sp = sp(true);
            sp.attributes = vec![
                AttributeMapping {
                    source: "attributes.note".into(),
                    name: friendly.clone(),
                    friendly_name: Some(friendly.clone()),
                    name_format: None,
                },
                AttributeMapping {
                    source: "username".into(),
                    name: "uid".into(),
                    friendly_name: None,
                    name_format: None,
                },
            ];
            let mut attributes = serde_json::Map::new();
            attributes.insert("note".into(), serde_json::Value::String(value));
            let subject = Subject {
                name_id: &name_id,
                username: &username,
                ..subject(&attributes)
            };
            let xml = signed(&sp, &subject, &signer(&pkcs8), &cert, &request);
            let reduced = verified(&xml, &cert);
            proptest::prop_assert!(reduced.is_ok(), "{:?}: {}", reduced.err(), xml);
        }
    }

    static KEY: std::sync::LazyLock<(Vec<u8>, Vec<u8>)> = std::sync::LazyLock::new(test_key);
}
