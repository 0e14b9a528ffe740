//! The bodies of the fuzz targets: one function per parser of outside
//! input, each taking arbitrary bytes and required never to panic. The
//! cargo-fuzz project in `tests/fuzz/` calls them under libFuzzer (long runs,
//! by hand, on nightly); `tests/it/fuzz_corpus.rs` replays the kept corpora
//! and a few thousand mutations of them on stable in every test run.

use std::sync::OnceLock;

use jsonwebtoken::jwk::JwkSet;
use rsp_api::admin::bodies::AdminBody;
use rsp_consensus::peer_auth::{JoinToken, PeerAuth};
use rsp_identity::clients::valid_redirect_uri;
use rsp_identity::oauth::client_auth::verify_assertion_signature;
use rsp_identity::oauth::params::{Params, credentials};
use rsp_identity::saml::providers::{Registration, ServiceProvider};
use rsp_identity::saml::request::{self, Incoming};
use rsp_identity::saml::wire;
use rsp_policies::compile::{compile, parse_entities, parse_policies};
use rsp_policies::records::PolicyVersion;
use rsp_policies::{DecisionRequest, Snapshot, parse_uid};
use serde_json::Value;

/// A fuzz target: arbitrary bytes in, no panic.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("peer_frame", peer_frame),
    ("oauth_form", oauth_form),
    ("jose", jose),
    ("cedar", cedar),
    ("config_toml", config_toml),
    ("admin_json", admin_json),
    ("saml_redirect", saml_redirect),
    ("saml_post", saml_post),
];

/// A peer message as the peer listener receives it: the tag check, then
/// the bincode decoding of the request.
pub fn peer_frame(data: &[u8]) {
    static AUTH: OnceLock<PeerAuth> = OnceLock::new();
    let auth = AUTH.get_or_init(|| {
        PeerAuth::new(&JoinToken::parse("fuzz-target-join-token-0123456789").expect("token"))
    });
    let (tag, body) = data.split_at(data.len().min(64));
    let _ = auth.verify_request(&String::from_utf8_lossy(tag), body);
    let _ = rsp_consensus::rpc::decode_request(data);
}

/// A protocol endpoint's form body (token, revocation, introspection, PAR,
/// device authorization, login forms): parsing, then what is checked of
/// each value that names a redirect URI or carries client credentials.
pub fn oauth_form(data: &[u8]) {
    if let Ok(params) = Params::parse(data) {
        for value in params.map().values() {
            let _ = valid_redirect_uri(value);
            let _ = credentials(value, "Basic");
            let _ = credentials(value, "Bearer");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = credentials(text, "Basic");
    }
}

/// A `private_key_jwt` assertion against a client's JWKS: the bytes before
/// the first NUL are the client's JWKS (JSON), the rest the assertion. The
/// JOSE header, key choice by `kid`, algorithm pinning, signature and claim
/// checks all run on the attacker's bytes.
pub fn jose(data: &[u8]) {
    let (jwks, assertion) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&data[..0], data),
    };
    let Ok(assertion) = std::str::from_utf8(assertion) else {
        return;
    };
    let _ = jsonwebtoken::decode_header(assertion);
    if let Ok(jwks) = serde_json::from_slice::<JwkSet>(jwks) {
        let _ = verify_assertion_signature(assertion, "client", &jwks, "https://issuer/t/x");
    }
}

/// An authorization request as the decision and AuthZEN endpoints take it
/// (JSON with principal, action, resource, context, entities), decided
/// against a small policy set; and the same bytes as Cedar policy text.
pub fn cedar(data: &[u8]) {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    let snapshot = SNAPSHOT.get_or_init(|| {
        let version = PolicyVersion {
            version: 1,
            policies: r#"permit(principal == User::"alice", action == Action::"read", resource)
                when { context.mfa == true };
                forbid(principal, action, resource) when { resource.owner != principal };"#
                .into(),
            schema: None,
            author: "fuzz".into(),
            time_ms: 0,
            restored_from: None,
        };
        let compiled = compile(Some(&version), &[], None).expect("the fuzz policies compile");
        Snapshot::build(1, Default::default(), compiled).expect("indexes")
    });
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_policies(text);
    }
    let Ok(json) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = parse_entities(&json, None);
    let uid = |field: &str| json.get(field).map(|v| parse_uid(v, field));
    let (Some(Ok(principal)), Some(Ok(action)), Some(Ok(resource))) =
        (uid("principal"), uid("action"), uid("resource"))
    else {
        return;
    };
    let entities = match json.get("entities") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let req = DecisionRequest {
        principal,
        action,
        resource,
        context: json.get("context").cloned(),
        entities,
    };
    let _ = snapshot.decide(&req, true);
    let _ = snapshot.decide(&req, false);
}

/// A `--config` TOML file, through the whole settings resolution (every
/// value's parsing and the checks that only look at the disk).
pub fn config_toml(data: &[u8]) {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if std::io::Write::write_all(&mut file, data).is_err() {
        return;
    }
    let args = ["rsp", "serve", "--config"]
        .into_iter()
        .map(std::ffi::OsString::from)
        .chain([file.path().as_os_str().to_owned()])
        .collect();
    let _ = rsp_node::config::load_from(args, &|_| None);
}

/// An admin API request body, as the handler of every admin route that
/// takes one decodes and checks it before it needs any state
/// ([`AdminBody::check`]); the same bytes go to every route. A refusal
/// must be a client error (or the 501 of a feature not served), never a
/// 500.
pub fn admin_json(data: &[u8]) {
    for kind in AdminBody::ALL {
        if let Err(status) = kind.check(data) {
            assert!(
                status.is_client_error() || status.as_u16() == 501,
                "{kind:?} answered {status}"
            );
        }
    }
}

/// The service provider the SAML targets' requests name.
pub const SAML_SP: &str = "https://sp.fuzz.test/metadata";
/// The IdP endpoints they are addressed to.
pub const SAML_SSO: &str = "https://idp.fuzz.test/t/acme/saml/sso";
pub const SAML_SLO: &str = "https://idp.fuzz.test/t/acme/saml/slo";
/// The moment the SAML targets check requests at: the IssueInstant of the
/// corpus's requests, 2030-01-01T00:00:00Z.
pub const SAML_NOW_MS: u64 = 1_893_456_000_000;
/// The certificate of the SP's signing key (`tests/fuzz/saml-sp.key`, a
/// key made for these tests, which signs the corpus's signed requests).
pub const SAML_SP_CERTIFICATE: &str = include_str!("../fuzz/saml-sp.crt");

/// Two registrations of [`SAML_SP`]: with its certificate (requests are
/// signature-checked, logout requests must be signed) and without (every
/// check after the signature's runs on unsigned requests).
fn saml_sps() -> &'static [ServiceProvider; 2] {
    static SPS: OnceLock<[ServiceProvider; 2]> = OnceLock::new();
    SPS.get_or_init(|| {
        let sp = |certificate: Option<&str>| {
            Registration {
                entity_id: Some(SAML_SP.into()),
                acs_url: Some("https://sp.fuzz.test/acs".into()),
                slo_url: Some("https://sp.fuzz.test/slo".into()),
                certificate_pem: certificate.map(str::to_string),
                ..Registration::default()
            }
            .into_provider(0)
            .expect("the fuzz SP registers")
        };
        [sp(Some(SAML_SP_CERTIFICATE)), sp(None)]
    })
}

/// A request through what the SSO and SLO endpoints do before they need
/// any state: decoding within bounds, the issuer (the SP's lookup), the
/// signature against each SP stand-in, then every check of an
/// AuthnRequest and of a LogoutRequest; and the issuer of a
/// LogoutResponse. Refusals are errors.
fn saml_request(incoming: &Incoming<'_>, post_relay_state: Option<&str>) {
    let Ok(xml) = request::peek(incoming, "SAMLRequest") else {
        return;
    };
    let _ = request::issuer_of_authn_request(&xml);
    let _ = request::issuer_of_logout_request(&xml);
    let _ = request::issuer_of_logout_response(&xml);
    for sp in saml_sps() {
        let relay = post_relay_state.map(str::to_string);
        if let Ok(decoded) = request::verify(incoming, "SAMLRequest", relay, sp) {
            let _ = request::check_authn_request(&decoded, sp, SAML_SSO, SAML_NOW_MS);
            let _ = request::check_logout_request(&decoded, sp, SAML_SLO, SAML_NOW_MS);
        }
    }
}

/// An HTTP-Redirect binding request (`GET .../saml/sso` or `/saml/slo`):
/// the bytes as the raw query (`SAMLRequest`, `RelayState`, `SigAlg`,
/// `Signature`: base64, DEFLATE inflated within its bound, the query
/// signature); and the same bytes as the XML, deflated into a query of
/// their own, so that mutations reach the XML checks.
pub fn saml_redirect(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    saml_request(&Incoming::Redirect { raw_query: text }, None);
    let query = format!(
        "SAMLRequest={}&RelayState=r",
        url_encoded(&wire::encode_redirect(text))
    );
    saml_request(&Incoming::Redirect { raw_query: &query }, None);
}

/// An HTTP-POST binding request (`POST .../saml/sso` or `/saml/slo`): the
/// bytes as the form's base64 `SAMLRequest` (decoding, the XML checks,
/// the enveloped signature through xmlsec with SHA-1 refused, what it
/// covers); and the same bytes as the XML, base64-encoded.
pub fn saml_post(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        saml_request(&Incoming::Post { message: text }, Some("r"));
    }
    let message = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data);
    saml_request(&Incoming::Post { message: &message }, None);
}

fn url_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
