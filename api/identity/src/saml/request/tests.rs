//! Requests as an attacker shapes them: signature wrapping, a message of
//! one kind presented as another, weak algorithms. Each must be refused,
//! and what is accepted carries only the values the signature covers.

use std::sync::OnceLock;

use samael::crypto::{Crypto, CryptoProvider};

use super::*;
use crate::saml::providers::Registration;

const SP: &str = "https://sp.test/metadata";
const ACS: &str = "https://sp.test/acs";
const EVIL_ACS: &str = "https://evil.test/acs";
const SSO: &str = "https://idp.test/t/acme/saml/sso";
const SLO: &str = "https://idp.test/t/acme/saml/slo";
const ISSUED: &str = "2027-01-15T10:00:00Z";

const RSA_SHA256: (&str, &str) = (
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmlenc#sha256",
);
const RSA_SHA1: (&str, &str) = (
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#sha1",
);

fn now_ms() -> u64 {
    chrono::DateTime::parse_from_rfc3339(ISSUED)
        .expect("instant")
        .timestamp_millis() as u64
}

/// The SP's RSA key (PKCS#8) and certificate (PEM), made once.
fn sp_key() -> &'static (Vec<u8>, String) {
    static KEY: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let pkey = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa"))
            .expect("pkey");
        let mut name = openssl::x509::X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "sp.test").expect("cn");
        let name = name.build();
        let mut cert = openssl::x509::X509::builder().expect("builder");
        cert.set_subject_name(&name).expect("subject");
        cert.set_issuer_name(&name).expect("issuer");
        cert.set_pubkey(&pkey).expect("pubkey");
        let day = |d| openssl::asn1::Asn1Time::days_from_now(d).expect("time");
        cert.set_not_before(&day(0)).expect("not before");
        cert.set_not_after(&day(30)).expect("not after");
        cert.sign(&pkey, openssl::hash::MessageDigest::sha256())
            .expect("sign");
        let pem = String::from_utf8(cert.build().to_pem().expect("pem")).expect("utf8");
        (pkey.private_key_to_pkcs8().expect("pkcs8"), pem)
    })
}

/// An SP that must sign its requests, with the certificate of [`sp_key`].
fn provider() -> ServiceProvider {
    Registration {
        entity_id: Some(SP.into()),
        acs_url: Some(ACS.into()),
        slo_url: Some("https://sp.test/slo".into()),
        certificate_pem: Some(sp_key().1.clone()),
        require_signed_requests: Some(true),
        ..Registration::default()
    }
    .into_provider(0)
    .expect("sp")
}

fn authn(id: &str, acs: &str, inner: &str) -> String {
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{ISSUED}" Destination="{SSO}" AssertionConsumerServiceURL="{acs}"><saml:Issuer>{SP}</saml:Issuer>{inner}</samlp:AuthnRequest>"#
    )
}

fn logout(id: &str, name_id: &str, session_index: &str, inner: &str) -> String {
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{ISSUED}" Destination="{SLO}"><saml:Issuer>{SP}</saml:Issuer>{inner}<saml:NameID>{name_id}</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#
    )
}

/// `xml` with an enveloped signature (placed after the first Issuer) over
/// the element whose ID is `reference`, by the SP's key.
fn signed(xml: &str, reference: &str, (method, digest): (&str, &str)) -> String {
    let template = format!(
        concat!(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="{method}"/>"#,
            r##"<ds:Reference URI="#{reference}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"</ds:Transforms><ds:DigestMethod Algorithm="{digest}"/>"#,
            r#"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue></ds:SignatureValue></ds:Signature>"#
        ),
        method = method,
        reference = reference,
        digest = digest
    );
    let xml = xml.replacen("</saml:Issuer>", &format!("</saml:Issuer>{template}"), 1);
    let out = Crypto::sign_xml(&xml, &sp_key().0).expect("signs");
    match out.find("?>") {
        Some(end) if out.starts_with("<?xml") => out[end + 2..].trim().to_string(),
        _ => out.trim().to_string(),
    }
}

fn posted(xml: &str) -> Result<Decoded, SamlError> {
    let message = wire::encode_post(xml);
    verify(
        &Incoming::Post { message: &message },
        "SAMLRequest",
        None,
        &provider(),
    )
}

fn sign_on(xml: &str) -> Result<SsoRequest, SamlError> {
    check_authn_request(&posted(xml)?, &provider(), SSO, now_ms())
}

fn sign_out(xml: &str) -> Result<SloRequest, SamlError> {
    check_logout_request(&posted(xml)?, &provider(), SLO, now_ms())
}

#[test]
fn session_index_is_read_as_the_element_it_is() {
    let xml = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="a"><samlp:SessionIndex> _abc&amp;d </samlp:SessionIndex></samlp:LogoutRequest>"#;
    assert_eq!(element_text(xml, "SessionIndex").as_deref(), Some("_abc&d"));
    let bare = r#"<LogoutRequest><SessionIndex>x</SessionIndex></LogoutRequest>"#;
    assert_eq!(element_text(bare, "SessionIndex").as_deref(), Some("x"));
    assert_eq!(
        element_text("<a SessionIndex=\"y\"/>", "SessionIndex"),
        None
    );
}

#[test]
fn signed_post_requests_are_accepted_with_the_values_they_sign() {
    let req = sign_on(&signed(&authn("_good", ACS, ""), "_good", RSA_SHA256)).expect("accepted");
    assert_eq!(
        (req.request_id.as_deref(), req.acs_url.as_str()),
        (Some("_good"), ACS)
    );
    let out = sign_out(&signed(
        &logout("_lo", "alice", "_mine", ""),
        "_lo",
        RSA_SHA256,
    ))
    .expect("accepted");
    assert_eq!(
        (
            out.request_id.as_str(),
            out.name_id.as_deref(),
            out.session_index.as_deref()
        ),
        ("_lo", Some("alice"), Some("_mine"))
    );
    // Unsigned: refused, as this SP must sign.
    assert!(sign_on(&authn("_good", ACS, "")).is_err());
    assert!(sign_out(&logout("_lo", "alice", "_mine", "")).is_err());
}

#[test]
fn wrapped_authn_requests_are_refused() {
    let good = signed(&authn("_good", ACS, ""), "_good", RSA_SHA256);
    let inside = |wrapper: String| {
        wrapper.replacen(
            "</saml:Issuer>",
            &format!("</saml:Issuer><samlp:Extensions>{good}</samlp:Extensions>"),
            1,
        )
    };
    let detached = signed(
        &authn(
            "_forged",
            EVIL_ACS,
            &format!(
                "<samlp:Extensions>{}</samlp:Extensions>",
                authn("_inner", ACS, "")
            ),
        ),
        "_inner",
        RSA_SHA256,
    );
    let cases = [
        // (a) the signed request moved inside a forged, unsigned root.
        (
            "signed request inside a forged root",
            inside(authn("_forged", EVIL_ACS, "")),
        ),
        (
            "signed request inside a forged root with a registered ACS",
            inside(authn("_forged", ACS, "")),
        ),
        // (b) the signed root kept, a second Issuer, ACS or request added.
        (
            "second Issuer",
            good.replacen(
                "</ds:Signature>",
                "</ds:Signature><saml:Issuer>https://evil.test/metadata</saml:Issuer>",
                1,
            ),
        ),
        (
            "second request inside the signed one",
            good.replacen(
                "</ds:Signature>",
                &format!("</ds:Signature>{}", authn("_second", EVIL_ACS, "")),
                1,
            ),
        ),
        ("ACS URL changed", good.replace(ACS, EVIL_ACS)),
        // (c) the root's Signature references another element.
        ("signature over a child, not the root", detached),
        // (d) the forged root takes the signed request's ID.
        ("duplicate IDs", inside(authn("_good", EVIL_ACS, ""))),
    ];
    for (what, xml) in cases {
        assert!(sign_on(&xml).is_err(), "{what}: {xml}");
    }
}

#[test]
fn wrapped_logout_requests_are_refused() {
    let good = signed(&logout("_lo", "alice", "_mine", ""), "_lo", RSA_SHA256);
    let inside = |wrapper: String| {
        wrapper.replacen(
            "</saml:Issuer>",
            &format!("</saml:Issuer><samlp:Extensions>{good}</samlp:Extensions>"),
            1,
        )
    };
    let detached = signed(
        &logout(
            "_forged",
            "bob",
            "_victim",
            &format!(
                "<samlp:Extensions>{}</samlp:Extensions>",
                logout("_inner", "alice", "_mine", "")
            ),
        ),
        "_inner",
        RSA_SHA256,
    );
    let cases = [
        (
            "signed request inside a forged root",
            inside(logout("_forged", "bob", "_victim", "")),
        ),
        ("SessionIndex changed", good.replace("_mine", "_victim")),
        ("NameID changed", good.replace(">alice<", ">bob<")),
        (
            "second SessionIndex",
            good.replacen(
                "</ds:Signature>",
                "</ds:Signature><samlp:SessionIndex>_victim</samlp:SessionIndex>",
                1,
            ),
        ),
        ("signature over a child, not the root", detached),
        ("duplicate IDs", inside(logout("_lo", "bob", "_victim", ""))),
    ];
    for (what, xml) in cases {
        assert!(sign_out(&xml).is_err(), "{what}: {xml}");
    }
}

#[test]
fn a_message_of_one_kind_is_not_taken_for_another() {
    let sp = provider();
    let trusted = |xml: String| Decoded {
        xml,
        signed: true,
        relay_state: None,
    };
    // Without a Destination, nothing else tells the kinds apart.
    let logout =
        logout("_lo", "alice", "_mine", "").replace(&format!(" Destination=\"{SLO}\""), "");
    let authn = authn("_a", ACS, "").replace(&format!(" Destination=\"{SSO}\""), "");
    assert!(check_authn_request(&trusted(logout.clone()), &sp, SSO, now_ms()).is_err());
    assert!(issuer_of_authn_request(&logout).is_err());
    assert!(check_logout_request(&trusted(authn.clone()), &sp, SLO, now_ms()).is_err());
    assert!(issuer_of_logout_request(&authn).is_err());
    assert!(issuer_of_logout_response(&logout).is_err());
    // The right name in another namespace.
    let foreign = authn.replace("urn:oasis:names:tc:SAML:2.0:protocol", "urn:evil");
    assert!(check_authn_request(&trusted(foreign.clone()), &sp, SSO, now_ms()).is_err());
    assert!(issuer_of_authn_request(&foreign).is_err());
    assert_eq!(issuer_of_authn_request(&authn).expect("issuer"), SP);
    // A signed message must name its Destination (SAML bindings 3.4.5.2),
    // even at the endpoint of its kind...
    assert!(check_authn_request(&trusted(authn.clone()), &sp, SSO, now_ms()).is_err());
    assert!(check_logout_request(&trusted(logout.clone()), &sp, SLO, now_ms()).is_err());
    // ...and with it, the right kind is accepted.
    let authn = self::authn("_a", ACS, "");
    let logout = self::logout("_lo", "alice", "_mine", "");
    assert!(check_authn_request(&trusted(authn), &sp, SSO, now_ms()).is_ok());
    assert!(check_logout_request(&trusted(logout), &sp, SLO, now_ms()).is_ok());
}

#[test]
fn a_logout_request_naming_another_issuer_is_refused() {
    let sp = provider();
    let xml = logout("_lo", "alice", "_mine", "").replace(
        &format!("<saml:Issuer>{SP}</saml:Issuer>"),
        "<saml:Issuer>https://other.test/metadata</saml:Issuer>",
    );
    let decoded = Decoded {
        xml,
        signed: true,
        relay_state: None,
    };
    assert!(check_logout_request(&decoded, &sp, SLO, now_ms()).is_err());
}

#[test]
fn sha1_in_post_binding_signatures_is_refused() {
    let sha256_over_sha1 = (RSA_SHA256.0, RSA_SHA1.1);
    let sha1_over_sha256 = (RSA_SHA1.0, RSA_SHA256.1);
    for alg in [RSA_SHA1, sha256_over_sha1, sha1_over_sha256] {
        let xml = signed(&authn("_s", ACS, ""), "_s", alg);
        assert!(sign_on(&xml).is_err(), "{alg:?}");
        let xml = signed(&logout("_lo", "alice", "_mine", ""), "_lo", alg);
        assert!(sign_out(&xml).is_err(), "{alg:?}");
    }
}

#[test]
fn expired_and_future_requests_are_refused() {
    let xml = signed(&authn("_t", ACS, ""), "_t", RSA_SHA256);
    let decoded = posted(&xml).expect("verifies");
    let sp = provider();
    let late = now_ms() + REQUEST_MAX_AGE_MS + 1;
    let early = now_ms() - CLOCK_SKEW_MS - 1;
    assert!(check_authn_request(&decoded, &sp, SSO, now_ms() + REQUEST_MAX_AGE_MS).is_ok());
    assert!(check_authn_request(&decoded, &sp, SSO, late).is_err());
    assert!(check_authn_request(&decoded, &sp, SSO, early).is_err());
    let decoded =
        posted(&signed(&logout("_lo", "a", "_m", ""), "_lo", RSA_SHA256)).expect("verifies");
    assert!(check_logout_request(&decoded, &sp, SLO, late).is_err());
    assert!(check_logout_request(&decoded, &sp, SLO, early).is_err());
}
