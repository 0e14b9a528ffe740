//! What every passkey (WebAuthn) page shares, on the login pages
//! ([`crate::oidc::passkeys`]) and the account pages
//! ([`crate::account::passkeys`]): the ceremony service, the binding of a
//! ceremony to this browser and step, the page that runs it
//! ([`ceremony_page`]: one small inline script allowed by a CSP nonce),
//! and how ceremony failures are shown.
//!
//! Every ceremony is bound to the browser's anti-forgery cookie and the
//! step, lives five minutes and is used once ([`rsp_identity::webauthn`]).

use axum::http::StatusCode;

use crate::oidc::browser_session::Browser;
use crate::oidc::csrf::{Csrf, seed};
use crate::oidc::pages::templates::PasskeyPage;
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::crypto::{CryptoError, random_token};
use rsp_identity::webauthn::{PasskeyError, PasskeyService};

const BINDING_LABEL: &str = "rsp passkey ceremony v1";

pub fn passkeys(state: &AppState) -> PasskeyService {
    PasskeyService::new(state.consensus.clone())
}

/// The ceremony binding of this browser for `step`: a keyed hash of the
/// anti-forgery cookie (checked on every POST of these pages), tenant and
/// step.
pub fn binding(state: &AppState, browser: &Browser, step: &str) -> Result<String, PageError> {
    let seed = seed(state, browser)?.ok_or_else(PageError::forged)?;
    let key = state
        .identity
        .kek
        .derive(BINDING_LABEL)
        .map_err(|e| match e {
            CryptoError::NoKek => PageError::unavailable("This node is not ready yet.", None),
            other => PageError::internal(other),
        })?;
    Ok(key.hash(format!("{}\n{step}\n{seed}", browser.tenant.id).as_bytes()))
}

/// `page` with this browser's anti-forgery token and a fresh nonce for its
/// inline script; its form may lead (through a redirect) to
/// `form_target`.
pub fn ceremony_page(
    state: &AppState,
    browser: &Browser,
    status: StatusCode,
    page: PasskeyPage<'_>,
    form_target: Option<&str>,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, browser)?;
    let nonce = random_token(18);
    let rendered = Page::render(
        status,
        &PasskeyPage {
            csrf: csrf.token(),
            nonce: &nonce,
            ..page
        },
    )
    .script_nonce(&nonce);
    let rendered = match form_target {
        Some(uri) => rendered.form_target(uri),
        None => rendered,
    };
    Ok(csrf.apply(rendered))
}

/// Store failures become pages; ceremony failures become a message on
/// the page, shown again with a new challenge.
pub fn failure(e: PasskeyError) -> Result<&'static str, PageError> {
    Ok(match e {
        PasskeyError::Consensus(c) => return Err(c.into()),
        PasskeyError::Corrupt(d) => return Err(PageError::internal(d)),
        PasskeyError::NotConfigured => {
            return Err(PageError::new(
                StatusCode::NOT_IMPLEMENTED,
                "passkeys_unavailable",
                "Passkeys need this server to be reached by a domain name (not an IP address). Sign in with your password instead.",
            ));
        }
        PasskeyError::CeremonyExpired => "That passkey request expired. Try again.",
        PasskeyError::ClonedAuthenticator => {
            tracing::warn!(
                "passkey refused: its signature counter went backwards (cloned authenticator?)"
            );
            "This passkey was refused. Use another one or contact your administrator."
        }
        PasskeyError::UnknownCredential => "This passkey is not registered for an account here.",
        PasskeyError::AlreadyRegistered => "This passkey is already registered.",
        PasskeyError::Invalid(_) | PasskeyError::NotFound | PasskeyError::Rejected(_) => {
            tracing::info!(error = %e, "passkey ceremony failed");
            "The passkey could not be verified. Try again."
        }
    })
}

/// A failure before any answer: always a page.
pub fn start_error(e: PasskeyError) -> PageError {
    match failure(e) {
        Ok(message) => PageError::bad_request(message),
        Err(page) => page,
    }
}
