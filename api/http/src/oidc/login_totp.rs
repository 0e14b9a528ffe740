//! The login's code step, for a user with a TOTP factor: the `totp` form
//! ([`totp_page`], posted to `{issuer}/login` with the sealed `ticket`
//! of [`MfaTicket`]) and its answer ([`verify`]).
//!
//! - The ticket must be this browser's, unexpired and unspent
//!   ([`crate::oidc::mfa_ticket`]) before any code is checked.
//! - A `totp` code is checked through
//!   [`crate::oidc::second_factors::SecondFactors`]; where this build
//!   cannot verify it, the login is refused, never completed without it
//!   (and the attempt is handed back: nothing was checked). Success: `amr`
//!   `["pwd", "otp"]`.
//! - A `recovery_code` may stand in for it (single-use; `amr`
//!   `["pwd", "mfa"]`, see [`crate::oidc::mfa`]).
//! - Either kind is an attempt under the cluster-wide lockout
//!   ([`crate::oidc::lockout`]): wrong codes count towards it, a locked
//!   account gets the locked answer and no check, and only a finished
//!   sign-in clears it ([`crate::oidc::signin::finish_second_factor`]).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use rsp_actors::{AttemptGuard, TenantHandle};

use crate::metrics::LoginResult;
use crate::oidc::browser_session::Browser;
use crate::oidc::csrf::Csrf;
use crate::oidc::lockout::{LOCKED, LOCKED_RETRY_AFTER, begin_attempt, login_failed, wrong_secret};
use crate::oidc::mfa::{AMR_PASSWORD, AMR_RECOVERY_CODE, AMR_TOTP, totp_code};
use crate::oidc::mfa_ticket::MfaTicket;
use crate::oidc::pages::templates::TotpPage;
use crate::oidc::pages::{Page, PageError};
use crate::oidc::second_factors::{FactorStoreError, TotpCheck};
use crate::oidc::signin::finish_second_factor;
use crate::state::AppState;

/// A factor store failure: logged, and a generic page (no detail leaks).
pub fn factor_unavailable(e: FactorStoreError) -> PageError {
    tracing::warn!(error = %e, "second-factor store unavailable");
    unavailable()
}

fn unavailable() -> PageError {
    PageError::unavailable(
        "The second-factor check is briefly unavailable. Try again in a moment.",
        None,
    )
}

/// The code form for `ticket`'s user.
pub fn totp_page(
    state: &AppState,
    browser: &Browser,
    ticket: &MfaTicket,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, browser)?;
    let sealed = ticket.seal(state, browser)?;
    let tenant_path = format!("/t/{}", browser.tenant.id);
    let page = Page::render(
        status,
        &TotpPage {
            tenant_path: &tenant_path,
            csrf: csrf.token(),
            ticket: &sealed,
            error,
        },
    );
    let page = match ticket.flow.redirect_uri() {
        Some(uri) => page.form_target(uri),
        None => page,
    };
    Ok(csrf.apply(page))
}

/// The code form's answer: a TOTP code or a recovery code.
pub async fn verify(
    state: &AppState,
    browser: &Browser,
    actors: &TenantHandle,
    form: &BTreeMap<String, String>,
) -> Result<Page, PageError> {
    let ticket = MfaTicket::open(state, browser, form.get("ticket").map(String::as_str))?;
    ticket.ensure_unspent(state, browser).await?;
    if let Some(code) = form.get("recovery_code").filter(|c| !c.trim().is_empty()) {
        return recovery_code(state, browser, actors, ticket, code).await;
    }
    let code = totp_code(form);
    if code.is_empty() {
        return totp_page(
            state,
            browser,
            &ticket,
            Some("Enter the code from your authenticator app."),
            StatusCode::BAD_REQUEST,
        );
    }
    let attempt = match attempt(state, browser, actors, &ticket).await? {
        Ok(attempt) => attempt,
        Err(locked) => return Ok(locked),
    };
    let check = match state
        .tenant_runtime
        .factors
        .verify_totp(&browser.tenant.id, &ticket.user_id, &code)
        .await
    {
        Ok(check) => check,
        Err(e) => {
            // Nothing was decided: handed back, like an unavailable check.
            attempt.released().await?;
            return Err(factor_unavailable(e));
        }
    };
    match check {
        TotpCheck::Valid => {
            finish_second_factor(
                state,
                browser,
                actors,
                attempt,
                ticket,
                &[AMR_PASSWORD, AMR_TOTP],
            )
            .await
        }
        TotpCheck::Invalid => {
            let mfa_failed = Some(LoginResult::MfaFailed);
            wrong_secret(state, browser, &ticket.username, attempt, mfa_failed).await?;
            totp_page(
                state,
                browser,
                &ticket,
                Some("That code is not valid. Try the current one."),
                StatusCode::OK,
            )
        }
        TotpCheck::Unavailable => {
            // Nothing was checked: the attempt is handed back, and the
            // failures already counted stay.
            attempt.released().await?;
            Err(PageError::new(
                StatusCode::NOT_IMPLEMENTED,
                "mfa_unavailable",
                "This account requires a second factor, which this server cannot verify yet, so the sign-in is refused. Contact your administrator.",
            ))
        }
    }
}

/// A lockout attempt for the ticket's user, or the code page saying the
/// account is locked.
async fn attempt(
    state: &AppState,
    browser: &Browser,
    actors: &TenantHandle,
    ticket: &MfaTicket,
) -> Result<Result<AttemptGuard, Page>, PageError> {
    match begin_attempt(actors, &browser.tenant, &ticket.username).await? {
        Some(attempt) => Ok(Ok(attempt)),
        None => {
            login_failed(state, browser, &ticket.username, LoginResult::Locked);
            Ok(Err(totp_page(
                state,
                browser,
                ticket,
                Some(LOCKED),
                StatusCode::TOO_MANY_REQUESTS,
            )?
            .retry_after(LOCKED_RETRY_AFTER)))
        }
    }
}

/// A recovery code: used up on success, counted towards the lockout when
/// wrong.
async fn recovery_code(
    state: &AppState,
    browser: &Browser,
    actors: &TenantHandle,
    ticket: MfaTicket,
    code: &str,
) -> Result<Page, PageError> {
    let attempt = match attempt(state, browser, actors, &ticket).await? {
        Ok(attempt) => attempt,
        Err(locked) => return Ok(locked),
    };
    let valid = match state
        .identity
        .recovery
        .redeem(&browser.tenant.id, &ticket.user_id, code)
        .await
    {
        Ok(valid) => valid,
        Err(e) => {
            tracing::warn!(error = %e, "recovery codes unavailable");
            attempt.released().await?;
            return Err(unavailable());
        }
    };
    if !valid {
        let mfa_failed = Some(LoginResult::MfaFailed);
        wrong_secret(state, browser, &ticket.username, attempt, mfa_failed).await?;
        return totp_page(
            state,
            browser,
            &ticket,
            Some("That recovery code is not valid or was already used."),
            StatusCode::OK,
        );
    }
    finish_second_factor(
        state,
        browser,
        actors,
        attempt,
        ticket,
        &[AMR_PASSWORD, AMR_RECOVERY_CODE],
    )
    .await
}
