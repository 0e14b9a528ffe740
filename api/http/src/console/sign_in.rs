//! `GET /admin/` (the sign-in page, with the tenant administrators' form
//! beside it, or on to the session's home when signed in),
//! `POST /admin/login` (the admin token for a console session; a GET of it
//! goes to `/admin/`),
//! `POST /admin/logout`.
//!
//! The token is compared as the admin API compares it (the digest, in
//! constant time), and failures count in the same per-address guard
//! ([`crate::authz::admin_guard`]): after too many, the address is refused
//! (429) before any token is looked at, here and at the admin API alike.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::page::{self, Problem};
use super::session::{
    self, CSRF_FIELD, ConsoleForm, Principal, SEED_COOKIE, SESSION_COOKIE, SESSION_LIFETIME,
    SignedIn,
};
use super::templates::LoginPage;
use crate::authz::error::AuthzError;
use crate::oidc::http::Params;
use crate::state::AppState;
use zeroize::Zeroizing;

/// How long a sign-in page's seed lasts.
const SEED_LIFETIME_SECS: u64 = 3600;

/// `GET /admin`: to `/admin/`, where the console's cookies apply.
pub async fn to_home() -> Response {
    page::redirect("/admin/")
}

/// The sign-in page with `error`, with a fresh seed for its form.
fn login_page(state: &AppState, status: StatusCode, error: Option<String>) -> Response {
    let seed = session::new_seed();
    match session::seed_token(state, &seed) {
        Ok(csrf) => page::render(
            status,
            &LoginPage { csrf, error },
            &[session::set_cookie(
                state,
                SEED_COOKIE,
                &seed,
                SEED_LIFETIME_SECS,
            )],
        ),
        Err(p) => p.into_response(),
    }
}

/// `GET /admin/`.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match SignedIn::from_headers(&state, &headers) {
        Ok(Some(signed)) => page::redirect(&signed.home()),
        Ok(None) => login_page(&state, StatusCode::OK, None),
        Err(p) => p.into_response(),
    }
}

/// `POST /admin/login`: `admin_token` and the seed-bound `csrf_token`.
pub async fn sign_in(State(state): State<AppState>, parts: Parts, body: Bytes) -> Response {
    let Ok(params) = Params::parse(&body) else {
        return Problem::new(StatusCode::BAD_REQUEST, "The sign-in form was malformed.")
            .into_response();
    };
    let mut fields = params.into_map();
    let presented = Zeroizing::new(fields.remove("admin_token").unwrap_or_default());
    let csrf = fields.get(CSRF_FIELD).map(String::as_str);
    match session::seed_form_ok(&state, &parts.headers, csrf) {
        Ok(true) => {}
        Ok(false) => {
            return login_page(
                &state,
                StatusCode::FORBIDDEN,
                Some(
                    "This sign-in page expired or was not sent from the console. Try again.".into(),
                ),
            );
        }
        Err(p) => return p.into_response(),
    }
    let attempt = match state.admin_guard.admit(&parts) {
        Ok(attempt) => attempt,
        Err(e) => {
            let wait = e.retry_after.unwrap_or(60);
            let mut page = login_page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                Some(format!(
                    "Too many failed sign-ins from this address. Try again in {wait} seconds."
                )),
            );
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return page;
        }
    };
    let outcome = if state.admin_token.matches(&presented) {
        Ok(())
    } else {
        Err(AuthzError::unauthorized(
            "invalid_token",
            "not the admin token",
        ))
    };
    if attempt.record(outcome).is_err() {
        tracing::info!("console sign-in refused: not the admin token");
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("That is not the admin token.".into()),
        );
    }
    match session::new_session(&state, &Principal::Operator) {
        Ok(value) => {
            tracing::info!("console sign-in with the admin token");
            page::redirect_setting(
                "/admin/tenants",
                &[
                    session::set_cookie(&state, SESSION_COOKIE, &value, SESSION_LIFETIME.as_secs()),
                    session::set_cookie(&state, SEED_COOKIE, "", 0),
                ],
            )
        }
        Err(p) => p.into_response(),
    }
}

/// `POST /admin/logout`: clear the session cookie.
pub async fn sign_out(State(state): State<AppState>, _form: ConsoleForm) -> Response {
    page::redirect_setting(
        "/admin/",
        &[session::set_cookie(&state, SESSION_COOKIE, "", 0)],
    )
}
