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
