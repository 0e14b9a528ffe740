//! Enrolment during sign-in, for a user who must use a second factor (the
//! tenant's MFA policy, or `acr_values=urn:rsp:acr:mfa`) and has none: the
//! way Keycloak's "configure OTP" required action works.
//!
//! 1. After the password, [`start`] makes a pending TOTP seed and shows the
//!    enrolment page (QR code, key, `otpauth://` URI) whose form posts the
//!    first code with a sealed `enrolment` ticket to `{issuer}/login`.
//! 2. [`confirm`]: a valid code activates the factor (its step counts as
//!    used), makes ten recovery codes and signs the user in
//!    ([`crate::oidc::signin::sign_in`]; `amr` `["pwd", "otp"]`, `acr`
//!    `urn:rsp:acr:mfa`: the user has just shown both); the page shows the
//!    codes once, with a form carrying a sealed `resume` ticket.
//! 3. [`resume`]: that form continues the flow for the same session
//!    ([`crate::oidc::signin::continue_flow`]).
//!
//! No session exists before step 2, so a user who must enrol cannot reach
//! a client (or the account pages) with the password alone.
//!
//! The enrolment ticket carries the sign-in's [`MfaTicket`]: step 2 is
//! refused from a browser without the cookie it is bound to. It also
//! carries the pending seed, sealed ([`rsp_identity::factors::PendingTotp`]):
//! step 1 writes nothing, and step 2 is single use (the factor is written
//! only if it does not exist yet). Step 2 is an
//! attempt under the lockout ([`crate::oidc::lockout`]): a locked account
//! is refused, a wrong first code is not counted (it reveals nothing: the
//! seed was just shown), and the finished sign-in clears the account's
//! failures.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use rsp_actors::TenantHandle;
use serde::{Deserialize, Serialize};

use crate::oidc::browser_session::{Browser, SESSION_COOKIE, current_session};
use crate::oidc::csrf::{seal, unseal};
use crate::oidc::enrolment_pages::{codes_page, enrol_page};
use crate::oidc::lockout::{begin_attempt, locked};
use crate::oidc::login_page::Continuation;
use crate::oidc::mfa::{ACR_MFA, AMR_PASSWORD, AMR_TOTP, totp_code};
use crate::oidc::mfa_ticket::MfaTicket;
use crate::oidc::pages::{Page, PageError};
use crate::oidc::signin::{SignInUser, continue_flow, sign_in};
use crate::state::AppState;
use rsp_identity::factors::{FactorError, PendingTotp, TotpEnrolment};

/// The field (and sealing purpose) of the enrolment form's ticket.
pub const ENROL_FIELD: &str = "enrolment";
/// The field (and sealing purpose) of the recovery-codes page's form.
pub const RESUME_FIELD: &str = "resume";

#[derive(Serialize, Deserialize)]
struct EnrolTicket {
    user: MfaTicket,
    /// The pending factor, its seed sealed under the KEK.
    pending: PendingTotp,
}

#[derive(Serialize, Deserialize)]
struct ResumeTicket {
    user_id: String,
    flow: Continuation,
}

fn unavailable(e: impl std::fmt::Display) -> PageError {
    tracing::warn!(error = %e, "factor store unavailable during enrolment");
    PageError::unavailable(
        "Setting up the second factor is briefly unavailable. Try again in a moment.",
        None,
    )
}

fn expired() -> PageError {
    PageError::bad_request(
        "This setup expired or was already completed. Start again from the application.",
    )
}

/// Step 1: a pending seed and its enrolment page.
pub async fn start(
    state: &AppState,
    browser: &Browser,
    user: MfaTicket,
) -> Result<Page, PageError> {
    let (enrolment, pending) = state
        .identity
        .factors
        .begin_totp(
            &browser.tenant.id,
            &user.user_id,
            &browser.tenant.id,
            &user.username,
            state.clock().now_ms(),
        )
        .map_err(unavailable)?;
    let ticket = EnrolTicket { user, pending };
    render(state, browser, &ticket, &enrolment, None, StatusCode::OK)
}

fn render(
    state: &AppState,
    browser: &Browser,
    ticket: &EnrolTicket,
    enrolment: &TotpEnrolment,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let sealed = seal(state, browser, ENROL_FIELD, ticket)?;
    enrol_page(
        state,
        browser,
        enrolment,
        true,
        "login",
        vec![(ENROL_FIELD, &sealed)],
        error,
        None,
        status,
    )
}

/// Step 2: the first code.
pub async fn confirm(
    state: &AppState,
    browser: &Browser,
    form: &BTreeMap<String, String>,
) -> Result<Page, PageError> {
    let ticket: EnrolTicket = unseal(
        state,
        browser,
        ENROL_FIELD,
        form.get(ENROL_FIELD).map(String::as_str),
    )?;
    ticket.user.check_browser(state, browser)?;
    let tenant = &browser.tenant.id;
    let user_id = &ticket.user.user_id;
    let actors = state.tenant_runtime.tenant(tenant).await?;
    let Some(attempt) = begin_attempt(&actors, &browser.tenant, &ticket.user.username).await?
    else {
        return Err(locked());
    };
    let code = totp_code(form);
    let confirmed = state
        .identity
        .factors
        .confirm_totp(
            tenant,
            user_id,
            &ticket.pending,
            &code,
            state.clock().now_secs(),
        )
        .await;
    if !matches!(confirmed, Ok(Some(_))) {
        // Not counted: a wrong first code reveals nothing.
        attempt.released().await?;
        return match confirmed {
            Ok(_) => {
                let enrolment = state
                    .identity
                    .factors
                    .reopen_totp(
                        tenant,
                        user_id,
                        &ticket.pending,
                        tenant,
                        &ticket.user.username,
                        state.clock().now_ms(),
                    )
                    .map_err(|e| match e {
                        FactorError::NotFound => expired(),
                        e => unavailable(e),
                    })?;
                render(
                    state,
                    browser,
                    &ticket,
                    &enrolment,
                    Some("That code is not valid. Enter the one your app shows now."),
                    StatusCode::OK,
                )
            }
            Err(FactorError::NotFound) => Err(expired()),
            Err(e) => Err(unavailable(e)),
        };
    }
    state.metrics.mfa_enrolment(tenant, "totp");
    // The account first: no recovery codes for one that cannot sign in.
    let user = SignInUser::Id(user_id).load(state, tenant).await?;
    let codes = state
        .identity
        .recovery
        .generate(tenant, user_id, state.clock().now_ms())
        .await
        .map_err(unavailable)?;
    state.metrics.mfa_enrolment(tenant, "recovery_codes");
    let (session, cookie) = sign_in(
        state,
        browser,
        &actors,
        SignInUser::Checked(user),
        &[AMR_PASSWORD, AMR_TOTP],
        ACR_MFA,
    )
    .await?;
    attempt.succeeded().await?;
    // The codes page's form is bound to the new session.
    let browser = &browser.with_cookie(SESSION_COOKIE, session.id.expose());
    let resume = ResumeTicket {
        user_id: user_id.clone(),
        flow: ticket.user.flow,
    };
    let sealed = seal(state, browser, RESUME_FIELD, &resume)?;
    let page = codes_page(
        state,
        browser,
        &codes,
        Some("login"),
        vec![(RESUME_FIELD, &sealed)],
        None,
    )?;
    let page = match resume.flow.redirect_uri() {
        Some(uri) => page.form_target(uri),
        None => page,
    };
    Ok(page.cookie(cookie).cookie(MfaTicket::clear_cookie(browser)))
}

/// Step 3: continue the flow, for the session step 2 started.
pub async fn resume(
    state: &AppState,
    browser: &Browser,
    actors: &TenantHandle,
    form: &BTreeMap<String, String>,
) -> Result<Page, PageError> {
    let ticket: ResumeTicket = unseal(
        state,
        browser,
        RESUME_FIELD,
        form.get(RESUME_FIELD).map(String::as_str),
    )?;
    let session = current_session(state, browser, actors)
        .await?
        .filter(|s| s.user.id == ticket.user_id)
        .ok_or_else(|| {
            PageError::new(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "Your session ended. Start again from the application.",
            )
        })?;
    continue_flow(state, browser, session, ticket.flow).await
}
