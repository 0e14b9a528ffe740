//! The tenant a per-tenant request is for, taken from `/t/{tenant}/...`
//! and checked to exist. A handler that takes [`TenantCtx`] cannot serve an
//! unknown tenant.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::Deserialize;

use crate::miss_limit::peer_ip;
use crate::oidc::error::{OAuthError, OAuthErrorCode, OAuthErrorResponse, too_many_misses};
use crate::state::AppState;
use rsp_consensus::Consistency;
use rsp_identity::tenants::{TenantError, TenantSettings, valid_tenant_id};

/// A known tenant, its issuer URL and its settings.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub id: String,
    /// `{public-url}/t/{tenant}`: the `iss` of every token and the base of
    /// every endpoint.
    pub issuer: String,
    /// As this node has applied them (a change is acknowledged once every
    /// node has).
    pub settings: Arc<TenantSettings>,
}

impl TenantCtx {
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

#[derive(Deserialize)]
struct TenantPath {
    tenant: String,
}

impl FromRequestParts<AppState> for TenantCtx {
    type Rejection = OAuthErrorResponse;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, OAuthErrorResponse> {
        let Path(p) = Path::<TenantPath>::from_request_parts(parts, state)
            .await
            .map_err(|_| OAuthError::invalid_request("the URL does not name a tenant"))?;
        // A local miss is confirmed linearizably before answering 404,
        // once the caller's address is within its look-up budget.
        let found = match state.tenants.get(&p.tenant, Consistency::Local).await {
            Err(TenantError::NotFound(_)) if valid_tenant_id(&p.tenant) => {
                if let Err(wait) = state.misses.take(peer_ip(&parts.extensions)) {
                    return Err(too_many_misses(wait).into());
                }
                state
                    .tenants
                    .get(&p.tenant, Consistency::Linearizable)
                    .await
            }
            other => other,
        };
        match found {
            Ok(tenant) => Ok(TenantCtx {
                issuer: format!("{}/t/{}", state.public_url, p.tenant),
                id: p.tenant,
                settings: Arc::new(tenant.settings),
            }),
            Err(TenantError::NotFound(_)) => Err(unknown_tenant().into()),
            Err(TenantError::Consensus(e)) => Err(e.into()),
            Err(e) => Err(OAuthError::server_error(e).into()),
        }
    }
}

fn unknown_tenant() -> OAuthError {
    // 404: the issuer itself does not exist.
    OAuthError::new(OAuthErrorCode::InvalidRequest, "unknown tenant").with_status(404)
}
