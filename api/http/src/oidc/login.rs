//! `POST {issuer}/login`: the login form (`username`, `password`, the
//! anti-forgery `csrf_token` and the sealed `flow` it continues), and the
//! steps that post back to it: the code step (`totp` or `recovery_code`
//! with a sealed `ticket`, [`crate::oidc::login_totp`]) and enrolment
//! (`enrolment`, `resume`, [`crate::oidc::login_enrol`]).
//!
//! - The form is rate limited per client address, and each password
//!   attempt is reserved through the cluster-wide lockout before the
//!   password is checked (keyed by the lowercased username, so unknown
//!   names take exactly the same path); a locked account gets a clear
//!   message and no password check ([`crate::oidc::lockout`]). A wrong
//!   password counts; a right one followed by a second factor (or
//!   enrolment) hands its attempt back and clears nothing; a right one
//!   that finishes the sign-in clears the account's failures.
//! - Unknown users, disabled users and wrong passwords get the same
//!   message; `check_password` hashes even when the user does not exist.
//! - After the password, a user with passkeys gets the passkey page
//!   ([`crate::oidc::passkeys::second_factor`], which also offers the code
//!   form to a user who has TOTP too), a user with TOTP the code form; a
//!   user without a factor whom the tenant's MFA policy or the request's
//!   `acr_values` requires to use one is led to enrolment before any
//!   session starts ([`crate::oidc::mfa`]). Each carries a new
//!   single-use ticket bound to this browser
//!   ([`crate::oidc::mfa_ticket`]).
//! - Otherwise the sign-in finishes ([`crate::oidc::signin`]): a
//!   replicated session starts (a new id every time) and the request
//!   continues (consent or a code, the device approval page, the account
//!   pages).

use axum::extract::State;
use axum::http::StatusCode;
use zeroize::Zeroizing;

use crate::metrics::LoginResult;
use crate::oidc::browser_form::BrowserForm;
use crate::oidc::browser_session::Browser;
use crate::oidc::csrf::unseal;
use crate::oidc::lockout::{
    BAD_CREDENTIALS, LOCKED, LOCKED_RETRY_AFTER, begin_attempt, login_failed, rate_limited_actors,
    wrong_secret,
};
use crate::oidc::login_enrol;
use crate::oidc::login_page::{Continuation, LOGIN_FLOW, render_login};
use crate::oidc::login_totp::{self, factor_unavailable, totp_page};
use crate::oidc::mfa::{self, ACR_PASSWORD, AMR_PASSWORD};
use crate::oidc::mfa_ticket::MfaTicket;
use crate::oidc::pages::{Page, PageError};
use crate::oidc::passkeys;
use crate::oidc::second_factors::FactorKind;
use crate::oidc::signin::{SignInUser, finish_sign_in};
use crate::state::AppState;

pub async fn post(
    State(state): State<AppState>,
    BrowserForm {
        browser,
        mut fields,
    }: BrowserForm,
) -> Result<Page, PageError> {
    let actors = rate_limited_actors(&state, &browser).await?;
    if fields.contains_key("ticket") {
        return login_totp::verify(&state, &browser, &actors, &fields).await;
    }
    if fields.contains_key(login_enrol::ENROL_FIELD) {
        return login_enrol::confirm(&state, &browser, &fields).await;
    }
    if fields.contains_key(login_enrol::RESUME_FIELD) {
        return login_enrol::resume(&state, &browser, &actors, &fields).await;
    }
    let flow: Continuation = unseal(
        &state,
        &browser,
        LOGIN_FLOW,
        fields.get("flow").map(String::as_str),
    )?;
    let username = fields.remove("username").unwrap_or_default();
    let password = Zeroizing::new(fields.remove("password").unwrap_or_default());
    let again = |error: &str, status: StatusCode| {
        relogin(&state, &browser, &flow, &username, Some(error), status)
    };
    if username.is_empty() || password.is_empty() {
        return again("Enter your username and password.", StatusCode::BAD_REQUEST);
    }
    let Some(attempt) = begin_attempt(&actors, &browser.tenant, &username).await? else {
        login_failed(&state, &browser, &username, LoginResult::Locked);
        return again(LOCKED, StatusCode::TOO_MANY_REQUESTS);
    };
    let user = state
        .identity
        .users
        .check_password(&browser.tenant.id, &username, password)
        .await
        .map_err(PageError::internal)?;
    let Some(user) = user else {
        let bad = Some(LoginResult::BadPassword);
        wrong_secret(&state, &browser, &username, attempt, bad).await?;
        return again(BAD_CREDENTIALS, StatusCode::OK);
    };
    match next_step(&state, &browser, &user.id, &user.username, &flow).await {
        // Another step follows: the right password is not a failure, but
        // it clears nothing either; only the finished sign-in does.
        Ok(Some(page)) => {
            attempt.released().await?;
            Ok(page)
        }
        Ok(None) => {
            attempt.succeeded().await?;
            finish_sign_in(
                &state,
                &browser,
                &actors,
                SignInUser::Checked(user),
                &[AMR_PASSWORD],
                ACR_PASSWORD,
                flow,
            )
            .await
        }
        Err(e) => {
            attempt.released().await?;
            Err(e)
        }
    }
}

/// The page of the step after a right password, with the ticket that
/// carries the sign-in there ([`MfaTicket`], its cookie set): the passkey
/// page (phishing-resistant; it also offers the code form when the user
/// has TOTP too), the code form, or enrolment when a factor is required
/// and the user has none. `None`: the password was all the sign-in needs.
async fn next_step(
    state: &AppState,
    browser: &Browser,
    user_id: &str,
    username: &str,
    flow: &Continuation,
) -> Result<Option<Page>, PageError> {
    let factors = state
        .tenant_runtime
        .factors
        .enrolled(&browser.tenant.id, user_id)
        .await
        .map_err(factor_unavailable)?;
    let totp = factors.contains(&FactorKind::Totp);
    let passkey = passkeys::has_passkeys(state, browser, user_id).await?;
    let enrol = !totp
        && !passkey
        && factors.is_empty()
        && mfa::required_for_flow(state, browser, user_id, flow).await?;
    if !(totp || passkey || enrol) {
        return Ok(None);
    }
    let (ticket, cookie) = MfaTicket::issue(state, browser, user_id, username, flow.clone())?;
    let page = if passkey {
        let totp_ticket = if totp {
            Some(ticket.seal(state, browser)?)
        } else {
            None
        };
        passkeys::second_factor(state, browser, ticket, totp_ticket).await?
    } else if totp {
        totp_page(state, browser, &ticket, None, StatusCode::OK)?
    } else {
        login_enrol::start(state, browser, ticket).await?
    };
    Ok(Some(page.cookie(cookie)))
}

/// The login page again, for the same flow.
fn relogin(
    state: &AppState,
    browser: &Browser,
    flow: &Continuation,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let redirect = flow.redirect_uri();
    let page = render_login(
        state, browser, flow, None, redirect, username, error, status,
    )?;
    Ok(if status == StatusCode::TOO_MANY_REQUESTS {
        page.retry_after(LOCKED_RETRY_AFTER)
    } else {
        page
    })
}
