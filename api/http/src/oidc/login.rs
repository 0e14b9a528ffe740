//! `POST {issuer}/login`: the login form (`username`, `password`, the
//! anti-forgery `csrf_token` and the sealed `flow` it continues), and its
//! second-factor step (`totp` with a sealed `ticket`).
//!
//! - Each attempt is reserved through the cluster-wide lockout before the
//!   password is checked (keyed by the lowercased username, so unknown
//!   names take exactly the same path); a locked account gets a clear
//!   message and no password check. The login form is also rate limited
//!   per client address (node share of the cluster-wide `login` rule).
//! - Unknown users, disabled users and wrong passwords get the same
//!   message; `check_password` hashes even when the user does not exist.
//! - On success a replicated session starts (a new id every time) and the
//!   request continues: consent or a code, or the device approval page.
//! - A user with a factor gets the `totp` form; the code is checked through
//!   [`crate::oidc::browser_session::SecondFactors`]. Where this build
//!   cannot verify it, the login is refused, never completed without it.
//!   The same step takes a `recovery_code` instead (single-use; `amr`
//!   `["pwd", "mfa"]`, see [`crate::oidc::mfa`]); wrong codes of either
//!   kind count towards the lockout.
//! - A user without a factor whom the tenant's MFA policy or the request's
//!   `acr_values` requires to use one is led to enrolment
//!   ([`crate::oidc::login_enrol`]) before any session starts.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rsp_actors::{ActorError, TenantHandle};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::oidc::authorize::proceed;
use crate::oidc::authz_request::resolve;
use crate::oidc::browser_session::{ActiveSession, Browser, start_session};
use crate::oidc::csrf::{CSRF_FIELD, Csrf, seal, unseal};
use crate::oidc::device_page;
use crate::oidc::http::{Params, is_form};
use crate::oidc::login_enrol;
use crate::oidc::login_page::{Continuation, LOGIN_FLOW, render_login};
use crate::oidc::mfa::{self, ACR_MFA, ACR_PASSWORD, AMR_PASSWORD, AMR_RECOVERY_CODE, AMR_TOTP};
use crate::oidc::pages::templates::TotpPage;
use crate::oidc::pages::{Page, PageError};
use crate::oidc::passkeys;
use crate::oidc::second_factors::{FactorKind, FactorStoreError, TotpCheck};
use crate::state::AppState;
use rsp_identity::users::User;

const MFA_TICKET: &str = "mfa";
pub const BAD_CREDENTIALS: &str = "Invalid username or password.";
pub const LOCKED: &str =
    "Too many failed sign-in attempts: this account is locked for now. Try again later.";

/// What the second-factor form carries: the user who passed the password
/// step and where the login leads.
#[derive(Serialize, Deserialize)]
pub(crate) struct MfaTicket {
    pub(crate) user_id: String,
    pub(crate) username: String,
    pub(crate) flow: Continuation,
}

/// A factor store failure: logged, and a generic page (no detail leaks).
fn factor_unavailable(e: FactorStoreError) -> PageError {
    tracing::warn!(error = %e, "second-factor store unavailable");
    PageError::unavailable(
        "The second-factor check is briefly unavailable. Try again in a moment.",
        None,
    )
}

/// The lockout key of a login name: unknown names are counted too, so the
/// path (and its timing) does not reveal whether a user exists.
pub(crate) fn lockout_key(username: &str) -> String {
    format!("login:{}", username.to_lowercase())
}

pub async fn post(
    State(state): State<AppState>,
    b: Browser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, PageError> {
    if !is_form(&headers) {
        return Err(PageError::bad_request(
            "The login form was not sent as a form.",
        ));
    }
    let mut form = Params::parse(&body)?.into_map();
    Csrf::verify(&state, &b, form.get(CSRF_FIELD).map(String::as_str))?;
    let h = state.browser.tenant(&b.tenant.id).await?;
    if let Some(ip) = b.client_ip {
        h.rate_limits()
            .check(rsp_actors::KIND_LOGIN, &ip.to_string())
            .await?;
    }
    if form.contains_key("ticket") {
        return second_factor(&state, &b, &h, &form).await;
    }
    if form.contains_key(login_enrol::ENROL_FIELD) {
        return login_enrol::confirm(&state, &b, &form).await;
    }
    if form.contains_key(login_enrol::RESUME_FIELD) {
        return login_enrol::resume(&state, &b, &h, &form).await;
    }
    let flow: Continuation = unseal(&state, &b, LOGIN_FLOW, form.get("flow").map(String::as_str))?;
    let username = form.remove("username").unwrap_or_default();
    let password = Zeroizing::new(form.remove("password").unwrap_or_default());
    let again = |error: &str, status: StatusCode| {
        relogin(&state, &b, &flow, &username, Some(error), status)
    };
    if username.is_empty() || password.is_empty() {
        return again("Enter your username and password.", StatusCode::BAD_REQUEST);
    }
    let attempt = match h.lockout().begin_attempt(&lockout_key(&username)).await {
        Ok(a) => a,
        Err(ActorError::Locked { .. }) => {
            return again(LOCKED, StatusCode::TOO_MANY_REQUESTS);
        }
        Err(e) => return Err(e.into()),
    };
    let user = state
        .identity
        .users
        .check_password(&b.tenant.id, &username, password)
        .await
        .map_err(PageError::internal)?;
    let Some(user) = user else {
        attempt.failed().await?;
        return again(BAD_CREDENTIALS, StatusCode::OK);
    };
    attempt.succeeded().await?;
    let factors = state
        .browser
        .factors
        .enrolled(&b.tenant.id, &user.id)
        .await
        .map_err(factor_unavailable)?;
    // Passkeys first (phishing-resistant); their page also offers the TOTP
    // form when the user has both.
    let totp_ticket = if factors.contains(&FactorKind::Totp) {
        let ticket = MfaTicket {
            user_id: user.id.clone(),
            username: user.username.clone(),
            flow: flow.clone(),
        };
        Some(seal(&state, &b, MFA_TICKET, &ticket)?)
    } else {
        None
    };
    if let Some(page) =
        passkeys::second_factor(&state, &b, &user.id, &user.username, &flow, totp_ticket).await?
    {
        return Ok(page);
    }
    if factors.contains(&FactorKind::Totp) {
        let ticket = MfaTicket {
            user_id: user.id.clone(),
            username: user.username.clone(),
            flow,
        };
        return totp_page(&state, &b, &ticket, None, StatusCode::OK);
    }
    if factors.is_empty() && mfa_required(&state, &b, &user.id, &flow).await? {
        let ticket = MfaTicket {
            user_id: user.id.clone(),
            username: user.username.clone(),
            flow,
        };
        return login_enrol::start(&state, &b, ticket).await;
    }
    finish(&state, &b, &h, user, &[AMR_PASSWORD], ACR_PASSWORD, flow).await
}

/// Whether signing in to `flow` needs a second factor (the request's
/// `acr_values`, the tenant's MFA policy).
async fn mfa_required(
    state: &AppState,
    b: &Browser,
    user_id: &str,
    flow: &Continuation,
) -> Result<bool, PageError> {
    let (client_id, acr_values) = match flow {
        Continuation::Authorize { params } => (
            params.get("client_id").cloned(),
            params.get("acr_values").map(String::as_str),
        ),
        Continuation::Device { user_code } => (
            state
                .oidc
                .device
                .lookup(&b.tenant.id, user_code)
                .await?
                .map(|d| d.client_id),
            None,
        ),
        Continuation::Account => (None, None),
    };
    mfa::required(
        state,
        &b.tenant.id,
        user_id,
        client_id.as_deref(),
        acr_values,
    )
    .await
}

/// The login page again, for the same flow.
fn relogin(
    state: &AppState,
    b: &Browser,
    flow: &Continuation,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let redirect = flow.redirect_uri();
    let page = render_login(state, b, flow, None, redirect, username, error, status)?;
    Ok(if status == StatusCode::TOO_MANY_REQUESTS {
        page.retry_after(std::time::Duration::from_secs(60))
    } else {
        page
    })
}

fn totp_page(
    state: &AppState,
    b: &Browser,
    ticket: &MfaTicket,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, b)?;
    let sealed = seal(state, b, MFA_TICKET, ticket)?;
    let page = Page::render(
        status,
        &TotpPage {
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

async fn second_factor(
    state: &AppState,
    b: &Browser,
    h: &TenantHandle,
    form: &std::collections::BTreeMap<String, String>,
) -> Result<Page, PageError> {
    let ticket: MfaTicket = unseal(state, b, MFA_TICKET, form.get("ticket").map(String::as_str))?;
    if let Some(code) = form.get("recovery_code").filter(|c| !c.trim().is_empty()) {
        return recovery_code(state, b, h, ticket, code).await;
    }
    let code: String = form
        .get("totp")
        .map(|c| c.chars().filter(|c| !c.is_whitespace()).collect())
        .unwrap_or_default();
    if code.is_empty() {
        return totp_page(
            state,
            b,
            &ticket,
            Some("Enter the code from your authenticator app."),
            StatusCode::BAD_REQUEST,
        );
    }
    let attempt = match second_factor_attempt(state, b, h, &ticket).await? {
        Ok(attempt) => attempt,
        Err(locked) => return Ok(locked),
    };
    let check = state
        .browser
        .factors
        .verify_totp(&b.tenant.id, &ticket.user_id, &code)
        .await
        .map_err(factor_unavailable)?;
    match check {
        TotpCheck::Valid => {
            attempt.succeeded().await?;
            let user = state
                .oidc
                .tokens
                .load_user(&b.tenant.id, &ticket.user_id)
                .await?
                .filter(|u| !u.disabled)
                .ok_or_else(|| PageError::bad_request("This account cannot sign in."))?;
            finish(
                state,
                b,
                h,
                user,
                &[AMR_PASSWORD, AMR_TOTP],
                ACR_MFA,
                ticket.flow,
            )
            .await
        }
        TotpCheck::Invalid => {
            attempt.failed().await?;
            totp_page(
                state,
                b,
                &ticket,
                Some("That code is not valid. Try the current one."),
                StatusCode::OK,
            )
        }
        TotpCheck::Unavailable => {
            // Not counted against the user: nothing was checked.
            attempt.succeeded().await?;
            Err(PageError::new(
                StatusCode::NOT_IMPLEMENTED,
                "mfa_unavailable",
                "This account requires a second factor, which this server cannot verify yet, so the sign-in is refused. Contact your administrator.",
            ))
        }
    }
}

/// A lockout attempt for the ticket's user at the second-factor step, or
/// the code page saying the account is locked.
async fn second_factor_attempt(
    state: &AppState,
    b: &Browser,
    h: &TenantHandle,
    ticket: &MfaTicket,
) -> Result<Result<rsp_actors::AttemptGuard, Page>, PageError> {
    match h
        .lockout()
        .begin_attempt(&lockout_key(&ticket.username))
        .await
    {
        Ok(attempt) => Ok(Ok(attempt)),
        Err(ActorError::Locked { .. }) => Ok(Err(totp_page(
            state,
            b,
            ticket,
            Some(LOCKED),
            StatusCode::TOO_MANY_REQUESTS,
        )?)),
        Err(e) => Err(e.into()),
    }
}

/// A recovery code at the second-factor step: used up on success, counted
/// towards the lockout when wrong.
async fn recovery_code(
    state: &AppState,
    b: &Browser,
    h: &TenantHandle,
    ticket: MfaTicket,
    code: &str,
) -> Result<Page, PageError> {
    let attempt = match second_factor_attempt(state, b, h, &ticket).await? {
        Ok(attempt) => attempt,
        Err(locked) => return Ok(locked),
    };
    let valid = state
        .identity
        .recovery
        .redeem(&b.tenant.id, &ticket.user_id, code)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "recovery codes unavailable");
            PageError::unavailable(
                "The second-factor check is briefly unavailable. Try again in a moment.",
                None,
            )
        })?;
    if !valid {
        attempt.failed().await?;
        return totp_page(
            state,
            b,
            &ticket,
            Some("That recovery code is not valid or was already used."),
            StatusCode::OK,
        );
    }
    attempt.succeeded().await?;
    let user = state
        .oidc
        .tokens
        .load_user(&b.tenant.id, &ticket.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| PageError::bad_request("This account cannot sign in."))?;
    finish(
        state,
        b,
        h,
        user,
        &[AMR_PASSWORD, AMR_RECOVERY_CODE],
        ACR_MFA,
        ticket.flow,
    )
    .await
}

/// The user is authenticated: start the session and continue the flow.
pub(crate) async fn finish(
    state: &AppState,
    b: &Browser,
    h: &TenantHandle,
    user: User,
    amr: &[&str],
    acr: &str,
    flow: Continuation,
) -> Result<Page, PageError> {
    let (session, cookie) = start_session(state, b, h, user, amr, acr).await?;
    Ok(continue_flow(state, b, session, flow).await?.cookie(cookie))
}

/// Where a signed-in `session` goes next: the rest of the authorization
/// request, the device approval page, or the account pages.
pub(crate) async fn continue_flow(
    state: &AppState,
    b: &Browser,
    session: ActiveSession,
    flow: Continuation,
) -> Result<Page, PageError> {
    Ok(match flow {
        Continuation::Authorize { params } => {
            match resolve(state, &b.tenant, params, false, true).await? {
                Ok(req) => proceed(state, b, req, Some(session), true, true).await?,
                Err(redirect) => redirect,
            }
        }
        Continuation::Device { user_code } => {
            device_page::confirm_page(state, b, &user_code, &session).await?
        }
        Continuation::Account => Page::redirect(b.tenant.endpoint("/account"), true),
    })
}
