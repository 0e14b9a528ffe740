//! `POST|GET|DELETE /admin/v1/tenants/{t}/users/{id}/factors` and
//! `DELETE .../factors/{factor_id}`: import, list (never the seed), reset
//! (every factor and the recovery codes) and remove a user's second factors.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use rsp_consensus::Consistency;
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::admin::openapi::params as p;
use crate::admin::openapi::shapes::{self, ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use rsp_identity::factors::{FactorError, check_totp_import};
use rsp_identity::recovery::RecoveryError;
use rsp_identity::webauthn::{PasskeyError, PasskeyService};

impl From<RecoveryError> for ApiError {
    fn from(e: RecoveryError) -> Self {
        match e {
            RecoveryError::Consensus(c) => c.into(),
            RecoveryError::Crypto(c) => ApiError::unavailable(c.to_string()),
            RecoveryError::Corrupt(d) => ApiError::internal(d),
        }
    }
}

impl From<PasskeyError> for ApiError {
    fn from(e: PasskeyError) -> Self {
        match e {
            PasskeyError::NotFound => ApiError::not_found("factor_not_found", e.to_string()),
            PasskeyError::Consensus(c) => c.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<FactorError> for ApiError {
    fn from(e: FactorError) -> Self {
        match e {
            FactorError::Invalid(m) => ApiError::bad_request("invalid_request", m),
            FactorError::NotFound => ApiError::not_found("factor_not_found", e.to_string()),
            FactorError::Consensus(c) => c.into(),
            FactorError::Crypto(c) => ApiError::unavailable(c.to_string()),
            FactorError::Corrupt(d) => ApiError::internal(d),
        }
    }
}

/// The user must exist in the tenant.
async fn require_user(state: &AppState, tenant: &str, user: &str) -> ApiResult<()> {
    state.tenants.get_confirmed(tenant).await?;
    state
        .identity
        .users
        .get(tenant, user, Consistency::Linearizable)
        .await?;
    Ok(())
}

/// A TOTP seed to import (e.g. when migrating from another IdP).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFactor {
    /// `totp` (WebAuthn is enrolled by the user).
    #[serde(rename = "type")]
    kind: String,
    /// The seed, base32.
    #[schema(value_type = String)]
    secret: Zeroizing<String>,
    /// Default 6.
    digits: Option<u8>,
    /// Seconds per code, default 30.
    period: Option<u64>,
}

impl NewFactor {
    /// Only TOTP seeds are imported.
    pub(crate) fn check_kind(&self) -> ApiResult<()> {
        if self.kind != "totp" {
            return Err(ApiError::bad_request(
                "unsupported_factor_type",
                "only `totp` factors can be imported (WebAuthn is enrolled by the user)",
            ));
        }
        Ok(())
    }

    /// What [`create`] has checked before it writes: the kind, then the
    /// service's checks of the seed.
    pub(crate) fn check(&self) -> ApiResult<()> {
        self.check_kind()?;
        check_totp_import(&self.secret, self.digits, self.period)?;
        Ok(())
    }
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/users/{user}/factors",
    operation_id = "import_factor",
    tag = "factors",
    params(p::TenantUser),
    request_body = NewFactor,
    responses(
        (status = 201, description = "The imported factor (never the seed)", body = shapes::FactorView),
        (status = 400, description = "`unsupported_factor_type`, `invalid_request`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`, `user_not_found`", body = ErrorBody),
    ),
)]
pub async fn create(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, user)): ApiPath<(String, String)>,
    ApiJson(body, _): ApiJson<NewFactor>,
) -> ApiResult<impl IntoResponse> {
    body.check_kind()?;
    require_user(&state, &tenant, &user).await?;
    let info = state
        .identity
        .factors
        .import_totp(
            &tenant,
            &user,
            &body.secret,
            body.digits,
            body.period,
            state.clock().now_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/users/{user}/factors",
    operation_id = "list_factors",
    tag = "factors",
    params(p::TenantUser),
    responses(
        (status = 200, description = "TOTP factors, then passkeys; no secrets", body = Vec<shapes::FactorView>),
        (status = 404, description = "`tenant_not_found`, `user_not_found`", body = ErrorBody),
    ),
)]
pub async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, user)): ApiPath<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    require_user(&state, &tenant, &user).await?;
    // TOTP factors, then passkeys (`"type": "webauthn"`, no key material).
    let mut all = Vec::new();
    for f in state.identity.factors.list(&tenant, &user).await? {
        all.push(serde_json::to_value(f).map_err(ApiError::internal)?);
    }
    let passkeys = PasskeyService::new(state.consensus.clone());
    for p in passkeys.list(&tenant, &user).await? {
        all.push(serde_json::to_value(p).map_err(ApiError::internal)?);
    }
    Ok(Json(all))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/users/{user}/factors/{factor}",
    operation_id = "delete_factor",
    tag = "factors",
    params(p::TenantUser, ("factor" = String, Path, description = "The factor's or passkey's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "`tenant_not_found`, `user_not_found`, `factor_not_found`", body = ErrorBody),
    ),
)]
pub async fn delete(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, user, factor)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    require_user(&state, &tenant, &user).await?;
    match state.identity.factors.delete(&tenant, &user, &factor).await {
        // Not a TOTP factor: perhaps a passkey.
        Err(FactorError::NotFound) => {
            PasskeyService::new(state.consensus.clone())
                .delete(&tenant, &user, &factor)
                .await?
        }
        other => other?,
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Reset: every TOTP factor (enrolled or pending), every passkey and the
/// recovery codes, e.g. for a user who lost their phone. With an MFA policy that requires
/// a factor, their next sign-in leads to enrolment.
#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/users/{user}/factors",
    operation_id = "reset_factors",
    tag = "factors",
    params(p::TenantUser),
    responses(
        (status = 204, description = "Every TOTP factor, passkey and the recovery codes removed"),
        (status = 404, description = "`tenant_not_found`, `user_not_found`", body = ErrorBody),
    ),
)]
pub async fn reset(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, user)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    require_user(&state, &tenant, &user).await?;
    state.identity.factors.delete_all(&tenant, &user).await?;
    PasskeyService::new(state.consensus.clone())
        .delete_all(&tenant, &user)
        .await?;
    state.identity.recovery.delete(&tenant, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
