//! RP-initiated logout: the session is revoked on every node and its cookie
//! cleared; `post_logout_redirect_uri` must be registered; without an ID
//! token hint the user confirms first.

use crate::support;

use crate::browser;

use axum::http::StatusCode;
use browser::*;
use support::*;

const CODE: &[&str] = &["authorization_code"];

struct Setup {
    env: Env,
    web: TestClient,
}

/// A 3-node cluster, a signed-in browser and its ID token.
async fn signed_in() -> (Setup, Browser, String) {
    let env = start_browser(3).await;
    let web = client(&env, "web", "client_secret_basic", CODE, false).await;
    env.user(TENANT, "alice").await;
    let (verifier, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &env,
            0,
            &authorize_path(&web.id, &code_request(&challenge, "s")),
        )
        .await;
    let done = b.login(&env, 0, &page, "alice", PASSWORD).await;
    let code = done.param("code").expect("code");
    let tokens = env
        .form(
            TENANT,
            "/token",
            Some(&web.basic()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let id_token = tokens.str("id_token");
    (Setup { env, web }, b, id_token)
}

/// Whether the browser's cookie still signs it in silently on `node`.
async fn signed_in_on(s: &Setup, cookies: &Browser, node: usize) -> bool {
    let (_, challenge) = pkce();
    let mut params = code_request(&challenge, "check");
    params.push(("prompt", "none"));
    let mut b = cookies.clone();
    let r = b
        .get(&s.env, node, &authorize_path(&s.web.id, &params))
        .await;
    r.param("code").is_some()
}

#[tokio::test]
async fn logout_with_a_hint_revokes_the_session_everywhere_and_returns_to_the_client() {
    let (s, mut b, id_token) = signed_in().await;
    let before = b.clone();
    for node in 0..3 {
        assert!(signed_in_on(&s, &before, node).await, "node {node}");
    }
    let path = format!(
        "/t/{TENANT}/logout?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &id_token)
            .append_pair("post_logout_redirect_uri", LOGOUT_REDIRECT)
            .append_pair("state", "bye-1")
            .finish()
    );
    let r = b.get(&s.env, 1, &path).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.html);
    let target = r.location().expect("location");
    assert!(target.as_str().starts_with(LOGOUT_REDIRECT), "{target}");
    assert_eq!(r.param("state").as_deref(), Some("bye-1"));
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("rsp_session=;") && c.contains("Max-Age=0")),
        "cookie cleared: {:?}",
        r.set_cookies()
    );
    // The old cookie (replayed by someone who kept it) is dead on every node.
    for node in 0..3 {
        assert!(!signed_in_on(&s, &before, node).await, "node {node}");
    }
}

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_gets_an_error_page() {
    let (s, mut b, id_token) = signed_in().await;
    let path = format!(
        "/t/{TENANT}/logout?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &id_token)
            .append_pair("post_logout_redirect_uri", "https://evil.example.com/")
            .finish()
    );
    let r = b.get(&s.env, 0, &path).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.location().is_none());
    assert!(signed_in_on(&s, &b, 0).await, "nothing was revoked");
}

#[tokio::test]
async fn logout_without_a_hint_asks_first_then_signs_out() {
    let (s, mut b, _) = signed_in().await;
    let r = b.get(&s.env, 0, &format!("/t/{TENANT}/logout")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.html.contains("Sign out?"), "{}", r.html);
    assert!(
        signed_in_on(&s, &b, 0).await,
        "a link alone signs nobody out"
    );

    let csrf = r.field("csrf_token").expect("csrf");
    let ticket = r.field("ticket").expect("ticket");
    let forged = b
        .post(
            &s.env,
            0,
            &format!("/t/{TENANT}/logout"),
            &[("ticket", &ticket)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let kept = b.clone();
    let done = b
        .post(
            &s.env,
            0,
            &format!("/t/{TENANT}/logout"),
            &[("csrf_token", &csrf), ("ticket", &ticket)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.html.contains("Signed out"), "{}", done.html);
    assert!(!signed_in_on(&s, &kept, 2).await);
}
