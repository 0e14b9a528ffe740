//! The SAML service providers of a tenant:
//! `POST|GET /admin/v1/tenants/{t}/saml/service-providers` (register by
//! fields or by the SP's metadata; list) and
//! `GET|PUT|DELETE .../service-providers/{entity_id}` (the entity id
//! URL-encoded). See docs/saml.md for the fields.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use rsp_consensus::kv::tenant_keyspace;
use rsp_identity::crypto::CryptoError;
use rsp_identity::miss_gate::Ungated;
use rsp_identity::saml::SamlError;
use rsp_identity::saml::providers::{Registration, SP_LISTING_PREFIX, ServiceProvider};
use serde::Deserialize;
use serde_json::json;

use super::openapi::mirrors;
use super::openapi::params as p;
use super::openapi::shapes::{self, ErrorBody};
use super::paging::{Listing, Page, PageQuery, decode, read_page};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

impl From<SamlError> for ApiError {
    fn from(e: SamlError) -> Self {
        match e {
            SamlError::Invalid(m) | SamlError::Malformed(m) => {
                ApiError::bad_request("invalid_request", m)
            }
            SamlError::NotYet(m) => {
                ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_implemented", m)
            }
            SamlError::UnknownProvider => {
                ApiError::not_found("service_provider_not_found", e.to_string())
            }
            SamlError::Exists(_) => ApiError::conflict("service_provider_exists", e.to_string()),
            SamlError::Consensus(c) => c.into(),
            SamlError::Refused(r) => r.into(),
            SamlError::Crypto(CryptoError::NoKek) => ApiError::unavailable(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/saml/service-providers",
    operation_id = "create_service_provider",
    tag = "saml",
    params(p::Tenant),
    request_body = mirrors::Registration,
    responses(
        (status = 201, description = "Registered", body = shapes::CreatedServiceProvider),
        (status = 400, description = "`invalid_request`: a bad field or metadata", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
        (status = 409, description = "`service_provider_exists`", body = ErrorBody),
        (status = 501, description = "`not_implemented`: a metadata feature this version does not serve", body = ErrorBody),
    ),
)]
pub async fn create(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body, _): ApiJson<Registration>,
) -> ApiResult<impl IntoResponse> {
    state.tenants.get_confirmed(&tenant).await?;
    let sp = body.into_provider(state.clock().now_ms())?;
    state.identity.saml.providers.create(&tenant, &sp).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"entity_id": sp.entity_id, "service_provider": sp})),
    ))
}

/// `?limit&after`: one page, in the order of the records' keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(flatten)]
    page: PageQuery,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/saml/service-providers",
    operation_id = "list_service_providers",
    tag = "saml",
    params(p::Tenant, p::Page),
    responses(
        (status = 200, description = "A page of service providers", body = Page<mirrors::ServiceProvider>),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_request`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<ServiceProvider>>> {
    state.tenants.get_confirmed(&tenant).await?;
    let keyspace = tenant_keyspace(&tenant);
    let listing = Listing {
        tag: "saml-sps",
        keyspace: &keyspace,
        prefix: SP_LISTING_PREFIX,
    };
    let page = read_page(&state.consensus, &listing, &query.page, |kv| {
        decode(kv).map(Some)
    })
    .await?;
    Ok(Json(page))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/saml/service-providers/{entity_id}",
    operation_id = "get_service_provider",
    tag = "saml",
    params(p::TenantProvider),
    responses(
        (status = 200, description = "The service provider", body = mirrors::ServiceProvider),
        (status = 404, description = "`tenant_not_found`, `service_provider_not_found`", body = ErrorBody),
    ),
)]
pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, entity_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<ServiceProvider>> {
    state.tenants.get_confirmed(&tenant).await?;
    let sp = state
        .identity
        .saml
        .providers
        .get(&tenant, &entity_id, &Ungated)
        .await?;
    Ok(Json(sp))
}

/// Replace a registration: the body is a whole registration (as for
/// `POST`), whose entity id must be the path's.
#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/saml/service-providers/{entity_id}",
    operation_id = "replace_service_provider",
    tag = "saml",
    params(p::TenantProvider),
    request_body = mirrors::Registration,
    responses(
        (status = 200, description = "The service provider as stored", body = mirrors::ServiceProvider),
        (status = 400, description = "`invalid_request`: a bad field, or an entity id other than the path's", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`, `service_provider_not_found`", body = ErrorBody),
        (status = 501, description = "`not_implemented`", body = ErrorBody),
    ),
)]
pub async fn replace(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, entity_id)): ApiPath<(String, String)>,
    ApiJson(body, _): ApiJson<Registration>,
) -> ApiResult<Json<ServiceProvider>> {
    state.tenants.get_confirmed(&tenant).await?;
    let sp = replacement(body, &entity_id, state.clock().now_ms())?;
    let sp = state.identity.saml.providers.replace(&tenant, sp).await?;
    Ok(Json(sp))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/saml/service-providers/{entity_id}",
    operation_id = "delete_service_provider",
    tag = "saml",
    params(p::TenantProvider),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`tenant_not_found`, `service_provider_not_found`", body = ErrorBody),
    ),
)]
pub async fn delete(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, entity_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.tenants.get_confirmed(&tenant).await?;
    state
        .identity
        .saml
        .providers
        .delete(&tenant, &entity_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The provider a `PUT` to `entity_id`'s path registers, checked: a
/// whole registration whose entity id (given, or from its metadata) is
/// the path's.
pub(crate) fn replacement(
    mut body: Registration,
    entity_id: &str,
    now_ms: u64,
) -> ApiResult<ServiceProvider> {
    match &body.entity_id {
        Some(id) if id != entity_id => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "entity_id differs from the path's",
            ));
        }
        Some(_) => {}
        None if body.metadata_xml.is_none() => body.entity_id = Some(entity_id.to_owned()),
        None => {}
    }
    let sp = body.into_provider(now_ms)?;
    if sp.entity_id != entity_id {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the metadata's entityID differs from the path's",
        ));
    }
    Ok(sp)
}
