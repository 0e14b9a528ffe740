//! The sign-in's guards against guessing, as every password and factor
//! step uses them:
//!
//! - sign-in forms are rate limited per client address
//!   ([`rate_limited_actors`]: this node's share of the cluster-wide
//!   `login` rule);
//! - each attempt at an account's secret (password, TOTP or recovery
//!   code, passkey assertion, the password again on the account pages) is
//!   reserved through the cluster-wide lockout before the secret is
//!   checked ([`begin_attempt`], keyed by [`lockout_key`]); a locked
//!   account gets [`LOCKED`] and no check, at every step;
//! - a wrong secret counts ([`wrong_secret`], through
//!   [`AttemptGuard::failed`]; the failure that locks the account is
//!   counted in `rsp_lockouts_total`); a right one that
//!   another step follows (the password before a second factor), or a
//!   check that could not be made, hands the attempt back and clears
//!   nothing ([`AttemptGuard::released`]); only a sign-in that passed every
//!   step clears the account's failures ([`AttemptGuard::succeeded`]).
//!   So a right password does not buy more guesses at the second factor.
//!
//! Unknown users, disabled users and wrong passwords all get
//! [`BAD_CREDENTIALS`].

use std::time::Duration;

use axum::http::StatusCode;
use rsp_actors::{ActorError, AttemptGuard, KIND_LOGIN, LockoutPolicy, TenantHandle};
use rsp_identity::audit::{Draft, Outcome};
use rsp_identity::tenants::TenantSettings;

use crate::metrics::LoginResult;
use crate::oidc::browser_session::Browser;
use crate::oidc::pages::PageError;
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;

pub const BAD_CREDENTIALS: &str = "Invalid username or password.";
pub const LOCKED: &str =
    "Too many failed sign-in attempts: this account is locked for now. Try again later.";
/// The `Retry-After` of a page that says the account is locked.
pub const LOCKED_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The lockout key of a login name: unknown names are counted too, so the
/// path (and its timing) does not reveal whether a user exists.
pub fn lockout_key(username: &str) -> String {
    format!("login:{}", username.to_lowercase())
}

/// The tenant's actors for a posted sign-in form, once the browser's
/// address is within the sign-in rate limit.
pub async fn rate_limited_actors(
    state: &AppState,
    browser: &Browser,
) -> Result<TenantHandle, PageError> {
    let actors = state.tenant_runtime.tenant(&browser.tenant.id).await?;
    if let Some(ip) = browser.client_ip {
        actors
            .rate_limits()
            .check(KIND_LOGIN, &ip.to_string())
            .await?;
    }
    Ok(actors)
}

/// Reserve an attempt at `username`'s secret: report it with
/// [`AttemptGuard::failed`] or [`AttemptGuard::succeeded`]. `None`: the
/// account is locked, and nothing may be checked.
pub async fn begin_attempt(
    actors: &TenantHandle,
    tenant: &TenantCtx,
    username: &str,
) -> Result<Option<AttemptGuard>, PageError> {
    let policy = lockout_policy(actors, &tenant.settings);
    match actors
        .lockout()
        .begin_attempt_with(&lockout_key(username), policy)
        .await
    {
        Ok(attempt) => Ok(Some(attempt)),
        Err(ActorError::Locked { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The tenant's lockout: its settings, or the node's defaults.
pub fn lockout_policy(actors: &TenantHandle, settings: &TenantSettings) -> LockoutPolicy {
    let default = actors.lockout().defaults();
    LockoutPolicy {
        max_failures: settings.lockout_threshold.unwrap_or(default.max_failures),
        window: settings
            .lockout_window_secs
            .map_or(default.window, Duration::from_secs),
        lockout: settings
            .lockout_duration_secs
            .map_or(default.lockout, Duration::from_secs),
    }
}

/// `attempt`'s secret was wrong: count it against the account, count the
/// lock it may start, and, at a sign-in step, the failed sign-in as
/// `login` says (`None` for the password asked again on the account pages).
/// The failure and the lock are audited (`login.failed`, `user.locked`),
/// naming `username`, never the secret.
pub async fn wrong_secret(
    state: &AppState,
    browser: &Browser,
    username: &str,
    attempt: AttemptGuard,
    login: Option<LoginResult>,
) -> Result<(), PageError> {
    let locked = attempt.failed().await?;
    if let Some(result) = login {
        login_failed(state, browser, username, result);
    }
    if locked {
        let tenant = &browser.tenant.id;
        state.metrics.lockout(tenant);
        state.identity.audit.record(
            Draft::new(Some(tenant), "user.locked", "anonymous", Outcome::Failure)
                .ip(browser.client_ip)
                .detail("username", username),
        );
    }
    Ok(())
}

/// A sign-in step failed with `result`: counted, and audited as
/// `login.failed` with the address and the name tried.
pub fn login_failed(state: &AppState, browser: &Browser, username: &str, result: LoginResult) {
    let tenant = &browser.tenant.id;
    state.metrics.login(tenant, result);
    state.identity.audit.record(
        Draft::new(Some(tenant), "login.failed", "anonymous", Outcome::Failure)
            .ip(browser.client_ip)
            .detail("username", username)
            .detail("reason", result.as_str()),
    );
}

/// The answer of a step that has no form of its own to show [`LOCKED`]
/// on: 429 with `Retry-After`, like the login form's.
pub fn locked() -> PageError {
    PageError {
        retry_after: Some(LOCKED_RETRY_AFTER),
        ..PageError::new(StatusCode::TOO_MANY_REQUESTS, "account_locked", LOCKED)
    }
}
