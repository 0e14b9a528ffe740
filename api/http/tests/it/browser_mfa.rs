//! The second-factor seam of the login page: a user with a TOTP factor gets
//! a form with an input named `totp` after the password; a valid code
//! completes the login (`amr` has `otp`); where verification is not
//! available the login is refused, never completed without the factor. With
//! the node's own factor store, an imported TOTP seed works once per code.

use crate::support;

use crate::browser;

use std::sync::Arc;

use axum::http::StatusCode;
use browser::*;
use futures::future::BoxFuture;
use rsp_api::oidc::second_factors::{FactorKind, FactorStoreError, SecondFactors, TotpCheck};
use support::*;

/// Every user has a TOTP factor; `code` is the valid one, or verification
/// is unavailable when `None`.
struct FakeTotp {
    code: Option<&'static str>,
}

impl SecondFactors for FakeTotp {
    fn enrolled<'a>(
        &'a self,
        _tenant: &'a str,
        _user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<FactorKind>, FactorStoreError>> {
        Box::pin(async { Ok(vec![FactorKind::Totp]) })
    }

    fn verify_totp<'a>(
        &'a self,
        _tenant: &'a str,
        _user_id: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<TotpCheck, FactorStoreError>> {
        let answer = match self.code {
            None => TotpCheck::Unavailable,
            Some(valid) if valid == code => TotpCheck::Valid,
            Some(_) => TotpCheck::Invalid,
        };
        Box::pin(async move { Ok(answer) })
    }
}

async fn setup(code: Option<&'static str>) -> (Env, TestClient) {
    let mut env = start_browser(1).await;
    with_factors(&mut env, Arc::new(FakeTotp { code }));
    let web = client(
        &env,
        "web",
        "client_secret_basic",
        &["authorization_code"],
        false,
    )
    .await;
    env.user(TENANT, "alice").await;
    (env, web)
}

async fn totp_form(env: &Env, web: &TestClient, challenge: &str) -> (Browser, Reply) {
    let mut b = Browser::default();
    let page = b
        .get(
            env,
            0,
            &authorize_path(&web.id, &code_request(challenge, "m")),
        )
        .await;
    let r = b.login(env, 0, &page, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    assert!(r.has_input("totp"), "{}", r.html);
    assert!(
        !r.set_cookies()
            .iter()
            .any(|c| c.starts_with("rsp_session=")),
        "no session before the second factor"
    );
    (b, r)
}

async fn send_code(env: &Env, b: &mut Browser, form: &Reply, code: &str) -> Reply {
    let csrf = form.field("csrf_token").expect("csrf");
    let ticket = form.field("ticket").expect("ticket");
    b.post(
        env,
        0,
        &format!("/t/{TENANT}/login"),
        &[("csrf_token", &csrf), ("ticket", &ticket), ("totp", code)],
    )
    .await
}

#[tokio::test]
async fn a_valid_totp_code_completes_the_login_with_otp_in_amr() {
    let (env, web) = setup(Some("123456")).await;
    let (verifier, challenge) = pkce();
    let (mut b, form) = totp_form(&env, &web, &challenge).await;
    let wrong = send_code(&env, &mut b, &form, "000000").await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.has_input("totp") && wrong.location().is_none());

    let done = send_code(&env, &mut b, &wrong, "123 456").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
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
    let (_, id) = peek(&tokens.str("id_token"));
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp"]));
    assert_eq!(id["acr"], "urn:rsp:acr:mfa");
}

#[tokio::test]
async fn without_factor_verification_the_login_is_refused() {
    let (env, web) = setup(None).await;
    let (_, challenge) = pkce();
    let (mut b, form) = totp_form(&env, &web, &challenge).await;
    let r = send_code(&env, &mut b, &form, "123456").await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{}", r.html);
    assert!(r.location().is_none());
    assert!(
        !r.set_cookies()
            .iter()
            .any(|c| c.starts_with("rsp_session="))
    );
}

/// RFC 6238 with HMAC-SHA1, independent of the server's implementation.
fn totp_now(seed: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let counter = now_secs() / 30;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    format!("{:06}", binary % 1_000_000)
}

#[tokio::test]
async fn an_imported_totp_factor_is_asked_for_and_each_code_works_once() {
    // The nodes' own factor store (the default), no fake.
    let env = start_browser(2).await;
    let web = client(
        &env,
        "web",
        "client_secret_basic",
        &["authorization_code"],
        false,
    )
    .await;
    let alice = env.user(TENANT, "alice").await;
    // RFC 6238's test seed, "12345678901234567890".
    env.state()
        .identity
        .factors
        .import_totp(
            TENANT,
            &alice,
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            None,
            None,
            0,
        )
        .await
        .expect("import");
    let (_, challenge) = pkce();
    let (mut b, form) = totp_form(&env, &web, &challenge).await;
    let code = totp_now(b"12345678901234567890");
    let done = send_code(&env, &mut b, &form, &code).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert!(done.param("code").is_some());

    // The same code again, in another browser on the other node: refused.
    let mut other = Browser::default();
    let page = other
        .get(
            &env,
            1,
            &authorize_path(&web.id, &code_request(&challenge, "m2")),
        )
        .await;
    let form = other.login(&env, 1, &page, "alice", PASSWORD).await;
    assert!(form.has_input("totp"), "{}", form.html);
    let csrf = form.field("csrf_token").expect("csrf");
    let ticket = form.field("ticket").expect("ticket");
    let replay = other
        .post(
            &env,
            1,
            &format!("/t/{TENANT}/login"),
            &[("csrf_token", &csrf), ("ticket", &ticket), ("totp", &code)],
        )
        .await;
    assert_eq!(replay.status, StatusCode::OK);
    assert!(replay.has_input("totp") && replay.location().is_none());
}
