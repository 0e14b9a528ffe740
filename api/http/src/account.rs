//! Self-service account pages under each tenant's issuer, behind the
//! browser session (without one, the login form leads back here):
//!
//! - `GET {issuer}/account`: the user's second factors (remove each), how
//!   many recovery codes are left (make new ones), links to the other
//!   account pages ([`overview`]);
//! - `GET|POST {issuer}/account/mfa/totp`: set up an authenticator app — a
//!   QR code of a fresh seed, active once a first code confirms it; the
//!   first factor also brings ten recovery codes ([`totp`]);
//! - `POST {issuer}/account/mfa/remove`, `POST {issuer}/account/mfa/recovery`
//!   ([`overview`]);
//! - `POST {issuer}/account/reauth`: the password again ([`reauth`]);
//! - `GET|POST {issuer}/account/passkeys`: list, add and remove passkeys
//!   and security keys ([`passkeys`]).
//!
//! Every handler takes the browser's session through the [`signed_in`]
//! extractors (no session: the login form, which leads back here, or a
//! redirect to it); every form's anti-forgery token is checked there
//! first. Every change needs a recent sign-in ([`RECENT_AUTH`]: the
//! session's `auth_time`); an older session is asked for the password
//! first, which renews the session.

pub mod overview;
pub mod passkeys;
pub mod reauth;
pub mod signed_in;
pub mod totp;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use rsp_identity::audit::{Draft, Outcome};

use crate::oidc::browser_session::{ActiveSession, Browser};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

/// Changes to how a user signs in need a sign-in (or password check) at
/// most this old.
/// Audit a change `user_id` made to their own account on these pages
/// (`kind`, with identifiers in `details`, never a secret).
pub fn audit_own(
    state: &AppState,
    browser: &Browser,
    user_id: &str,
    kind: &str,
    details: &[(&str, &str)],
) {
    let mut draft = Draft::new(
        Some(&browser.tenant.id),
        kind,
        format!("user:{user_id}"),
        Outcome::Success,
    )
    .ip(browser.client_ip)
    .detail("user", user_id);
    for (name, value) in details {
        draft = draft.detail(name, *value);
    }
    state.identity.audit.record(draft);
}

pub const RECENT_AUTH: Duration = Duration::from_secs(15 * 60);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/account", get(overview::get))
        .route(
            "/t/{tenant}/account/mfa/totp",
            get(totp::get).post(totp::post),
        )
        .route("/t/{tenant}/account/mfa/remove", post(overview::remove))
        .route(
            "/t/{tenant}/account/mfa/recovery",
            post(overview::regenerate),
        )
        .route("/t/{tenant}/account/reauth", post(reauth::post))
        .route(
            "/t/{tenant}/account/passkeys",
            get(passkeys::get).post(passkeys::post),
        )
}

/// `/t/{tenant}/account` (the path, for links and forms).
pub fn base(browser: &Browser) -> String {
    format!("/t/{}/account", browser.tenant.id)
}

/// A redirect (after a POST) to `{issuer}/account{rest}`.
pub fn redirect(browser: &Browser, rest: &str) -> Page {
    Page::redirect(browser.tenant.endpoint(&format!("/account{rest}")), true)
}

/// A store the account pages read is unavailable: logged, and a generic
/// page (no detail leaks).
pub fn unavailable(e: impl std::fmt::Display) -> PageError {
    tracing::warn!(error = %e, "factor store unavailable on the account pages");
    PageError::unavailable(
        "This page is briefly unavailable. Try again in a moment.",
        None,
    )
}

/// Whether the user has any second factor (TOTP or a passkey): recovery
/// codes are kept only while there is one.
pub async fn has_factor(state: &AppState, tenant: &str, user: &str) -> Result<bool, PageError> {
    let enrolled = state
        .tenant_runtime
        .factors
        .enrolled(tenant, user)
        .await
        .map_err(unavailable)?;
    if !enrolled.is_empty() {
        return Ok(true);
    }
    crate::oidc::passkey_ceremony::passkeys(state)
        .has_passkeys(tenant, user)
        .await
        .map_err(unavailable)
}

/// Whether `session` signed in (or re-entered its password) recently.
pub fn is_recent(state: &AppState, session: &ActiveSession) -> bool {
    state.clock().now_secs().saturating_sub(session.auth_time) <= RECENT_AUTH.as_secs()
}

/// A civil UTC date (`YYYY-MM-DD`) of a time in milliseconds.
pub fn date(ms: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(date(1_767_225_599_000), "2025-12-31");
    }
}
