//! `POST /admin/v1/tenants`, `GET|DELETE /admin/v1/tenants/{t}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use rsp_consensus::Consistency;
use serde::Deserialize;

use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use rsp_identity::tenants::{TenantError, check_new};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    id: String,
    display_name: Option<String>,
}

impl CreateTenant {
    fn display_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }

    /// What [`create`] has checked before it writes: the service's checks
    /// of a new tenant.
    pub(crate) fn check(&self) -> ApiResult<()> {
        check_new(&self.id, self.display_name())?;
        Ok(())
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::InvalidId | TenantError::InvalidDisplayName => {
                ApiError::bad_request("invalid_request", e.to_string())
            }
            TenantError::Exists(_) => ApiError::conflict("tenant_exists", e.to_string()),
            TenantError::NotFound(_) => ApiError::not_found("tenant_not_found", e.to_string()),
            TenantError::Consensus(c) => c.into(),
            TenantError::Corrupt(detail) => ApiError::internal(detail),
        }
    }
}

pub async fn create(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiJson(body, _): ApiJson<CreateTenant>,
) -> ApiResult<impl IntoResponse> {
    let tenant = state
        .tenants
        .create(&body.id, body.display_name(), state.clock().now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(
        state.tenants.get(&id, Consistency::Linearizable).await?,
    ))
}

pub async fn delete(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.tenants.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
