//! The per-tenant OAuth 2.0 and OpenID Connect provider, under
//! `{public-url}/t/{tenant}`.
//!
//! - [`error`]: errors in RFC 6749 / OIDC format;
//! - [`tenant`]: the tenant extractor (unknown tenants answer 404);
//! - [`discovery`]: discovery documents and the JWKS.

pub mod discovery;
pub mod error;
pub mod tenant;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/t/{tenant}/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/t/{tenant}/.well-known/oauth-authorization-server",
            get(discovery::oauth_authorization_server),
        )
        .route("/t/{tenant}/jwks", get(discovery::jwks))
}
