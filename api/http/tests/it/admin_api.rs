//! The admin API against a real one-node consensus in this process, driven
//! with `tower::ServiceExt::oneshot` (no sockets).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use rsp_api::{AdminToken, AppState};
use rsp_consensus::{Consensus, ConsensusConfig, Member};
use rsp_identity::Identity;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::passwords::PasswordHasher;
use serde_json::{Value, json};
use tower::ServiceExt;
use zeroize::Zeroizing;

const TOKEN: &str = "test-admin-token";

struct Node {
    app: axum::Router,
    consensus: Consensus,
    _dir: tempfile::TempDir,
}

async fn node() -> Node {
    node_with(|_| {}).await
}

/// A node whose consensus configuration `tune` adjusts first.
async fn node_with(tune: impl FnOnce(&mut ConsensusConfig)) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let member = Member {
        peer_addr: "127.0.0.1:1".into(),
        ..Default::default()
    };
    let registry = prometheus::Registry::new();
    let mut config = ConsensusConfig::new(1, member, dir.path().join("store"));
    tune(&mut config);
    let consensus = Consensus::start(config, &registry)
        .await
        .expect("start consensus");
    consensus.bootstrap().await.expect("bootstrap");
    consensus
        .raft()
        .wait(Some(Duration::from_secs(10)))
        .current_leader(1, "single node leads")
        .await
        .expect("leader elected");
    let hasher = PasswordHasher::with(argon2::Params::new(1024, 1, 1, None).expect("params"), 2)
        .expect("hasher");
    let identity = Identity::new(
        consensus.clone(),
        Arc::new(KekCell::with(Kek::generate())),
        hasher,
        "http://127.0.0.1:8080",
    );
    let state = AppState::new(
        consensus.clone(),
        AdminToken::new(Zeroizing::new(TOKEN.to_string())),
        Arc::new(registry),
        identity,
        "http://127.0.0.1:8080",
    );
    Node {
        app: rsp_api::app(state),
        consensus,
        _dir: dir,
    }
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Body>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            b
        }
        None => Body::empty(),
    };
    let resp = app
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .expect("body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

fn json_body(v: Value) -> Option<Body> {
    Some(Body::from(v.to_string()))
}

#[tokio::test]
async fn admin_calls_without_or_with_a_wrong_token_are_refused() {
    let n = node().await;
    let (s, v) = call(&n.app, "GET", "/admin/v1/cluster", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "missing_token");
    let (s, v) = call(&n.app, "GET", "/admin/v1/cluster", Some("nope"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "invalid_token");
    let (s, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants",
        Some("nope"),
        json_body(json!({"id": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    n.consensus.shutdown().await;
}

/// A request from client address `from`, as a listener would hand it over.
async fn call_from(
    app: &axum::Router,
    from: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let addr: std::net::SocketAddr = from.parse().expect("address");
    let method = if body.is_some() { "POST" } else { "GET" };
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, retry_after, value)
}

#[tokio::test]
async fn an_address_that_keeps_failing_admin_authentication_is_refused_even_with_the_token() {
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64;
    let (clock, manual) = rsp_consensus::Clock::manual(start_ms);
    let n = node_with(|c| c.clock = clock).await;
    let (guesser, other) = ("198.51.100.7:40000", "203.0.113.9:40000");
    let created = call_from(
        &n.app,
        other,
        "/admin/v1/tenants",
        TOKEN,
        Some(json!({"id": "acme"})),
    )
    .await;
    assert_eq!(created.0, StatusCode::CREATED, "{:?}", created.2);

    for i in 0..rsp_api::authz::admin_guard::MAX_FAILURES {
        let (s, _, v) = call_from(
            &n.app,
            guesser,
            "/admin/v1/cluster",
            &format!("guess-{i}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "guess {i}: {v}");
    }
    // Over the limit: refused before the token is looked at.
    let (s, retry_after, v) = call_from(&n.app, guesser, "/admin/v1/cluster", TOKEN, None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"], "too_many_requests", "{v}");
    let retry_after: u64 = retry_after
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The decision endpoints do not take the admin token from it either.
    let ask =
        json!({"principal": "User::\"a\"", "action": "Action::\"view\"", "resource": "Doc::\"1\""});
    let uri = "/t/acme/authz/v1/is_authorized";
    let (s, _, v) = call_from(&n.app, guesser, uri, TOKEN, Some(ask.clone())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // Another address is not affected.
    let (s, _, v) = call_from(&n.app, other, "/admin/v1/cluster", TOKEN, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, v) = call_from(&n.app, other, uri, TOKEN, Some(ask)).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Once the window has passed, the token works again.
    manual.advance(Duration::from_secs(retry_after));
    let (s, _, v) = call_from(&n.app, guesser, "/admin/v1/cluster", TOKEN, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    n.consensus.shutdown().await;
}

#[tokio::test]
async fn tenant_lifecycle_create_conflict_get_delete() {
    let n = node().await;
    let body = json!({"id": "acme", "display_name": "Acme"});
    let (s, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants",
        Some(TOKEN),
        json_body(body.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["id"], "acme");
    let (s, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants",
        Some(TOKEN),
        json_body(body),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"], "tenant_exists");
    let (s, v) = call(&n.app, "GET", "/admin/v1/tenants/acme", Some(TOKEN), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["display_name"], "Acme");
    let (s, _) = call(
        &n.app,
        "DELETE",
        "/admin/v1/tenants/acme",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(&n.app, "GET", "/admin/v1/tenants/acme", Some(TOKEN), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "tenant_not_found");
    let (s, v) = call(
        &n.app,
        "DELETE",
        "/admin/v1/tenants/acme",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    n.consensus.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_json_errors_not_500s() {
    let n = node().await;
    let cases = [
        ("POST", "/admin/v1/tenants", Some(Body::from("{not json"))),
        ("POST", "/admin/v1/tenants", json_body(json!({"id": 42}))),
        (
            "POST",
            "/admin/v1/tenants",
            json_body(json!({"id": "Bad_Id"})),
        ),
        (
            "POST",
            "/admin/v1/tenants",
            json_body(json!({"id": "a", "surprise": true})),
        ),
        (
            "POST",
            "/admin/v1/kv/txn",
            json_body(json!({"compare": [{"key": "k", "target": "colour", "value": 1}]})),
        ),
        ("PUT", "/admin/v1/kv/k", json_body(json!({"value": 7}))),
        ("GET", "/admin/v1/kv/k?consistency=eventual", None),
        ("DELETE", "/admin/v1/cluster/nodes/not-a-number", None),
        (
            "POST",
            "/admin/v1/cluster/nodes",
            json_body(json!({"id": 0, "peer_addr": "127.0.0.1:1"})),
        ),
    ];
    for (method, uri, body) in cases {
        let (s, v) = call(&n.app, method, uri, Some(TOKEN), body).await;
        assert!(s.is_client_error(), "{method} {uri}: {s} {v}");
        assert!(
            v["error"].is_string() && v["message"].is_string(),
            "{method} {uri}: {v}"
        );
    }
    let huge = "x".repeat(rsp_api::MAX_BODY + 10);
    let (s, v) = call(
        &n.app,
        "PUT",
        "/admin/v1/kv/k",
        Some(TOKEN),
        json_body(json!({"value": huge})),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (s, v) = call(&n.app, "GET", "/no/such/thing", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "not_found");
    n.consensus.shutdown().await;
}

#[tokio::test]
async fn kv_put_get_cas_and_ttl() {
    let n = node().await;
    let (s, v) = call(
        &n.app,
        "PUT",
        "/admin/v1/kv/reg",
        Some(TOKEN),
        json_body(json!({"value": "1"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["version"], 1);
    // CAS that fails leaves the value alone; one that holds replaces it.
    let cas = |from: &str, to: &str| {
        json!({"compare": [{"key": "reg", "target": "value", "value": from}],
               "success": [{"op": "put", "key": "reg", "value": to}],
               "failure": [{"op": "get", "key": "reg"}]})
    };
    let (_, v) = call(
        &n.app,
        "POST",
        "/admin/v1/kv/txn",
        Some(TOKEN),
        json_body(cas("9", "2")),
    )
    .await;
    assert_eq!(v["succeeded"], false);
    assert_eq!(v["results"][0]["kv"]["value"], "1");
    let (_, v) = call(
        &n.app,
        "POST",
        "/admin/v1/kv/txn",
        Some(TOKEN),
        json_body(cas("1", "2")),
    )
    .await;
    assert_eq!(v["succeeded"], true, "{v}");
    let (s, v) = call(&n.app, "GET", "/admin/v1/kv/reg", Some(TOKEN), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["value"], "2");
    assert_eq!(v["version"], 2);
    assert_eq!(v["read"]["consistency"], "linearizable");

    let (s, _) = call(
        &n.app,
        "PUT",
        "/admin/v1/kv/short",
        Some(TOKEN),
        json_body(json!({"value": "x", "ttl_ms": 300})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = call(
            &n.app,
            "GET",
            "/admin/v1/kv/short?consistency=local",
            Some(TOKEN),
            None,
        )
        .await;
        if s == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "key with a 300 ms TTL never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    n.consensus.shutdown().await;
}

#[tokio::test]
async fn ops_endpoints_answer() {
    let n = node().await;
    let (s, v) = call(&n.app, "GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    let (s, v) = call(&n.app, "GET", "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["leader"], 1);
    assert!(
        v["degraded_tenants"].is_array(),
        "readyz lists degraded tenants: {v}"
    );
    let (s, v) = call(&n.app, "GET", "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap_or_default();
    assert!(text.contains("rsp_raft_term 1"), "{text}");
    assert!(text.contains("rsp_raft_apply_duration_seconds"), "{text}");
    n.consensus.shutdown().await;
    let (s, v) = call(&n.app, "GET", "/readyz", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}

#[tokio::test]
async fn users_and_clients_are_created_in_existing_tenants_only() {
    let n = node().await;
    let user = json!({"username": "alice", "password": "correct horse battery", "email": "alice@example.com"});
    let (s, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants/nope/users",
        Some(TOKEN),
        json_body(user.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"], "tenant_not_found");
    let (s, _) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants",
        Some(TOKEN),
        json_body(json!({"id": "acme"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants/acme/users",
        Some(TOKEN),
        json_body(user),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["id"].is_string());
    let again = json!({"username": "ALICE", "password": "another long one"});
    let (s, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants/acme/users",
        Some(TOKEN),
        json_body(again),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "usernames are case-insensitive: {v}"
    );
    let short = json!({"username": "bob", "password": "short"});
    let (s, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants/acme/users",
        Some(TOKEN),
        json_body(short),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    let confidential = json!({"client_id": "web", "redirect_uris": ["https://app.example.com/cb"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic"});
    let (s, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants/acme/clients",
        Some(TOKEN),
        json_body(confidential.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["client_id"], "web");
    assert!(
        v["client_secret"].as_str().is_some_and(|s| s.len() >= 43),
        "a 256-bit secret: {v}"
    );
    let (s, _) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants/acme/clients",
        Some(TOKEN),
        json_body(confidential),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let public = json!({"redirect_uris": ["http://127.0.0.1:8089/callback"], "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none"});
    let (s, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants/acme/clients",
        Some(TOKEN),
        json_body(public),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v.get("client_secret").is_none(),
        "public clients get no secret: {v}"
    );

    for bad in [
        json!({"redirect_uris": ["http://evil.example.com/cb"], "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none"}),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
        json!({"grant_types": ["implicit"], "token_endpoint_auth_method": "client_secret_post"}),
        json!({"grant_types": ["authorization_code"], "token_endpoint_auth_method": "client_secret_post"}),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic", "id_token_signed_response_alg": "HS256"}),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic", "access_token_signed_response_alg": "none"}),
    ] {
        let (s, v) = call(
            &n.app,
            "POST",
            "/admin/v1/tenants/acme/clients",
            Some(TOKEN),
            json_body(bad.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} -> {v}");
        assert_eq!(v["error"], "invalid_client_metadata");
    }
    n.consensus.shutdown().await;
}

#[tokio::test]
async fn totp_factors_are_imported_listed_without_secrets_and_removed() {
    let n = node().await;
    let (s, _) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants",
        Some(TOKEN),
        json_body(json!({"id": "acme"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let user = json!({"username": "carol", "password": "correct horse battery"});
    let (_, v) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants/acme/users",
        Some(TOKEN),
        json_body(user),
    )
    .await;
    let id = v["id"].as_str().expect("user id").to_string();
    let base = format!("/admin/v1/tenants/acme/users/{id}/factors");
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let (s, v) = call(
        &n.app,
        "POST",
        &base,
        Some(TOKEN),
        json_body(json!({"type": "totp", "secret": secret})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let factor = v["id"].as_str().expect("factor id").to_string();
    let (s, v) = call(&n.app, "GET", &base, Some(TOKEN), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert!(
        !v.to_string().contains(secret),
        "the seed must never be listed: {v}"
    );
    let (s, v) = call(
        &n.app,
        "POST",
        &base,
        Some(TOKEN),
        json_body(json!({"type": "sms", "secret": secret})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = call(
        &n.app,
        "POST",
        "/admin/v1/tenants/acme/users/nobody/factors",
        Some(TOKEN),
        json_body(json!({"type": "totp", "secret": secret})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &n.app,
        "DELETE",
        &format!("{base}/{factor}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &n.app,
        "DELETE",
        &format!("{base}/{factor}"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    n.consensus.shutdown().await;
}
