//! `GET|PUT /admin/v1/tenants/{t}/mfa-policy`: who must use a second factor
//! at sign-in (`{"mode": "optional" | "required" | "cedar"}`, see
//! [`rsp_identity::mfa_policy`]).

use axum::Json;
use axum::extract::State;

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

pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<MfaPolicy>> {
    state.tenants.get_confirmed(&tenant).await?;
    Ok(Json(state.identity.mfa_policy.get(&tenant).await?))
}

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
