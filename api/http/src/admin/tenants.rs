//! `POST|GET /admin/v1/tenants`, `GET|PATCH|DELETE /admin/v1/tenants/{t}`.
//!
//! Reads are linearizable; `GET` answers an `ETag`, and `PATCH` and `DELETE`
//! honour `If-Match`. Deleting a tenant that holds users, clients, SAML
//! service providers or policies needs `?force=true` (409 `tenant_not_empty`
//! otherwise): everything in the tenant goes with it, in one write.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::openapi::mirrors;
use super::openapi::params as p;
use super::openapi::shapes::ErrorBody;
use super::paging::{Listing, Page, PageQuery, decode, read_page};
use super::preconditions::{IfMatch, precondition_failed, with_etag};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use rsp_identity::tenants::{
    SYSTEM_KEYSPACE, TENANT_LISTING_PREFIX, Tenant, TenantError, TenantSettings, check_new,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1-62 characters of `a-z 0-9 -`, starting with a letter or digit.
    id: String,
    /// Defaults to the id.
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
            TenantError::Changed => precondition_failed(),
            TenantError::Settings(e) => ApiError::bad_request("invalid_settings", e.to_string()),
        }
    }
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants",
    operation_id = "create_tenant",
    tag = "tenants",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "The new tenant", body = mirrors::Tenant),
        (status = 400, description = "`invalid_request`: a bad id or display name", body = ErrorBody),
        (status = 409, description = "`tenant_exists`", body = ErrorBody),
    ),
)]
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(flatten)]
    page: PageQuery,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants",
    operation_id = "list_tenants",
    tag = "tenants",
    params(p::Page),
    responses(
        (status = 200, description = "A page of tenants, in id order", body = Page<mirrors::Tenant>),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_request`", body = ErrorBody),
    ),
)]
pub async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Tenant>>> {
    let listing = Listing {
        tag: "tenants",
        keyspace: SYSTEM_KEYSPACE,
        prefix: TENANT_LISTING_PREFIX,
    };
    let page = read_page(&state.consensus, &listing, &query.page, |kv| {
        decode::<Tenant>(kv).map(Some)
    })
    .await?;
    Ok(Json(page))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}",
    operation_id = "get_tenant",
    tag = "tenants",
    params(p::Tenant),
    responses(
        (status = 200, description = "The tenant", body = mirrors::Tenant, headers(("ETag" = String, description = "The record's revision"))),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let (tenant, revision) = state.tenants.get_versioned(&id).await?;
    Ok(with_etag(tenant, revision))
}

/// `PATCH /admin/v1/tenants/{t}`: what may change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTenant {
    display_name: Option<String>,
    /// Not served by this version (501 `not_implemented`).
    home_region: Option<Value>,
    /// The settings to change; `null` returns one to the node's default
    /// (docs/admin-api.md, "Tenant settings").
    #[schema(value_type = Option<mirrors::TenantSettings>)]
    settings: Option<Map<String, Value>>,
}

impl PatchTenant {
    /// What the patch may change, once the parts this version does not
    /// serve are refused (501 naming them) and the display name is checked.
    pub(crate) fn check(&self) -> ApiResult<()> {
        if self.home_region.is_some() {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "not_implemented",
                "`home_region` is not served by this version; `display_name` and `settings` are",
            ));
        }
        if let Some(name) = &self.display_name {
            check_new("stand-in", name)?;
        }
        if let Some(settings) = &self.settings {
            TenantSettings::default()
                .patched(settings)
                .map_err(TenantError::from)?;
        }
        Ok(())
    }
}

#[utoipa::path(
    patch,
    path = "/admin/v1/tenants/{tenant}",
    operation_id = "patch_tenant",
    tag = "tenants",
    params(p::Tenant, p::IfMatch),
    request_body = PatchTenant,
    responses(
        (status = 200, description = "The tenant as stored", body = mirrors::Tenant, headers(("ETag" = String, description = "The record's revision"))),
        (status = 400, description = "`invalid_request`, `invalid_etag`; `invalid_settings`, naming the setting", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
        (status = 501, description = "`not_implemented`: `home_region`", body = ErrorBody),
    ),
)]
pub async fn patch(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<PatchTenant>,
) -> ApiResult<Response> {
    let if_match = IfMatch::from_headers(&headers)?;
    body.check()?;
    let (tenant, current) = state.tenants.get_versioned(&id).await?;
    if if_match.revision().is_some_and(|r| r != current) {
        return Err(precondition_failed());
    }
    if body.display_name.is_none() && body.settings.is_none() {
        return Ok(with_etag(tenant, current));
    }
    let (tenant, revision, index) = state
        .tenants
        .update(
            &id,
            body.display_name.as_deref(),
            body.settings.as_ref(),
            current,
        )
        .await?;
    if body.settings.is_some() {
        // Acknowledged once every node uses the new settings (a node that
        // does not confirm in time is logged and catches up).
        state.oidc.tokens.wait_everywhere(index).await;
    }
    Ok(with_etag(tenant, revision))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}",
    operation_id = "delete_tenant",
    tag = "tenants",
    params(
        p::Tenant,
        p::IfMatch,
        ("force" = Option<bool>, Query, description = "Delete a tenant that holds data, with all of it"),
    ),
    responses(
        (status = 204, description = "Deleted, with everything in it"),
        (status = 400, description = "`invalid_etag`, `invalid_request`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`tenant_not_empty`: the tenant holds data and `force` was not given", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    ),
)]
pub async fn delete(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let if_match = IfMatch::from_headers(&headers)?;
    if !query.force && state.tenants.has_data(&id).await? {
        // The tenant must exist for "not empty" to mean anything.
        state.tenants.get_versioned(&id).await?;
        return Err(ApiError::conflict(
            "tenant_not_empty",
            "the tenant holds users, clients, service providers or policies; delete with ?force=true to remove them all",
        ));
    }
    state.tenants.delete_at(&id, if_match.revision()).await?;
    Ok(StatusCode::NO_CONTENT)
}
