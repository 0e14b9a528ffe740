//! Signing in with a passkey (WebAuthn), on the login pages:
//!
//! - `POST {issuer}/passkey/login`: "Sign in with a passkey" on the login
//!   page (its `csrf_token` and sealed `flow`) starts a passwordless
//!   ceremony (discoverable credentials, user verification required) and
//!   shows the page that calls `navigator.credentials.get`; that page posts
//!   the answer back here. Success: `amr` `["hwk", "user"]`, `acr`
//!   `urn:rsp:acr:mfa` (something the user has, unlocked by something they
//!   know or are).
//! - `POST {issuer}/passkey/verify`: the second factor after the password
//!   for a user with passkeys ([`second_factor`] renders the page for
//!   [`crate::oidc::login`]). User verification is preferred, not required.
//!   Success: `amr` `["pwd", "hwk"]` (plus `user` when the authenticator
//!   verified the user), `acr` `urn:rsp:acr:mfa`. A failed assertion counts
//!   towards the cluster-wide lockout, like a wrong TOTP code.
//!
//! The pages carry one small inline script (allowed by a CSP nonce) that
//! converts base64url fields, calls the browser and posts the JSON answer
//! in a hidden field with the anti-forgery token. Every ceremony is bound
//! to the browser's anti-forgery cookie and the step, lives five minutes
//! and is used once ([`rsp_identity::webauthn`]). The password and TOTP
//! forms work without JavaScript; only these pages need it.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rsp_actors::{ActorError, TenantHandle};
use serde::{Deserialize, Serialize};

use crate::oidc::browser_session::Browser;
use crate::oidc::csrf::{CSRF_COOKIE, CSRF_FIELD, Csrf, seal, unseal};
use crate::oidc::http::{Params, is_form};
use crate::oidc::login::{LOCKED, finish, lockout_key};
use crate::oidc::login_page::{Continuation, LOGIN_FLOW};
use crate::oidc::mfa::ACR_MFA;
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::crypto::{CryptoError, random_token};
use rsp_identity::webauthn::{PasskeyError, PasskeyService};

const BINDING_LABEL: &str = "rsp passkey ceremony v1";
const PASSKEY_TICKET: &str = "passkey-mfa";

/// The page that runs a WebAuthn ceremony in the browser.
#[derive(Template)]
#[template(path = "passkey.html")]
pub struct PasskeyPage<'a> {
    pub title: &'a str,
    pub intro: &'a str,
    pub button: &'a str,
    /// `create` (registration) or `get` (assertion).
    pub mode: &'a str,
    pub action: &'a str,
    /// The options for `navigator.credentials`, JSON.
    pub options: &'a str,
    pub csrf: &'a str,
    pub ceremony: &'a str,
    /// Hidden fields carried to the next step (`flow`, `ticket`).
    pub fields: Vec<(&'a str, &'a str)>,
    pub error: Option<&'a str>,
    /// A sealed TOTP ticket: the page also offers the TOTP form...
    pub totp_ticket: Option<&'a str>,
    /// ... posted to the login endpoint (`/t/{tenant}/login`).
    pub login_action: &'a str,
    /// A link back (the account page).
    pub back: Option<&'a str>,
    pub nonce: &'a str,
}

/// Who passed the password step, and where the login leads.
#[derive(Serialize, Deserialize)]
struct PasskeyTicket {
    user_id: String,
    username: String,
    flow: Continuation,
    /// The TOTP form's ticket, when the user also has TOTP.
    totp: Option<String>,
}

pub fn passkeys(state: &AppState) -> PasskeyService {
    PasskeyService::new(state.consensus.clone())
}

/// The ceremony binding of this browser for `step`: a keyed hash of the
/// anti-forgery cookie (checked on every POST here), tenant and step.
pub fn binding(state: &AppState, b: &Browser, step: &str) -> Result<String, PageError> {
    let seed = b.cookie(CSRF_COOKIE).ok_or_else(PageError::forged)?;
    let key = state
        .identity
        .kek
        .derive(BINDING_LABEL)
        .map_err(|e| match e {
            CryptoError::NoKek => PageError::unavailable("This node is not ready yet.", None),
            other => PageError::internal(other),
        })?;
    Ok(key.hash(format!("{}\n{step}\n{seed}", b.tenant.id).as_bytes()))
}

/// A fresh nonce for the page's inline script.
pub fn nonce() -> String {
    random_token(18)
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

fn redirect_uri(flow: &Continuation) -> Option<&str> {
    match flow {
        Continuation::Authorize { params } => params.get("redirect_uri").map(String::as_str),
        _ => None,
    }
}

fn path(b: &Browser, rest: &str) -> String {
    format!("/t/{}/{rest}", b.tenant.id)
}

/// The form of a POST to one of these pages, its CSRF token checked.
async fn form_of(
    state: &AppState,
    b: &Browser,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(BTreeMap<String, String>, TenantHandle), PageError> {
    if !is_form(headers) {
        return Err(PageError::bad_request("The form was not sent as a form."));
    }
    let form = Params::parse(body)?.into_map();
    Csrf::verify(state, b, form.get(CSRF_FIELD).map(String::as_str))?;
    let h = state.browser.tenant(&b.tenant.id).await?;
    if let Some(ip) = b.client_ip {
        h.rate_limits().check("login", &ip.to_string()).await?;
    }
    Ok((form, h))
}

fn answer(form: &BTreeMap<String, String>) -> Option<(&str, &str)> {
    let ceremony = form.get("ceremony").filter(|c| !c.is_empty())?;
    let credential = form.get("credential").filter(|c| !c.is_empty())?;
    Some((ceremony, credential))
}

/// `POST {issuer}/passkey/login`: start (from the login page) or finish a
/// passwordless sign-in.
pub async fn login(
    State(state): State<AppState>,
    b: Browser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, PageError> {
    let (form, h) = form_of(&state, &b, &headers, &body).await?;
    let sealed_flow = form.get("flow").cloned().unwrap_or_default();
    let flow: Continuation = unseal(&state, &b, LOGIN_FLOW, Some(&sealed_flow))?;
    let bound = binding(&state, &b, "login")?;
    let mut error = None;
    if let Some((ceremony, credential)) = answer(&form) {
        let outcome = match serde_json::from_str(credential) {
            Ok(response) => {
                passkeys(&state)
                    .finish_passwordless(
                        &b.tenant.id,
                        &b.tenant.issuer,
                        ceremony,
                        &bound,
                        &response,
                        state.clock().now_ms(),
                    )
                    .await
            }
            Err(e) => Err(PasskeyError::Rejected(e.to_string())),
        };
        match outcome {
            Ok(v) => {
                let user = state
                    .oidc
                    .tokens
                    .load_user(&b.tenant.id, &v.user_id)
                    .await?
                    .filter(|u| !u.disabled)
                    .ok_or_else(|| PageError::bad_request("This account cannot sign in."))?;
                return finish(&state, &b, &h, user, &["hwk", "user"], ACR_MFA, flow).await;
            }
            Err(e) => error = Some(failure(e)?),
        }
    }
    let (ceremony, options) = passkeys(&state)
        .start_passwordless(
            &b.tenant.id,
            &b.tenant.issuer,
            &bound,
            state.clock().now_ms(),
        )
        .await
        .map_err(start_error)?;
    let options = serde_json::to_string(&options).map_err(PageError::internal)?;
    let csrf = Csrf::for_page(&state, &b)?;
    let action = path(&b, "passkey/login");
    let nonce = nonce();
    let page = Page::render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &PasskeyPage {
            title: "Sign in with a passkey",
            intro: "Use the passkey saved on this device, your phone or a security key.",
            button: "Use a passkey",
            mode: "get",
            action: &action,
            options: &options,
            csrf: csrf.token(),
            ceremony: &ceremony,
            fields: vec![("flow", &sealed_flow)],
            error,
            totp_ticket: None,
            login_action: "",
            back: None,
            nonce: &nonce,
        },
    )
    .script_nonce(&nonce);
    let page = match redirect_uri(&flow) {
        Some(uri) => page.form_target(uri),
        None => page,
    };
    Ok(csrf.apply(page))
}

/// The second-factor page for a user who passed the password step, when
/// the user has passkeys; `None` otherwise. `totp_ticket` (sealed by the
/// login page) adds the TOTP form for users who have both.
pub async fn second_factor(
    state: &AppState,
    b: &Browser,
    user_id: &str,
    username: &str,
    flow: &Continuation,
    totp_ticket: Option<String>,
) -> Result<Option<Page>, PageError> {
    let has = passkeys(state)
        .has_passkeys(&b.tenant.id, user_id)
        .await
        .map_err(start_error)?;
    if !has {
        return Ok(None);
    }
    let ticket = PasskeyTicket {
        user_id: user_id.to_string(),
        username: username.to_string(),
        flow: flow.clone(),
        totp: totp_ticket,
    };
    second_factor_page(state, b, &ticket, None, StatusCode::OK)
        .await
        .map(Some)
}

async fn second_factor_page(
    state: &AppState,
    b: &Browser,
    ticket: &PasskeyTicket,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let bound = binding(state, b, &format!("mfa\n{}", ticket.user_id))?;
    let started = passkeys(state)
        .start_second_factor(
            &b.tenant.id,
            &b.tenant.issuer,
            &ticket.user_id,
            &bound,
            state.clock().now_ms(),
        )
        .await;
    let (ceremony, options) = match started {
        Ok(Some(s)) => s,
        Ok(None) => return Err(PageError::bad_request("This account has no passkey.")),
        Err(e) => return Err(start_error(e)),
    };
    let options = serde_json::to_string(&options).map_err(PageError::internal)?;
    let csrf = Csrf::for_page(state, b)?;
    let sealed = seal(state, b, PASSKEY_TICKET, ticket)?;
    let action = path(b, "passkey/verify");
    let login_action = path(b, "login");
    let nonce = nonce();
    let page = Page::render(
        status,
        &PasskeyPage {
            title: "Confirm it's you",
            intro: "Use one of your passkeys or security keys to finish signing in.",
            button: "Use a passkey",
            mode: "get",
            action: &action,
            options: &options,
            csrf: csrf.token(),
            ceremony: &ceremony,
            fields: vec![("ticket", &sealed)],
            error,
            totp_ticket: ticket.totp.as_deref(),
            login_action: &login_action,
            back: None,
            nonce: &nonce,
        },
    )
    .script_nonce(&nonce);
    let page = match redirect_uri(&ticket.flow) {
        Some(uri) => page.form_target(uri),
        None => page,
    };
    Ok(csrf.apply(page))
}

/// `POST {issuer}/passkey/verify`: the passkey answer of the second-factor
/// page.
pub async fn verify(
    State(state): State<AppState>,
    b: Browser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Page, PageError> {
    let (form, h) = form_of(&state, &b, &headers, &body).await?;
    let ticket: PasskeyTicket = unseal(
        &state,
        &b,
        PASSKEY_TICKET,
        form.get("ticket").map(String::as_str),
    )?;
    let Some((ceremony, credential)) = answer(&form) else {
        return second_factor_page(&state, &b, &ticket, None, StatusCode::OK).await;
    };
    let attempt = match h
        .lockout()
        .begin_attempt(&lockout_key(&ticket.username))
        .await
    {
        Ok(a) => a,
        Err(ActorError::Locked { .. }) => {
            return Err(PageError {
                retry_after: Some(std::time::Duration::from_secs(60)),
                ..PageError::new(StatusCode::TOO_MANY_REQUESTS, "account_locked", LOCKED)
            });
        }
        Err(e) => return Err(e.into()),
    };
    let bound = binding(&state, &b, &format!("mfa\n{}", ticket.user_id))?;
    let outcome = match serde_json::from_str(credential) {
        Ok(response) => {
            passkeys(&state)
                .finish_second_factor(
                    &b.tenant.id,
                    &b.tenant.issuer,
                    &ticket.user_id,
                    ceremony,
                    &bound,
                    &response,
                    state.clock().now_ms(),
                )
                .await
        }
        Err(e) => Err(PasskeyError::Rejected(e.to_string())),
    };
    match outcome {
        Ok(v) => {
            attempt.succeeded().await?;
            let user = state
                .oidc
                .tokens
                .load_user(&b.tenant.id, &ticket.user_id)
                .await?
                .filter(|u| !u.disabled)
                .ok_or_else(|| PageError::bad_request("This account cannot sign in."))?;
            let amr: &[&str] = if v.user_verified {
                &["pwd", "hwk", "user"]
            } else {
                &["pwd", "hwk"]
            };
            finish(&state, &b, &h, user, amr, ACR_MFA, ticket.flow).await
        }
        Err(PasskeyError::Consensus(c)) => {
            // Nothing was decided: not counted against the user.
            attempt.succeeded().await?;
            Err(c.into())
        }
        Err(e) => {
            attempt.failed().await?;
            let message = failure(e)?;
            second_factor_page(&state, &b, &ticket, Some(message), StatusCode::OK).await
        }
    }
}
