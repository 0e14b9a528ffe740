//! `GET {issuer}/account` (the user's second factors and recovery codes),
//! `POST {issuer}/account/mfa/remove` (`factor_id`) and
//! `POST {issuer}/account/mfa/recovery` (a new set of recovery codes, the
//! old ones stop working). Changes need a recent sign-in.
//!
//! Removing the last second factor also removes the recovery codes (they
//! stand in for a factor; without one there is nothing to recover).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::account::reauth::{self, Next};
use crate::account::signed_in::{SignedIn, SignedInForm};
use crate::account::{base, date, has_factor, is_recent, redirect, unavailable};
use crate::oidc::browser_session::{ActiveSession, Browser};
use crate::oidc::csrf::Csrf;
use crate::oidc::enrolment_pages::codes_page;
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::factors::FactorError;

/// One second factor on the page.
pub struct FactorLine {
    pub label: &'static str,
    pub added: String,
    pub removable_id: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    username: &'a str,
    base: &'a str,
    csrf: &'a str,
    factors: Vec<FactorLine>,
    recovery_remaining: usize,
    /// Recovery codes stand in for a factor: only with one.
    can_regenerate: bool,
    links: Vec<(String, &'static str)>,
    notice: Option<&'static str>,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

async fn render(
    state: &AppState,
    browser: &Browser,
    session: &ActiveSession,
    notice: Option<&'static str>,
) -> Result<Page, PageError> {
    let tenant = &browser.tenant.id;
    let factors = state
        .identity
        .factors
        .list(tenant, &session.user.id)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|f| FactorLine {
            label: "Authenticator app (TOTP)",
            added: date(f.created_at_ms),
            removable_id: Some(f.id),
        })
        .collect();
    let recovery_remaining = state
        .identity
        .recovery
        .remaining(tenant, &session.user.id)
        .await
        .map_err(unavailable)?;
    let can_regenerate = has_factor(state, tenant, &session.user.id).await?;
    let csrf = Csrf::for_page(state, browser)?;
    let base = base(browser);
    let page = Page::render(
        StatusCode::OK,
        &AccountPage {
            username: &session.user.username,
            base: &base,
            csrf: csrf.token(),
            factors,
            recovery_remaining,
            can_regenerate,
            links: vec![(format!("{base}/passkeys"), "Passkeys and security keys")],
            notice,
            error: None,
        },
    );
    Ok(csrf.apply(page))
}

/// `GET {issuer}/account`.
pub async fn get(
    State(state): State<AppState>,
    Query(done): Query<Done>,
    SignedIn {
        browser, session, ..
    }: SignedIn,
) -> Result<Page, PageError> {
    let notice = match done.done.as_deref() {
        Some("totp") => Some("Your authenticator app is set up."),
        Some("removed") => Some("The second factor was removed."),
        _ => None,
    };
    render(&state, &browser, &session, notice).await
}

/// `POST {issuer}/account/mfa/remove`.
pub async fn remove(State(state): State<AppState>, form: SignedInForm) -> Result<Page, PageError> {
    let SignedIn {
        browser, session, ..
    } = &form.signed_in;
    if !is_recent(&state, session) {
        return reauth::page(
            &state,
            browser,
            session,
            Next::Account,
            None,
            StatusCode::OK,
        );
    }
    let tenant = &browser.tenant.id;
    match state
        .identity
        .factors
        .delete(tenant, &session.user.id, form.field("factor_id"))
        .await
    {
        // Already gone (a second click): same outcome.
        Ok(()) | Err(FactorError::NotFound) => {}
        Err(e) => return Err(unavailable(e)),
    }
    super::audit_own(
        &state,
        browser,
        &session.user.id,
        "mfa.factor_removed",
        &[("factor", form.field("factor_id"))],
    );
    if !has_factor(&state, tenant, &session.user.id).await? {
        state
            .identity
            .recovery
            .delete(tenant, &session.user.id)
            .await
            .map_err(unavailable)?;
    }
    Ok(redirect(browser, "?done=removed"))
}

/// `POST {issuer}/account/mfa/recovery`.
pub async fn regenerate(
    State(state): State<AppState>,
    SignedInForm {
        signed_in: SignedIn {
            browser, session, ..
        },
        ..
    }: SignedInForm,
) -> Result<Page, PageError> {
    if !is_recent(&state, &session) {
        return reauth::page(
            &state,
            &browser,
            &session,
            Next::Account,
            None,
            StatusCode::OK,
        );
    }
    let tenant = &browser.tenant.id;
    if !has_factor(&state, tenant, &session.user.id).await? {
        return Err(PageError::bad_request(
            "Set up a second factor first: recovery codes stand in for one.",
        ));
    }
    let codes = state
        .identity
        .recovery
        .generate(tenant, &session.user.id, state.clock().now_ms())
        .await
        .map_err(unavailable)?;
    super::audit_own(
        &state,
        &browser,
        &session.user.id,
        "mfa.recovery_codes_generated",
        &[],
    );
    state.metrics.mfa_enrolment(tenant, "recovery_codes");
    codes_page(
        &state,
        &browser,
        &codes,
        None,
        Vec::new(),
        Some(&base(&browser)),
    )
}
