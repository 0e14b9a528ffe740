//! rsp's HTTP surface (axum): the admin API, operational endpoints, and the
//! per-tenant OAuth 2.0 / OpenID Connect and authorization endpoints (the
//! SAML routes answer 501 until the SAML issue lands).
//!
//! Parts:
//! - [`app`]: the whole router, testable with `tower::ServiceExt::oneshot`.
//! - [`state`]: what handlers get ([`AppState`]), including the admin token
//!   (kept as a digest, compared in constant time).
//! - [`extract`]: extractors that answer bad input (JSON bodies, paths,
//!   queries) in the API's error format; who the caller is, is
//!   [`authz::caller`]'s, the tenant and client of an OAuth request
//!   [`oidc::tenant`]'s and [`oidc::client`]'s.
//! - [`error`]: the one error type and its HTTP mapping.
//! - [`metrics`]: the HTTP, token, sign-in and SAML metric families, and
//!   the middleware that counts every request by route template.
//! - [`miss_limit`]: the per-address limit on unauthenticated look-ups
//!   that would go to the leader (unknown tenants, device user codes).
//! - [`admin`]: `/admin/v1/...` handlers; [`authz`]: Cedar decisions and
//!   AuthZEN under each issuer; [`ops`]: health, readiness,
//!   metrics; [`account`]: the self-service account pages (second factors);
//!   [`console`]: the operator's web console at `/admin/`.
//!
//! The rules behind these endpoints (tenants, users, credentials, clients,
//! keys, the OAuth/OIDC domain) are `rsp-identity`'s; handlers here only
//! extract, call a service and map its answer.
//!
//! Not for: storage or Raft (it reads and writes only through
//! `rsp-consensus`), listening sockets or TLS (that is `rsp-node`).

pub mod account;
pub mod admin;
pub mod authz;
pub mod console;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod miss_limit;
pub mod oidc;
pub mod ops;
pub mod saml;
pub mod state;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;

pub use error::{ApiError, ApiResult};
pub use state::{AdminToken, AppState};

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1 << 20;

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// The node's HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(admin::router(&state))
        .merge(oidc::router())
        .merge(account::router())
        .merge(authz::router())
        .merge(saml::router())
        .merge(console::router(&state))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Inside the router, so the route template (`MatchedPath`) is known.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}
