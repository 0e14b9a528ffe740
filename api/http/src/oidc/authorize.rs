//! The authorization endpoint, `GET|POST {issuer}/authorize` (RFC 6749
//! section 4.1, OIDC Core section 3.1.2, RFC 9126 for `request_uri`,
//! RFC 9207 for `iss`).
//!
//! 1. [`crate::oidc::authz_request::resolve`]: the client and its redirect
//!    URI are checked first (error pages), then the rest (error redirects).
//! 2. [`proceed`]: the browser's session against `prompt`, `max_age` and
//!    `id_token_hint` (login page, or `login_required` for `prompt=none`),
//!    then `acr_values` / the tenant's MFA policy (a password-only
//!    session signs in again with a second factor: [`crate::oidc::mfa`]),
//!    then consent ([`crate::oidc::consent`], shown unless every scope
//!    was granted before: [`rsp_identity::consents`]), then a code
//!    ([`crate::oidc::authz_request::issue_code`]) carrying the nonce,
//!    PKCE challenge, `auth_time`, `amr`, `acr` and the session.
//!
//! The validated request travels to the login and consent steps sealed in
//! their forms ([`crate::oidc::csrf::seal`]); they resolve it again and
//! the login goes on through [`proceed`]
//! ([`crate::oidc::signin::continue_flow`]).

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;

use crate::oidc::authz_request::{AuthzRequest, issue_code, resolve};
use crate::oidc::browser_form::PostedForm;
use crate::oidc::browser_session::{ActiveSession, Browser, current_session};
use crate::oidc::consent;
use crate::oidc::error::OAuthErrorCode;
use crate::oidc::http::Params;
use crate::oidc::id_token_hint;
use crate::oidc::login_page::{Continuation, render_login};
use crate::oidc::mfa::{self, ACR_MFA};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

/// `GET {issuer}/authorize`.
pub async fn get(
    State(state): State<AppState>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Result<Page, PageError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes())?;
    authorize(&state, &browser, params.into_map(), false).await
}

/// `POST {issuer}/authorize` (a form, OIDC Core section 3.1.2.1).
pub async fn post(State(state): State<AppState>, form: PostedForm) -> Result<Page, PageError> {
    authorize(&state, &form.browser, form.fields, true).await
}

async fn authorize(
    state: &AppState,
    browser: &Browser,
    params: BTreeMap<String, String>,
    after_post: bool,
) -> Result<Page, PageError> {
    let req = match resolve(state, browser, params, true, after_post).await? {
        Ok(req) => req,
        Err(redirect) => return Ok(redirect),
    };
    let actors = state.tenant_runtime.tenant(&browser.tenant.id).await?;
    let session = current_session(state, browser, &actors).await?;
    proceed(state, browser, req, session, false, after_post).await
}

/// Take a resolved request on from the browser's `session`: login, consent,
/// then the code. `fresh_login`: the user just signed in for this request,
/// so `prompt=login`, `max_age` and the hint are satisfied.
pub async fn proceed(
    state: &AppState,
    browser: &Browser,
    req: AuthzRequest,
    session: Option<ActiveSession>,
    fresh_login: bool,
    after_post: bool,
) -> Result<Page, PageError> {
    let t = &browser.tenant;
    let prompt = req.prompt();
    let mut login_needed = session.is_none();
    if !fresh_login {
        if prompt.login {
            login_needed = true;
        }
        // max_age=0 asks for a login every time, like prompt=login.
        if let (Some(max_age), Some(s)) = (req.max_age(), &session)
            && (max_age == 0 || state.clock().now_secs().saturating_sub(s.auth_time) > max_age)
        {
            login_needed = true;
        }
        if let Some(hint) = req.get("id_token_hint") {
            match id_token_hint::verify(state, browser, hint).await {
                Ok(h) => {
                    if session.as_ref().is_some_and(|s| s.user.id != h.sub) {
                        login_needed = true;
                    }
                }
                Err(e) if e.code == OAuthErrorCode::InvalidRequest => {
                    return Ok(req.oauth_error(t, e, after_post));
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Step-up: a password-only session where a second factor is now
        // needed (`acr_values`, or the tenant's MFA policy) signs in again,
        // and the login then asks for the factor (or leads to enrolment).
        if let Some(s) = &session
            && !login_needed
            && s.acr.as_deref() != Some(ACR_MFA)
            && mfa::required(
                state,
                &t.id,
                &s.user.id,
                Some(&req.client.client_id),
                req.get("acr_values"),
            )
            .await?
        {
            login_needed = true;
        }
    }
    let prefill = req
        .get("login_hint")
        .map(str::to_string)
        .or_else(|| session.as_ref().map(|s| s.user.username.clone()))
        .unwrap_or_default();
    let session = match session {
        Some(s) if !login_needed => s,
        _ if prompt.none => {
            return Ok(req.error(
                t,
                OAuthErrorCode::LoginRequired,
                "the user must sign in",
                after_post,
            ));
        }
        _ => return login_page(state, browser, &req, &prefill, None, StatusCode::OK),
    };
    if prompt.consent || req.client.require_consent {
        let covered = state
            .identity
            .consents
            .covers(&t.id, &session.user.id, &req.client.client_id, req.scope())
            .await?;
        if prompt.consent || !covered {
            if prompt.none {
                return Ok(req.error(
                    t,
                    OAuthErrorCode::ConsentRequired,
                    "the user has not granted the requested scopes",
                    after_post,
                ));
            }
            return consent::page(state, browser, &req, &session);
        }
    }
    issue_code(state, browser, &req, &session, after_post).await
}

/// The login page for `req`.
pub fn login_page(
    state: &AppState,
    browser: &Browser,
    req: &AuthzRequest,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let flow = Continuation::Authorize {
        params: req.params.clone(),
    };
    render_login(
        state,
        browser,
        &flow,
        Some(req.client_name()),
        Some(req.redirect_uri()),
        username,
        error,
        status,
    )
}
