//! Signing in with a passkey (WebAuthn), on the login pages:
//!
//! - `POST {issuer}/passkey/login`: "Sign in with a passkey" on the login
//!   page (its `csrf_token` and sealed `flow`) starts a passwordless
//!   ceremony (discoverable credentials, user verification required) and
//!   shows the page that calls `navigator.credentials.get`; that page posts
//!   the answer back here. Success: `amr` `["hwk", "user"]`, `acr`
//!   `urn:rsp:acr:mfa` (something the user has, unlocked by something they
//!   know or are).
//! - `POST {issuer}/passkey/verify`: the second factor after the password
//!   for a user with passkeys ([`second_factor`] renders the page for
//!   [`crate::oidc::login`]). User verification is preferred, not required.
//!   Success: `amr` `["pwd", "hwk"]` (plus `user` when the authenticator
//!   verified the user), `acr` `urn:rsp:acr:mfa`. It carries the same
//!   single-use, browser-bound ticket as the code form
//!   ([`crate::oidc::mfa_ticket`]), checked before anything else. A failed
//!   assertion counts towards the cluster-wide lockout, like a wrong TOTP
//!   code; a locked account is refused before the assertion is checked.
//!
//! Both forms are sign-in forms: rate limited per address
//! ([`crate::oidc::lockout`]); they end in
//! [`crate::oidc::signin::finish_sign_in`] (passwordless) and
//! [`crate::oidc::signin::finish_second_factor`] (after the password). The pages and ceremonies are
//! [`crate::oidc::passkey_ceremony`]'s. The password and TOTP forms work
//! without JavaScript; only these pages need it.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::metrics::LoginResult;
use crate::oidc::browser_form::BrowserForm;
use crate::oidc::browser_session::Browser;
use crate::oidc::csrf::{seal_until, unseal};
use crate::oidc::lockout::{
    begin_attempt, locked, login_failed, rate_limited_actors, wrong_secret,
};
use crate::oidc::login_page::{Continuation, LOGIN_FLOW};
use crate::oidc::mfa::{ACR_MFA, AMR_PASSKEY, AMR_PASSWORD, AMR_USER_VERIFIED};
use crate::oidc::mfa_ticket::MfaTicket;
use crate::oidc::pages::templates::PasskeyPage;
use crate::oidc::pages::{Page, PageError};
use crate::oidc::passkey_ceremony::{binding, ceremony_page, failure, passkeys, start_error};
use crate::oidc::signin::{SignInUser, finish_second_factor, finish_sign_in};
use crate::state::AppState;
use rsp_identity::webauthn::PasskeyError;

const PASSKEY_TICKET: &str = "passkey-mfa";

/// The sign-in's [`MfaTicket`] (its id, binding and expiry too), and the
/// code form's sealed ticket.
#[derive(Serialize, Deserialize)]
struct PasskeyTicket {
    #[serde(flatten)]
    user: MfaTicket,
    /// The TOTP form's ticket, when the user also has TOTP.
    totp: Option<String>,
}

fn path(browser: &Browser, rest: &str) -> String {
    format!("/t/{}/{rest}", browser.tenant.id)
}

/// The ceremony's answer in a posted form: its id and the browser's
/// credential (JSON).
fn answer(form: &BTreeMap<String, String>) -> Option<(&str, &str)> {
    let ceremony = form.get("ceremony").filter(|c| !c.is_empty())?;
    let credential = form.get("credential").filter(|c| !c.is_empty())?;
    Some((ceremony, credential))
}

/// `POST {issuer}/passkey/login`: start (from the login page) or finish a
/// passwordless sign-in.
pub async fn login(
    State(state): State<AppState>,
    BrowserForm { browser, fields }: BrowserForm,
) -> Result<Page, PageError> {
    let actors = rate_limited_actors(&state, &browser).await?;
    let sealed_flow = fields.get("flow").cloned().unwrap_or_default();
    let flow: Continuation = unseal(&state, &browser, LOGIN_FLOW, Some(&sealed_flow))?;
    let bound = binding(&state, &browser, "login")?;
    let mut error = None;
    if let Some((ceremony, credential)) = answer(&fields) {
        let outcome = match serde_json::from_str(credential) {
            Ok(response) => {
                passkeys(&state)
                    .finish_passwordless(
                        &browser.tenant.id,
                        &browser.tenant.issuer,
                        ceremony,
                        &bound,
                        &response,
                        state.clock().now_ms(),
                    )
                    .await
            }
            Err(e) => Err(PasskeyError::Rejected(e.to_string())),
        };
        match outcome {
            Ok(v) => {
                return finish_sign_in(
                    &state,
                    &browser,
                    &actors,
                    SignInUser::Id(&v.user_id),
                    &[AMR_PASSKEY, AMR_USER_VERIFIED],
                    ACR_MFA,
                    flow,
                )
                .await;
            }
            Err(e) => error = Some(failure(e)?),
        }
    }
    let (ceremony, options) = passkeys(&state)
        .start_passwordless(
            &browser.tenant.id,
            &browser.tenant.issuer,
            &bound,
            state.clock().now_ms(),
        )
        .await
        .map_err(start_error)?;
    let options = serde_json::to_string(&options).map_err(PageError::internal)?;
    let action = path(&browser, "passkey/login");
    ceremony_page(
        &state,
        &browser,
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        PasskeyPage {
            title: "Sign in with a passkey",
            intro: "Use the passkey saved on this device, your phone or a security key.",
            button: "Use a passkey",
            mode: "get",
            action: &action,
            options: &options,
            csrf: "",
            ceremony: &ceremony,
            fields: vec![("flow", &sealed_flow)],
            error,
            totp_ticket: None,
            login_action: "",
            back: None,
            nonce: "",
        },
        flow.redirect_uri(),
    )
}

/// Whether the user has passkeys (then [`second_factor`] is the page
/// after the password).
pub async fn has_passkeys(
    state: &AppState,
    browser: &Browser,
    user_id: &str,
) -> Result<bool, PageError> {
    passkeys(state)
        .has_passkeys(&browser.tenant.id, user_id)
        .await
        .map_err(start_error)
}

/// The second-factor page for a user with passkeys who passed the password
/// step. `totp_ticket` (the same ticket sealed for the code form) adds the
/// TOTP form for users who have both.
pub async fn second_factor(
    state: &AppState,
    browser: &Browser,
    user: MfaTicket,
    totp_ticket: Option<String>,
) -> Result<Page, PageError> {
    let ticket = PasskeyTicket {
        user,
        totp: totp_ticket,
    };
    second_factor_page(state, browser, &ticket, None, StatusCode::OK).await
}

fn second_factor_step(ticket: &PasskeyTicket) -> String {
    format!("mfa\n{}", ticket.user.user_id)
}

async fn second_factor_page(
    state: &AppState,
    browser: &Browser,
    ticket: &PasskeyTicket,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let bound = binding(state, browser, &second_factor_step(ticket))?;
    let started = passkeys(state)
        .start_second_factor(
            &browser.tenant.id,
            &browser.tenant.issuer,
            &ticket.user.user_id,
            &bound,
            state.clock().now_ms(),
        )
        .await;
    let (ceremony, options) = match started {
        Ok(Some(s)) => s,
        Ok(None) => return Err(PageError::bad_request("This account has no passkey.")),
        Err(e) => return Err(start_error(e)),
    };
    let options = serde_json::to_string(&options).map_err(PageError::internal)?;
    let sealed = seal_until(state, browser, PASSKEY_TICKET, ticket, ticket.user.expires)?;
    let action = path(browser, "passkey/verify");
    let login_action = path(browser, "login");
    ceremony_page(
        state,
        browser,
        status,
        PasskeyPage {
            title: "Confirm it's you",
            intro: "Use one of your passkeys or security keys to finish signing in.",
            button: "Use a passkey",
            mode: "get",
            action: &action,
            options: &options,
            csrf: "",
            ceremony: &ceremony,
            fields: vec![("ticket", &sealed)],
            error,
            totp_ticket: ticket.totp.as_deref(),
            login_action: &login_action,
            back: None,
            nonce: "",
        },
        ticket.user.flow.redirect_uri(),
    )
}

/// `POST {issuer}/passkey/verify`: the passkey answer of the second-factor
/// page.
pub async fn verify(
    State(state): State<AppState>,
    BrowserForm { browser, fields }: BrowserForm,
) -> Result<Page, PageError> {
    let actors = rate_limited_actors(&state, &browser).await?;
    let ticket: PasskeyTicket = unseal(
        &state,
        &browser,
        PASSKEY_TICKET,
        fields.get("ticket").map(String::as_str),
    )?;
    ticket.user.check(&state, &browser)?;
    ticket.user.ensure_unspent(&state, &browser).await?;
    let Some((ceremony, credential)) = answer(&fields) else {
        return second_factor_page(&state, &browser, &ticket, None, StatusCode::OK).await;
    };
    let Some(attempt) = begin_attempt(&actors, &browser.tenant, &ticket.user.username).await?
    else {
        login_failed(&state, &browser, &ticket.user.username, LoginResult::Locked);
        return Err(locked());
    };
    let bound = binding(&state, &browser, &second_factor_step(&ticket))?;
    let outcome = match serde_json::from_str(credential) {
        Ok(response) => {
            passkeys(&state)
                .finish_second_factor(
                    &browser.tenant.id,
                    &browser.tenant.issuer,
                    &ticket.user.user_id,
                    ceremony,
                    &bound,
                    &response,
                    state.clock().now_ms(),
                )
                .await
        }
        Err(e) => Err(PasskeyError::Rejected(e.to_string())),
    };
    match outcome {
        Ok(v) => {
            let amr: &[&str] = if v.user_verified {
                &[AMR_PASSWORD, AMR_PASSKEY, AMR_USER_VERIFIED]
            } else {
                &[AMR_PASSWORD, AMR_PASSKEY]
            };
            finish_second_factor(&state, &browser, &actors, attempt, ticket.user, amr).await
        }
        Err(PasskeyError::Consensus(c)) => {
            // Nothing was decided: the attempt is handed back, and the
            // failures already counted stay.
            attempt.released().await?;
            Err(c.into())
        }
        Err(e) => {
            let mfa_failed = Some(LoginResult::MfaFailed);
            wrong_secret(&state, &browser, &ticket.user.username, attempt, mfa_failed).await?;
            let message = failure(e)?;
            second_factor_page(&state, &browser, &ticket, Some(message), StatusCode::OK).await
        }
    }
}
