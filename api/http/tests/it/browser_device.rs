//! The device flow's verification page: enter the user code, sign in,
//! approve or deny (with the anti-forgery token); the device's poll then
//! gets tokens or `access_denied`.

use crate::support;

use crate::browser;

use axum::http::StatusCode;
use browser::*;
use support::*;

const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn setup() -> (Env, TestClient, serde_json::Value) {
    let env = start_browser(1).await;
    let tv = client(&env, "tv", "none", &[DEVICE, "refresh_token"], false).await;
    env.user(TENANT, "alice").await;
    let start = env
        .form(
            TENANT,
            "/device_authorization",
            None,
            &[("client_id", "tv"), ("scope", "openid profile")],
        )
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    (env, tv, start.body)
}

async fn poll(env: &Env, device_code: &str) -> Answer {
    env.form(
        TENANT,
        "/token",
        None,
        &[
            ("grant_type", DEVICE),
            ("device_code", device_code),
            ("client_id", "tv"),
        ],
    )
    .await
}

/// Enter the code on the page, sign in; returns the approval page.
async fn to_approval(env: &Env, b: &mut Browser, user_code: &str) -> Reply {
    let page = b.get(env, 0, &format!("/t/{TENANT}/device")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.has_input("user_code"));
    let csrf = page.field("csrf_token").expect("csrf");
    // Lower case, no dash: still the code.
    let typed = user_code.replace('-', "").to_lowercase();
    let login = b
        .post(
            env,
            0,
            &format!("/t/{TENANT}/device"),
            &[("csrf_token", &csrf), ("user_code", &typed)],
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.html);
    assert!(login.has_input("password"), "{}", login.html);
    let approval = b.login(env, 0, &login, "alice", PASSWORD).await;
    assert_eq!(approval.status, StatusCode::OK, "{}", approval.html);
    assert!(
        approval.html.contains("name=\"decision\""),
        "{}",
        approval.html
    );
    approval
}

async fn decide(env: &Env, b: &mut Browser, page: &Reply, decision: &str) -> Reply {
    let csrf = page.field("csrf_token").expect("csrf");
    let ticket = page.field("ticket").expect("ticket");
    b.post(
        env,
        0,
        &format!("/t/{TENANT}/device"),
        &[
            ("csrf_token", &csrf),
            ("ticket", &ticket),
            ("decision", decision),
        ],
    )
    .await
}

#[tokio::test]
async fn approving_on_the_page_lets_the_device_get_tokens() {
    let (env, _tv, start) = setup().await;
    let user_code = start["user_code"].as_str().expect("user_code");
    let device_code = start["device_code"].as_str().expect("device_code");
    let pending = poll(&env, device_code).await;
    assert_eq!(pending.error(), "authorization_pending");

    let mut b = Browser::default();
    let approval = to_approval(&env, &mut b, user_code).await;
    assert!(approval.html.contains("tv app"), "{}", approval.html);
    // Without the token the decision is refused.
    let ticket = approval.field("ticket").expect("ticket");
    let forged = b
        .post(
            &env,
            0,
            &format!("/t/{TENANT}/device"),
            &[("ticket", &ticket), ("decision", "allow")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let done = decide(&env, &mut b, &approval, "allow").await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.html.contains("Device connected"), "{}", done.html);
    // The device polls at its interval.
    let tokens = wait_decided(&env, device_code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let (_, id) = peek(&tokens.str("id_token"));
    assert_eq!(id["preferred_username"], "alice");

    // Used: the page no longer knows the code.
    let again = b
        .get(
            &env,
            0,
            &format!("/t/{TENANT}/device?user_code={user_code}"),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
}

/// Poll until the answer is no longer pending (the interval is 5 s; a
/// too-early poll answers `slow_down`).
async fn wait_decided(env: &Env, device_code: &str) -> Answer {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let a = poll(env, device_code).await;
        if !matches!(a.error(), "authorization_pending" | "slow_down")
            || std::time::Instant::now() > deadline
        {
            return a;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn denying_on_the_page_answers_access_denied_to_the_device() {
    let (env, _tv, start) = setup().await;
    let user_code = start["user_code"].as_str().expect("user_code");
    let device_code = start["device_code"].as_str().expect("device_code");
    let mut b = Browser::default();
    // verification_uri_complete carries the code.
    let page = b
        .get(
            &env,
            0,
            &format!("/t/{TENANT}/device?user_code={user_code}"),
        )
        .await;
    assert!(page.has_input("password"));
    let approval = b.login(&env, 0, &page, "alice", PASSWORD).await;
    let done = decide(&env, &mut b, &approval, "deny").await;
    assert!(done.html.contains("denied"), "{}", done.html);
    let answer = poll(&env, device_code).await;
    assert_eq!(answer.error(), "access_denied", "{}", answer.body);
}

#[tokio::test]
async fn an_unknown_user_code_is_said_so() {
    let (env, _, _) = setup().await;
    let mut b = Browser::default();
    let r = b
        .get(&env, 0, &format!("/t/{TENANT}/device?user_code=BCDF-GHJK"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("unknown"), "{}", r.html);
}
