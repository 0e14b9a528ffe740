//! `POST /admin/v1/tenants/{t}/users`, `PATCH
//! /admin/v1/tenants/{t}/users/{id}` and `POST /admin/v1/tenants/{t}/clients`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use rsp_identity::clients::{ClientError, NewClient};
use rsp_identity::passwords::PasswordError;
use rsp_identity::users::{NewUser, UserError, UserUpdate};

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::InvalidUsername
            | UserError::InvalidEmail
            | UserError::Password(PasswordError::Length) => {
                ApiError::bad_request("invalid_request", e.to_string())
            }
            UserError::Exists(_) => ApiError::conflict("user_exists", e.to_string()),
            UserError::NotFound => ApiError::not_found("user_not_found", e.to_string()),
            UserError::Consensus(c) => c.into(),
            UserError::Password(p) => ApiError::internal(p),
            UserError::Corrupt(d) => ApiError::internal(d),
            UserError::Busy => ApiError::conflict("conflict", e.to_string()),
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid(m) => ApiError::bad_request("invalid_client_metadata", m),
            ClientError::Exists(_) => ApiError::conflict("client_exists", e.to_string()),
            ClientError::NotFound => ApiError::not_found("client_not_found", e.to_string()),
            ClientError::Refused(r) => r.into(),
            ClientError::Consensus(c) => c.into(),
            ClientError::Corrupt(d) => ApiError::internal(d),
            ClientError::Crypto(c) => ApiError::unavailable(c.to_string()),
        }
    }
}

/// A tenant's admin calls need the tenant to exist.
async fn require_tenant(state: &AppState, tenant: &str) -> ApiResult<()> {
    state.tenants.get_confirmed(tenant).await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    password: Zeroizing<String>,
    email: Option<String>,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

impl CreateUser {
    pub(crate) fn into_new(self) -> NewUser {
        NewUser {
            username: self.username,
            password: self.password,
            email: self.email,
            attributes: self.attributes,
        }
    }
}

pub async fn create_user(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body, _): ApiJson<CreateUser>,
) -> ApiResult<impl IntoResponse> {
    require_tenant(&state, &tenant).await?;
    let user = state
        .identity
        .users
        .create(&tenant, body.into_new(), state.clock().now_ms())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": user.id, "username": user.username})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    email: Option<String>,
    /// Replaces every attribute (`"rsp_admin": true` makes the user an
    /// administrator of the tenant).
    attributes: Option<serde_json::Map<String, serde_json::Value>>,
    disabled: Option<bool>,
}

impl PatchUser {
    /// The change asked for; disabling is not served (501).
    pub(crate) fn into_update(self) -> ApiResult<UserUpdate> {
        if self.disabled.is_some() {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "not_implemented",
                "disabling a user is not served by this version; `email` and `attributes` are",
            ));
        }
        Ok(UserUpdate {
            email: self.email,
            attributes: self.attributes,
        })
    }
}

/// Change a user's email or attributes; answers the user as stored (never
/// the password hash). Disabling is not served here (501).
pub async fn patch_user(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiJson(body, _): ApiJson<PatchUser>,
) -> ApiResult<impl IntoResponse> {
    require_tenant(&state, &tenant).await?;
    let update = body.into_update()?;
    let user = state.identity.users.update(&tenant, &id, update).await?;
    Ok(Json(json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "attributes": user.attributes,
        "disabled": user.disabled,
        "created_at_ms": user.created_at_ms,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    client_id: Option<String>,
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    grant_types: Vec<String>,
    token_endpoint_auth_method: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    require_consent: bool,
    jwks: Option<JwkSet>,
    id_token_signed_response_alg: Option<String>,
    access_token_signed_response_alg: Option<String>,
    refresh_token_absolute_lifetime_secs: Option<u64>,
}

impl CreateClient {
    pub(crate) fn into_new(self) -> NewClient {
        NewClient {
            client_id: self.client_id,
            client_name: self.client_name,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            scopes: self.scopes,
            require_consent: self.require_consent,
            jwks: self.jwks,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            access_token_signed_response_alg: self.access_token_signed_response_alg,
            refresh_token_absolute_lifetime_secs: self.refresh_token_absolute_lifetime_secs,
        }
    }
}

pub async fn create_client(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body, _): ApiJson<CreateClient>,
) -> ApiResult<impl IntoResponse> {
    require_tenant(&state, &tenant).await?;
    let (client, secret) = state
        .identity
        .clients
        .create(&tenant, body.into_new(), state.clock().now_ms())
        .await?;
    let mut out = json!({"client_id": client.client_id});
    if let Some(secret) = secret {
        out["client_secret"] = json!(secret.as_str());
    }
    Ok((StatusCode::CREATED, Json(out)))
}
