//! Requests from service providers: an `AuthnRequest` (single sign-on) or
//! a `LogoutRequest`, by HTTP-Redirect or HTTP-POST, decoded within
//! bounds ([`super::wire`]), signature-checked against the SP's registered
//! certificates (SHA-256 or stronger only), and checked field by field.

use std::str::FromStr;

use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};
use samael::schema::{AuthnRequest, LogoutRequest};

use super::SamlError;
use super::providers::{BINDING_POST, NameIdFormat, ServiceProvider};
use super::wire;

/// How long after its IssueInstant a request is accepted, and how far in
/// the future an IssueInstant may be (clock skew).
pub const REQUEST_MAX_AGE_MS: u64 = 10 * 60 * 1000;
pub const CLOCK_SKEW_MS: u64 = 3 * 60 * 1000;

/// Signature algorithms accepted on requests: SHA-256 or stronger.
const ALLOWED: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// How a message came.
pub enum Incoming<'a> {
    /// HTTP-Redirect: the raw query string as received (its signature
    /// covers the parameters exactly as they were encoded).
    Redirect { raw_query: &'a str },
    /// HTTP-POST: the form's base64 field.
    Post { message: &'a str },
}

/// The parameters of a Redirect binding query, raw and decoded.
struct RedirectParams<'a> {
    message: (&'a str, String),
    relay_state: Option<(&'a str, String)>,
    sig_alg: Option<(&'a str, String)>,
    signature: Option<String>,
}

fn redirect_params<'a>(raw_query: &'a str, name: &str) -> Result<RedirectParams<'a>, SamlError> {
    let mut message = None;
    let mut relay_state = None;
    let mut sig_alg = None;
    let mut signature = None;
    for part in raw_query.split('&') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let decoded = || -> Result<String, SamlError> {
            url::form_urlencoded::parse(format!("v={value}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| SamlError::malformed("a query parameter is not URL-encoded"))
        };
        let slot = match key {
            k if k == name => &mut message,
            "RelayState" => &mut relay_state,
            "SigAlg" => &mut sig_alg,
            "Signature" => {
                if signature.replace(decoded()?).is_some() {
                    return Err(SamlError::malformed("Signature appears twice"));
                }
                continue;
            }
            _ => continue,
        };
        if slot.replace((part, decoded()?)).is_some() {
            return Err(SamlError::malformed(format!("{key} appears twice")));
        }
    }
    let message = message.ok_or_else(|| SamlError::malformed(format!("{name} is missing")))?;
    Ok(RedirectParams {
        message,
        relay_state,
        sig_alg,
        signature,
    })
}

/// A message decoded and, where it carried one, its signature checked.
pub struct Decoded {
    pub xml: String,
    /// Whether a signature by one of the SP's certificates was verified.
    pub signed: bool,
    pub relay_state: Option<String>,
}

/// The relay state a POST form carried, bounded like the message.
pub fn check_relay_state(relay_state: Option<String>) -> Result<Option<String>, SamlError> {
    match relay_state {
        Some(r) if r.len() > 1024 => {
            Err(SamlError::malformed("RelayState is longer than 1024 bytes"))
        }
        other => Ok(other),
    }
}

/// Decode `incoming` (parameter `name`: `SAMLRequest`) without checking a
/// signature: enough to learn the issuer, whose certificates
/// [`verify`] then needs.
pub fn peek(incoming: &Incoming<'_>, name: &str) -> Result<String, SamlError> {
    match incoming {
        Incoming::Redirect { raw_query } => {
            wire::decode_redirect(&redirect_params(raw_query, name)?.message.1)
        }
        Incoming::Post { message } => wire::decode_post(message),
    }
}

/// Decode `incoming` and check its signature against `sp`'s
/// certificates. A signature that does not verify, or uses SHA-1, is an
/// error; an unsigned message is `signed: false` (the caller decides
/// whether the SP may send those). For the POST binding the XML returned
/// is only what the signature covers, so nothing unsigned (a wrapped
/// element) reaches the parser.
pub fn verify(
    incoming: &Incoming<'_>,
    name: &str,
    relay_state: Option<String>,
    sp: &ServiceProvider,
) -> Result<Decoded, SamlError> {
    let certs = sp.certificates_der();
    match incoming {
        Incoming::Redirect { raw_query } => {
            let params = redirect_params(raw_query, name)?;
            let xml = wire::decode_redirect(&params.message.1)?;
            let relay_state = check_relay_state(params.relay_state.as_ref().map(|r| r.1.clone()))?;
            let signed = match (&params.sig_alg, &params.signature) {
                (None, None) => false,
                (Some((raw_alg, alg)), Some(signature)) => {
                    let mut signed_part = params.message.0.to_string();
                    if let Some((raw, _)) = params.relay_state {
                        signed_part.push('&');
                        signed_part.push_str(raw);
                    }
                    signed_part.push('&');
                    signed_part.push_str(raw_alg);
                    verify_query(&signed_part, alg, signature, &certs)?;
                    true
                }
                _ => {
                    return Err(SamlError::request_denied(
                        "SigAlg and Signature must come together",
                    ));
                }
            };
            Ok(Decoded {
                xml,
                signed,
                relay_state,
            })
        }
        Incoming::Post { message } => {
            let xml = wire::decode_post(message)?;
            let relay_state = check_relay_state(relay_state)?;
            if !has_signature(&xml) {
                return Ok(Decoded {
                    xml,
                    signed: false,
                    relay_state,
                });
            }
            if certs.is_empty() {
                return Err(SamlError::request_denied(
                    "the request is signed but no certificate is registered for this service provider",
                ));
            }
            let certs: Vec<CertificateDer> = certs.into_iter().map(CertificateDer::from).collect();
            let reduced = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
                &xml,
                &certs,
                ReduceMode::ValidateAndMarkNoAncestors,
                Some(ALLOWED),
            )
            .map_err(|_| {
                SamlError::request_denied(
                    "the request's signature does not verify with the registered certificate (only RSA or ECDSA with SHA-256 or stronger is accepted)",
                )
            })?;
            // What the signature covers is rooted at the signed element;
            // it must be the message itself, not an element wrapped in an
            // unsigned one (IDs are unique: samael refuses duplicates).
            let signed_root = root(&reduced).and_then(|r| r.id);
            if signed_root.is_none() || signed_root != root(&xml).and_then(|r| r.id) {
                return Err(SamlError::request_denied(
                    "the signature must cover the whole message, not an element inside it",
                ));
            }
            Ok(Decoded {
                xml: reduced,
                signed: true,
                relay_state,
            })
        }
    }
}

const PROTOCOL_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:protocol";

/// The root element of a message: its namespace, local name and `ID`.
struct Root {
    namespace: Option<Vec<u8>>,
    local: Vec<u8>,
    id: Option<String>,
}

fn root(xml: &str) -> Option<Root> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let mut reader = quick_xml::NsReader::from_str(xml);
    loop {
        match reader.read_resolved_event() {
            Ok((ns, Event::Start(e) | Event::Empty(e))) => {
                let namespace = match ns {
                    ResolveResult::Bound(n) => Some(n.as_ref().to_vec()),
                    _ => None,
                };
                let id = e
                    .try_get_attribute("ID")
                    .ok()
                    .flatten()
                    .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                return Some(Root {
                    namespace,
                    local: e.local_name().as_ref().to_vec(),
                    id,
                });
            }
            Ok((_, Event::Eof)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Refuse `xml` unless its root is the SAML protocol element `local`
/// (samael reads any root into any message type: a signed LogoutRequest
/// would pass for an AuthnRequest).
fn expect_root(xml: &str, local: &str, what: &str) -> Result<(), SamlError> {
    match root(xml) {
        Some(r) if r.local == local.as_bytes() && r.namespace.as_deref() == Some(PROTOCOL_NS) => {
            Ok(())
        }
        _ => Err(SamlError::malformed(format!(
            "the {what} is not a SAML {local}"
        ))),
    }
}

/// Refuse a request whose `Issuer` is not `sp`.
fn expect_issuer(
    issuer: Option<&samael::schema::Issuer>,
    sp: &ServiceProvider,
) -> Result<(), SamlError> {
    match issuer.and_then(|i| i.value.as_deref()).map(str::trim) {
        Some(issuer) if issuer == sp.entity_id => Ok(()),
        _ => Err(SamlError::request_denied(
            "the Issuer is not this service provider",
        )),
    }
}

fn has_signature(xml: &str) -> bool {
    xml.contains("http://www.w3.org/2000/09/xmldsig#") && xml.contains(":Signature")
        || xml.contains("<Signature")
}

/// Check a Redirect binding signature over `signed` (the raw
/// `SAMLRequest=..&RelayState=..&SigAlg=..`).
fn verify_query(
    signed: &str,
    alg: &str,
    signature_b64: &str,
    certs: &[Vec<u8>],
) -> Result<(), SamlError> {
    use openssl::hash::MessageDigest;
    let digest = match alg {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => MessageDigest::sha256(),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => MessageDigest::sha384(),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
        | "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512" => MessageDigest::sha512(),
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        | "http://www.w3.org/2000/09/xmldsig#dsa-sha1" => {
            return Err(SamlError::request_denied(
                "SHA-1 signatures are not accepted; sign with RSA-SHA256",
            ));
        }
        _ => return Err(SamlError::request_denied("the SigAlg is not supported")),
    };
    if certs.is_empty() {
        return Err(SamlError::request_denied(
            "the request is signed but no certificate is registered for this service provider",
        ));
    }
    let signature = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        signature_b64.trim(),
    )
    .map_err(|_| SamlError::malformed("Signature is not base64"))?;
    for der in certs {
        let Ok(key) = openssl::x509::X509::from_der(der).and_then(|c| c.public_key()) else {
            continue;
        };
        let Ok(mut verifier) = openssl::sign::Verifier::new(digest, &key) else {
            continue;
        };
        if verifier.update(signed.as_bytes()).is_ok()
            && verifier.verify(&signature).unwrap_or(false)
        {
            return Ok(());
        }
    }
    Err(SamlError::request_denied(
        "the request's signature does not verify with the registered certificate",
    ))
}

/// The issuer a request names (before its SP is looked up).
pub fn issuer_of_authn_request(xml: &str) -> Result<String, SamlError> {
    expect_root(xml, "AuthnRequest", "SAMLRequest")?;
    let request = AuthnRequest::from_str(xml)
        .map_err(|_| SamlError::malformed("the SAMLRequest is not an AuthnRequest"))?;
    request
        .issuer
        .and_then(|i| i.value)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SamlError::malformed("the AuthnRequest has no Issuer"))
}

/// The issuer of a LogoutRequest.
pub fn issuer_of_logout_request(xml: &str) -> Result<String, SamlError> {
    expect_root(xml, "LogoutRequest", "SAMLRequest")?;
    let request = LogoutRequest::from_str(xml)
        .map_err(|_| SamlError::malformed("the SAMLRequest is not a LogoutRequest"))?;
    request
        .issuer
        .and_then(|i| i.value)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SamlError::malformed("the LogoutRequest has no Issuer"))
}

/// The issuer of a LogoutResponse.
pub fn issuer_of_logout_response(xml: &str) -> Result<String, SamlError> {
    expect_root(xml, "LogoutResponse", "SAMLResponse")?;
    let response = samael::schema::LogoutResponse::from_str(xml)
        .map_err(|_| SamlError::malformed("the SAMLResponse is not a LogoutResponse"))?;
    response
        .issuer
        .and_then(|i| i.value)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SamlError::malformed("the LogoutResponse has no Issuer"))
}

/// A checked AuthnRequest: what the answer needs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SsoRequest {
    pub sp: String,
    pub request_id: Option<String>,
    pub acs_url: String,
    pub relay_state: Option<String>,
    pub force_authn: bool,
    pub is_passive: bool,
    pub name_id_format: NameIdFormat,
    /// The SP asked for a second factor (RequestedAuthnContext).
    pub wants_mfa: bool,
}

/// AuthnContextClassRefs that ask for a second factor.
pub const MFA_CLASS_REFS: &[&str] = &[
    "https://refeds.org/profile/mfa",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor",
    "http://schemas.microsoft.com/claims/multipleauthn",
    "urn:rsp:acr:mfa",
];

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Check an AuthnRequest of `sp` that arrived at `sso_url` at `now_ms`.
pub fn check_authn_request(
    decoded: &Decoded,
    sp: &ServiceProvider,
    sso_url: &str,
    now_ms: u64,
) -> Result<SsoRequest, SamlError> {
    if sp.require_signed_requests && !decoded.signed {
        return Err(SamlError::request_denied(
            "this service provider's requests must be signed",
        ));
    }
    expect_root(&decoded.xml, "AuthnRequest", "SAMLRequest")?;
    let request = AuthnRequest::from_str(&decoded.xml)
        .map_err(|_| SamlError::malformed("the SAMLRequest is not an AuthnRequest"))?;
    if request.version != "2.0" {
        return Err(SamlError::version("only SAML 2.0 requests are accepted"));
    }
    if !valid_id(&request.id) {
        return Err(SamlError::malformed(
            "the AuthnRequest ID is missing or malformed",
        ));
    }
    let issued = request.issue_instant.timestamp_millis().max(0) as u64;
    if issued + REQUEST_MAX_AGE_MS < now_ms {
        return Err(SamlError::request_denied("the AuthnRequest has expired"));
    }
    if issued > now_ms + CLOCK_SKEW_MS {
        return Err(SamlError::request_denied(
            "the AuthnRequest is issued in the future",
        ));
    }
    expect_issuer(request.issuer.as_ref(), sp)?;
    // SAML bindings 3.4.5.2 and 3.5.5.2: a signed message names where it
    // was sent, so it cannot be replayed at another endpoint.
    if decoded.signed && request.destination.is_none() {
        return Err(SamlError::request_denied(
            "a signed AuthnRequest must carry a Destination",
        ));
    }
    if let Some(destination) = &request.destination
        && destination != sso_url
    {
        return Err(SamlError::request_denied(
            "the Destination is not this IdP's single sign-on URL",
        ));
    }
    if let Some(binding) = &request.protocol_binding
        && binding != BINDING_POST
    {
        return Err(SamlError::unsupported_binding(
            "responses are sent by HTTP-POST only",
        ));
    }
    let acs = sp.acs_for(
        request.assertion_consumer_service_url.as_deref(),
        request.assertion_consumer_service_index.map(|i| i as u32),
    )?;
    let name_id_format = match request
        .name_id_policy
        .as_ref()
        .and_then(|p| p.format.as_deref())
    {
        None | Some("urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified") => sp.name_id_format,
        Some(uri) => NameIdFormat::parse(uri).ok_or_else(|| {
            SamlError::invalid_name_id_policy("the requested NameID format is not supported")
        })?,
    };
    let wants_mfa = request
        .requested_authn_context
        .as_ref()
        .and_then(|c| c.authn_context_class_refs.as_ref())
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.value
                    .as_deref()
                    .is_some_and(|v| MFA_CLASS_REFS.contains(&v.trim()))
            })
        });
    Ok(SsoRequest {
        sp: sp.entity_id.clone(),
        request_id: Some(request.id),
        acs_url: acs.url.clone(),
        relay_state: decoded.relay_state.clone(),
        force_authn: request.force_authn.unwrap_or(false),
        is_passive: request.is_passive.unwrap_or(false),
        name_id_format,
        wants_mfa,
    })
}

/// The text of the first element named `local` (any namespace prefix).
fn element_text(xml: &str, local: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == local.as_bytes() => inside = true,
            Ok(Event::Text(t)) if inside => text.push_str(&t.decode().ok()?),
            Ok(Event::GeneralRef(r)) if inside => {
                let name = r.decode().ok()?;
                text.push_str(match name.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => return None,
                });
            }
            Ok(Event::End(e)) if inside && e.local_name().as_ref() == local.as_bytes() => {
                let text = text.trim().to_string();
                return (!text.is_empty()).then_some(text);
            }
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

/// A checked LogoutRequest.
#[derive(Debug, Clone)]
pub struct SloRequest {
    pub sp: String,
    pub request_id: String,
    pub name_id: Option<String>,
    pub session_index: Option<String>,
    pub relay_state: Option<String>,
}

/// Check a LogoutRequest of `sp`. When the SP registered a certificate,
/// the request must be signed with it (an unsigned one would let any page
/// sign users out).
pub fn check_logout_request(
    decoded: &Decoded,
    sp: &ServiceProvider,
    slo_url: &str,
    now_ms: u64,
) -> Result<SloRequest, SamlError> {
    if !sp.certificates.is_empty() && !decoded.signed {
        return Err(SamlError::request_denied(
            "this service provider's logout requests must be signed",
        ));
    }
    expect_root(&decoded.xml, "LogoutRequest", "SAMLRequest")?;
    let request = LogoutRequest::from_str(&decoded.xml)
        .map_err(|_| SamlError::malformed("the SAMLRequest is not a LogoutRequest"))?;
    expect_issuer(request.issuer.as_ref(), sp)?;
    let id = request
        .id
        .filter(|id| valid_id(id))
        .ok_or_else(|| SamlError::malformed("the LogoutRequest ID is missing or malformed"))?;
    if request.version.as_deref() != Some("2.0") {
        return Err(SamlError::version("only SAML 2.0 requests are accepted"));
    }
    if let Some(issued) = request.issue_instant {
        let issued = issued.timestamp_millis().max(0) as u64;
        if issued + REQUEST_MAX_AGE_MS < now_ms || issued > now_ms + CLOCK_SKEW_MS {
            return Err(SamlError::request_denied("the LogoutRequest has expired"));
        }
    }
    // SAML bindings 3.4.5.2 and 3.5.5.2: a signed message names where it
    // was sent, so it cannot be replayed at another endpoint.
    if decoded.signed && request.destination.is_none() {
        return Err(SamlError::request_denied(
            "a signed LogoutRequest must carry a Destination",
        ));
    }
    if let Some(destination) = &request.destination
        && destination != slo_url
    {
        return Err(SamlError::request_denied(
            "the Destination is not this IdP's logout URL",
        ));
    }
    Ok(SloRequest {
        sp: sp.entity_id.clone(),
        request_id: id,
        name_id: request.name_id.map(|n| n.value.trim().to_string()),
        // samael reads SessionIndex as an attribute; it is an element.
        session_index: element_text(&decoded.xml, "SessionIndex"),
        relay_state: decoded.relay_state.clone(),
    })
}

#[cfg(test)]
mod tests;
