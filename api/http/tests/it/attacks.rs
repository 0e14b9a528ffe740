//! Attacks on the browser-facing endpoints that no other file covers as a
//! group, one table or one test per class (docs/security.md maps each to
//! RFC 9700, OWASP ASVS or the CVE class it comes from): redirect URI
//! tricks, header injection through `state`, framing, oversized bodies,
//! session fixation, lockout bypass by letter case, and mix-up.

use crate::support;

use crate::browser;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use browser::*;
use support::*;

const CODE: &[&str] = &["authorization_code", "refresh_token"];

async fn setup() -> (Env, TestClient) {
    let env = start_browser(1).await;
    let web = client(&env, "web", "client_secret_basic", CODE, false).await;
    env.user(TENANT, "alice").await;
    (env, web)
}

/// Redirect URIs are compared as exact strings (RFC 9700 2.1, 4.1.3;
/// ASVS V10): each look-alike of the registered
/// `https://app.example.com/cb` gets an error page and no redirect.
#[tokio::test]
async fn redirect_uri_look_alikes_get_an_error_page_and_no_redirect() {
    let (env, web) = setup().await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let tricks = [
        ("prefix", "https://app.example.com/cbx"),
        ("path suffix", "https://app.example.com/cb/evil"),
        ("dot segments", "https://app.example.com/cb/../evil"),
        (
            "added query",
            "https://app.example.com/cb?next=https://evil.example",
        ),
        ("fragment", "https://app.example.com/cb#x"),
        (
            "userinfo host swap",
            "https://app.example.com@evil.example/cb",
        ),
        ("userinfo", "https://user@app.example.com/cb"),
        ("encoded path", "https://app.example.com/%63b"),
        ("double encoded", "https%3A%2F%2Fapp.example.com%2Fcb"),
        ("default port spelled", "https://app.example.com:443/cb"),
        ("other port", "https://app.example.com:8443/cb"),
        ("scheme downgrade", "http://app.example.com/cb"),
        ("trailing-dot host", "https://app.example.com./cb"),
        ("backslash", "https://app.example.com\\@evil.example/cb"),
        ("subdomain", "https://evil.app.example.com/cb"),
    ];
    for (what, redirect) in tricks {
        let mut params = code_request(&challenge, "s");
        params.retain(|(k, _)| *k != "redirect_uri");
        params.push(("redirect_uri", redirect));
        let r = b.get(&env, 0, &authorize_path(&web.id, &params)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {redirect}");
        assert!(r.location().is_none(), "{what}: redirected");
    }
}

/// A `state` carrying CR/LF goes back percent-encoded in one `Location`
/// header: no header is injected (HTTP response splitting,
/// CWE-113).
#[tokio::test]
async fn crlf_in_state_cannot_add_headers_to_the_redirect() {
    let (env, web) = setup().await;
    let mut b = Browser::default();
    let evil = "x\r\nSet-Cookie: owned=1\r\nX-Injected: 1";
    let path = authorize_path(
        &web.id,
        &[
            ("response_type", "token"),
            ("redirect_uri", REDIRECT),
            ("state", evil),
        ],
    );
    let r = b.get(&env, 0, &path).await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.html);
    assert_eq!(r.param("state").as_deref(), Some(evil), "state round-trips");
    assert!(r.headers.get("x-injected").is_none());
    assert!(!r.set_cookies().iter().any(|c| c.starts_with("owned")));
    let raw = r.header("location");
    assert!(!raw.contains('\r') && !raw.contains('\n'), "{raw}");
}

/// Sign-in pages may not be framed (clickjacking, RFC 9700 4.16): `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`.
#[tokio::test]
async fn sign_in_pages_refuse_to_be_framed() {
    let (env, web) = setup().await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &env,
            0,
            &authorize_path(&web.id, &code_request(&challenge, "f")),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert!(
        page.header("content-security-policy")
            .contains("frame-ancestors 'none'"),
        "{}",
        page.header("content-security-policy")
    );
}

/// Bodies over the limit are refused with 413 before any parsing, at the
/// token endpoint and at the login form (resource exhaustion).
#[tokio::test]
async fn oversized_bodies_are_refused_before_parsing() {
    let (env, web) = setup().await;
    let huge = format!("grant_type=client_credentials&pad={}", "a".repeat(2 << 20));
    for path in [format!("/t/{TENANT}/token"), format!("/t/{TENANT}/login")] {
        let req = Request::post(&path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, web.basic())
            .body(Body::from(huge.clone()))
            .expect("request");
        let a = env.send(0, req).await;
        assert_eq!(
            a.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}: {}",
            a.body
        );
    }
}

/// A session id planted in the browser before sign-in is never adopted:
/// sign-in issues a new one, and the planted one signs nobody in (session
/// fixation).
#[tokio::test]
async fn a_planted_session_cookie_is_replaced_at_sign_in() {
    let (env, web) = setup().await;
    let (_, challenge) = pkce();
    let cookie = rsp_api::oidc::browser_session::SESSION_COOKIE;
    let planted = "attacker-chosen-session-id-0123456789";
    let mut b = Browser::default();
    b.cookies.insert(cookie.into(), planted.into());
    let path = authorize_path(&web.id, &code_request(&challenge, "fx"));
    let page = b.get(&env, 0, &path).await;
    let done = b.login(&env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let issued = b.cookies.get(cookie).cloned().expect("a session cookie");
    assert_ne!(issued, planted);
    // The planted id alone is no session: prompt=none fails.
    let mut attacker = Browser::default();
    attacker.cookies.insert(cookie.into(), planted.into());
    let mut silent = code_request(&challenge, "fx2");
    silent.push(("prompt", "none"));
    let r = attacker
        .get(&env, 0, &authorize_path(&web.id, &silent))
        .await;
    assert_eq!(r.param("error").as_deref(), Some("login_required"));
}

/// Failures under other spellings of a username count against the same
/// account, so changing case does not buy more guesses (lockout
/// bypass).
#[tokio::test]
async fn lockout_counts_every_spelling_of_a_username() {
    let (env, web) = setup().await;
    let (_, challenge) = pkce();
    let path = authorize_path(&web.id, &code_request(&challenge, "lc"));
    let mut b = Browser::default();
    let spellings = ["ALICE", "Alice", "aLiCe"];
    for i in 0..MAX_FAILURES as usize {
        let page = b.get(&env, 0, &path).await;
        let r = b
            .login(
                &env,
                0,
                &page,
                spellings[i % spellings.len()],
                "wrong password",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    }
    let page = b.get(&env, 0, &path).await;
    let r = b.login(&env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.html);
    // A look-alike in other script is another name, not alice's.
    let page = b.get(&env, 0, &path).await;
    let r = b.login(&env, 0, &page, "ａｌｉｃｅ", PASSWORD).await;
    assert!(r.location().is_none(), "a fullwidth look-alike signed in");
}

/// The authorization response names its issuer (RFC 9207), so a client
/// talking to several servers can tell which one answered (mix-up,
/// RFC 9700 4.4).
#[tokio::test]
async fn the_code_response_names_the_issuer() {
    let (env, web) = setup().await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &env,
            0,
            &authorize_path(&web.id, &code_request(&challenge, "iss")),
        )
        .await;
    let done = b.login(&env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert!(done.param("code").is_some());
    assert_eq!(done.param("iss"), Some(issuer(TENANT)));
    assert_eq!(done.param("state").as_deref(), Some("iss"));
}
