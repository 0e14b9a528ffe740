//! A tenant's OAuth clients, for administrators: list, get, change, delete,
//! rotate the secret (`/admin/v1/tenants/{t}/clients[/{id}[/secret]]`;
//! registration is in [`super::accounts`]).
//!
//! Reads are linearizable. `GET` answers an `ETag`; `PATCH`, `DELETE` and
//! the rotation honour `If-Match`. Secrets never appear, only whether the
//! client has one (and until when the previous one is still accepted).
//! Every change answers once every node has applied it: a removed redirect
//! URI, a deleted client or a rotated-out secret is refused everywhere from
//! then on.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jsonwebtoken::jwk::JwkSet;
use rsp_consensus::Consistency;
use rsp_consensus::kv::tenant_keyspace;
use rsp_identity::clients::{CLIENT_LISTING_PREFIX, Client, ClientPatch};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::accounts::require_tenant;
use super::paging::{Listing, Page, PageQuery, decode, read_page};
use super::preconditions::{IfMatch, with_etag};
use crate::admin::openapi::params as p;
use crate::admin::openapi::shapes::{self, ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// A client as administrators see it: its registration, never a secret.
pub fn view(c: &Client) -> Value {
    json!({
        "client_id": c.client_id,
        "client_name": c.client_name,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types,
        "token_endpoint_auth_method": c.token_endpoint_auth_method.name(),
        "scopes": c.scopes,
        "require_consent": c.require_consent,
        "jwks": c.jwks,
        "id_token_signed_response_alg": c.id_token_signed_response_alg.name(),
        "access_token_signed_response_alg": c.access_token_signed_response_alg.map(|a| a.name()),
        "refresh_token_absolute_lifetime_secs": c.refresh_token_absolute_lifetime_secs,
        "access_token_lifetime_secs": c.access_token_lifetime_secs,
        "id_token_lifetime_secs": c.id_token_lifetime_secs,
        "has_secret": c.secret_hash.is_some(),
        "previous_secret_expires_ms": c.previous_secret_expires_ms.filter(|_| c.previous_secret_hash.is_some()),
        "created_at_ms": c.created_at_ms,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(flatten)]
    page: PageQuery,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/clients",
    operation_id = "list_clients",
    tag = "clients",
    params(p::Tenant, p::Page),
    responses(
        (status = 200, description = "A page of clients, in `client_id` order", body = Page<shapes::ClientView>),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_request`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Value>>> {
    require_tenant(&state, &tenant).await?;
    let keyspace = tenant_keyspace(&tenant);
    let listing = Listing {
        tag: "clients",
        keyspace: &keyspace,
        prefix: CLIENT_LISTING_PREFIX,
    };
    let page = read_page(&state.consensus, &listing, &query.page, |kv| {
        decode::<Client>(kv).map(|c| Some(view(&c)))
    })
    .await?;
    Ok(Json(page))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/clients/{client}",
    operation_id = "get_client",
    tag = "clients",
    params(p::TenantClient),
    responses(
        (status = 200, description = "The client (never a secret)", body = shapes::ClientView, headers(("ETag" = String, description = "The record's revision"))),
        (status = 404, description = "`tenant_not_found`, `client_not_found`", body = ErrorBody),
    ),
)]
pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    require_tenant(&state, &tenant).await?;
    let (client, revision) = state
        .identity
        .clients
        .get_versioned(&tenant, &id, Consistency::Linearizable)
        .await?;
    Ok(with_etag(view(&client), revision))
}

/// The registration's fields, each optional; `client_id` may be given only
/// as the client's own.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchClient {
    client_id: Option<String>,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    scopes: Option<Vec<String>>,
    require_consent: Option<bool>,
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

impl PatchClient {
    /// The change, once `client_id` (if given) is the path's.
    pub(crate) fn into_patch(self, path_id: &str) -> ApiResult<ClientPatch> {
        if self.client_id.as_deref().is_some_and(|id| id != path_id) {
            return Err(ApiError::bad_request(
                "invalid_client_metadata",
                "client_id cannot change; register a new client",
            ));
        }
        Ok(ClientPatch {
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
        })
    }
}

#[utoipa::path(
    patch,
    path = "/admin/v1/tenants/{tenant}/clients/{client}",
    operation_id = "patch_client",
    tag = "clients",
    params(p::TenantClient, p::IfMatch),
    request_body = PatchClient,
    responses(
        (status = 200, description = "The client as stored", body = shapes::ClientView, headers(("ETag" = String, description = "The record's revision"))),
        (status = 400, description = "`invalid_client_metadata` naming the field; `invalid_request`, `invalid_etag`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`, `client_not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    ),
)]
pub async fn patch(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<PatchClient>,
) -> ApiResult<Response> {
    let if_match = IfMatch::from_headers(&headers)?;
    let patch = body.into_patch(&id)?;
    require_tenant(&state, &tenant).await?;
    let written = state
        .identity
        .clients
        .update(&tenant, &id, &patch, if_match.revision())
        .await?;
    state.oidc.tokens.wait_everywhere(written.index).await;
    Ok(with_etag(view(&written.value), written.revision))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/clients/{client}",
    operation_id = "delete_client",
    tag = "clients",
    params(p::TenantClient, p::IfMatch),
    responses(
        (status = 204, description = "Deleted; its secret, codes and refresh tokens stop working on every node"),
        (status = 400, description = "`invalid_etag`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`, `client_not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    ),
)]
pub async fn delete(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let if_match = IfMatch::from_headers(&headers)?;
    require_tenant(&state, &tenant).await?;
    let written = state
        .identity
        .clients
        .delete(&tenant, &id, if_match.revision())
        .await?;
    state.oidc.tokens.wait_everywhere(written.index).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The rotation's optional body.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret stays accepted (0, the default: not at all).
    #[serde(default)]
    grace_period_secs: u64,
}

impl RotateSecret {
    /// An empty body asks for the defaults.
    pub(crate) fn parse(body: &[u8]) -> ApiResult<RotateSecret> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(RotateSecret::default());
        }
        let rotate: RotateSecret = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("invalid_request", format!("body: {e}")))?;
        if rotate.grace_period_secs > rsp_identity::clients::MAX_SECRET_GRACE_SECS {
            return Err(ApiError::bad_request(
                "invalid_request",
                "grace_period_secs must be at most 604800 (seven days)",
            ));
        }
        Ok(rotate)
    }
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/clients/{client}/secret",
    operation_id = "rotate_client_secret",
    tag = "clients",
    params(p::TenantClient, p::IfMatch),
    request_body(content = Option<RotateSecret>, description = "Optional: `grace_period_secs` 0 to 604800 (default 0)"),
    responses(
        (status = 200, description = "The client with its new secret (shown once)", body = shapes::RotatedClient, headers(("ETag" = String, description = "The record's revision"))),
        (status = 400, description = "`invalid_request`: a bad body or a client without a secret; `invalid_client_metadata`, `invalid_etag`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`, `client_not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    ),
)]
pub async fn rotate_secret(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let if_match = IfMatch::from_headers(&headers)?;
    let rotate = RotateSecret::parse(&body)?;
    require_tenant(&state, &tenant).await?;
    let (secret, written) = state
        .identity
        .clients
        .rotate_secret(
            &tenant,
            &id,
            rotate.grace_period_secs,
            state.clock().now_ms(),
            if_match.revision(),
        )
        .await?;
    state.oidc.tokens.wait_everywhere(written.index).await;
    let mut out = view(&written.value);
    out["client_secret"] = json!(secret.as_str());
    Ok(with_etag(out, written.revision))
}
