//! `POST /admin/v1/tenants/{t}/users` and `POST /admin/v1/tenants/{t}/clients`
//! (the rest of their lifecycle is in [`super::users`] and
//! [`super::clients`]), and the admin API's mapping of user and client
//! errors.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::admin::openapi::params as p;
use crate::admin::openapi::shapes::{self, ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use rsp_identity::clients::{ClientError, NewClient};
use rsp_identity::passwords::PasswordError;
use rsp_identity::users::{NewUser, UserError};

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
            UserError::Changed => super::preconditions::precondition_failed(),
            UserError::PasswordPolicy(reason) => ApiError::bad_request("weak_password", reason),
            UserError::Quota(_) => quota_exceeded(e.to_string()),
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
            ClientError::Changed => super::preconditions::precondition_failed(),
            ClientError::Busy => ApiError::conflict("conflict", e.to_string()),
            ClientError::Quota(_) => quota_exceeded(e.to_string()),
        }
    }
}

/// 403 `quota_exceeded`: the tenant's settings allow no more of these.
fn quota_exceeded(message: String) -> ApiError {
    ApiError::new(axum::http::StatusCode::FORBIDDEN, "quota_exceeded", message)
}

/// A tenant's admin calls need the tenant to exist.
pub(crate) async fn require_tenant(state: &AppState, tenant: &str) -> ApiResult<()> {
    state.tenants.get_confirmed(tenant).await?;
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    /// Hashed with argon2id; never stored or logged.
    #[schema(value_type = String)]
    password: Zeroizing<String>,
    email: Option<String>,
    /// Free-form; `"rsp_admin": true` makes the user a tenant admin.
    #[serde(default)]
    #[schema(value_type = Object)]
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

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/users",
    operation_id = "create_user",
    tag = "users",
    params(p::Tenant),
    request_body = CreateUser,
    responses(
        (status = 201, description = "The new user's id", body = shapes::CreatedUser),
        (status = 400, description = "`invalid_request`: a bad username, email or password", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`user_exists`", body = ErrorBody),
    ),
)]
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

/// The registration's fields (docs/admin-api.md, "Users and clients").
#[derive(Deserialize, ToSchema)]
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
    /// Unset: the tenant's `consent_required_by_default`.
    require_consent: Option<bool>,
    /// The client's public keys (a JWK Set), for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    jwks: Option<JwkSet>,
    id_token_signed_response_alg: Option<String>,
    access_token_signed_response_alg: Option<String>,
    refresh_token_absolute_lifetime_secs: Option<u64>,
    /// 60 to 86400; unset: the tenant's.
    access_token_lifetime_secs: Option<u64>,
    /// 60 to 86400; unset: the tenant's.
    id_token_lifetime_secs: Option<u64>,
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
            access_token_lifetime_secs: self.access_token_lifetime_secs,
            id_token_lifetime_secs: self.id_token_lifetime_secs,
        }
    }
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/clients",
    operation_id = "create_client",
    tag = "clients",
    params(p::Tenant),
    request_body = CreateClient,
    responses(
        (status = 201, description = "The client's id and, for a client with one, its secret (shown once)", body = shapes::CreatedClient),
        (status = 400, description = "`invalid_client_metadata` naming the field; `invalid_request`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`client_exists`", body = ErrorBody),
    ),
)]
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
