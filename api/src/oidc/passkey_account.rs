//! `GET|POST {issuer}/account/passkeys`: a signed-in user's passkeys —
//! list them, add one (a WebAuthn registration ceremony, with a name), and
//! remove one. Adding or removing needs a recent sign-in
//! ([`REAUTH_WITHIN`]); the ceremony is bound to the browser's session and
//! anti-forgery cookie and used once.
//!
//! The form fields: `csrf_token`, `action` (`add` with `name`, `finish`
//! with `ceremony` and the browser's `credential`, `delete` with `id`).

use std::time::Duration;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use crate::identity::webauthn::{PasskeyError, PasskeyInfo};
use crate::oidc::browser_session::{ActiveSession, Browser, current_session};
use crate::oidc::csrf::{CSRF_FIELD, Csrf};
use crate::oidc::http::{Params, is_form};
use crate::oidc::pages::{Page, PageError};
use crate::oidc::passkeys::{PasskeyPage, binding, failure, nonce, passkeys, start_error};
use crate::oidc::services::now_secs;
use crate::state::AppState;

/// Adding or removing a passkey needs a sign-in at most this old.
pub const REAUTH_WITHIN: Duration = Duration::from_secs(15 * 60);

/// One line of the list.
pub struct PasskeyLine {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    /// "passkey" or "security key (second factor only)".
    pub kind: &'static str,
}

#[derive(Template)]
#[template(path = "passkey_account.html")]
pub struct PasskeyAccountPage<'a> {
    pub username: &'a str,
    pub passkeys: Vec<PasskeyLine>,
    pub csrf: &'a str,
    pub action: &'a str,
    pub account: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// `YYYY-MM-DD HH:MM UTC` of a time in milliseconds since the epoch.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Gregorian, proleptic).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

fn line(p: &PasskeyInfo) -> PasskeyLine {
    PasskeyLine {
        id: p.id.clone(),
        name: p.name.clone(),
        created: utc(p.created_at_ms),
        last_used: p.last_used_ms.map(utc).unwrap_or_else(|| "never".into()),
        kind: if p.kind_detail == "security_key" {
            "security key, second factor only"
        } else {
            "passkey"
        },
    }
}

fn action_path(b: &Browser) -> String {
    format!("/t/{}/account/passkeys", b.tenant.id)
}

fn account_path(b: &Browser) -> String {
    format!("/t/{}/account", b.tenant.id)
}

async fn signed_in(state: &AppState, b: &Browser) -> Result<ActiveSession, PageError> {
    let h = state.browser.tenant(&b.tenant.id).await?;
    current_session(state, b, &h).await?.ok_or_else(|| {
        PageError::new(
            StatusCode::UNAUTHORIZED,
            "login_required",
            "Sign in to your account first.",
        )
    })
}

fn require_recent(session: &ActiveSession) -> Result<(), PageError> {
    if now_secs().saturating_sub(session.auth_time) > REAUTH_WITHIN.as_secs() {
        return Err(PageError::new(
            StatusCode::UNAUTHORIZED,
            "reauthentication_required",
            "To change your passkeys, sign out and sign in again first (your last sign-in was more than 15 minutes ago).",
        ));
    }
    Ok(())
}

async fn list_page(
    state: &AppState,
    b: &Browser,
    session: &ActiveSession,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let list = passkeys(state)
        .list(&b.tenant.id, &session.user.id)
        .await
        .map_err(start_error)?;
    let csrf = Csrf::for_page(state, b)?;
    let action = action_path(b);
    let account = account_path(b);
    let page = Page::render(
        status,
        &PasskeyAccountPage {
            username: &session.user.username,
            passkeys: list.iter().map(line).collect(),
            csrf: csrf.token(),
            action: &action,
            account: &account,
            notice,
            error,
        },
    );
    Ok(csrf.apply(page))
}

/// `GET {issuer}/account/passkeys`.
pub async fn get(State(state): State<AppState>, b: Browser) -> Result<Page, PageError> {
    let session = signed_in(&state, &b).await?;
    list_page(&state, &b, &session, None, None, StatusCode::OK).await
}

fn ceremony_step(session: &ActiveSession) -> String {
    format!("register\n{}", session.handle())
}

/// `POST {issuer}/account/passkeys`.
pub async fn post(
    State(state): State<AppState>,
    b: Browser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, PageError> {
    if !is_form(&headers) {
        return Err(PageError::bad_request("The form was not sent as a form."));
    }
    let form = Params::parse(&body)?.into_map();
    Csrf::verify(&state, &b, form.get(CSRF_FIELD).map(String::as_str))?;
    let session = signed_in(&state, &b).await?;
    require_recent(&session)?;
    let tenant = &b.tenant.id;
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    match field("action") {
        "add" => {
            let security_key = field("kind") == "security_key";
            let bound = binding(&state, &b, &ceremony_step(&session))?;
            let started = passkeys(&state)
                .start_registration(
                    tenant,
                    &b.tenant.issuer,
                    &session.user.id,
                    &session.user.username,
                    field("name"),
                    security_key,
                    &bound,
                    crate::now_ms(),
                )
                .await;
            let (ceremony, options) = match started {
                Ok(s) => s,
                Err(PasskeyError::Invalid(m)) => {
                    return list_page(
                        &state,
                        &b,
                        &session,
                        None,
                        Some(&m),
                        StatusCode::BAD_REQUEST,
                    )
                    .await;
                }
                Err(e) => return Err(start_error(e)),
            };
            let options = serde_json::to_string(&options).map_err(PageError::internal)?;
            let csrf = Csrf::for_page(&state, &b)?;
            let action = action_path(&b);
            let nonce = nonce();
            let page = Page::render(
                StatusCode::OK,
                &PasskeyPage {
                    title: if security_key {
                        "Add a security key"
                    } else {
                        "Add a passkey"
                    },
                    intro: if security_key {
                        "Touch your security key. It will confirm your password sign-ins (a second factor)."
                    } else {
                        "Create a passkey on this device, your phone or a security key. You will be asked to unlock it (PIN, fingerprint or face)."
                    },
                    button: "Continue",
                    mode: "create",
                    action: &action,
                    options: &options,
                    csrf: csrf.token(),
                    ceremony: &ceremony,
                    fields: vec![("action", "finish")],
                    error: None,
                    totp_ticket: None,
                    back: Some(&action),
                    nonce: &nonce,
                },
            )
            .script_nonce(&nonce);
            Ok(csrf.apply(page))
        }
        "finish" => {
            let bound = binding(&state, &b, &ceremony_step(&session))?;
            let outcome = match serde_json::from_str(field("credential")) {
                Ok(response) => {
                    passkeys(&state)
                        .finish_registration(
                            tenant,
                            &b.tenant.issuer,
                            &session.user.id,
                            field("ceremony"),
                            &bound,
                            &response,
                            crate::now_ms(),
                        )
                        .await
                }
                Err(e) => Err(PasskeyError::Rejected(e.to_string())),
            };
            match outcome {
                Ok(info) => {
                    tracing::info!(tenant = %tenant, user = %session.user.id, passkey = %info.id, "passkey registered");
                    let notice = format!("Passkey \u{201c}{}\u{201d} added.", info.name);
                    list_page(&state, &b, &session, Some(&notice), None, StatusCode::OK).await
                }
                Err(e) => {
                    let message = failure(e)?;
                    list_page(
                        &state,
                        &b,
                        &session,
                        None,
                        Some(message),
                        StatusCode::BAD_REQUEST,
                    )
                    .await
                }
            }
        }
        "delete" => {
            match passkeys(&state)
                .delete(tenant, &session.user.id, field("id"))
                .await
            {
                Ok(()) => {
                    tracing::info!(tenant = %tenant, user = %session.user.id, "passkey removed");
                    list_page(
                        &state,
                        &b,
                        &session,
                        Some("Passkey removed."),
                        None,
                        StatusCode::OK,
                    )
                    .await
                }
                Err(PasskeyError::NotFound) => {
                    list_page(
                        &state,
                        &b,
                        &session,
                        None,
                        Some("That passkey was already removed."),
                        StatusCode::NOT_FOUND,
                    )
                    .await
                }
                Err(e) => Err(start_error(e)),
            }
        }
        _ => Err(PageError::bad_request("Unknown action.")),
    }
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates_are_civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_000_000_000), "2026-11-18 11:06 UTC");
    }
}
