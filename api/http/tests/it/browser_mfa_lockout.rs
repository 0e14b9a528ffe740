//! The second factor under the lockout, and the ticket that carries a
//! sign-in from the password to it:
//!
//! - a right password hands its attempt back without clearing earlier
//!   failures, so cycles of the right password and a wrong TOTP code or
//!   recovery code lock the account; once locked, the second-factor step
//!   is refused like the password step; a finished sign-in clears the
//!   failures; a check that could not be made changes nothing;
//! - the ticket is spent when its sign-in finishes (refused afterwards on
//!   any node) and bound to the browser that passed the password (refused
//!   without its cookie or with another browser's).
//!
//! The passkey second factor's share is in `passkeys.rs`, beside its
//! software authenticator.

use crate::support;

use crate::browser;

use std::sync::Arc;

use axum::http::StatusCode;
use browser::*;
use futures::future::BoxFuture;
use rsp_api::oidc::lockout::{LOCKED, lockout_key};
use rsp_api::oidc::second_factors::{FactorKind, FactorStoreError, SecondFactors, TotpCheck};
use support::*;

const VALID: &str = "123456";
const WRONG: &str = "000000";

/// Every user has a TOTP factor; [`VALID`] is always accepted (no step
/// replay protection, so only the ticket can stop a replay), or
/// verification is unavailable when `valid` is false.
struct FakeTotp {
    valid: bool,
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
        let answer = match (self.valid, code == VALID) {
            (false, _) => TotpCheck::Unavailable,
            (true, true) => TotpCheck::Valid,
            (true, false) => TotpCheck::Invalid,
        };
        Box::pin(async move { Ok(answer) })
    }
}

async fn setup(nodes: usize, factors: Option<FakeTotp>) -> (Env, TestClient, String) {
    let mut env = start_browser(nodes).await;
    if let Some(f) = factors {
        with_factors(&mut env, Arc::new(f));
    }
    let web = client(
        &env,
        "web",
        "client_secret_basic",
        &["authorization_code"],
        false,
    )
    .await;
    let alice = env.user(TENANT, "alice").await;
    (env, web, alice)
}

/// A fresh browser's login page on `node`.
async fn login_page(env: &Env, web: &TestClient, node: usize) -> (Browser, Reply) {
    let mut b = Browser::default();
    let (_, challenge) = pkce();
    let page = b
        .get(
            env,
            node,
            &authorize_path(&web.id, &code_request(&challenge, "s")),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    (b, page)
}

/// A fresh browser past alice's password on `node`: the code form.
async fn code_form(env: &Env, web: &TestClient, node: usize) -> (Browser, Reply) {
    let (mut b, page) = login_page(env, web, node).await;
    let form = b.login(env, node, &page, "alice", PASSWORD).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    assert!(form.has_input("totp"), "{}", form.html);
    (b, form)
}

/// Post the code form `form` with `field` = `value` on `node`.
async fn send(
    env: &Env,
    b: &mut Browser,
    node: usize,
    form: &Reply,
    field: &str,
    value: &str,
) -> Reply {
    let csrf = form.field("csrf_token").expect("csrf");
    let ticket = form.field("ticket").expect("ticket");
    b.post(
        env,
        node,
        &format!("/t/{TENANT}/login"),
        &[("csrf_token", &csrf), ("ticket", &ticket), (field, value)],
    )
    .await
}

/// The failures the lockout holds for `username`.
async fn failures(env: &Env, username: &str) -> u32 {
    let actors = env
        .state()
        .tenant_runtime
        .tenant(TENANT)
        .await
        .expect("tenant actors");
    actors
        .lockout()
        .status(&lockout_key(username))
        .await
        .expect("lockout status")
        .failures
}

fn signed_in(r: &Reply) -> bool {
    r.location().is_some()
        || r.set_cookies()
            .iter()
            .any(|c| c.starts_with("rsp_session="))
}

/// Refused before any check: an error page, no redirect, no session.
fn refused(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.html);
    assert!(!signed_in(r), "signed in: {:?}", r.location());
}

#[tokio::test]
async fn right_passwords_with_wrong_totp_codes_lock_the_account_and_then_the_code_step() {
    let (env, web, _) = setup(1, Some(FakeTotp { valid: true })).await;
    // Each round: a new browser, the right password, one wrong code. The
    // password never clears the failures the codes left.
    let mut last = None;
    for round in 1..=MAX_FAILURES {
        let (mut b, form) = code_form(&env, &web, 0).await;
        let wrong = send(&env, &mut b, 0, &form, "totp", WRONG).await;
        assert_eq!(wrong.status, StatusCode::OK, "{}", wrong.html);
        assert!(wrong.html.contains("not valid"), "{}", wrong.html);
        assert_eq!(failures(&env, "alice").await, round);
        last = Some((b, wrong));
    }
    // Locked: the right code on a still valid ticket is refused, with the
    // password step's answer...
    let (mut b, form) = last.expect("a round ran");
    let r = send(&env, &mut b, 0, &form, "totp", VALID).await;
    refused(&r, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.html.contains(LOCKED), "{}", r.html);
    assert!(!r.header("retry-after").is_empty());
    // ... and so is the right password in a new browser.
    let (mut fresh, page) = login_page(&env, &web, 0).await;
    let r = fresh.login(&env, 0, &page, "alice", PASSWORD).await;
    refused(&r, StatusCode::TOO_MANY_REQUESTS);
    assert!(!r.has_input("totp"), "{}", r.html);
}

#[tokio::test]
async fn only_a_finished_sign_in_clears_the_failures() {
    let (env, web, _) = setup(1, Some(FakeTotp { valid: true })).await;
    let (mut b, page) = login_page(&env, &web, 0).await;
    let wrong = b.login(&env, 0, &page, "alice", "not the password").await;
    assert_eq!(wrong.status, StatusCode::OK, "{}", wrong.html);
    assert_eq!(failures(&env, "alice").await, 1);

    // The right password: handed back, not cleared.
    let (mut b, form) = code_form(&env, &web, 0).await;
    assert_eq!(failures(&env, "alice").await, 1);
    let form = send(&env, &mut b, 0, &form, "totp", WRONG).await;
    assert_eq!(failures(&env, "alice").await, 2);
    // The right code finishes the sign-in: cleared.
    let done = send(&env, &mut b, 0, &form, "totp", VALID).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert!(done.param("code").is_some());
    assert_eq!(failures(&env, "alice").await, 0);
}

#[tokio::test]
async fn a_second_factor_that_cannot_be_checked_changes_nothing() {
    let (env, web, _) = setup(1, Some(FakeTotp { valid: false })).await;
    let (mut b, page) = login_page(&env, &web, 0).await;
    b.login(&env, 0, &page, "alice", "not the password").await;
    let (mut b, form) = code_form(&env, &web, 0).await;
    let (mut other, page) = login_page(&env, &web, 0).await;
    other.login(&env, 0, &page, "alice", "still wrong").await;
    assert_eq!(failures(&env, "alice").await, 2);

    let r = send(&env, &mut b, 0, &form, "totp", VALID).await;
    refused(&r, StatusCode::NOT_IMPLEMENTED);
    // Neither cleared nor counted.
    assert_eq!(failures(&env, "alice").await, 2);
}

#[tokio::test]
async fn a_ticket_is_refused_after_its_sign_in_finished_on_any_node() {
    let (env, web, _) = setup(2, Some(FakeTotp { valid: true })).await;
    let (mut b, form) = code_form(&env, &web, 0).await;
    // A copy of the browser as it was, binding cookie included.
    let mut copy = b.clone();
    assert!(copy.cookies.contains_key("rsp_mfa"), "{:?}", copy.cookies);
    let done = send(&env, &mut b, 0, &form, "totp", VALID).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert!(
        !b.cookies.contains_key("rsp_mfa"),
        "the binding cookie goes with the finished sign-in"
    );

    // The same ticket, with a code the fake always accepts, on both nodes.
    for node in [1, 0] {
        let r = send(&env, &mut copy, node, &form, "totp", VALID).await;
        refused(&r, StatusCode::BAD_REQUEST);
        assert!(
            r.html.contains("already completed"),
            "node {node}: {}",
            r.html
        );
    }
    // A recovery code instead: refused before it is looked at.
    let r = send(
        &env,
        &mut copy,
        1,
        &form,
        "recovery_code",
        "aaaa-bbbb-cccc-dddd",
    )
    .await;
    refused(&r, StatusCode::BAD_REQUEST);
    assert_eq!(failures(&env, "alice").await, 0, "nothing was checked");
    // And from the browser that finished it (its cookie is gone, and its
    // forms are now bound to its session: the old one is not its form).
    let r = send(&env, &mut b, 0, &form, "totp", VALID).await;
    refused(&r, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_ticket_is_refused_without_its_browser_cookie_or_with_another_browsers() {
    let (env, web, _) = setup(1, Some(FakeTotp { valid: true })).await;
    let (mut victim, form) = code_form(&env, &web, 0).await;

    // The same browser without the binding cookie (its anti-forgery
    // cookie and token still good).
    let mut stripped = victim.clone();
    stripped.cookies.remove("rsp_mfa");
    let r = send(&env, &mut stripped, 0, &form, "totp", VALID).await;
    refused(&r, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("another browser"), "{}", r.html);

    // Another browser that passed the password itself: its own cookie,
    // its own anti-forgery token, the victim's ticket.
    let (mut thief, own) = code_form(&env, &web, 0).await;
    let stolen = victim_ticket_with(&form, &own);
    let r = send(&env, &mut thief, 0, &stolen, "totp", VALID).await;
    refused(&r, StatusCode::BAD_REQUEST);
    // A browser that never saw a password step.
    let (mut stranger, page) = login_page(&env, &web, 0).await;
    let stolen = victim_ticket_with(&form, &page);
    let r = send(&env, &mut stranger, 0, &stolen, "totp", VALID).await;
    refused(&r, StatusCode::BAD_REQUEST);

    // The victim's own browser still finishes the sign-in.
    let done = send(&env, &mut victim, 0, &form, "totp", VALID).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
}

/// A form with `own`'s anti-forgery token and `victim`'s ticket.
fn victim_ticket_with(victim: &Reply, own: &Reply) -> Reply {
    let csrf = own.field("csrf_token").expect("csrf");
    let ticket = victim.field("ticket").expect("ticket");
    Reply {
        status: own.status,
        headers: own.headers.clone(),
        html: format!(
            "<input name=\"csrf_token\" value=\"{csrf}\"><input name=\"ticket\" value=\"{ticket}\">"
        ),
    }
}

#[tokio::test]
async fn right_passwords_with_wrong_recovery_codes_lock_the_account() {
    // The nodes' own factor store: a TOTP factor and recovery codes.
    let (env, web, alice) = setup(1, None).await;
    let identity = &env.state().identity;
    identity
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
    let codes = identity
        .recovery
        .generate(TENANT, &alice, now_secs() * 1000)
        .await
        .expect("recovery codes");
    let good = codes.0[0].to_string();

    let mut last = None;
    for round in 1..=MAX_FAILURES {
        let (mut b, form) = code_form(&env, &web, 0).await;
        let wrong = send(
            &env,
            &mut b,
            0,
            &form,
            "recovery_code",
            "aaaa-bbbb-cccc-dddd",
        )
        .await;
        assert_eq!(wrong.status, StatusCode::OK, "{}", wrong.html);
        assert!(wrong.html.contains("not valid"), "{}", wrong.html);
        assert_eq!(failures(&env, "alice").await, round);
        last = Some((b, wrong));
    }
    // Locked: a good recovery code is refused (and stays unused) ...
    let (mut b, form) = last.expect("a round ran");
    let r = send(&env, &mut b, 0, &form, "recovery_code", &good).await;
    refused(&r, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.html.contains(LOCKED), "{}", r.html);
    // ... and so is the password.
    let (mut fresh, page) = login_page(&env, &web, 0).await;
    let r = fresh.login(&env, 0, &page, "alice", PASSWORD).await;
    refused(&r, StatusCode::TOO_MANY_REQUESTS);
    let stored = identity
        .recovery
        .redeem(TENANT, &alice, &good)
        .await
        .expect("redeem");
    assert!(stored, "the refused code was not used up");
}
