//! `GET|POST {issuer}/account/mfa/totp`: add an authenticator app.
//!
//! The GET (after a recent sign-in) makes a pending seed
//! ([`rsp_identity::factors::FactorService::begin_totp`], sealed under
//! the KEK, expiring in ten minutes) and shows it as a QR code, as a key to
//! type and as its `otpauth://` URI; it writes nothing: the sealed seed
//! travels in the form's sealed `enrolment` ticket, which posts it back
//! with the first code. A valid code makes the factor active (the one
//! write); a user's first factor also brings ten recovery codes, shown
//! once.
//!
//! The pages come from [`crate::oidc::enrolment_pages`], shared with
//! enrolment during sign-in ([`crate::oidc::login_enrol`]).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::account::signed_in::{SignedIn, SignedInForm};
use crate::account::{base, is_recent, reauth, redirect, unavailable};
use crate::oidc::csrf::{seal, unseal};
use crate::oidc::enrolment_pages::{codes_page, enrol_page};
use crate::oidc::mfa::totp_code;
use crate::oidc::pages::{Page, PageError};
use crate::state::AppState;
use rsp_identity::factors::{FactorError, PendingTotp};

const ENROLMENT: &str = "enrolment";
const PURPOSE: &str = "account-totp";

#[derive(Serialize, Deserialize)]
struct Ticket {
    user_id: String,
    pending: PendingTotp,
}

/// `GET {issuer}/account/mfa/totp`.
pub async fn get(
    State(state): State<AppState>,
    SignedIn {
        browser, session, ..
    }: SignedIn,
) -> Result<Page, PageError> {
    if !is_recent(&state, &session) {
        return reauth::page(
            &state,
            &browser,
            &session,
            reauth::Next::Totp,
            None,
            StatusCode::OK,
        );
    }
    let (enrolment, pending) = state
        .identity
        .factors
        .begin_totp(
            &browser.tenant.id,
            &session.user.id,
            &browser.tenant.id,
            &session.user.username,
            state.clock().now_ms(),
        )
        .map_err(unavailable)?;
    let ticket = Ticket {
        user_id: session.user.id.clone(),
        pending,
    };
    let sealed = seal(&state, &browser, PURPOSE, &ticket)?;
    let action = format!("{}/mfa/totp", base(&browser));
    enrol_page(
        &state,
        &browser,
        &enrolment,
        false,
        &action,
        vec![(ENROLMENT, &sealed)],
        None,
        Some(&base(&browser)),
        StatusCode::OK,
    )
}

/// `POST {issuer}/account/mfa/totp`: the first code.
pub async fn post(
    State(state): State<AppState>,
    SignedInForm {
        signed_in: SignedIn {
            browser, session, ..
        },
        fields,
    }: SignedInForm,
) -> Result<Page, PageError> {
    let ticket: Ticket = unseal(
        &state,
        &browser,
        PURPOSE,
        fields.get(ENROLMENT).map(String::as_str),
    )?;
    if ticket.user_id != session.user.id {
        return Err(PageError::forged());
    }
    let tenant = &browser.tenant.id;
    let user = &session.user;
    let code = totp_code(&fields);
    let back = base(&browser);
    match state
        .identity
        .factors
        .confirm_totp(
            tenant,
            &user.id,
            &ticket.pending,
            &code,
            state.clock().now_secs(),
        )
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => {
            let enrolment = state
                .identity
                .factors
                .reopen_totp(
                    tenant,
                    &user.id,
                    &ticket.pending,
                    tenant,
                    &user.username,
                    state.clock().now_ms(),
                )
                .map_err(|e| match e {
                    FactorError::NotFound => expired(),
                    e => unavailable(e),
                })?;
            let sealed = seal(&state, &browser, PURPOSE, &ticket)?;
            return enrol_page(
                &state,
                &browser,
                &enrolment,
                false,
                &format!("{back}/mfa/totp"),
                vec![(ENROLMENT, &sealed)],
                Some("That code is not valid. Enter the one your app shows now."),
                Some(&back),
                StatusCode::OK,
            );
        }
        Err(FactorError::NotFound) => return Err(expired()),
        Err(e) => return Err(unavailable(e)),
    }
    super::audit_own(
        &state,
        &browser,
        &user.id,
        "mfa.enrolled",
        &[("factor", "totp")],
    );
    state.metrics.mfa_enrolment(tenant, "totp");
    let remaining = state
        .identity
        .recovery
        .remaining(tenant, &user.id)
        .await
        .map_err(unavailable)?;
    if remaining > 0 {
        return Ok(redirect(&browser, "?done=totp"));
    }
    let codes = state
        .identity
        .recovery
        .generate(tenant, &user.id, state.clock().now_ms())
        .await
        .map_err(unavailable)?;
    state.metrics.mfa_enrolment(tenant, "recovery_codes");
    codes_page(&state, &browser, &codes, None, Vec::new(), Some(&back))
}

fn expired() -> PageError {
    PageError::bad_request(
        "This setup expired or was already completed. Start again from your account page.",
    )
}
