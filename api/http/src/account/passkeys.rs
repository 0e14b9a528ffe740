//! `GET|POST {issuer}/account/passkeys`: a signed-in user's passkeys and
//! security keys — list them, add one (a WebAuthn registration ceremony,
//! with a name), and remove one. Without a session the browser is sent to
//! `{issuer}/account` (its login form leads back there); adding or
//! removing needs a recent sign-in ([`crate::account::RECENT_AUTH`], else
//! the password again through [`crate::account::reauth`]). A ceremony is bound to the browser's
//! session and anti-forgery cookie and used once.
//!
//! The form fields: `csrf_token`, `action` (`add` with `name`, `finish`
//! with `ceremony` and the browser's `credential`, `delete` with `id`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;

use crate::account::reauth::{self, Next};
use crate::account::signed_in::{SignedIn, SignedInForm, ToAccount};
use crate::account::{base, date, is_recent};
use crate::oidc::browser_session::{ActiveSession, Browser};
use crate::oidc::csrf::Csrf;
use crate::oidc::pages::templates::PasskeyPage;
use crate::oidc::pages::{Page, PageError};
use crate::oidc::passkey_ceremony::{binding, ceremony_page, failure, passkeys, start_error};
use crate::state::AppState;
use rsp_identity::webauthn::{PasskeyError, PasskeyInfo};

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

fn line(p: &PasskeyInfo) -> PasskeyLine {
    PasskeyLine {
        id: p.id.clone(),
        name: p.name.clone(),
        created: date(p.created_at_ms),
        last_used: p.last_used_ms.map(date).unwrap_or_else(|| "never".into()),
        kind: if p.kind_detail == "security_key" {
            "security key, second factor only"
        } else {
            "passkey"
        },
    }
}

fn action_path(browser: &Browser) -> String {
    format!("{}/passkeys", base(browser))
}

async fn list_page(
    state: &AppState,
    browser: &Browser,
    session: &ActiveSession,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let list = passkeys(state)
        .list(&browser.tenant.id, &session.user.id)
        .await
        .map_err(start_error)?;
    let csrf = Csrf::for_page(state, browser)?;
    let action = action_path(browser);
    let account = base(browser);
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

/// `GET {issuer}/account/passkeys` (no session: to `{issuer}/account`,
/// where the sign-in returns).
pub async fn get(
    State(state): State<AppState>,
    SignedIn {
        browser, session, ..
    }: SignedIn<ToAccount>,
) -> Result<Page, PageError> {
    list_page(&state, &browser, &session, None, None, StatusCode::OK).await
}

fn ceremony_step(session: &ActiveSession) -> String {
    format!("register\n{}", session.handle())
}

/// `POST {issuer}/account/passkeys`.
pub async fn post(
    State(state): State<AppState>,
    form: SignedInForm<ToAccount>,
) -> Result<Page, PageError> {
    let SignedIn {
        browser, session, ..
    } = &form.signed_in;
    let field = |name: &str| form.field(name);
    if !is_recent(&state, session) {
        return reauth::page(
            &state,
            browser,
            session,
            Next::Passkeys,
            None,
            StatusCode::OK,
        );
    }
    let tenant = &browser.tenant.id;
    match field("action") {
        "add" => {
            let security_key = field("kind") == "security_key";
            let bound = binding(&state, browser, &ceremony_step(session))?;
            let started = passkeys(&state)
                .start_registration(
                    tenant,
                    &browser.tenant.issuer,
                    &session.user.id,
                    &session.user.username,
                    field("name"),
                    security_key,
                    &bound,
                    state.clock().now_ms(),
                )
                .await;
            let (ceremony, options) = match started {
                Ok(s) => s,
                Err(PasskeyError::Invalid(m)) => {
                    return list_page(
                        &state,
                        browser,
                        session,
                        None,
                        Some(&m),
                        StatusCode::BAD_REQUEST,
                    )
                    .await;
                }
                Err(e) => return Err(start_error(e)),
            };
            let options = serde_json::to_string(&options).map_err(PageError::internal)?;
            let action = action_path(browser);
            ceremony_page(
                &state,
                browser,
                StatusCode::OK,
                PasskeyPage {
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
                    csrf: "",
                    ceremony: &ceremony,
                    fields: vec![("action", "finish")],
                    error: None,
                    totp_ticket: None,
                    login_action: "",
                    back: Some(&action),
                    nonce: "",
                },
                None,
            )
        }
        "finish" => {
            let bound = binding(&state, browser, &ceremony_step(session))?;
            let outcome = match serde_json::from_str(field("credential")) {
                Ok(response) => {
                    passkeys(&state)
                        .finish_registration(
                            tenant,
                            &browser.tenant.issuer,
                            &session.user.id,
                            field("ceremony"),
                            &bound,
                            &response,
                            state.clock().now_ms(),
                        )
                        .await
                }
                Err(e) => Err(PasskeyError::Rejected(e.to_string())),
            };
            match outcome {
                Ok(info) => {
                    tracing::info!(tenant = %tenant, user = %session.user.id, passkey = %info.id, "passkey registered");
                    super::audit_own(
                        &state,
                        browser,
                        &session.user.id,
                        "mfa.enrolled",
                        &[("factor", "passkey"), ("passkey", &info.id)],
                    );
                    state.metrics.mfa_enrolment(tenant, "passkey");
                    let notice = format!("Passkey \u{201c}{}\u{201d} added.", info.name);
                    list_page(
                        &state,
                        browser,
                        session,
                        Some(&notice),
                        None,
                        StatusCode::OK,
                    )
                    .await
                }
                Err(e) => {
                    let message = failure(e)?;
                    list_page(
                        &state,
                        browser,
                        session,
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
                        browser,
                        session,
                        Some("Passkey removed."),
                        None,
                        StatusCode::OK,
                    )
                    .await
                }
                Err(PasskeyError::NotFound) => {
                    list_page(
                        &state,
                        browser,
                        session,
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
