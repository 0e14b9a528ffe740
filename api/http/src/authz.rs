//! Cedar authorization over HTTP, under each tenant's issuer
//! `{public-url}/t/{tenant}`:
//!
//! - [`cedar`]: `POST {issuer}/authz/v1/is_authorized` (the contract's
//!   shape) and `POST {issuer}/authz/v1/is_authorized_batch`;
//! - [`authzen`]: the OpenID AuthZEN Authorization API 1.0 evaluation
//!   endpoints (`/access/v1/evaluation`, `/access/v1/evaluations`) mapped
//!   onto Cedar, and its metadata document;
//! - [`caller`]: who may ask (an access token with scope `authz:check`, or
//!   the admin token) and, for the admin API, who is administering
//!   (the admin token, or a tenant admin's access token with `rsp:admin`,
//!   whose user, if any, must hold the `rsp_admin` attribute);
//! - [`admin_guard`]: failed admin authentications counted per client
//!   address, and the 429 that stops guessing;
//! - [`admin_access`]: the layer that authorizes every admin route with
//!   the built-in Cedar admin policies;
//! - [`principal`]: a principal and its attributes from an access token;
//! - [`error`]: errors as `{"error", "message", "diagnostics"?}`.
//!
//! Decisions, the policy store and the built-in admin policies live in
//! `rsp-policies`; a node with a tenant runtime decides on the snapshot its
//! tenant's policy evaluator actor publishes ([`snapshot`]). These handlers
//! extract, validate, call and map.

pub mod admin_access;
pub mod admin_guard;
pub mod authzen;
pub mod caller;
pub mod cedar;
pub mod error;
pub mod principal;
pub mod services;

pub use services::AuthzServices;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::{get, post};
use rsp_policies::cedar_policy::Decision;
use rsp_policies::{DecisionRequest, Outcome, PolicyError, Snapshot};

use crate::authz::error::AuthzResult;
use crate::error::ApiError;
use crate::metrics::{ApiMetrics, DecisionResult};
use crate::state::AppState;

/// Scope an access token needs to ask for decisions.
pub const CHECK_SCOPE: &str = "authz:check";
/// Scope that makes an access token's subject an admin of its tenant (a
/// user's token only while the user holds the `rsp_admin` attribute).
pub use rsp_identity::oauth::claims::ADMIN_SCOPE;

/// A tenant's snapshot with the evaluation setting of whoever holds it.
pub struct TenantSnapshot {
    pub snapshot: Arc<Snapshot>,
    /// Evaluate only the index buckets that can apply (the product's
    /// setting); off evaluates the whole set.
    pub sliced: bool,
    tenant: String,
    metrics: ApiMetrics,
}

impl TenantSnapshot {
    /// Decide `req`, counted and timed in `rsp_authz_decision*`.
    pub fn decide(&self, req: &DecisionRequest) -> Result<Outcome, PolicyError> {
        let started = Instant::now();
        let outcome = self.snapshot.decide(req, self.sliced);
        let result = match &outcome {
            Ok(o) if o.decision == Decision::Allow => DecisionResult::Allow,
            Ok(_) => DecisionResult::Deny,
            Err(_) => DecisionResult::Error,
        };
        self.metrics
            .decision(&self.tenant, result, started.elapsed().as_secs_f64());
        outcome
    }
}

impl std::ops::Deref for TenantSnapshot {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        &self.snapshot
    }
}

/// The snapshot a decision request for `tenant` that arrived at `started`
/// is decided on: it reflects every policy write acknowledged before
/// `started`. On a node with a tenant runtime it is the one the tenant's
/// policy evaluator actor publishes (a direct read); otherwise the node's
/// [`rsp_policies::PolicyService`] holds it.
pub async fn snapshot(
    state: &AppState,
    tenant: &str,
    started: Instant,
) -> AuthzResult<TenantSnapshot> {
    match state.tenant_runtime.runtime() {
        Some(runtime) => {
            let handle = runtime.tenant(tenant).await.map_err(ApiError::from)?;
            let policies = handle.policies();
            Ok(TenantSnapshot {
                snapshot: policies.snapshot(started).await.map_err(ApiError::from)?,
                sliced: policies.source().config().sliced,
                tenant: tenant.to_string(),
                metrics: state.metrics.clone(),
            })
        }
        None => Ok(TenantSnapshot {
            snapshot: state.authz.policies.snapshot(tenant, started).await?,
            sliced: state.authz.policies.config().sliced,
            tenant: tenant.to_string(),
            metrics: state.metrics.clone(),
        }),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/t/{tenant}/authz/v1/is_authorized",
            post(cedar::is_authorized),
        )
        .route(
            "/t/{tenant}/authz/v1/is_authorized_batch",
            post(cedar::is_authorized_batch),
        )
        .route(
            "/t/{tenant}/access/v1/evaluation",
            post(authzen::evaluation),
        )
        .route(
            "/t/{tenant}/access/v1/evaluations",
            post(authzen::evaluations),
        )
        .route(
            "/t/{tenant}/.well-known/authzen-configuration",
            get(authzen::metadata),
        )
        // RFC 8615 places the well-known segment before the issuer's path.
        .route(
            "/.well-known/authzen-configuration/t/{tenant}",
            get(authzen::metadata),
        )
}
