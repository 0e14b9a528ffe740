//! Unauthenticated look-ups that would go to the leader are limited per
//! client address on each node: an unknown tenant, client id or signing
//! key `kid` (each confirmed by a linearizable read before "not found")
//! and every device user code entered (RFC 8628 section 5.1). Known names
//! cost nothing.

use std::net::SocketAddr;

use crate::browser;
use crate::support;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use browser::*;
use rsp_api::miss_limit::{MissLimiter, MissRule};
use support::*;

const BURST: usize = 3;

/// Browser nodes whose look-up buckets hold [`BURST`] tokens and never
/// refill.
async fn start_limited() -> Env {
    let mut env = start_browser(1).await;
    for state in &mut env.states {
        let rule = MissRule {
            per_sec: 0.0,
            burst: BURST as f64,
        };
        state.misses = MissLimiter::new(rule, state.clock().clone());
    }
    rebuild(&mut env);
    env
}

/// GET `path` from address `from`.
async fn get_from(env: &Env, from: [u8; 4], path: &str) -> Reply {
    let mut req = Request::get(path).body(Body::empty()).expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((from, 40000))));
    Browser::default().send(env, 0, req).await
}

const ALICE: [u8; 4] = [192, 0, 2, 1];
const BOB: [u8; 4] = [192, 0, 2, 2];

#[tokio::test]
async fn unknown_tenants_past_an_address_budget_get_429_and_known_ones_still_answer() {
    let env = start_limited().await;
    let unknown = "/t/nobody/.well-known/openid-configuration";
    let known = format!("/t/{TENANT}/.well-known/openid-configuration");
    for _ in 0..BURST {
        let miss = get_from(&env, ALICE, unknown).await;
        assert_eq!(miss.status, StatusCode::NOT_FOUND, "{}", miss.html);
        // A tenant this node holds is answered locally and takes nothing.
        let hit = get_from(&env, ALICE, &known).await;
        assert_eq!(hit.status, StatusCode::OK, "{}", hit.html);
    }
    let limited = get_from(&env, ALICE, unknown).await;
    assert_page_limited(&limited);
    assert!(
        limited.html.contains("too_many_requests"),
        "{}",
        limited.html
    );
    let hit = get_from(&env, ALICE, &known).await;
    assert_eq!(hit.status, StatusCode::OK, "{}", hit.html);
    // Another address has its own budget.
    let other = get_from(&env, BOB, unknown).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.html);
}

#[tokio::test]
async fn device_user_codes_entered_past_an_address_budget_get_429() {
    let env = start_limited().await;
    let path = format!("/t/{TENANT}/device?user_code=BCDF-GHJK");
    for _ in 0..BURST {
        let miss = get_from(&env, ALICE, &path).await;
        assert_eq!(miss.status, StatusCode::BAD_REQUEST, "{}", miss.html);
    }
    let limited = get_from(&env, ALICE, &path).await;
    assert_page_limited(&limited);
    // The page without a code takes nothing; another address may still try.
    let form = get_from(&env, ALICE, &format!("/t/{TENANT}/device")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    let other = get_from(&env, BOB, &path).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.html);
}

/// POST a form to `{issuer}{path}` of [`TENANT`] from address `from`.
async fn form_from(
    env: &Env,
    from: [u8; 4],
    path: &str,
    auth: Option<&str>,
    params: &[(&str, &str)],
) -> Answer {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut req = Request::post(format!("/t/{TENANT}{path}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    let mut req = req.body(Body::from(body)).expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((from, 40000))));
    env.send(0, req).await
}

/// GET userinfo of [`TENANT`] with `token`, from address `from`.
async fn userinfo_from(env: &Env, from: [u8; 4], token: &str) -> Answer {
    let mut req = Request::get(format!("/t/{TENANT}/userinfo"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((from, 40000))));
    env.send(0, req).await
}

fn assert_limited(a: &Answer) {
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", a.body);
    assert_eq!(a.error(), "too_many_requests", "{:?}", a.body);
    assert!(
        a.headers.contains_key(header::RETRY_AFTER),
        "{:?}",
        a.headers
    );
}

const CLIENT_CREDENTIALS: [(&str, &str); 1] = [("grant_type", "client_credentials")];

#[tokio::test]
async fn unknown_client_ids_past_an_address_budget_get_429_and_known_clients_still_authenticate() {
    let env = start_limited().await;
    let known = env
        .client(
            TENANT,
            ClientSpec::new("svc", "client_secret_basic", &["client_credentials"]),
        )
        .await;
    let ghost = [
        ("grant_type", "client_credentials"),
        ("client_id", "ghost"),
        ("client_secret", "guess"),
    ];
    for _ in 0..BURST {
        let miss = form_from(&env, ALICE, "/token", None, &ghost).await;
        assert_eq!(miss.status, StatusCode::UNAUTHORIZED, "{:?}", miss.body);
        assert_eq!(miss.error(), "invalid_client");
        // A client this node holds is read locally and takes nothing.
        let hit = form_from(
            &env,
            ALICE,
            "/token",
            Some(&known.basic()),
            &CLIENT_CREDENTIALS,
        )
        .await;
        assert_eq!(hit.status, StatusCode::OK, "{:?}", hit.body);
    }
    assert_limited(&form_from(&env, ALICE, "/token", None, &ghost).await);
    // The same budget covers every endpoint that authenticates clients.
    let basic_ghost = TestClient {
        id: "ghost".into(),
        secret: Some("guess".into()),
    };
    assert_limited(
        &form_from(
            &env,
            ALICE,
            "/introspect",
            Some(&basic_ghost.basic()),
            &[("token", "x")],
        )
        .await,
    );
    let hit = form_from(
        &env,
        ALICE,
        "/token",
        Some(&known.basic()),
        &CLIENT_CREDENTIALS,
    )
    .await;
    assert_eq!(hit.status, StatusCode::OK, "{:?}", hit.body);
    // Another address has its own budget.
    let other = form_from(&env, BOB, "/token", None, &ghost).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "{:?}", other.body);
}

#[tokio::test]
async fn unknown_client_ids_at_the_authorization_endpoint_past_an_address_budget_get_429() {
    let env = start_limited().await;
    client(&env, "web", "none", &["authorization_code"], false).await;
    let (_, challenge) = pkce();
    let params = code_request(&challenge, "s");
    let unknown = authorize_path("ghost", &params);
    let known = authorize_path("web", &params);
    for _ in 0..BURST {
        let miss = get_from(&env, ALICE, &unknown).await;
        assert_eq!(miss.status, StatusCode::BAD_REQUEST, "{}", miss.html);
        let hit = get_from(&env, ALICE, &known).await;
        assert_eq!(hit.status, StatusCode::OK, "{}", hit.html);
    }
    let limited = get_from(&env, ALICE, &unknown).await;
    assert_page_limited(&limited);
    let hit = get_from(&env, ALICE, &known).await;
    assert_eq!(hit.status, StatusCode::OK, "{}", hit.html);
    let other = get_from(&env, BOB, &unknown).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.html);
}

/// `token` with its header's `kid` replaced (the signature no longer
/// matters: an unknown key is refused before it is checked).
fn with_kid(token: &str, kid: &str) -> String {
    with_header(token, &[("kid", kid)])
}

/// `token` with these header fields set (the signature is not redone).
fn with_header(token: &str, fields: &[(&str, &str)]) -> String {
    let (mut header, _) = peek(token);
    for (name, value) in fields {
        header[*name] = (*value).into();
    }
    let rest = token.split_once('.').expect("jwt").1;
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("json"));
    format!("{header}.{rest}")
}

/// A page answer past the budget: 429 with `Retry-After`.
fn assert_page_limited(limited: &Reply) {
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.html
    );
    assert!(!limited.header(header::RETRY_AFTER.as_str()).is_empty());
}

#[tokio::test]
async fn access_tokens_with_unknown_kids_past_an_address_budget_get_429_and_known_ones_still_verify()
 {
    let env = start_limited().await;
    let svc = env
        .client(
            TENANT,
            ClientSpec::new("svc", "client_secret_basic", &["client_credentials"]),
        )
        .await;
    let issued = env.client_credentials(TENANT, &svc, "").await;
    assert_eq!(issued.status, StatusCode::OK, "{:?}", issued.body);
    let known = issued.str("access_token");
    let unknown = with_kid(&known, "ghost-kid");
    // A client-credentials token has no `openid`: a verified one is 403.
    let verified = |a: &Answer| {
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{:?}", a.body);
        assert_eq!(a.error(), "insufficient_scope");
    };
    for _ in 0..BURST {
        let miss = userinfo_from(&env, ALICE, &unknown).await;
        assert_eq!(miss.status, StatusCode::UNAUTHORIZED, "{:?}", miss.body);
        assert_eq!(miss.error(), "invalid_token");
        // A key this node holds is read locally and takes nothing.
        verified(&userinfo_from(&env, ALICE, &known).await);
    }
    assert_limited(&userinfo_from(&env, ALICE, &unknown).await);
    // Introspection shares the budget (its caller is a known client).
    assert_limited(
        &form_from(
            &env,
            ALICE,
            "/introspect",
            Some(&svc.basic()),
            &[("token", &unknown)],
        )
        .await,
    );
    // So does revocation, which checks an access token before revoking it.
    assert_limited(
        &form_from(
            &env,
            ALICE,
            "/revoke",
            Some(&svc.basic()),
            &[("token", &unknown)],
        )
        .await,
    );
    let active = form_from(
        &env,
        ALICE,
        "/introspect",
        Some(&svc.basic()),
        &[("token", &known)],
    )
    .await;
    assert_eq!(active.body["active"], true, "{:?}", active.body);
    verified(&userinfo_from(&env, ALICE, &known).await);
    let other = userinfo_from(&env, BOB, &unknown).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "{:?}", other.body);
}

/// An `id_token_hint` whose `kid` the tenant does not have takes from the
/// same budget at the authorization endpoint: past it, 429 with
/// `Retry-After`, while another address is still answered.
#[tokio::test]
async fn id_token_hints_with_unknown_kids_past_an_address_budget_get_429() {
    let env = start_limited().await;
    client(&env, "web", "none", &["authorization_code"], false).await;
    let svc = env
        .client(
            TENANT,
            ClientSpec::new("svc", "client_secret_basic", &["client_credentials"]),
        )
        .await;
    let token = env.client_credentials(TENANT, &svc, "").await;
    // Shaped as an ID token (typ JWT) so it reaches the key look-up.
    let hint = with_header(
        &token.str("access_token"),
        &[("kid", "ghost-kid"), ("typ", "JWT")],
    );
    let (_, challenge) = pkce();
    let mut params = code_request(&challenge, "s");
    params.push(("id_token_hint", &hint));
    let path = authorize_path("web", &params);
    for _ in 0..BURST {
        let miss = get_from(&env, ALICE, &path).await;
        assert_ne!(miss.status, StatusCode::TOO_MANY_REQUESTS, "{}", miss.html);
    }
    let limited = get_from(&env, ALICE, &path).await;
    assert_page_limited(&limited);
    let other = get_from(&env, BOB, &path).await;
    assert_ne!(
        other.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        other.html
    );
}
