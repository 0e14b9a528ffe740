//! Re-authentication for account changes: `POST {issuer}/account/reauth`
//! with the password (and the anti-forgery token). The attempt goes
//! through the cluster-wide lockout like a login
//! ([`crate::oidc::lockout`]); success renews the
//! session and goes on to `next`. The renewed session has a new id and
//! `auth_time` and says what was just proven: `amr` `pwd` and the password
//! `acr`, never `mfa`, since an `auth_time` of now beside `acr=mfa` would
//! tell a relying party that a second factor was just used. A step-up
//! (`acr_values`) then asks for the second factor again.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::account::signed_in::{SignedIn, SignedInForm};
use crate::account::{base, redirect};
use crate::oidc::browser_session::{ActiveSession, Browser, start_session};
use crate::oidc::csrf::Csrf;
use crate::oidc::lockout::{
    BAD_CREDENTIALS, LOCKED, LOCKED_RETRY_AFTER, begin_attempt, wrong_secret,
};
use crate::oidc::mfa::{ACR_PASSWORD, AMR_PASSWORD};
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;

/// Where to go once the password is confirmed (a fixed set: no open
/// redirect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    Account,
    Totp,
    Passkeys,
}

impl Next {
    fn as_str(self) -> &'static str {
        match self {
            Next::Account => "account",
            Next::Totp => "totp",
            Next::Passkeys => "passkeys",
        }
    }

    fn parse(s: Option<&str>) -> Next {
        match s {
            Some("totp") => Next::Totp,
            Some("passkeys") => Next::Passkeys,
            _ => Next::Account,
        }
    }

    fn redirect(self, browser: &Browser) -> Page {
        match self {
            Next::Account => redirect(browser, ""),
            Next::Totp => redirect(browser, "/mfa/totp"),
            Next::Passkeys => redirect(browser, "/passkeys"),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "reauth.html")]
struct ReauthPage<'a> {
    username: &'a str,
    action: &'a str,
    csrf: &'a str,
    next: &'a str,
    error: Option<&'a str>,
}

/// The password form, leading to `next`.
pub fn page(
    state: &AppState,
    browser: &Browser,
    session: &ActiveSession,
    next: Next,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Page, PageError> {
    let csrf = Csrf::for_page(state, browser)?;
    let action = format!("{}/reauth", base(browser));
    let page = Page::render(
        status,
        &ReauthPage {
            username: &session.user.username,
            action: &action,
            csrf: csrf.token(),
            next: next.as_str(),
            error,
        },
    );
    Ok(csrf.apply(page))
}

/// `POST {issuer}/account/reauth`.
pub async fn post(
    State(state): State<AppState>,
    SignedInForm {
        signed_in:
            SignedIn {
                browser,
                actors,
                session,
                ..
            },
        mut fields,
    }: SignedInForm,
) -> Result<Page, PageError> {
    let next = Next::parse(fields.get("next").map(String::as_str));
    let password = Zeroizing::new(fields.remove("password").unwrap_or_default());
    if password.is_empty() {
        return page(
            &state,
            &browser,
            &session,
            next,
            Some("Enter your password."),
            StatusCode::BAD_REQUEST,
        );
    }
    let Some(attempt) = begin_attempt(&actors, &browser.tenant, &session.user.username).await?
    else {
        return Ok(page(
            &state,
            &browser,
            &session,
            next,
            Some(LOCKED),
            StatusCode::TOO_MANY_REQUESTS,
        )?
        .retry_after(LOCKED_RETRY_AFTER));
    };
    let user = state
        .identity
        .users
        .check_password(&browser.tenant.id, &session.user.username, password)
        .await
        .map_err(PageError::internal)?
        .filter(|u| u.id == session.user.id);
    let Some(user) = user else {
        wrong_secret(&state, &browser, &session.user.username, attempt, None).await?;
        return page(
            &state,
            &browser,
            &session,
            next,
            Some(BAD_CREDENTIALS),
            StatusCode::OK,
        );
    };
    attempt.succeeded().await?;
    let (_, cookie) = start_session(
        &state,
        &browser,
        &actors,
        user,
        &[AMR_PASSWORD],
        ACR_PASSWORD,
    )
    .await?;
    Ok(next.redirect(&browser).cookie(cookie))
}
