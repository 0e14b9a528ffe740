//! A tenant's signing keys, for the operator:
//!
//! - `GET /admin/v1/tenants/{t}/keys`: every key with its state (no private
//!   part, ever);
//! - `POST /admin/v1/tenants/{t}/keys/rotate`: publish a new key now; it
//!   signs after the tenant's publication lead, or at once with
//!   `{"immediate": true}`;
//! - `GET|PUT /admin/v1/tenants/{t}/keys/settings`: the tenant's key
//!   schedule ([`KeySettings`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use rsp_consensus::Consistency;
use rsp_identity::keys::{KeyError, KeySettings, KeyStatus, SigningAlg, Staged};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::admin::openapi::params as p;
use crate::admin::openapi::{mirrors, shapes::ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid(m) => ApiError::bad_request("invalid_request", m),
            KeyError::UnknownKid(_) => ApiError::not_found("key_not_found", e.to_string()),
            KeyError::Refused(r) => r.into(),
            KeyError::Consensus(c) => c.into(),
            KeyError::Crypto(c) => ApiError::unavailable(c.to_string()),
            KeyError::Bad(d) => ApiError::internal(d),
        }
    }
}

/// A key as listed.
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    kid: String,
    #[schema(value_type = mirrors::SigningAlg)]
    alg: &'static str,
    #[schema(value_type = mirrors::KeyStatus)]
    status: KeyStatus,
    created_at_ms: u64,
    /// `next`: when it begins to sign; otherwise when it began, if known.
    activates_at_ms: Option<u64>,
    /// `previous`: when it stops verifying and leaves the JWKS.
    retires_at_ms: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    items: Vec<KeyView>,
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/keys",
    operation_id = "list_signing_keys",
    tag = "keys",
    params(p::Tenant),
    responses(
        (status = 200, description = "Every signing key (never a private part); `next` is always null", body = KeyList),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<KeyList>> {
    state.tenants.get(&tenant, Consistency::Local).await?;
    let mut items: Vec<KeyView> = state
        .identity
        .keys
        .keys(&tenant)
        .await?
        .into_iter()
        .map(|k| KeyView {
            kid: k.kid,
            alg: k.alg.name(),
            status: k.status,
            created_at_ms: k.created_at_ms,
            activates_at_ms: k.activate_at_ms,
            retires_at_ms: k.retire_at_ms,
        })
        .collect();
    items.sort_by(|a, b| (a.alg, a.created_at_ms).cmp(&(b.alg, b.created_at_ms)));
    Ok(Json(KeyList { items, next: None }))
}

/// The optional body of a rotation.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateRequest {
    /// One algorithm (`ES256`, `RS256`, `EdDSA`); all three when absent.
    #[schema(value_type = Option<mirrors::SigningAlg>)]
    alg: Option<String>,
    /// Sign with the new key at once instead of after the publication lead.
    #[serde(default)]
    immediate: bool,
}

/// A rotation, as asked for.
pub(crate) struct Rotation {
    algs: Vec<SigningAlg>,
    immediate: bool,
}

impl RotateRequest {
    /// The body of a rotation: empty (or blank), or the JSON object.
    pub(crate) fn parse(body: &[u8]) -> ApiResult<Rotation> {
        let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
            RotateRequest::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?
        };
        let algs = match &request.alg {
            None => SigningAlg::ALL.to_vec(),
            Some(name) => vec![SigningAlg::parse(name).ok_or_else(|| {
                ApiError::bad_request("invalid_request", "alg must be ES256, RS256 or EdDSA")
            })?],
        };
        Ok(Rotation {
            algs,
            immediate: request.immediate,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct Rotated {
    #[schema(value_type = Vec<mirrors::Staged>)]
    keys: Vec<Staged>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/keys/rotate",
    operation_id = "rotate_signing_keys",
    tag = "keys",
    params(p::Tenant),
    request_body(content = Option<RotateRequest>, description = "Optional"),
    responses(
        (status = 200, description = "The keys staged (or signing at once)", body = Rotated),
        (status = 400, description = "`invalid_request`: a bad body or algorithm", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn rotate(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<Rotated>> {
    let Rotation { algs, immediate } = RotateRequest::parse(&body)?;
    state.tenants.get(&tenant, Consistency::Local).await?;
    let keys = &state.identity.keys;
    let settings = keys.settings(&tenant).await?;
    let now_ms = state.clock().now_ms();
    let mut rotated = Vec::new();
    for alg in algs {
        let staged = if immediate {
            let kid = keys
                .rotate_now(&tenant, alg, now_ms, settings.retire_ms())
                .await?;
            Staged {
                kid,
                alg,
                activates_at_ms: now_ms,
            }
        } else {
            keys.stage(&tenant, alg, now_ms, now_ms + settings.publish_ms())
                .await?
        };
        rotated.push(staged);
    }
    Ok(Json(Rotated { keys: rotated }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/keys/settings",
    operation_id = "get_key_settings",
    tag = "keys",
    params(p::Tenant),
    responses(
        (status = 200, description = "The tenant's key schedule", body = mirrors::KeySettings),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn get_settings(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<Json<KeySettings>> {
    state.tenants.get(&tenant, Consistency::Local).await?;
    Ok(Json(state.identity.keys.settings(&tenant).await?))
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/keys/settings",
    operation_id = "put_key_settings",
    tag = "keys",
    params(p::Tenant),
    request_body = mirrors::KeySettings,
    responses(
        (status = 200, description = "The schedule as stored", body = mirrors::KeySettings),
        (status = 400, description = "`invalid_request`: a value out of range", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn put_settings(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(settings, _): ApiJson<KeySettings>,
) -> ApiResult<Json<KeySettings>> {
    state.tenants.get(&tenant, Consistency::Local).await?;
    state.identity.keys.set_settings(&tenant, &settings).await?;
    Ok(Json(settings))
}
