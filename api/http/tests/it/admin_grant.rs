//! Who may administer a tenant with an access token: a client-credentials
//! token of a client allowed `rsp:admin`, or a user's token only while the
//! user holds the attribute `"rsp_admin": true`. A user without it asking
//! for the scope gets a token without it; taking the attribute away stops
//! tokens already issued, on every node, at once.

use crate::authz;
use crate::support;

use authz::*;
use axum::http::StatusCode;
use serde_json::json;
use support::*;

const TENANT: &str = "acme";

struct Setup {
    env: Env,
    console: TestClient,
}

/// Three nodes, tenant `acme`, and an interactive client that lists
/// `rsp:admin` among its scopes.
async fn setup() -> Setup {
    let mut env = start(3).await;
    // Disabling a user ends their sessions: the nodes serve sessions.
    env.with_runtimes(rsp_actors::RuntimeConfig::default).await;
    env.tenant(TENANT).await;
    let mut spec = ClientSpec::new(
        "console",
        "client_secret_basic",
        &["authorization_code", "refresh_token"],
    );
    spec.scopes = &["rsp:admin", "profile"];
    let console = env.client(TENANT, spec).await;
    env.settle().await;
    Setup { env, console }
}

/// `GET /admin/v1/tenants/acme` on `node` with `token`.
async fn read_tenant(env: &Env, node: usize, token: &str) -> Answer {
    call(
        env,
        node,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}"),
        Some(&format!("Bearer {token}")),
        None,
    )
    .await
}

/// Set a user's attributes through the admin API (on node 0).
async fn set_attributes(env: &Env, user: &str, attributes: serde_json::Value) {
    let a = call(
        env,
        0,
        "PATCH",
        &format!("/admin/v1/tenants/{TENANT}/users/{user}"),
        Some(ADMIN),
        Some(json!({ "attributes": attributes })),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["attributes"], attributes);
}

fn token_scope(access_token: &str) -> String {
    peek(access_token).1["scope"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_the_grant_gets_no_rsp_admin_and_cannot_administer() {
    let s = setup().await;
    let bob = s.env.user(TENANT, "bob").await;
    let a = s
        .env
        .code_tokens(TENANT, &s.console, &bob, "openid rsp:admin profile")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.str("scope"), "openid profile", "the scope is dropped");
    let access = a.str("access_token");
    assert_eq!(token_scope(&access), "openid profile");
    let r = read_tenant(&s.env, 0, &access).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.error(), "insufficient_scope");

    // Refreshing does not bring it back.
    let r = s
        .env
        .refresh(TENANT, &s.console, &a.str("refresh_token"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.str("scope"), "openid profile");

    // An attribute that is not exactly `true` grants nothing.
    set_attributes(&s.env, &bob, json!({"rsp_admin": "yes"})).await;
    let a = s
        .env
        .code_tokens(TENANT, &s.console, &bob, "rsp:admin")
        .await;
    assert_eq!(a.str("scope"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_user_administers_until_the_attribute_is_taken_away() {
    let s = setup().await;
    let alice = s.env.user(TENANT, "alice").await;
    set_attributes(&s.env, &alice, json!({"name": "Alice", "rsp_admin": true})).await;
    let a = s
        .env
        .code_tokens(TENANT, &s.console, &alice, "openid rsp:admin")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.str("scope"), "openid rsp:admin");
    let access = a.str("access_token");
    for node in 0..3 {
        let r = read_tenant(&s.env, node, &access).await;
        assert_eq!(r.status, StatusCode::OK, "node {node}: {}", r.body);
    }

    // Taken away through node 0: the token already issued stops at once,
    // on every node, though it still carries the scope.
    set_attributes(&s.env, &alice, json!({"name": "Alice"})).await;
    for node in [2, 1, 0] {
        let r = read_tenant(&s.env, node, &access).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "node {node}: {}", r.body);
        assert_eq!(r.error(), "forbidden", "node {node}");
    }
    let r = s
        .env
        .refresh(TENANT, &s.console, &a.str("refresh_token"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.str("scope"), "openid", "a refresh drops it too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_tokens_of_a_client_allowed_the_scope_still_administer() {
    let s = setup().await;
    let ops = token(&s.env, TENANT, "acme-ops", &["rsp:admin"]).await;
    assert_eq!(token_scope(&ops), "rsp:admin");
    let r = read_tenant(&s.env, 1, &ops).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patching_a_user_changes_email_and_attributes_and_refuses_the_rest() {
    let s = setup().await;
    let carol = s.env.user(TENANT, "carol").await;
    let path = format!("/admin/v1/tenants/{TENANT}/users/{carol}");
    let a = call(
        &s.env,
        1,
        "PATCH",
        &path,
        Some(ADMIN),
        Some(json!({"email": "carol@example.org"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["email"], "carol@example.org");
    assert_eq!(a.body["attributes"]["name"], "carol Doe", "attributes kept");
    assert!(a.body.get("password_hash").is_none());
    let bad = call(
        &s.env,
        0,
        "PATCH",
        &path,
        Some(ADMIN),
        Some(json!({"email": "not an address"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    let unknown = call(
        &s.env,
        0,
        "PATCH",
        &format!("/admin/v1/tenants/{TENANT}/users/nobody"),
        Some(ADMIN),
        Some(json!({"attributes": {}})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    let disable = call(
        &s.env,
        0,
        "PATCH",
        &path,
        Some(ADMIN),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(disable.status, StatusCode::OK, "{}", disable.body);
    assert_eq!(disable.body["disabled"], true);
}
