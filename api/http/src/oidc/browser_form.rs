//! Forms a browser posts to a tenant's pages, as extractors, so the
//! prelude (the browser, a form body, its fields, the anti-forgery check)
//! is written once:
//!
//! - [`BrowserForm`]: a form from one of this provider's own pages (login,
//!   consent, passkeys, device, account...): its `csrf_token` is checked
//!   against the browser's cookie ([`crate::oidc::csrf`]) before the
//!   handler runs;
//! - [`PostedForm`]: a form another site may post on purpose (the
//!   authorization request, an RP-initiated logout): read and parsed, its
//!   anti-forgery token checked only where the form came from our page
//!   ([`PostedForm::check_csrf`]).
//!
//! A body that is not `application/x-www-form-urlencoded` gets an error
//! page; a repeated field is `invalid_request`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};

use crate::oidc::browser_session::Browser;
use crate::oidc::csrf::{CSRF_FIELD, Csrf};
use crate::oidc::http::{Params, is_form};
use crate::oidc::pages::PageError;
use crate::state::AppState;

/// A form posted by a browser to a tenant's pages, not (yet) checked for
/// forgery.
pub struct PostedForm {
    pub browser: Browser,
    pub fields: BTreeMap<String, String>,
}

impl PostedForm {
    /// The field `name`, if sent (and not empty).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// Check the form's anti-forgery token against the browser's cookie.
    pub fn check_csrf(&self, state: &AppState) -> Result<(), PageError> {
        Csrf::verify(state, &self.browser, self.field(CSRF_FIELD))
    }
}

impl FromRequest<AppState> for PostedForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let browser = Browser::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = is_form(&parts.headers);
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !form {
            return Err(PageError::bad_request(
                "The request must be a form (application/x-www-form-urlencoded).",
            )
            .into_response());
        }
        let fields = Params::parse(&body)
            .map_err(|e| PageError::from(e).into_response())?
            .into_map();
        Ok(PostedForm { browser, fields })
    }
}

/// A form from one of this provider's pages, its anti-forgery token
/// checked.
pub struct BrowserForm {
    pub browser: Browser,
    pub fields: BTreeMap<String, String>,
}

impl BrowserForm {
    /// The field `name`, if sent (and not empty).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

impl FromRequest<AppState> for BrowserForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let posted = PostedForm::from_request(req, state).await?;
        posted
            .check_csrf(state)
            .map_err(IntoResponse::into_response)?;
        Ok(BrowserForm {
            browser: posted.browser,
            fields: posted.fields,
        })
    }
}
