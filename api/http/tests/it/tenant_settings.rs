//! Per-tenant settings (`PATCH /admin/v1/tenants/{t}` `settings`): refused
//! values name the field and change nothing; `null` restores a default;
//! and each setting is in force on every node as soon as the call returns:
//! token lifetimes (with a client's own override), the password policy,
//! quotas, signing algorithms, the consent default, the lockout threshold
//! and session lifetimes.

use crate::{authz, browser, support};

use authz::{ADMIN, call};
use axum::http::StatusCode;
use browser::{Browser, MAX_FAILURES, PASSWORD, authorize_path, code_request, start_browser};
use serde_json::{Value, json};
use support::*;

const TENANT: &str = "acme";

fn tenant_path() -> String {
    format!("/admin/v1/tenants/{TENANT}")
}

async fn patch_settings(env: &Env, node: usize, settings: Value) -> Answer {
    call(
        env,
        node,
        "PATCH",
        &tenant_path(),
        Some(ADMIN),
        Some(json!({ "settings": settings })),
    )
    .await
}

async fn set(env: &Env, node: usize, settings: Value) {
    let a = patch_settings(env, node, settings).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

async fn admin_post(env: &Env, node: usize, path: &str, body: Value) -> Answer {
    call(env, node, "POST", path, Some(ADMIN), Some(body)).await
}

fn lifetime(jwt: &str) -> u64 {
    let (_, claims) = peek(jwt);
    claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat")
}

#[tokio::test]
async fn refused_settings_name_the_field_and_change_nothing_and_null_restores_a_default() {
    let env = start(1).await;
    env.tenant(TENANT).await;
    for (settings, field) in [
        (
            json!({"access_token_lifetime_secs": 10}),
            "settings.access_token_lifetime_secs",
        ),
        (json!({"max_users": "ten"}), "settings.max_users"),
        (json!({"no_such_setting": 1}), "settings.no_such_setting"),
        (
            json!({"signing_algorithms": ["HS256"]}),
            "settings.signing_algorithms",
        ),
        (
            json!({"password_min_length": 4}),
            "settings.password_min_length",
        ),
        (
            json!({"session_idle_timeout_secs": 7200, "session_absolute_lifetime_secs": 3600}),
            "settings.session_absolute_lifetime_secs",
        ),
    ] {
        let a = patch_settings(&env, 0, settings.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{settings}: {}", a.body);
        assert_eq!(a.error(), "invalid_settings", "{}", a.body);
        assert!(a.str("message").contains(field), "{settings}: {}", a.body);
    }
    let not_an_object = call(
        &env,
        0,
        "PATCH",
        &tenant_path(),
        Some(ADMIN),
        Some(json!({"settings": [1]})),
    )
    .await;
    assert_eq!(not_an_object.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = call(&env, 0, "GET", &tenant_path(), Some(ADMIN), None).await;
    assert_eq!(a.body["settings"], json!({}), "{}", a.body);

    set(
        &env,
        0,
        json!({"access_token_lifetime_secs": 120, "max_users": 5, "password_blocklist": ["Acme", "acme"]}),
    )
    .await;
    let a = call(&env, 0, "GET", &tenant_path(), Some(ADMIN), None).await;
    assert_eq!(a.body["settings"]["access_token_lifetime_secs"], 120);
    assert_eq!(a.body["settings"]["password_blocklist"], json!(["acme"]));
    let a = patch_settings(&env, 0, json!({"access_token_lifetime_secs": null})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        a.body["settings"]
            .get("access_token_lifetime_secs")
            .is_none()
    );
    assert_eq!(a.body["settings"]["max_users"], 5, "{}", a.body);
}

#[tokio::test]
async fn token_lifetimes_follow_the_tenant_on_every_node_and_a_client_may_override_them() {
    let env = start(3).await;
    env.tenant(TENANT).await;
    env.settle().await;
    let svc = env
        .client(
            TENANT,
            ClientSpec::new("svc", "client_secret_basic", &["client_credentials"]),
        )
        .await;
    let web = env
        .client(
            TENANT,
            ClientSpec::new(
                "web",
                "client_secret_basic",
                &["authorization_code", "refresh_token"],
            ),
        )
        .await;
    let user = env.user(TENANT, "alice").await;
    let token = |node: usize, c: &TestClient| {
        let basic = c.basic();
        let env = &env;
        async move {
            let a = env
                .form_on(
                    node,
                    TENANT,
                    "/token",
                    Some(&basic),
                    &[("grant_type", "client_credentials")],
                )
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            a
        }
    };
    let before = token(2, &svc).await;
    assert_eq!(before.body["expires_in"], 600, "the node default");

    set(
        &env,
        0,
        json!({"access_token_lifetime_secs": 120, "id_token_lifetime_secs": 90}),
    )
    .await;
    // At once on another node.
    let after = token(2, &svc).await;
    assert_eq!(after.body["expires_in"], 120, "{}", after.body);
    assert_eq!(lifetime(&after.str("access_token")), 120);

    let a = env.code_tokens(TENANT, &web, &user, "openid").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(lifetime(&a.str("access_token")), 120);
    assert_eq!(lifetime(&a.str("id_token")), 90);

    // A client's own lifetime wins over the tenant's.
    let own = admin_post(
        &env,
        1,
        &format!("/admin/v1/tenants/{TENANT}/clients"),
        json!({
            "client_id": "own",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "access_token_lifetime_secs": 300,
        }),
    )
    .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    let own = TestClient {
        id: "own".into(),
        secret: Some(own.str("client_secret")),
    };
    assert_eq!(token(2, &own).await.body["expires_in"], 300);
    let refused = admin_post(
        &env,
        1,
        &format!("/admin/v1/tenants/{TENANT}/clients"),
        json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "access_token_lifetime_secs": 5,
        }),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused
            .str("message")
            .contains("access_token_lifetime_secs")
    );
}

#[tokio::test]
async fn the_password_policy_and_the_quotas_hold() {
    let env = start(1).await;
    env.tenant(TENANT).await;
    let users = format!("/admin/v1/tenants/{TENANT}/users");
    let user = |name: &str, password: &str| json!({"username": name, "password": password});
    // Common passwords are refused by default.
    let a = admin_post(&env, 0, &users, user("ann", "Password123")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.error(), "weak_password");
    assert!(!a.body.to_string().contains("Password123"), "never echoed");

    set(
        &env,
        0,
        json!({"password_min_length": 12, "password_blocklist": ["Acme-Rocks-2026"], "max_users": 2, "max_clients": 1}),
    )
    .await;
    for bad in ["eleven char", "acme-rocks-2026", "bob-the-builder"] {
        let a = admin_post(&env, 0, &users, user("bob-the-builder", bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.body);
        assert_eq!(a.error(), "weak_password");
    }
    let a = admin_post(&env, 0, &users, user("ann", "twelve chars!")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let ann = a.str("id");
    let a = call(
        &env,
        0,
        "PUT",
        &format!("{users}/{ann}/password"),
        Some(ADMIN),
        Some(json!({"password": "too short 1"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.error(), "weak_password");
    let a = admin_post(&env, 0, &users, user("bob", "another good one")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = admin_post(&env, 0, &users, user("carol", "a third good one")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.error(), "quota_exceeded");

    let clients = format!("/admin/v1/tenants/{TENANT}/clients");
    let client = json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"});
    let a = admin_post(&env, 0, &clients, client.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = admin_post(&env, 0, &clients, client.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.error(), "quota_exceeded");
    // Raising the quota lets the next one in.
    set(&env, 0, json!({"max_clients": 2})).await;
    let a = admin_post(&env, 0, &clients, client).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
}

#[tokio::test]
async fn signing_algorithms_and_the_consent_default_shape_discovery_registration_and_issuance() {
    let env = start(2).await;
    env.tenant(TENANT).await;
    env.settle().await;
    let old = env
        .client(
            TENANT,
            ClientSpec::new("old", "client_secret_basic", &["client_credentials"]),
        )
        .await;
    set(
        &env,
        0,
        json!({"signing_algorithms": ["RS256"], "consent_required_by_default": true}),
    )
    .await;

    let doc = env
        .send(
            1,
            axum::http::Request::get(format!("/t/{TENANT}/.well-known/openid-configuration"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(
        doc.body["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );

    let clients = format!("/admin/v1/tenants/{TENANT}/clients");
    let a = admin_post(
        &env,
        1,
        &clients,
        json!({"client_id": "new", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let new = TestClient {
        id: "new".into(),
        secret: Some(a.str("client_secret")),
    };
    let view = call(&env, 1, "GET", &format!("{clients}/new"), Some(ADMIN), None).await;
    assert_eq!(view.body["id_token_signed_response_alg"], "RS256");
    assert_eq!(view.body["require_consent"], true);
    let a = admin_post(
        &env,
        1,
        &clients,
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic", "require_consent": false, "id_token_signed_response_alg": "ES256"}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.str("message").contains("ES256"), "{}", a.body);

    let a = env.client_credentials(TENANT, &new, "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(peek(&a.str("access_token")).0["alg"], "RS256");
    // A client registered before the change signs with ES256: refused
    // until its registration follows.
    let a = env.client_credentials(TENANT, &old, "").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.error(), "unauthorized_client");
    let a = call(
        &env,
        0,
        "PATCH",
        &format!("{clients}/old"),
        Some(ADMIN),
        Some(json!({"id_token_signed_response_alg": "RS256"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = env.client_credentials(TENANT, &old, "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn the_lockout_threshold_and_session_lifetimes_follow_the_tenant() {
    let env = start_browser(2).await;
    env.settle().await;
    let web = browser::client(
        &env,
        "web",
        "client_secret_basic",
        &["authorization_code"],
        false,
    )
    .await;
    env.user(TENANT, "alice").await;
    const {
        assert!(
            MAX_FAILURES > 1,
            "the node's threshold is above the tenant's"
        )
    };
    set(
        &env,
        0,
        json!({"lockout_threshold": 1, "session_idle_timeout_secs": 600, "session_absolute_lifetime_secs": 900}),
    )
    .await;
    let (_, challenge) = pkce();
    let path = authorize_path(&web.id, &code_request(&challenge, "s"));

    // The session a sign-in opens has the tenant's lifetimes.
    let mut b = Browser::default();
    let page = b.get(&env, 1, &path).await;
    let done = b.login(&env, 1, &page, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let users = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/users?username=alice"),
        Some(ADMIN),
        None,
    )
    .await;
    let alice = users.body["items"][0]["id"]
        .as_str()
        .expect("alice")
        .to_string();
    let sessions = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/users/{alice}/sessions"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.body);
    let session = &sessions.body[0];
    let created = session["created_ms"].as_u64().expect("created");
    let absolute = session["absolute_expires_ms"].as_u64().expect("absolute");
    assert_eq!(absolute - created, 900_000, "{session}");
    assert_eq!(session["idle_timeout_s"], 600, "{session}");

    // One failure locks the account (the node's default needs more).
    let mut b = Browser::default();
    let page = b.get(&env, 1, &path).await;
    let r = b.login(&env, 1, &page, "alice", "wrong password").await;
    assert!(
        r.html.contains(rsp_api::oidc::lockout::BAD_CREDENTIALS),
        "{}",
        r.html
    );
    let page = b.get(&env, 0, &path).await;
    let r = b.login(&env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.html);
}
