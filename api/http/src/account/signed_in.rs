//! The account pages' extractors: [`SignedIn`] (a browser with a live
//! session, for the pages' `GET`s) and [`SignedInForm`] (a form from an
//! account page: anti-forgery token first, then the session). A handler
//! that takes one cannot serve a browser without a session: the extractor
//! answers it instead, with what the page's `W` ([`WithoutSession`])
//! says: the login form leading back to the account pages ([`ShowLogin`])
//! or a redirect to `{issuer}/account` ([`ToAccount`]).

use std::collections::BTreeMap;
use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use rsp_actors::TenantHandle;

use crate::oidc::browser_form::BrowserForm;
use crate::oidc::browser_session::{ActiveSession, Browser, current_session};
use crate::oidc::login_page::{Continuation, render_login};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

/// What an account page answers a browser without a session.
pub trait WithoutSession: Send + Sync + 'static {
    fn answer(state: &AppState, browser: &Browser, after_post: bool) -> Result<Page, PageError>;
}

/// The login form, on the page's own URL, leading back to the account
/// pages.
pub struct ShowLogin;

impl WithoutSession for ShowLogin {
    fn answer(state: &AppState, browser: &Browser, _after_post: bool) -> Result<Page, PageError> {
        render_login(
            state,
            browser,
            &Continuation::Account,
            None,
            None,
            "",
            None,
            StatusCode::OK,
        )
    }
}

/// A redirect to `{issuer}/account`, whose login form leads back (for a
/// page that is not itself where a sign-in should return).
pub struct ToAccount;

impl WithoutSession for ToAccount {
    fn answer(_state: &AppState, browser: &Browser, after_post: bool) -> Result<Page, PageError> {
        Ok(Page::redirect(
            browser.tenant.endpoint("/account"),
            after_post,
        ))
    }
}

/// A request from a signed-in browser: its tenant's actors and the live
/// session (its user exists and is enabled).
pub struct SignedIn<W = ShowLogin> {
    pub browser: Browser,
    pub actors: TenantHandle,
    pub session: ActiveSession,
    without: PhantomData<W>,
}

impl<W: WithoutSession> SignedIn<W> {
    /// The browser's session, or the page's answer to a browser without one.
    async fn of(state: &AppState, browser: Browser, after_post: bool) -> Result<Self, Response> {
        let found = async {
            let actors = state.tenant_runtime.tenant(&browser.tenant.id).await?;
            let session = current_session(state, &browser, &actors).await?;
            Ok::<_, PageError>(session.map(|s| (actors, s)))
        }
        .await
        .map_err(IntoResponse::into_response)?;
        match found {
            Some((actors, session)) => Ok(SignedIn {
                browser,
                actors,
                session,
                without: PhantomData,
            }),
            None => Err(W::answer(state, &browser, after_post).into_response()),
        }
    }
}

impl<W: WithoutSession> FromRequestParts<AppState> for SignedIn<W> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let browser = Browser::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        SignedIn::of(state, browser, false).await
    }
}

/// A form posted to an account page: its anti-forgery token checked
/// ([`BrowserForm`]), then the session ([`SignedIn`]).
pub struct SignedInForm<W = ShowLogin> {
    pub signed_in: SignedIn<W>,
    pub fields: BTreeMap<String, String>,
}

impl<W> SignedInForm<W> {
    /// The field `name`, or `""`.
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

impl<W: WithoutSession> FromRequest<AppState> for SignedInForm<W> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let form = BrowserForm::from_request(req, state).await?;
        Ok(SignedInForm {
            signed_in: SignedIn::of(state, form.browser, true).await?,
            fields: form.fields,
        })
    }
}
