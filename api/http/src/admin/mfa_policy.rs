//! `GET|PUT /admin/v1/tenants/{t}/mfa-policy`: who must use a second factor
//! at sign-in (`{"mode": "optional" | "required" | "cedar"}`, see
//! [`rsp_identity::mfa_policy`]).

use axum::Json;
use axum::extract::State;

use crate::admin::openapi::params as p;
use crate::admin::openapi::{mirrors, shapes::ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use rsp_identity::mfa_policy::{MfaPolicy, MfaPolicyError};

impl From<MfaPolicyError> for ApiError {
    fn from(e: MfaPolicyError) -> Self {
        match e {
            MfaPolicyError::Consensus(c) => c.into(),
            MfaPolicyError::Corrupt(d) => ApiError::internal(d),
        }
    }
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/mfa-policy",
    operation_id = "get_mfa_policy",
    tag = "factors",
    params(p::Tenant),
    responses(
        (status = 200, description = "The tenant's MFA policy", body = mirrors::MfaPolicy),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<MfaPolicy>> {
    state.tenants.get_confirmed(&tenant).await?;
    Ok(Json(state.identity.mfa_policy.get(&tenant).await?))
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/mfa-policy",
    operation_id = "put_mfa_policy",
    tag = "factors",
    params(p::Tenant),
    request_body = mirrors::MfaPolicy,
    responses(
        (status = 200, description = "The policy as stored", body = mirrors::MfaPolicy),
        (status = 400, description = "`invalid_request`: an unknown mode", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn put(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(policy, _): ApiJson<MfaPolicy>,
) -> ApiResult<Json<MfaPolicy>> {
    state.tenants.get_confirmed(&tenant).await?;
    state.identity.mfa_policy.put(&tenant, &policy).await?;
    Ok(Json(policy))
}
