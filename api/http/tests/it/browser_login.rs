//! The authorization endpoint and the login page, driven like a browser
//! (cookies, hidden fields) through `oneshot`: the full code flow up to the
//! token endpoint, anti-forgery, the redirect URI rules, `prompt`,
//! `max_age`, `login_hint`, `id_token_hint`, PAR, uniform failures and the
//! cluster-wide lockout.

use crate::support;

use crate::browser;

use axum::http::StatusCode;
use browser::*;
use support::*;

const CODE: &[&str] = &["authorization_code", "refresh_token"];

struct Setup {
    env: Env,
    web: TestClient,
    user: String,
}

async fn setup(nodes: usize) -> Setup {
    let env = start_browser(nodes).await;
    let web = client(&env, "web", "client_secret_basic", CODE, false).await;
    let user = env.user(TENANT, "alice").await;
    Setup { env, web, user }
}

/// Log in through the authorization endpoint on node `node`; returns the
/// browser (with its session) and the redirect carrying the code.
async fn login_flow(s: &Setup, node: usize, challenge: &str) -> (Browser, Reply) {
    let mut b = Browser::default();
    let page = b
        .get(
            &s.env,
            node,
            &authorize_path(&s.web.id, &code_request(challenge, "st-1")),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let done = b.login(&s.env, node, &page, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    (b, done)
}

async fn exchange(s: &Setup, node: usize, code: &str, verifier: &str) -> Answer {
    s.env
        .form_on(
            node,
            TENANT,
            "/token",
            Some(&s.web.basic()),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
}

#[tokio::test]
async fn the_code_flow_runs_from_the_login_form_to_the_token_endpoint() {
    let s = setup(1).await;
    let (verifier, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&challenge, "st-1")),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("method=\"post\""), "{}", page.html);
    assert!(page.has_input("username") && page.has_input("password"));
    assert!(page.field("csrf_token").is_some_and(|t| !t.is_empty()));
    // Security headers on the page.
    let csp = page.header("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert_eq!(page.header("cache-control"), "no-store");
    let csrf_cookie = page.set_cookies().join("\n");
    assert!(csrf_cookie.contains("rsp_csrf=") && csrf_cookie.contains("SameSite=Lax"));

    let done = b.login(&s.env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let target = done.location().expect("location");
    assert!(target.as_str().starts_with(REDIRECT), "{target}");
    assert_eq!(done.param("state").as_deref(), Some("st-1"));
    assert_eq!(done.param("iss"), Some(issuer(TENANT)));
    let cookie = done
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("rsp_session="))
        .expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/t/acme"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "http public URL: {cookie}");

    let code = done.param("code").expect("code");
    let tokens = exchange(&s, 0, &code, &verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let (_, id) = peek(&tokens.str("id_token"));
    assert_eq!(id["sub"], s.user.as_str());
    assert_eq!(id["nonce"], "n-123");
    assert_eq!(id["aud"], "web");
    assert!(
        id["auth_time"]
            .as_u64()
            .is_some_and(|t| t + 60 > now_secs())
    );
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(id["email"], "alice@example.com");
}

#[tokio::test]
async fn a_login_without_or_with_a_wrong_csrf_token_is_refused() {
    let s = setup(1).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&challenge, "x")),
        )
        .await;
    let flow = page.field("flow").expect("flow");
    let path = format!("/t/{TENANT}/login");
    let creds = [("username", "alice"), ("password", PASSWORD)];

    let mut form = vec![("flow", flow.as_str())];
    form.extend(creds);
    let missing = b.post(&s.env, 0, &path, &form).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.html);
    assert!(missing.location().is_none());

    let mut wrong = form.clone();
    wrong.push(("csrf_token", "00ff"));
    let wrong = b.post(&s.env, 0, &path, &wrong).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    // The right token without the cookie (another site's form) fails too.
    let mut stranger = Browser::default();
    let token = page.field("csrf_token").expect("csrf");
    let mut with_token = form.clone();
    with_token.push(("csrf_token", &token));
    let cross = stranger.post(&s.env, 0, &path, &with_token).await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(
        !cross
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("rsp_session="))
    );
}

#[tokio::test]
async fn a_mismatched_or_unknown_redirect_uri_gets_an_error_page_and_no_redirect() {
    let s = setup(1).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    for redirect in [
        "https://evil.example.com/cb",
        "https://app.example.com/cb/",
        "https://APP.example.com/cb",
    ] {
        let mut params = code_request(&challenge, "s");
        params.retain(|(k, _)| *k != "redirect_uri");
        params.push(("redirect_uri", redirect));
        let r = b.get(&s.env, 0, &authorize_path(&s.web.id, &params)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{redirect}");
        assert!(r.location().is_none(), "{redirect}");
        assert!(r.html.contains("redirect_uri"), "{}", r.html);
    }
    let unknown = b
        .get(
            &s.env,
            0,
            &authorize_path("nobody", &code_request(&challenge, "s")),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.location().is_none());
}

/// A client id, the request's parameters, and the error expected.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

#[tokio::test]
async fn errors_after_the_redirect_check_go_back_to_the_client_with_state_and_iss() {
    let s = setup(1).await;
    let spa = client(&s.env, "spa", "none", CODE, false).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let cases: Vec<Case> = vec![
        (
            "web",
            vec![
                ("response_type", "token"),
                ("redirect_uri", REDIRECT),
                ("state", "s1"),
            ],
            "unsupported_response_type",
        ),
        (
            &spa.id,
            vec![
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("state", "s1"),
            ],
            "invalid_request",
        ),
        (
            &spa.id,
            vec![
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("state", "s1"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            "web",
            vec![
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("state", "s1"),
                ("request", "eyJhbGciOiJub25lIn0.e30."),
            ],
            "request_not_supported",
        ),
        (
            "web",
            vec![
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("state", "s1"),
                ("request_uri", "https://app.example.com/req.jwt"),
            ],
            "request_uri_not_supported",
        ),
        (
            "web",
            vec![
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("state", "s1"),
                ("scope", "openid admin"),
            ],
            "invalid_scope",
        ),
    ];
    for (client_id, params, error) in cases {
        let r = b.get(&s.env, 0, &authorize_path(client_id, &params)).await;
        assert_eq!(r.status, StatusCode::FOUND, "{error}: {}", r.html);
        assert_eq!(
            r.param("error").as_deref(),
            Some(error),
            "{:?}",
            r.location()
        );
        assert_eq!(r.param("state").as_deref(), Some("s1"));
        assert_eq!(r.param("iss"), Some(issuer(TENANT)));
    }
}

#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required() {
    let s = setup(1).await;
    let (_, challenge) = pkce();
    let mut params = code_request(&challenge, "quiet");
    params.push(("prompt", "none"));
    let r = Browser::default()
        .get(&s.env, 0, &authorize_path(&s.web.id, &params))
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.param("error").as_deref(), Some("login_required"));
    assert_eq!(r.param("state").as_deref(), Some("quiet"));
}

#[tokio::test]
async fn a_session_made_on_one_node_signs_in_silently_on_another() {
    let s = setup(3).await;
    let (verifier, challenge) = pkce();
    let (mut b, _) = login_flow(&s, 0, &challenge).await;
    let mut params = code_request(&challenge, "sso");
    params.push(("prompt", "none"));
    for node in [1, 2] {
        let r = b
            .get(&s.env, node, &authorize_path(&s.web.id, &params))
            .await;
        assert_eq!(r.status, StatusCode::FOUND, "node {node}: {}", r.html);
        let code = r
            .param("code")
            .unwrap_or_else(|| panic!("node {node}: {:?}", r.location()));
        let tokens = exchange(&s, node, &code, &verifier).await;
        assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    }
}

#[tokio::test]
async fn prompt_login_and_an_old_auth_time_ask_for_the_password_again() {
    let s = setup(1).await;
    let (_, challenge) = pkce();
    let (mut b, first) = login_flow(&s, 0, &challenge).await;
    assert!(first.param("code").is_some());

    let mut params = code_request(&challenge, "again");
    params.push(("prompt", "login"));
    let r = b.get(&s.env, 0, &authorize_path(&s.web.id, &params)).await;
    assert_eq!(r.status, StatusCode::OK, "prompt=login shows the form");
    assert!(r.has_input("password"));
    // Logging in again does not loop back to the form.
    let done = b.login(&s.env, 0, &r, "alice", PASSWORD).await;
    assert!(done.param("code").is_some(), "{}", done.html);

    // max_age: a fresh session passes; max_age=0 always asks again.
    let mut fresh = code_request(&challenge, "age");
    fresh.push(("max_age", "3600"));
    let r = b.get(&s.env, 0, &authorize_path(&s.web.id, &fresh)).await;
    assert!(r.param("code").is_some(), "{}", r.html);
    let mut old = code_request(&challenge, "age");
    old.push(("max_age", "0"));
    let r = b.get(&s.env, 0, &authorize_path(&s.web.id, &old)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.has_input("password"), "max_age=0 asks again");
    old.push(("prompt", "none"));
    let r = b.get(&s.env, 0, &authorize_path(&s.web.id, &old)).await;
    assert_eq!(r.param("error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn login_hint_prefills_the_username_and_unknown_parameters_are_ignored() {
    let s = setup(1).await;
    let (_, challenge) = pkce();
    let mut params = code_request(&challenge, "h");
    params.push(("login_hint", "alice\"><script>"));
    params.push(("frobnicate", "yes"));
    params.push(("ui_locales", "de"));
    let r = Browser::default()
        .get(&s.env, 0, &authorize_path(&s.web.id, &params))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert_eq!(
        r.field("username").as_deref(),
        Some("alice&#34;&#62;&#60;script&#62;"),
        "escaped"
    );
    assert!(!r.html.contains("<script>"));
}

#[tokio::test]
async fn an_id_token_hint_for_another_user_needs_a_new_login() {
    let s = setup(1).await;
    s.env.user(TENANT, "bob").await;
    let (verifier, challenge) = pkce();
    // Bob's ID token, from his own login in another browser.
    let mut bob = Browser::default();
    let page = bob
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&challenge, "b")),
        )
        .await;
    let done = bob.login(&s.env, 0, &page, "bob", PASSWORD).await;
    let tokens = exchange(&s, 0, &done.param("code").expect("code"), &verifier).await;
    let bob_id_token = tokens.str("id_token");

    let (mut alice, _) = login_flow(&s, 0, &challenge).await;
    let mut params = code_request(&challenge, "hint");
    params.push(("id_token_hint", &bob_id_token));
    params.push(("prompt", "none"));
    let r = alice
        .get(&s.env, 0, &authorize_path(&s.web.id, &params))
        .await;
    assert_eq!(r.param("error").as_deref(), Some("login_required"));
    params.pop();
    let r = alice
        .get(&s.env, 0, &authorize_path(&s.web.id, &params))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.has_input("password"));

    let mut bad = code_request(&challenge, "bad");
    bad.push(("id_token_hint", "not.a.token"));
    let r = alice.get(&s.env, 0, &authorize_path(&s.web.id, &bad)).await;
    assert_eq!(r.param("error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_answer() {
    let s = setup(1).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let path = authorize_path(&s.web.id, &code_request(&challenge, "u"));
    let page = b.get(&s.env, 0, &path).await;
    let wrong = b.login(&s.env, 0, &page, "alice", "nope nope nope").await;
    let page = b.get(&s.env, 0, &path).await;
    let unknown = b.login(&s.env, 0, &page, "mallory", "nope nope nope").await;
    assert_eq!(wrong.status, unknown.status);
    assert!(wrong.html.contains(rsp_api::oidc::lockout::BAD_CREDENTIALS));
    assert!(
        unknown
            .html
            .contains(rsp_api::oidc::lockout::BAD_CREDENTIALS)
    );
    assert!(wrong.location().is_none() && unknown.location().is_none());
    // The form comes back ready for another try, name kept.
    assert_eq!(unknown.field("username").as_deref(), Some("mallory"));
}

#[tokio::test]
async fn failed_logins_lock_the_account_on_every_node() {
    let s = setup(3).await;
    let (_, challenge) = pkce();
    let path = authorize_path(&s.web.id, &code_request(&challenge, "l"));
    let mut b = Browser::default();
    for i in 0..MAX_FAILURES as usize {
        let node = i % 3;
        let page = b.get(&s.env, node, &path).await;
        let r = b
            .login(&s.env, node, &page, "alice", "wrong password")
            .await;
        assert!(
            r.html.contains(rsp_api::oidc::lockout::BAD_CREDENTIALS),
            "{}",
            r.html
        );
    }
    // Locked everywhere, even with the right password.
    for node in 0..3 {
        let page = b.get(&s.env, node, &path).await;
        let r = b.login(&s.env, node, &page, "alice", PASSWORD).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "node {node}");
        assert!(r.html.contains("locked"), "{}", r.html);
        assert!(r.location().is_none());
    }
}

#[tokio::test]
async fn a_pushed_request_is_resolved_once_through_request_uri() {
    let s = setup(1).await;
    let (verifier, challenge) = pkce();
    let mut pushed = code_request(&challenge, "par");
    pushed.push(("client_id", "web"));
    let par = s
        .env
        .form(TENANT, "/par", Some(&s.web.basic()), &pushed)
        .await;
    assert_eq!(par.status, StatusCode::CREATED, "{}", par.body);
    let request_uri = par.str("request_uri");

    let mut b = Browser::default();
    let path = authorize_path(&s.web.id, &[("request_uri", &request_uri)]);
    let page = b.get(&s.env, 0, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let done = b.login(&s.env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(done.param("state").as_deref(), Some("par"));
    let tokens = exchange(&s, 0, &done.param("code").expect("code"), &verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);

    let again = b.get(&s.env, 0, &path).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "single use");
    assert!(again.location().is_none());
}

#[tokio::test]
async fn a_tampered_login_flow_is_refused() {
    let s = setup(1).await;
    let (_, challenge) = pkce();
    let mut b = Browser::default();
    let page = b
        .get(
            &s.env,
            0,
            &authorize_path(&s.web.id, &code_request(&challenge, "t")),
        )
        .await;
    let csrf = page.field("csrf_token").expect("csrf");
    let flow = page.field("flow").expect("flow");
    let (body, tag) = flow.split_once('.').expect("sealed");
    let mut bytes = body.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let forged = format!("{}.{tag}", String::from_utf8(bytes).expect("utf8"));
    let r = b
        .post(
            &s.env,
            0,
            &format!("/t/{TENANT}/login"),
            &[
                ("csrf_token", &csrf),
                ("flow", &forged),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.location().is_none());
}
