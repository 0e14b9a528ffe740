//! Finishing a sign-in, the one way every path ends: once a sign-in has
//! passed every step it needs (the password alone; the password and a
//! TOTP code, a recovery code or a passkey; a passkey alone; a factor set
//! up during the sign-in), [`finish_sign_in`] loads the account again (it
//! may have been disabled or removed meanwhile), starts a session with the
//! `amr` / `acr` of what was used ([`crate::oidc::mfa`]; a new session id
//! every time) and continues what the sign-in interrupted
//! ([`continue_flow`]: the authorization request, the device approval
//! page or the account pages). [`sign_in`] is the same without the last
//! step, for enrolment, which shows the new recovery codes first.
//!
//! [`finish_second_factor`] is how a second factor (TOTP, a recovery code,
//! a passkey after the password) ends its sign-in: it spends the ticket
//! ([`crate::oidc::mfa_ticket`]), and only then clears the lockout record,
//! since only now has the whole sign-in succeeded.

use rsp_actors::{AttemptGuard, TenantHandle};
use rsp_identity::audit::{Draft, Outcome};

use crate::metrics::LoginResult;
use crate::oidc::authorize::proceed;
use crate::oidc::authz_request::resolve;
use crate::oidc::browser_session::{ActiveSession, Browser, SESSION_COOKIE, start_session};
use crate::oidc::device_page;
use crate::oidc::login_page::Continuation;
use crate::oidc::mfa::{ACR_MFA, factor_of_amr};
use crate::oidc::mfa_ticket::MfaTicket;
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::users::User;

/// The account a sign-in is for.
pub enum SignInUser<'a> {
    /// As the password check returned it a moment ago.
    Checked(User),
    /// The id a later step's ticket carries: loaded again.
    Id(&'a str),
}

impl SignInUser<'_> {
    /// The account, if it may sign in: it exists and is enabled.
    pub async fn load(self, state: &AppState, tenant: &str) -> Result<User, PageError> {
        match self {
            SignInUser::Checked(user) => Ok(user),
            SignInUser::Id(user_id) => state
                .oidc
                .tokens
                .load_user(tenant, user_id)
                .await?
                .filter(|u| !u.disabled)
                .ok_or_else(|| PageError::bad_request("This account cannot sign in.")),
        }
    }
}

/// Start the session of `user`, authenticated by `amr` with `acr`, and
/// count the finished sign-in and its factors. Returns the session and its
/// cookie.
pub async fn sign_in(
    state: &AppState,
    browser: &Browser,
    actors: &TenantHandle,
    user: SignInUser<'_>,
    amr: &[&str],
    acr: &str,
) -> Result<(ActiveSession, String), PageError> {
    let user = user.load(state, &browser.tenant.id).await?;
    let (user_id, username) = (user.id.clone(), user.username.clone());
    let started = start_session(state, browser, actors, user, amr, acr).await?;
    let tenant = &browser.tenant.id;
    state.metrics.login(tenant, LoginResult::Success);
    for factor in amr.iter().filter_map(|a| factor_of_amr(a)) {
        state.metrics.login_factor(tenant, factor);
    }
    state.identity.usage.login(tenant, &user_id);
    state.identity.audit.record(
        Draft::new(
            Some(tenant),
            "login.succeeded",
            format!("user:{user_id}"),
            Outcome::Success,
        )
        .ip(browser.client_ip)
        .detail("username", username)
        .detail("amr", amr.to_vec())
        .detail("acr", acr),
    );
    Ok(started)
}

/// `user` passed every step: start the session and continue `flow`.
pub async fn finish_sign_in(
    state: &AppState,
    browser: &Browser,
    actors: &TenantHandle,
    user: SignInUser<'_>,
    amr: &[&str],
    acr: &str,
    flow: Continuation,
) -> Result<Page, PageError> {
    let (session, cookie) = sign_in(state, browser, actors, user, amr, acr).await?;
    // The next page (a consent form) is bound to the new session.
    let browser = browser.with_cookie(SESSION_COOKIE, session.id.expose());
    Ok(continue_flow(state, &browser, session, flow)
        .await?
        .cookie(cookie))
}

/// A second factor was accepted for `ticket`'s user in `attempt`: spend
/// the ticket (a spent one is refused, the attempt handed back), clear the
/// user's lockout record (the whole sign-in passed), start the session
/// with `amr` and continue the ticket's flow.
pub async fn finish_second_factor(
    state: &AppState,
    browser: &Browser,
    actors: &TenantHandle,
    attempt: AttemptGuard,
    ticket: MfaTicket,
    amr: &[&str],
) -> Result<Page, PageError> {
    if let Err(spent) = ticket.spend(state, browser).await {
        attempt.released().await?;
        return Err(spent);
    }
    attempt.succeeded().await?;
    let page = finish_sign_in(
        state,
        browser,
        actors,
        SignInUser::Id(&ticket.user_id),
        amr,
        ACR_MFA,
        ticket.flow,
    )
    .await?;
    Ok(page.cookie(MfaTicket::clear_cookie(browser)))
}

/// Where a signed-in `session` goes next: the rest of the authorization
/// request, the answer to a SAML request, the device approval page, or
/// the account pages.
pub async fn continue_flow(
    state: &AppState,
    browser: &Browser,
    session: ActiveSession,
    flow: Continuation,
) -> Result<Page, PageError> {
    Ok(match flow {
        Continuation::Authorize { params } => {
            match resolve(state, browser, params, false, true).await? {
                Ok(req) => proceed(state, browser, req, Some(session), true, true).await?,
                Err(redirect) => redirect,
            }
        }
        Continuation::Device { user_code } => {
            device_page::confirm_page(state, browser, &user_code, &session).await?
        }
        Continuation::Account => Page::redirect(browser.tenant.endpoint("/account"), true),
        Continuation::Saml { request } => {
            crate::saml::sso::proceed(state, browser, request, Some(session)).await?
        }
    })
}
