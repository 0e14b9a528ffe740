//! Forms that cannot be forged or altered.
//!
//! - Anti-forgery (signed double submit): the browser gets a random
//!   `rsp_csrf` cookie (`HttpOnly`, `SameSite=Lax`, the tenant's path);
//!   each form carries `csrf_token`, an HMAC of the cookie and the tenant
//!   under a KEK-derived key. A POST is accepted only when the token
//!   matches the cookie (constant-time compare; every form of these pages
//!   is read through [`crate::oidc::browser_form`]): another site can neither
//!   read the cookie nor make a matching token, and a cookie planted from a
//!   sibling domain does not come with a valid token.
//! - Sealed state ([`seal`] / [`unseal`]): what a form must carry to its
//!   next step (the validated authorization request, the user who passed
//!   the password step, the session a consent was shown to) travels in a
//!   hidden field as JSON with an expiry, under an HMAC bound to the
//!   tenant and the step. Every node shares the KEK, so the next step can
//!   land on any node, and nothing is written for a page view.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::oidc::browser_session::Browser;
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::crypto::{CryptoError, HashKey, b64url, b64url_decode, random_token};

pub const CSRF_COOKIE: &str = "rsp_csrf";
pub const CSRF_FIELD: &str = "csrf_token";
const CSRF_LABEL: &str = "rsp browser csrf v1";
const SEAL_LABEL: &str = "rsp browser forms v1";
/// Length of the cookie's random value (32 bytes, base64url).
const SEED_CHARS: usize = 43;

/// The KEK-derived key for `label` (a node without its KEK yet: 503).
pub(crate) fn key(state: &AppState, label: &str) -> Result<HashKey, PageError> {
    state.identity.kek.derive(label).map_err(|e| match e {
        CryptoError::NoKek => PageError::unavailable("This node is not ready yet.", None),
        other => PageError::internal(other),
    })
}

/// A cookie value shaped like ours: 32 random bytes in base64url.
pub(crate) fn shaped(seed: &str) -> bool {
    seed.len() == SEED_CHARS
        && seed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The anti-forgery token of a page being rendered.
pub struct Csrf {
    token: String,
    /// Set when the browser had no usable cookie yet.
    set_cookie: Option<String>,
}

impl Csrf {
    /// The token for the browser's cookie, making a cookie if it has none.
    pub fn for_page(state: &AppState, browser: &Browser) -> Result<Csrf, PageError> {
        let (seed, set_cookie) = match browser.cookie(CSRF_COOKIE).filter(|s| shaped(s)) {
            Some(seed) => (seed.to_string(), None),
            None => {
                let seed = random_token(32);
                let cookie = browser.set_cookie(CSRF_COOKIE, &seed, None);
                (seed, Some(cookie))
            }
        };
        let token = key(state, CSRF_LABEL)?.hash(bound(browser, &seed).as_bytes());
        Ok(Csrf { token, set_cookie })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Attach the cookie to `page` if it is new.
    pub fn apply(&self, page: Page) -> Page {
        match &self.set_cookie {
            Some(c) => page.cookie(c.clone()),
            None => page,
        }
    }

    /// Check a submitted form's token against the browser's cookie.
    pub fn verify(
        state: &AppState,
        browser: &Browser,
        presented: Option<&str>,
    ) -> Result<(), PageError> {
        let (Some(seed), Some(presented)) =
            (browser.cookie(CSRF_COOKIE).filter(|s| shaped(s)), presented)
        else {
            return Err(PageError::forged());
        };
        if key(state, CSRF_LABEL)?.verify(bound(browser, seed).as_bytes(), presented) {
            Ok(())
        } else {
            Err(PageError::forged())
        }
    }
}

fn bound(browser: &Browser, seed: &str) -> String {
    format!("{}\n{seed}", browser.tenant.id)
}

#[derive(Serialize, serde::Deserialize)]
struct Envelope<T> {
    v: T,
    exp: u64,
}

/// `value` as a hidden-field string for step `purpose`, valid for the
/// configured form lifetime.
pub fn seal<T: Serialize>(
    state: &AppState,
    browser: &Browser,
    purpose: &str,
    value: &T,
) -> Result<String, PageError> {
    let exp = state.clock().now_secs() + state.tenant_runtime.config.form_ttl.as_secs();
    seal_until(state, browser, purpose, value, exp)
}

/// [`seal`], valid until `exp` (seconds since the epoch) instead: for
/// state whose lifetime is its own, however often a page shows it again.
pub fn seal_until<T: Serialize>(
    state: &AppState,
    browser: &Browser,
    purpose: &str,
    value: &T,
    exp: u64,
) -> Result<String, PageError> {
    let json = serde_json::to_vec(&Envelope { v: value, exp }).map_err(PageError::internal)?;
    let body = b64url(&json);
    let tag = key(state, SEAL_LABEL)?.hash(sealed_input(browser, purpose, &body).as_bytes());
    Ok(format!("{body}.{tag}"))
}

/// The value sealed by [`seal`] for `purpose`, if untouched and unexpired.
pub fn unseal<T: DeserializeOwned>(
    state: &AppState,
    browser: &Browser,
    purpose: &str,
    text: Option<&str>,
) -> Result<T, PageError> {
    let expired = || {
        PageError::bad_request(
            "This sign-in page expired or was altered. Start again from the application.",
        )
    };
    let (body, tag) = text.and_then(|t| t.split_once('.')).ok_or_else(expired)?;
    if !key(state, SEAL_LABEL)?.verify(sealed_input(browser, purpose, body).as_bytes(), tag) {
        return Err(expired());
    }
    let json = b64url_decode(body).ok_or_else(expired)?;
    let envelope: Envelope<T> = serde_json::from_slice(&json).map_err(|_| expired())?;
    if envelope.exp <= state.clock().now_secs() {
        return Err(expired());
    }
    Ok(envelope.v)
}

fn sealed_input(browser: &Browser, purpose: &str, body: &str) -> String {
    format!("{}\n{purpose}\n{body}", browser.tenant.id)
}
