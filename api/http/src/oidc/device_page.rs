//! The verification page of the device flow (RFC 8628 section 3.3),
//! `GET|POST {issuer}/device`: the person enters the user code shown on the
//! device (or arrives with `?user_code=` from `verification_uri_complete`),
//! signs in if needed, and approves or denies; the device's next poll
//! learns the answer ([`rsp_identity::oauth::device::DeviceService`]).
//!
//! Looking a code up changes nothing, so `GET` may do it; approving and
//! denying are `POST`s with the anti-forgery token and a sealed ticket
//! bound to the session that saw the request.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::oidc::browser_form::BrowserForm;
use crate::oidc::browser_session::{ActiveSession, Browser, current_session};
use crate::oidc::csrf::{Csrf, seal, unseal};
use crate::oidc::error::OAuthErrorCode;
use crate::oidc::login_page::{Continuation, render_login};
use crate::oidc::mfa::{self, ACR_MFA};
use crate::oidc::pages::templates::{DeviceCodePage, DeviceConfirmPage, DeviceDonePage, ScopeLine};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

const DEVICE_TICKET: &str = "device";
const UNKNOWN_CODE: &str = "That code is unknown or has expired. Check the code on your device.";

#[derive(Serialize, Deserialize)]
struct Ticket {
    user_code: String,
    sid: String,
}

#[derive(Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

fn code_page(
    state: &AppState,
    browser: &Browser,
    user_code: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, browser)?;
    let page = Page::render(
        status,
        &DeviceCodePage {
            csrf: csrf.token(),
            user_code,
            error,
        },
    );
    Ok(csrf.apply(page))
}

/// The approve/deny page for `user_code`, shown to `session`'s user.
pub async fn confirm_page(
    state: &AppState,
    browser: &Browser,
    user_code: &str,
    session: &ActiveSession,
) -> Result<Page, PageError> {
    let Some(request) = state
        .oidc
        .device
        .lookup(&browser.tenant.id, user_code)
        .await?
    else {
        return code_page(
            state,
            browser,
            user_code,
            Some(UNKNOWN_CODE),
            StatusCode::BAD_REQUEST,
        );
    };
    let client_name = match state
        .identity
        .clients
        .get(&browser.tenant.id, &request.client_id)
        .await
    {
        Ok(c) => c.client_name.unwrap_or(c.client_id),
        Err(_) => request.client_id.clone(),
    };
    let csrf = Csrf::for_page(state, browser)?;
    let ticket = seal(
        state,
        browser,
        DEVICE_TICKET,
        &Ticket {
            user_code: user_code.to_string(),
            sid: session.handle(),
        },
    )?;
    let page = Page::render(
        StatusCode::OK,
        &DeviceConfirmPage {
            client_name: &client_name,
            username: &session.user.username,
            user_code,
            scopes: ScopeLine::list(&request.scope),
            csrf: csrf.token(),
            ticket: &ticket,
        },
    );
    Ok(csrf.apply(page))
}

/// A known code: the approval page if signed in, else the login form.
/// Each code entered takes a token from the address's look-up bucket
/// ([`crate::miss_limit`], RFC 8628 section 5.1), found or not.
async fn entered(state: &AppState, browser: &Browser, user_code: &str) -> Result<Page, PageError> {
    if let Err(wait) = state.misses.take(browser.client_ip) {
        return Err(PageError {
            retry_after: Some(wait),
            ..PageError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many codes were entered from this address. Wait a moment and try again.",
            )
        });
    }
    let Some(request) = state
        .oidc
        .device
        .lookup(&browser.tenant.id, user_code)
        .await?
    else {
        return code_page(
            state,
            browser,
            user_code,
            Some(UNKNOWN_CODE),
            StatusCode::BAD_REQUEST,
        );
    };
    let actors = state.tenant_runtime.tenant(&browser.tenant.id).await?;
    let mut session = current_session(state, browser, &actors).await?;
    // A password-only session where the MFA policy now wants a second
    // factor signs in again (which asks for it, or leads to enrolment).
    if let Some(s) = &session
        && s.acr.as_deref() != Some(ACR_MFA)
        && mfa::required(
            state,
            &browser.tenant.id,
            &s.user.id,
            Some(&request.client_id),
            None,
        )
        .await?
    {
        session = None;
    }
    match session {
        Some(session) => confirm_page(state, browser, user_code, &session).await,
        None => render_login(
            state,
            browser,
            &Continuation::Device {
                user_code: user_code.to_string(),
            },
            None,
            None,
            "",
            None,
            StatusCode::OK,
        ),
    }
}

/// `GET {issuer}/device[?user_code=...]`.
pub async fn get(
    State(state): State<AppState>,
    browser: Browser,
    Query(q): Query<DeviceQuery>,
) -> Result<Page, PageError> {
    match q.user_code.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(code) => entered(&state, &browser, code.trim()).await,
        None => code_page(&state, &browser, "", None, StatusCode::OK),
    }
}

/// `POST {issuer}/device`: a code entered, or a decision on one.
pub async fn post(State(state): State<AppState>, form: BrowserForm) -> Result<Page, PageError> {
    let browser = &form.browser;
    let Some(decision) = form.field("decision") else {
        let code = form
            .field("user_code")
            .unwrap_or_default()
            .trim()
            .to_string();
        if code.is_empty() {
            return code_page(
                &state,
                browser,
                "",
                Some("Enter the code shown on your device."),
                StatusCode::BAD_REQUEST,
            );
        }
        return entered(&state, browser, &code).await;
    };
    let ticket: Ticket = unseal(&state, browser, DEVICE_TICKET, form.field("ticket"))?;
    let actors = state.tenant_runtime.tenant(&browser.tenant.id).await?;
    let session = current_session(&state, browser, &actors)
        .await?
        .filter(|s| s.handle() == ticket.sid)
        .ok_or_else(|| {
            PageError::new(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "Your session ended before you decided. Enter the code again.",
            )
        })?;
    let devices = &state.oidc.device;
    let approved = match decision {
        "allow" => {
            let result = devices
                .approve(
                    &browser.tenant.id,
                    &ticket.user_code,
                    &session.user.id,
                    session.auth_time,
                    session.amr.clone(),
                    session.acr.clone(),
                )
                .await;
            match result {
                Ok(_) => true,
                Err(e) if e.code == OAuthErrorCode::InvalidRequest => {
                    return code_page(
                        &state,
                        browser,
                        "",
                        Some(UNKNOWN_CODE),
                        StatusCode::BAD_REQUEST,
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        "deny" => {
            match devices.deny(&browser.tenant.id, &ticket.user_code).await {
                Ok(()) => {}
                Err(e) if e.code == OAuthErrorCode::InvalidRequest => {
                    return code_page(
                        &state,
                        browser,
                        "",
                        Some(UNKNOWN_CODE),
                        StatusCode::BAD_REQUEST,
                    );
                }
                Err(e) => return Err(e.into()),
            }
            false
        }
        _ => return Err(PageError::bad_request("Choose allow or deny.")),
    };
    Ok(Page::render(StatusCode::OK, &DeviceDonePage { approved }))
}
