//! RP-Initiated Logout 1.0, `GET|POST {issuer}/logout` (the discovery
//! document's `end_session_endpoint`).
//!
//! - `id_token_hint` is checked ([`crate::oidc::id_token_hint`]; expired
//!   ones are accepted); `client_id` or the hint's audience names the
//!   client; `post_logout_redirect_uri` must be one of its registered
//!   `post_logout_redirect_uris`, exactly, else an error page; `state` is
//!   passed back.
//! - The session is revoked through the tenant actors (in force on every
//!   node when that returns), with the refresh tokens issued in it (not
//!   `offline_access` ones, see `rsp_identity::oauth::tokens::sessions`),
//!   and the cookie cleared; then the browser goes to the client's URI, or
//!   sees a "signed out" page.
//! - Without a hint naming the session's user, the user confirms first (a
//!   form with the anti-forgery token), so another site cannot sign people
//!   out with a link.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use rsp_identity::audit::{Draft, Outcome};
use serde::{Deserialize, Serialize};

use crate::oidc::authz_request::with_query;
use crate::oidc::browser_form::PostedForm;
use crate::oidc::browser_session::{Browser, SESSION_COOKIE, current_session};
use crate::oidc::csrf::{Csrf, seal, unseal};
use crate::oidc::error::{OAuthError, OAuthErrorCode};
use crate::oidc::http::Params;
use crate::oidc::id_token_hint;
use crate::oidc::pages::templates::{LogoutConfirmPage, SignedOutPage};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::clients::ClientError;

const LOGOUT_TICKET: &str = "logout";

/// A checked logout request: where to send the browser afterwards.
#[derive(Serialize, Deserialize)]
struct Checked {
    /// `post_logout_redirect_uri` with `state`, when valid.
    redirect: Option<String>,
    /// The user the hint named.
    hinted_sub: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    browser: Browser,
    RawQuery(query): RawQuery,
) -> Result<Page, PageError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes())?;
    logout(&state, &browser, params.into_map(), false).await
}

pub async fn post(State(state): State<AppState>, form: PostedForm) -> Result<Page, PageError> {
    if form.field("ticket").is_some() {
        // The user confirmed on our page.
        form.check_csrf(&state)?;
        let checked: Checked = unseal(&state, &form.browser, LOGOUT_TICKET, form.field("ticket"))?;
        return sign_out(&state, &form.browser, checked, true).await;
    }
    logout(&state, &form.browser, form.fields, true).await
}

async fn check(
    state: &AppState,
    browser: &Browser,
    params: &BTreeMap<String, String>,
) -> Result<Checked, PageError> {
    let t = &browser.tenant;
    let hint =
        match params.get("id_token_hint") {
            Some(token) => Some(id_token_hint::verify(state, browser, token).await.map_err(
                |e| {
                    if e.code == OAuthErrorCode::InvalidRequest {
                        PageError::bad_request(
                            "The id_token_hint is not a valid ID token of this issuer.",
                        )
                    } else {
                        e.into()
                    }
                },
            )?),
            None => None,
        };
    let client_id = match (params.get("client_id"), &hint) {
        (Some(id), Some(h)) if !h.aud.contains(id) => {
            return Err(PageError::bad_request(
                "client_id does not match the id_token_hint.",
            ));
        }
        (Some(id), _) => Some(id.clone()),
        (None, Some(h)) if h.aud.len() == 1 => Some(h.aud[0].clone()),
        _ => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client_id) = client_id else {
                return Err(PageError::bad_request(
                    "post_logout_redirect_uri needs client_id or id_token_hint to name the application.",
                ));
            };
            let gate = state.misses.gate(browser.client_ip);
            let client = match state.identity.clients.find(&t.id, &client_id, &gate).await {
                Ok(c) => c,
                Err(ClientError::NotFound) => {
                    return Err(PageError::bad_request(
                        "The application (client_id) is not known here.",
                    ));
                }
                Err(ClientError::Refused(r)) => return Err(OAuthError::from(r).into()),
                Err(ClientError::Consensus(e)) => return Err(e.into()),
                Err(e) => return Err(PageError::internal(e)),
            };
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(PageError::bad_request(
                    "The post_logout_redirect_uri is not registered for this application.",
                ));
            }
            Some(match params.get("state") {
                Some(s) => with_query(uri, &[("state", s)]),
                None => uri.clone(),
            })
        }
    };
    Ok(Checked {
        redirect,
        hinted_sub: hint.map(|h| h.sub),
    })
}

async fn logout(
    state: &AppState,
    browser: &Browser,
    params: BTreeMap<String, String>,
    after_post: bool,
) -> Result<Page, PageError> {
    let checked = check(state, browser, &params).await?;
    let actors = state.tenant_runtime.tenant(&browser.tenant.id).await?;
    let session = current_session(state, browser, &actors).await?;
    let confirmed = match (&session, &checked.hinted_sub) {
        (None, _) => true,
        (Some(s), Some(sub)) => s.user.id == *sub,
        (Some(_), None) => false,
    };
    if !confirmed && let Some(s) = session {
        let csrf = Csrf::for_page(state, browser)?;
        let ticket = seal(state, browser, LOGOUT_TICKET, &checked)?;
        let page = Page::render(
            StatusCode::OK,
            &LogoutConfirmPage {
                username: &s.user.username,
                csrf: csrf.token(),
                ticket: &ticket,
            },
        );
        let page = match &checked.redirect {
            Some(uri) => page.form_target(uri),
            None => page,
        };
        return Ok(csrf.apply(page));
    }
    sign_out(state, browser, checked, after_post).await
}

/// Revoke the browser's session and its session-bound refresh tokens
/// (everywhere), clear its cookie, tell the SAML service providers the
/// session signed in to ([`crate::saml::slo`]), and leave.
async fn sign_out(
    state: &AppState,
    browser: &Browser,
    checked: Checked,
    after_post: bool,
) -> Result<Page, PageError> {
    let actors = state.tenant_runtime.tenant(&browser.tenant.id).await?;
    let mut saml_participants = Vec::new();
    if let Some(s) = current_session(state, browser, &actors).await? {
        // Tokens first: if that fails, the session is still there to retry
        // the logout with.
        state
            .oidc
            .tokens
            .revoke_session_families(&browser.tenant.id, &s.handle())
            .await?;
        saml_participants = state
            .identity
            .saml
            .take_participants(&browser.tenant.id, &s.handle())
            .await
            .map_err(crate::saml::page_error)?;
        actors.sessions().revoke(&s.id).await?;
        state.identity.audit.record(
            Draft::new(
                Some(&browser.tenant.id),
                "session.ended",
                format!("user:{}", s.user.id),
                Outcome::Success,
            )
            .ip(browser.client_ip)
            .detail("session", s.handle())
            .detail("reason", "logout"),
        );
    }
    let clear = browser.clear_cookie(SESSION_COOKIE);
    // SAML service providers the session signed in to are told first
    // (front-channel), and the chain ends where this logout would have.
    if let Some(page) = crate::saml::slo::tell_participants(
        state,
        browser,
        saml_participants,
        checked.redirect.clone(),
    )
    .await?
    {
        return Ok(page.cookie(clear));
    }
    Ok(match checked.redirect {
        Some(uri) => Page::redirect(uri, after_post),
        None => Page::render(StatusCode::OK, &SignedOutPage),
    }
    .cookie(clear))
}
