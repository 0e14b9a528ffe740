//! Refresh families end: at their client's absolute lifetime (30 days by
//! default) however often they are rotated, and, when issued in a browser
//! session without `offline_access`, when that session ends by
//! RP-initiated logout or an administrator's sign-out. `offline_access`
//! families survive sign-out.

use std::time::Duration;

use crate::authz;
use crate::browser;
use crate::support;

use authz::*;
use axum::http::StatusCode;
use browser::*;
use rsp_identity::oauth::OidcConfig;
use serde_json::json;
use support::*;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_past_the_clients_absolute_lifetime_is_invalid_grant() {
    let (env, clock) = start_clocked(1, OidcConfig::default()).await;
    env.tenant("acme").await;
    let grants = ["authorization_code", "refresh_token"];
    let mut spec = ClientSpec::new("hourly", "client_secret_basic", &grants);
    spec.refresh_absolute_lifetime_secs = Some(3600);
    let hourly = env.client("acme", spec).await;
    let user = env.user("acme", "alice").await;

    let a = env.code_tokens("acme", &hourly, &user, "openid").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    clock.advance(40 * MINUTE);
    let r = env.refresh("acme", &hourly, &a.str("refresh_token")).await;
    assert_eq!(r.status, StatusCode::OK, "within the hour: {}", r.body);
    let latest = r.str("refresh_token");
    let i = env.introspect("acme", &hourly, &latest).await;
    assert_eq!(i.body["active"], true, "{}", i.body);
    let exp = i.body["exp"].as_u64().expect("exp");
    assert!(
        exp <= a_hour_after_issue(&a),
        "exp {exp} is capped by the absolute lifetime"
    );

    // Rotated 40 minutes in, idle for 25 more: well within the idle
    // lifetime, but past the hour.
    clock.advance(25 * MINUTE);
    let r = env.refresh("acme", &hourly, &latest).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.error(), "invalid_grant");
    let i = env.introspect("acme", &hourly, &latest).await;
    assert_eq!(i.body, json!({"active": false}));
}

/// A token answer's access token `iat` plus an hour.
fn a_hour_after_issue(a: &Answer) -> u64 {
    peek(&a.str("access_token")).1["iat"].as_u64().expect("iat") + 3600
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_setting_families_end_after_thirty_days() {
    let (env, clock) = start_clocked(1, OidcConfig::default()).await;
    env.tenant("acme").await;
    let grants = ["authorization_code", "refresh_token"];
    let web = env
        .client(
            "acme",
            ClientSpec::new("web", "client_secret_basic", &grants),
        )
        .await;
    let user = env.user("acme", "alice").await;
    let a = env.code_tokens("acme", &web, &user, "openid").await;
    let mut token = a.str("refresh_token");
    // Used every ten days: never idle for long, yet it ends on day 30.
    for day in [10, 20, 29] {
        clock.set_ms(start_ms(&a) + day * DAY.as_millis() as u64);
        let r = env.refresh("acme", &web, &token).await;
        assert_eq!(r.status, StatusCode::OK, "day {day}: {}", r.body);
        token = r.str("refresh_token");
    }
    clock.advance(2 * DAY);
    let r = env.refresh("acme", &web, &token).await;
    assert_eq!(r.error(), "invalid_grant", "day 31: {}", r.body);
}

/// When the grant of a token answer was made, in ms (its `iat`).
fn start_ms(a: &Answer) -> u64 {
    peek(&a.str("access_token")).1["iat"].as_u64().expect("iat") * 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_takes_an_absolute_lifetime_within_bounds() {
    let env = start(1).await;
    env.tenant("acme").await;
    let path = "/admin/v1/tenants/acme/clients";
    let too_long = rsp_identity::clients::MAX_REFRESH_ABSOLUTE_LIFETIME_SECS + 1;
    for bad in [0, too_long] {
        let a = call(
            &env,
            0,
            "POST",
            path,
            Some(ADMIN),
            Some(json!({
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic",
                "refresh_token_absolute_lifetime_secs": bad,
            })),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.body);
        assert_eq!(a.error(), "invalid_client_metadata");
    }
    let a = call(
        &env,
        0,
        "POST",
        path,
        Some(ADMIN),
        Some(json!({
            "client_id": "weekly",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "refresh_token_absolute_lifetime_secs": 604800,
        })),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let stored = env
        .state()
        .identity
        .clients
        .get("acme", "weekly")
        .await
        .expect("client");
    assert_eq!(stored.refresh_token_absolute_lifetime_secs, Some(604800));
}

struct Signed {
    env: Env,
    web: TestClient,
    browser: Browser,
    user: String,
    /// Issued in the session: `openid`.
    online: Answer,
    /// Issued in the same session: `openid offline_access`.
    offline: Answer,
}

/// Exchange `code` for `web`'s tokens.
async fn exchange(env: &Env, web: &TestClient, code: &str, verifier: &str) -> Answer {
    let a = env
        .form(
            TENANT,
            "/token",
            Some(&web.basic()),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a
}

/// A 3-node cluster; alice signs in once in a browser and the client gets
/// two grants in that session, one of them `offline_access`.
async fn signed_in() -> Signed {
    let env = start_browser(3).await;
    let grants = ["authorization_code", "refresh_token"];
    let web = client(&env, "web", "client_secret_basic", &grants, false).await;
    let user = env.user(TENANT, "alice").await;
    let mut b = Browser::default();
    let mut answers = Vec::new();
    for scope in ["openid", "openid offline_access"] {
        let (verifier, challenge) = pkce();
        let mut params = code_request(&challenge, "s");
        params.retain(|(k, _)| *k != "scope");
        params.push(("scope", scope));
        let page = b.get(&env, 0, &authorize_path(&web.id, &params)).await;
        let done = if page.has_input("password") {
            b.login(&env, 0, &page, "alice", PASSWORD).await
        } else {
            page
        };
        let code = done.param("code").expect("code");
        answers.push(exchange(&env, &web, &code, &verifier).await);
    }
    let offline = answers.pop().expect("offline");
    let online = answers.pop().expect("online");
    assert!(!offline.str("refresh_token").is_empty());
    Signed {
        env,
        web,
        browser: b,
        user,
        online,
        offline,
    }
}

/// The online grant's refresh token fails on every node; the offline one
/// still refreshes.
async fn assert_only_offline_survives(s: &Signed) {
    let online = s.online.str("refresh_token");
    for node in [2, 1, 0] {
        let r = s
            .env
            .form_on(
                node,
                TENANT,
                "/token",
                Some(&s.web.basic()),
                &[("grant_type", "refresh_token"), ("refresh_token", &online)],
            )
            .await;
        assert_eq!(r.error(), "invalid_grant", "node {node}: {}", r.body);
    }
    let u = s
        .env
        .userinfo_get(TENANT, &s.online.str("access_token"))
        .await;
    assert_eq!(u.status, StatusCode::UNAUTHORIZED, "{}", u.body);
    let r = s
        .env
        .refresh(TENANT, &s.web, &s.offline.str("refresh_token"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "offline_access survives: {}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_sessions_refresh_tokens_but_not_offline_access() {
    let mut s = signed_in().await;
    let path = format!(
        "/t/{TENANT}/logout?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &s.online.str("id_token"))
            .finish()
    );
    let r = s.browser.get(&s.env, 1, &path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(r.html.contains("Signed out"), "{}", r.html);
    assert_only_offline_survives(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_a_user_out_revokes_their_session_refresh_tokens_but_not_offline_access() {
    let s = signed_in().await;
    let a = call(
        &s.env,
        1,
        "DELETE",
        &format!("/admin/v1/tenants/{TENANT}/users/{}/sessions", s.user),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["revoked"], 1, "{}", a.body);
    assert_eq!(a.body["refresh_families_revoked"], 1, "{}", a.body);
    assert_only_offline_survives(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_one_session_revokes_its_refresh_tokens_but_not_offline_access() {
    let s = signed_in().await;
    let sid = peek(&s.online.str("id_token")).1["sid"]
        .as_str()
        .expect("sid")
        .to_string();
    let a = call(
        &s.env,
        2,
        "DELETE",
        &format!("/admin/v1/tenants/{TENANT}/sessions/{sid}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["refresh_families_revoked"], 1, "{}", a.body);
    assert_only_offline_survives(&s).await;
}
