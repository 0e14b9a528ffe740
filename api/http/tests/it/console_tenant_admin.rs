//! The web console for tenant administrators: sign-in through the
//! tenant's own login (authorization code with PKCE through the built-in
//! `rsp-admin-console` client), their own tenant only (403 for another
//! tenant, the tenant list and the cluster), no session for a user without
//! `rsp_admin` or for a forged `state`, and the session ended as soon as
//! the user is disabled or loses `rsp_admin`.

use axum::http::StatusCode;
use serde_json::json;

use crate::{authz, browser, support};

use authz::{ADMIN, call};
use browser::{Browser, PASSWORD, Reply, TENANT, start_browser};
use support::Env;

fn location(r: &Reply) -> String {
    r.header("location")
}

/// A user of [`TENANT`]; with `"rsp_admin": true` when `admin`.
async fn user(env: &Env, username: &str, admin: bool) -> String {
    let id = env.user(TENANT, username).await;
    if admin {
        set(env, &id, json!({"attributes": {"rsp_admin": true}})).await;
    }
    id
}

/// PATCH the user `id` of [`TENANT`] through the admin API.
async fn set(env: &Env, id: &str, body: serde_json::Value) {
    let a = call(
        env,
        0,
        "PATCH",
        &format!("/admin/v1/tenants/{TENANT}/users/{id}"),
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// From the console's sign-in page to the tenant's login page: the
/// browser, with the console's sign-in cookie, on the login page.
async fn to_tenant_login(env: &Env, b: &mut Browser) -> Reply {
    let home = b.get(env, 0, "/admin/").await;
    assert!(
        home.html.contains("action=\"/admin/tenant-signin\""),
        "{}",
        home.html
    );
    let r = b
        .get(env, 0, &format!("/admin/tenant-signin?tenant={TENANT}"))
        .await;
    assert_eq!(location(&r), format!("/admin/t/{TENANT}/signin"));
    let r = b.get(env, 0, &location(&r)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert!(b.cookies.contains_key("rsp_console_signin"));
    let authorize = location(&r);
    assert!(
        authorize.starts_with(&format!("/t/{TENANT}/authorize?")),
        "{authorize}"
    );
    let url = url::Url::parse(&format!("http://x{authorize}")).expect("url");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "rsp-admin-console");
    assert_eq!(q["scope"], "openid rsp:admin");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/admin/t/{TENANT}/callback", support::PUBLIC_URL)
    );
    for p in ["state", "nonce", "code_challenge"] {
        assert!(q.get(p).is_some_and(|v| v.len() >= 43), "{p}: {q:?}");
    }
    let page = b.get(env, 0, &authorize).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    page
}

/// The path and query of the tenant's redirect back to the console.
fn back_to_console(done: &Reply) -> String {
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let target = done.location().expect("location");
    assert_eq!(target.path(), format!("/admin/t/{TENANT}/callback"));
    format!("{}?{}", target.path(), target.query().unwrap_or(""))
}

/// `username` signs in through the tenant's login; the callback's answer.
async fn tenant_sign_in(env: &Env, b: &mut Browser, username: &str) -> Reply {
    let page = to_tenant_login(env, b).await;
    let done = b.login(env, 0, &page, username, PASSWORD).await;
    let callback = back_to_console(&done);
    b.get(env, 0, &callback).await
}

/// A signed-in tenant administrator `alice` of [`TENANT`], on their
/// tenant's page; the browser and the session's anti-forgery token.
async fn admin_signed_in(env: &Env) -> (Browser, String) {
    let mut b = Browser::default();
    let r = tenant_sign_in(env, &mut b, "alice").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert_eq!(location(&r), format!("/admin/tenants/{TENANT}"));
    assert!(b.cookies.contains_key("rsp_console"));
    assert!(!b.cookies.contains_key("rsp_console_signin"));
    let page = b.get(env, 0, &location(&r)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let csrf = page.field("csrf_token").expect("csrf field");
    (b, csrf)
}

#[tokio::test]
async fn a_tenant_admin_signs_in_through_the_tenant_login_and_lands_on_their_tenant() {
    let env = start_browser(1).await;
    user(&env, "alice", true).await;
    let (mut b, _) = admin_signed_in(&env).await;
    let page = b.get(&env, 0, &format!("/admin/tenants/{TENANT}")).await;
    assert!(
        page.html
            .contains("Signed in as alice (administrator of acme)"),
        "{}",
        page.html
    );
    // The operator's links and forms are not shown.
    for hidden in [
        "href=\"/admin/cluster\"",
        "href=\"/admin/tenants\"",
        "id=\"delete-tenant\"",
        "id=\"rename\"",
    ] {
        assert!(!page.html.contains(hidden), "{hidden} shown");
    }
    assert!(
        page.html
            .contains(&format!("href=\"/admin/tenants/{TENANT}/users\""))
    );
    // A tenant that does not exist starts no sign-in.
    let mut other = Browser::default();
    let r = other.get(&env, 0, "/admin/t/nope/signin").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.html);
    assert!(!other.cookies.contains_key("rsp_console_signin"));
    // Signed in, the sign-in page sends on to their tenant.
    let home = b.get(&env, 0, "/admin/").await;
    assert_eq!(location(&home), format!("/admin/tenants/{TENANT}"));
}

#[tokio::test]
async fn a_tenant_admin_creates_a_user_in_their_tenant() {
    let env = start_browser(1).await;
    user(&env, "alice", true).await;
    let (mut b, csrf) = admin_signed_in(&env).await;
    let r = b
        .post(
            &env,
            0,
            &format!("/admin/tenants/{TENANT}/users"),
            &[
                ("csrf_token", &csrf),
                ("username", "dave"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let a = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/users?search=dave"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.body["items"][0]["username"], "dave", "{}", a.body);
    let users = b
        .get(&env, 0, &format!("/admin/tenants/{TENANT}/users"))
        .await;
    assert_eq!(users.status, StatusCode::OK);
    assert!(users.html.contains("dave"));
}

#[tokio::test]
async fn a_tenant_admin_is_refused_other_tenants_the_tenant_list_and_the_cluster() {
    let env = start_browser(1).await;
    env.tenant("globex").await;
    user(&env, "alice", true).await;
    let (mut b, csrf) = admin_signed_in(&env).await;
    for path in [
        "/admin/tenants",
        "/admin/cluster",
        "/admin/tenants/globex",
        "/admin/tenants/globex/users",
        "/admin/tenants/globex/clients",
        "/admin/tenants/globex/policies",
    ] {
        let r = b.get(&env, 0, path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "GET {path}: {}", r.html);
    }
    let posts: [(&str, Vec<(&str, &str)>); 5] = [
        ("/admin/tenants", vec![("id", "initech")]),
        (
            "/admin/tenants/globex/users",
            vec![("username", "mallory"), ("password", PASSWORD)],
        ),
        (
            &format!("/admin/tenants/{TENANT}/delete"),
            vec![("confirm", TENANT), ("force", "true")],
        ),
        (
            &format!("/admin/tenants/{TENANT}"),
            vec![("display_name", "Mine")],
        ),
        ("/admin/tenants/globex/delete", vec![("confirm", "globex")]),
    ];
    for (path, fields) in &posts {
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend(fields.iter().copied());
        let r = b.post(&env, 0, path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {path}: {}", r.html);
    }
    // Nothing of it happened.
    for (path, status) in [
        ("/admin/v1/tenants/initech", StatusCode::NOT_FOUND),
        ("/admin/v1/tenants/globex", StatusCode::OK),
        ("/admin/v1/tenants/acme", StatusCode::OK),
    ] {
        let a = call(&env, 0, "GET", path, Some(ADMIN), None).await;
        assert_eq!(a.status, status, "{path}");
    }
    let a = call(&env, 0, "GET", "/admin/v1/tenants/acme", Some(ADMIN), None).await;
    assert_eq!(a.body["display_name"], "acme");
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/globex/users?search=mallory",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.body["items"], json!([]));
}

#[tokio::test]
async fn a_user_without_rsp_admin_gets_no_console_session() {
    let env = start_browser(1).await;
    user(&env, "bob", false).await;
    let mut b = Browser::default();
    let r = tenant_sign_in(&env, &mut b, "bob").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    assert!(
        r.html.contains("not an administrator of this tenant"),
        "{}",
        r.html
    );
    assert!(!b.cookies.contains_key("rsp_console"));
    let r = b.get(&env, 0, &format!("/admin/tenants/{TENANT}")).await;
    assert_eq!(location(&r), "/admin/");
}

#[tokio::test]
async fn a_forged_or_foreign_state_is_refused() {
    let env = start_browser(1).await;
    user(&env, "alice", true).await;
    let mut b = Browser::default();
    let page = to_tenant_login(&env, &mut b).await;
    let done = b.login(&env, 0, &page, "alice", PASSWORD).await;
    let callback = back_to_console(&done);
    let url = url::Url::parse(&format!("http://x{callback}")).expect("url");
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let forged = format!(
        "/admin/t/{TENANT}/callback?code={code}&state={}",
        "0".repeat(64)
    );
    let r = b.get(&env, 0, &forged).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    assert!(!b.cookies.contains_key("rsp_console"));
    // The genuine answer in a browser that did not start the sign-in.
    let mut other = Browser::default();
    let r = other.get(&env, 0, &callback).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    assert!(!other.cookies.contains_key("rsp_console"));
    // The sign-in cookie of one tenant does not serve another's callback.
    env.tenant("globex").await;
    let r = b
        .get(
            &env,
            0,
            &callback.replace(&format!("/t/{TENANT}/"), "/t/globex/"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    assert!(!b.cookies.contains_key("rsp_console"));
    // The genuine answer, in the browser that started it, still works.
    let r = b.get(&env, 0, &callback).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    assert!(b.cookies.contains_key("rsp_console"));
}

#[tokio::test]
async fn disabling_a_tenant_admin_or_removing_rsp_admin_ends_their_console_access() {
    let env = start_browser(1).await;
    let alice = user(&env, "alice", true).await;
    let (mut b, _) = admin_signed_in(&env).await;
    set(&env, &alice, json!({"disabled": true})).await;
    let r = b
        .get(&env, 0, &format!("/admin/tenants/{TENANT}/users"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
    assert!(r.html.contains("no longer an administrator"), "{}", r.html);
    assert!(
        !b.cookies.contains_key("rsp_console"),
        "the cookie is cleared"
    );

    let carol = user(&env, "carol", true).await;
    let mut b = Browser::default();
    let r = tenant_sign_in(&env, &mut b, "carol").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let page = b.get(&env, 0, &format!("/admin/tenants/{TENANT}")).await;
    assert_eq!(page.status, StatusCode::OK);
    set(&env, &carol, json!({"attributes": {}})).await;
    let r = b.get(&env, 0, &format!("/admin/tenants/{TENANT}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.html);
}

#[tokio::test]
async fn the_console_client_is_built_in_and_cannot_be_registered_or_listed() {
    let env = start_browser(1).await;
    let a = call(
        &env,
        0,
        "POST",
        &format!("/admin/v1/tenants/{TENANT}/clients"),
        Some(ADMIN),
        Some(json!({
            "client_id": "rsp-admin-console",
            "redirect_uris": ["https://evil.example.com/cb"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "none",
        })),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(a.body["error"], "invalid_client_metadata");
    let a = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/{TENANT}/clients/rsp-admin-console"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Another redirect URI than its own is refused at the authorization
    // endpoint (no redirect to it).
    let mut b = Browser::default();
    let r = b
        .get(
            &env,
            0,
            &browser::authorize_path(
                "rsp-admin-console",
                &[
                    ("response_type", "code"),
                    ("redirect_uri", "https://evil.example.com/cb"),
                    ("scope", "openid rsp:admin"),
                    ("code_challenge", &"a".repeat(43)),
                    ("code_challenge_method", "S256"),
                ],
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.html);
}
