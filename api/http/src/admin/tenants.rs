//! `POST|GET /admin/v1/tenants`, `GET|PATCH|DELETE /admin/v1/tenants/{t}`.
//!
//! Reads are linearizable; `GET` answers an `ETag`, and `PATCH` and `DELETE`
//! honour `If-Match`. Deleting a tenant that holds users, clients, SAML
//! service providers or policies needs `?force=true` (409 `tenant_not_empty`
//! otherwise): everything in the tenant goes with it, in one write.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::paging::{Listing, Page, PageQuery, read_page};
use super::preconditions::{IfMatch, etag, precondition_failed};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use rsp_identity::tenants::{
    SYSTEM_KEYSPACE, TENANT_LISTING_PREFIX, Tenant, TenantError, check_new,
};

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
            TenantError::Changed => precondition_failed(),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(flatten)]
    page: PageQuery,
}

pub async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Value>>> {
    let listing = Listing {
        tag: "tenants",
        keyspace: SYSTEM_KEYSPACE,
        prefix: TENANT_LISTING_PREFIX,
    };
    let page = read_page(&state.consensus, &listing, &query.page, |kv| {
        serde_json::from_slice::<Tenant>(&kv.value)
            .map(|t| serde_json::to_value(t).ok())
            .map_err(ApiError::internal)
    })
    .await?;
    Ok(Json(page))
}

pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let (tenant, revision) = state.tenants.get_versioned(&id).await?;
    Ok(([(header::ETAG, etag(revision))], Json(tenant)).into_response())
}

/// `PATCH /admin/v1/tenants/{t}`: what may change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchTenant {
    display_name: Option<String>,
    home_region: Option<Value>,
    settings: Option<Value>,
}

impl PatchTenant {
    /// The new display name, once the parts this version does not serve
    /// are refused (501 naming them).
    pub(crate) fn display_name(&self) -> ApiResult<Option<&str>> {
        for (field, given) in [
            ("settings", self.settings.is_some()),
            ("home_region", self.home_region.is_some()),
        ] {
            if given {
                return Err(ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "not_implemented",
                    format!("`{field}` is not served by this version; `display_name` is"),
                ));
            }
        }
        if let Some(name) = &self.display_name {
            check_new("stand-in", name)?;
        }
        Ok(self.display_name.as_deref())
    }
}

pub async fn patch(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<PatchTenant>,
) -> ApiResult<Response> {
    let if_match = IfMatch::from_headers(&headers)?;
    let display_name = body.display_name()?;
    let (tenant, current) = state.tenants.get_versioned(&id).await?;
    if if_match.revision().is_some_and(|r| r != current) {
        return Err(precondition_failed());
    }
    let (tenant, revision) = match display_name {
        Some(name) => state.tenants.rename(&id, name, current).await?,
        None => (tenant, current),
    };
    Ok(([(header::ETAG, etag(revision))], Json(tenant)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

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
