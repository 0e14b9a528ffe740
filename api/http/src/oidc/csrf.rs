//! Forms that cannot be forged or altered.
//!
//! - Anti-forgery: each form carries `csrf_token`, an HMAC under a
//!   KEK-derived key of the tenant and something the server issued to
//!   this browser and only it holds:
//!   - the rsp session's id (the session cookie) when the browser has one:
//!     another site can neither read it nor make a matching token, and a
//!     cookie planted from a sibling domain does not come with one;
//!   - before sign-in, the `rsp_csrf` cookie: a random nonce the server
//!     sealed with an expiry under its key (`nonce.exp.tag`), so a value
//!     the server did not issue, or issued more than [`SEED_LIFETIME`]
//!     ago, is worth nothing.
//!
//!   A POST is accepted only when the token matches (constant-time
//!   compare; every form of these pages is read through
//!   [`crate::oidc::browser_form`]). On https the cookies are `__Host-`
//!   cookies ([`crate::oidc::browser_session`]), which a sibling domain
//!   cannot set; a request with two cookies of one name (one planted over
//!   plain http) is refused rather than guessed at.
//! - Sealed state ([`seal`] / [`unseal`]): what a form must carry to its
//!   next step (the validated authorization request, the user who passed
//!   the password step, the session a consent was shown to) travels in a
//!   hidden field as JSON with an expiry, under an HMAC bound to the
//!   tenant and the step. Every node shares the KEK, so the next step can
//!   land on any node, and nothing is written for a page view.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::oidc::browser_session::{Browser, SESSION_COOKIE};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::crypto::{CryptoError, HashKey, b64url, b64url_decode, random_token};

pub const CSRF_COOKIE: &str = "rsp_csrf";
pub const CSRF_FIELD: &str = "csrf_token";
const CSRF_LABEL: &str = "rsp browser csrf v2";
const SEED_LABEL: &str = "rsp browser csrf seed v1";
const SEAL_LABEL: &str = "rsp browser forms v1";
/// Length of the seed's random nonce (32 bytes, base64url).
const NONCE_CHARS: usize = 43;
/// How long a pre-session seed is honoured after the server issued it.
pub const SEED_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The KEK-derived key for `label` (a node without its KEK yet: 503).
pub(crate) fn key(state: &AppState, label: &str) -> Result<HashKey, PageError> {
    state.identity.kek.derive(label).map_err(|e| match e {
        CryptoError::NoKek => PageError::unavailable("This node is not ready yet.", None),
        other => PageError::internal(other),
    })
}

/// The browser's `rsp_csrf` seed, if it is one this server sealed for this
/// tenant and it is not expired.
pub(crate) fn seed<'a>(
    state: &AppState,
    browser: &'a Browser,
) -> Result<Option<&'a str>, PageError> {
    Ok(seed_expiry(state, browser)?.map(|(seed, _)| seed))
}

/// [`seed`] and its expiry (seconds since the epoch).
fn seed_expiry<'a>(
    state: &AppState,
    browser: &'a Browser,
) -> Result<Option<(&'a str, u64)>, PageError> {
    let Some(value) = browser.cookie(CSRF_COOKIE) else {
        return Ok(None);
    };
    let mut parts = value.splitn(3, '.');
    let (Some(nonce), Some(exp), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    let shaped = nonce.len() == NONCE_CHARS
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let Some(exp) = exp.parse::<u64>().ok().filter(|_| shaped) else {
        return Ok(None);
    };
    let sealed = seed_input(browser, nonce, exp);
    if !key(state, SEED_LABEL)?.verify(sealed.as_bytes(), tag) || exp <= state.clock().now_secs() {
        return Ok(None);
    }
    Ok(Some((value, exp)))
}

fn seed_input(browser: &Browser, nonce: &str, exp: u64) -> String {
    format!("{}\n{nonce}\n{exp}", browser.tenant.id)
}

/// What the token of this browser's forms is bound to: its session
/// cookie if it sent one (two of them: refused), else its sealed seed.
fn binding(state: &AppState, browser: &Browser) -> Result<Option<String>, PageError> {
    if browser.sent_cookie(SESSION_COOKIE) {
        let session = browser
            .cookie(SESSION_COOKIE)
            .ok_or_else(PageError::forged)?;
        return Ok(Some(format!("session\n{}\n{session}", browser.tenant.id)));
    }
    Ok(seed(state, browser)?.map(|seed| format!("seed\n{}\n{seed}", browser.tenant.id)))
}

/// The anti-forgery token of a page being rendered.
pub struct Csrf {
    token: String,
    /// Set when the browser had no usable seed yet (or it is about to
    /// expire).
    set_cookie: Option<String>,
}

impl Csrf {
    /// The token for this browser, making it a seed if it has none that
    /// outlives the form.
    pub fn for_page(state: &AppState, browser: &Browser) -> Result<Csrf, PageError> {
        let now = state.clock().now_secs();
        let form_ttl = state.tenant_runtime.config.form_ttl.as_secs();
        let fresh = match seed_expiry(state, browser)? {
            Some((_, exp)) if exp > now + form_ttl => None,
            _ => {
                let nonce = random_token(32);
                let exp = now + SEED_LIFETIME.as_secs();
                let tag = key(state, SEED_LABEL)?.hash(seed_input(browser, &nonce, exp).as_bytes());
                Some(format!("{nonce}.{exp}.{tag}"))
            }
        };
        let (set_cookie, bound_browser) = match &fresh {
            Some(seed) => (
                Some(browser.set_cookie(CSRF_COOKIE, seed, None)),
                browser.with_cookie(CSRF_COOKIE, seed),
            ),
            None => (None, browser.clone()),
        };
        let bound = binding(state, &bound_browser)?.ok_or_else(PageError::forged)?;
        let token = key(state, CSRF_LABEL)?.hash(bound.as_bytes());
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

    /// Check a submitted form's token against what this browser holds.
    pub fn verify(
        state: &AppState,
        browser: &Browser,
        presented: Option<&str>,
    ) -> Result<(), PageError> {
        let (Some(bound), Some(presented)) = (binding(state, browser)?, presented) else {
            return Err(PageError::forged());
        };
        if key(state, CSRF_LABEL)?.verify(bound.as_bytes(), presented) {
            Ok(())
        } else {
            Err(PageError::forged())
        }
    }
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
