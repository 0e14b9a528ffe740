//! The SAML 2.0 identity provider of each tenant, under
//! `{public-url}/t/{tenant}/saml`: metadata, single sign-on
//! ([`sso`]: SP-initiated by HTTP-Redirect or HTTP-POST, IdP-initiated at
//! `init`), the answer page ([`answer`]: the HTTP-POST binding form),
//! consent ([`consent`]) and single logout ([`slo`]).
//!
//! The protocol rules are `rsp_identity::saml`'s; a browser signs in
//! through the same login pages, second factors, lockout and sessions as
//! OpenID Connect ([`crate::oidc::login_page::Continuation::Saml`]), so a
//! browser signed in through either protocol is signed in for both.

pub mod answer;
pub mod consent;
pub mod slo;
pub mod sso;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rsp_identity::crypto::CryptoError;
use rsp_identity::saml::SamlError;

use crate::oidc::error::OAuthError;
use crate::oidc::pages::PageError;
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/saml/metadata", get(metadata))
        .route("/t/{tenant}/saml/sso", get(sso::get).post(sso::post))
        .route("/t/{tenant}/saml/init", get(sso::idp_initiated))
        .route("/t/{tenant}/saml/slo", get(slo::get).post(slo::post))
        .route("/t/{tenant}/saml/consent", post(consent::post))
}

/// `GET {issuer}/saml/metadata`: the IdP's `EntityDescriptor`.
async fn metadata(State(state): State<AppState>, tenant: TenantCtx) -> Result<Response, PageError> {
    let xml = state
        .identity
        .saml
        .metadata(&tenant.id, &tenant.issuer)
        .await
        .map_err(page_error)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/samlmetadata+xml"),
            // Short: a newly published certificate should reach SPs that
            // refresh metadata well before it signs.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        xml,
    )
        .into_response())
}

/// A SAML error the browser is shown (the SP cannot be answered: it is
/// unknown, or its request could not be trusted).
pub fn page_error(e: SamlError) -> PageError {
    match e {
        SamlError::Malformed(m)
        | SamlError::Invalid(m)
        | SamlError::RequestDenied(m)
        | SamlError::Version(m)
        | SamlError::UnsupportedBinding(m)
        | SamlError::InvalidNameIdPolicy(m) => PageError::bad_request(format!(
            "The application's sign-in request was refused: {m}."
        )),
        SamlError::NotYet(m) => PageError::new(StatusCode::NOT_IMPLEMENTED, "not_implemented", m),
        SamlError::UnknownProvider => PageError::bad_request(
            "The application (SAML service provider) is not registered here.",
        ),
        SamlError::Exists(_) => PageError::bad_request("The application is registered twice."),
        SamlError::Replayed => PageError::bad_request(
            "This sign-in request was answered already. Start again from the application.",
        ),
        SamlError::Consensus(e) => e.into(),
        SamlError::Refused(r) => OAuthError::from(r).into(),
        SamlError::Crypto(CryptoError::NoKek) => {
            PageError::unavailable("This node is not ready yet.", None)
        }
        other => PageError::internal(other),
    }
}
