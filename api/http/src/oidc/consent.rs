//! Consent for clients registered with `require_consent` (and for
//! `prompt=consent`): the page with a `decision` button (`allow` / `deny`)
//! and its `POST {issuer}/consent`. What a user granted a client is kept by
//! [`rsp_identity::consents`], so the page is shown again only for new
//! scopes.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::oidc::authz_request::{AuthzRequest, issue_code, resolve};
use crate::oidc::browser_form::BrowserForm;
use crate::oidc::browser_session::{ActiveSession, Browser, current_session};
use crate::oidc::csrf::{Csrf, seal, unseal};
use crate::oidc::error::OAuthErrorCode;
use crate::oidc::pages::templates::{ConsentPage, ScopeLine};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::oauth::claims::user_token_scope;

const CONSENT_TICKET: &str = "consent";

/// What the consent form carries: the request, and the session it was
/// shown to (a form rendered for one session is no good in another).
#[derive(Serialize, Deserialize)]
struct Ticket {
    params: BTreeMap<String, String>,
    sid: String,
}

/// The consent page for `req`, shown to `session`'s user.
pub fn page(
    state: &AppState,
    browser: &Browser,
    req: &AuthzRequest,
    session: &ActiveSession,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, browser)?;
    let ticket = seal(
        state,
        browser,
        CONSENT_TICKET,
        &Ticket {
            params: req.params.clone(),
            sid: session.handle(),
        },
    )?;
    let page = Page::render(
        StatusCode::OK,
        &ConsentPage {
            action: "consent",
            client_name: req.client_name(),
            username: &session.user.username,
            // What the user would actually grant: `rsp:admin` only for a
            // user who holds the right (it is dropped from the token else).
            scopes: ScopeLine::list(&user_token_scope(&session.user, req.scope())),
            csrf: csrf.token(),
            ticket: &ticket,
        },
    )
    .form_target(req.redirect_uri());
    Ok(csrf.apply(page))
}

/// The browser's session, when it is still the one (`sid`) a consent form
/// was shown to: a form rendered for one session is no good in another.
pub async fn session_shown_to(
    state: &AppState,
    browser: &Browser,
    sid: &str,
) -> Result<ActiveSession, PageError> {
    let actors = state.tenant_runtime.tenant(&browser.tenant.id).await?;
    current_session(state, browser, &actors)
        .await?
        .filter(|s| s.handle() == sid)
        .ok_or_else(|| {
            PageError::new(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "Your session ended before you decided. Start again from the application.",
            )
        })
}

/// `POST {issuer}/consent`: `decision=allow` issues the code (and remembers
/// the scopes), `decision=deny` sends `access_denied` back to the client.
pub async fn post(State(state): State<AppState>, form: BrowserForm) -> Result<Page, PageError> {
    let browser = &form.browser;
    let ticket: Ticket = unseal(&state, browser, CONSENT_TICKET, form.field("ticket"))?;
    let session = session_shown_to(&state, browser, &ticket.sid).await?;
    let req = match resolve(&state, browser, ticket.params, false, true).await? {
        Ok(req) => req,
        Err(redirect) => return Ok(redirect),
    };
    match form.field("decision") {
        Some("allow") => {
            state
                .identity
                .consents
                .grant(
                    &browser.tenant.id,
                    &session.user.id,
                    &req.client.client_id,
                    req.scope(),
                )
                .await?;
            issue_code(&state, browser, &req, &session, true).await
        }
        Some("deny") => Ok(req.error(
            &browser.tenant,
            OAuthErrorCode::AccessDenied,
            "the user refused access",
            true,
        )),
        _ => Err(PageError::bad_request("Choose allow or deny.")),
    }
}
