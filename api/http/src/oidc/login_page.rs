//! The login form and where it leads: [`Continuation`] (what a successful
//! sign-in goes on to: an authorization request, a SAML request, the
//! device approval page or the account pages), carried sealed in the form's `flow` field
//! ([`LOGIN_FLOW`]), and [`render_login`], the form itself, shown by the
//! authorization endpoint, the device page and the account pages, and
//! again by the login step after a wrong password.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::oidc::browser_session::Browser;
use crate::oidc::csrf::{Csrf, seal};
use crate::oidc::pages::templates::LoginPage;
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

/// Where a login form leads once the user is signed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Continuation {
    /// Finish this (validated) authorization request.
    Authorize { params: BTreeMap<String, String> },
    /// Show the device approval page for this user code.
    Device { user_code: String },
    /// Back to the self-service account pages (`{issuer}/account`).
    Account,
    /// Answer this (checked) SAML AuthnRequest.
    Saml {
        request: rsp_identity::saml::request::SsoRequest,
    },
}

impl Continuation {
    /// The client's redirect URI, where the flow ends at a client.
    pub fn redirect_uri(&self) -> Option<&str> {
        match self {
            Continuation::Authorize { params } => params.get("redirect_uri").map(String::as_str),
            Continuation::Saml { request } => Some(&request.acs_url),
            Continuation::Device { .. } | Continuation::Account => None,
        }
    }
}

/// Sealing purpose of the login form's `flow` field.
pub const LOGIN_FLOW: &str = "login";

/// Render the login form that continues with `flow`.
#[allow(clippy::too_many_arguments)]
pub fn render_login(
    state: &AppState,
    browser: &Browser,
    flow: &Continuation,
    client_name: Option<&str>,
    redirect_uri: Option<&str>,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, browser)?;
    let sealed = seal(state, browser, LOGIN_FLOW, flow)?;
    let tenant_path = format!("/t/{}", browser.tenant.id);
    let page = Page::render(
        status,
        &LoginPage {
            tenant_path: &tenant_path,
            client_name,
            csrf: csrf.token(),
            flow: &sealed,
            username,
            error,
        },
    );
    let page = match redirect_uri {
        Some(uri) => page.form_target(uri),
        None => page,
    };
    Ok(csrf.apply(page))
}
