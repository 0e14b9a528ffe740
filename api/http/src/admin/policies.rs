//! The policy store of a tenant over the admin API:
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `PUT /admin/v1/tenants/{t}/policies` | `{"policies": "<Cedar>", "schema"?: {...}}` | 200 `{"version"}`; 400 `invalid_policies` / `invalid_schema` with `diagnostics` |
//! | `GET .../policies` | | the current version (text, schema, author, time) |
//! | `GET .../policies/versions` | | `{"current", "versions": [{"version", "author", "time_ms", "restored_from"?}]}` |
//! | `GET .../policies/versions/{n}` | | that version |
//! | `POST .../policies/versions/{n}/restore` | | 200 `{"version", "restored_from"}` |
//! | `PUT .../entities` | `[<Cedar entity JSON>]` | 200 `{"version", "entities"}`; 400 `invalid_entities` |
//! | `GET .../entities` | | `{"entities", "author", "time_ms"}` |
//! | `GET .../policies/links` | | `{"links": [...]}` |
//! | `PUT .../policies/links/{id}` | `{"template", "values": {"?principal"?, "?resource"?}}` | 200 `{"version", "link"}`; 400 `invalid_link` |
//! | `DELETE .../policies/links/{id}` | | 204 |
//!
//! The admin layer ([`crate::authz::admin_access`]) has already asked the
//! built-in admin policies (reads `ReadPolicies`, writes `WritePolicies` /
//! `WriteEntities`); handlers take [`AdminCaller`] for the author of a
//! write. Writes answer once the change governs decisions on every node.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use rsp_policies::StoredState;
use rsp_policies::records::{PolicyVersion, StoredEntities, StoredLink};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::openapi::mirrors;
use super::openapi::params as p;
use super::openapi::shapes::{self, PolicyErrorBody};
use crate::authz::caller::{AdminCaller, require_tenant};
use crate::authz::error::{AuthzError, AuthzResult};
use crate::extract::ApiJson;
use crate::extract::ApiPath;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicies {
    /// Cedar policies and templates.
    policies: String,
    /// A Cedar JSON schema the policies are validated against.
    #[serde(default)]
    schema: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutLink {
    /// The `@id` of one of the tenant's templates.
    template: String,
    /// Slot (`?principal`, `?resource`) to entity uid in Cedar syntax
    /// (`User::"bob"`).
    #[serde(default)]
    values: BTreeMap<String, String>,
}

/// What the store compiles before it accepts a write, for a tenant with
/// nothing else stored: the part of its checks that needs no state.
/// [`super::bodies`] runs these.
fn compile_alone(state: StoredState) -> AuthzResult<()> {
    state.compile()?;
    Ok(())
}

fn first_version(policies: String, schema: Option<Value>) -> PolicyVersion {
    PolicyVersion {
        version: 1,
        policies,
        schema,
        author: String::new(),
        time_ms: 0,
        restored_from: None,
    }
}

impl PutPolicies {
    pub(crate) fn compile_alone(&self) -> AuthzResult<()> {
        compile_alone(StoredState {
            current: Some(first_version(self.policies.clone(), self.schema.clone())),
            ..StoredState::default()
        })
    }
}

impl PutLink {
    /// The link `id` beside `policies`, which stand in for the tenant's
    /// (and should hold the template).
    pub(crate) fn compile_beside(&self, id: &str, policies: &str) -> AuthzResult<()> {
        compile_alone(StoredState {
            current: Some(first_version(policies.to_string(), None)),
            links: vec![StoredLink {
                id: id.to_string(),
                template: self.template.clone(),
                values: self.values.clone(),
                author: String::new(),
                time_ms: 0,
            }],
            ..StoredState::default()
        })
    }
}

pub(crate) fn compile_entities_alone(entities: &[Value]) -> AuthzResult<()> {
    compile_alone(StoredState {
        entities: Some(StoredEntities {
            entities: Value::Array(entities.to_vec()),
            author: String::new(),
            time_ms: 0,
        }),
        ..StoredState::default()
    })
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/policies",
    operation_id = "put_policies",
    tag = "policies",
    params(p::Tenant),
    request_body = PutPolicies,
    responses(
        (status = 200, description = "Accepted; governs decisions on every node", body = mirrors::Receipt),
        (status = 400, description = "`invalid_policies`, `invalid_schema` with Cedar's `diagnostics`; `invalid_request`", body = PolicyErrorBody),
        (status = 404, description = "`tenant_not_found`", body = PolicyErrorBody),
        (status = 409, description = "`conflict`: a concurrent policy write (with `Retry-After`)", body = PolicyErrorBody),
    ),
)]
pub async fn put_policies(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body, _): ApiJson<PutPolicies, AuthzError>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let receipt = state
        .authz
        .policies
        .store()
        .put_policies(&tenant, body.policies, body.schema, &caller.author())
        .await?;
    Ok(Json(json!(receipt)))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/policies",
    operation_id = "get_policies",
    tag = "policies",
    params(p::Tenant),
    responses(
        (status = 200, description = "The current version (`{\"version\": 0, \"policies\": \"\"}` before any)", body = mirrors::PolicyVersion),
        (status = 404, description = "`tenant_not_found`", body = PolicyErrorBody),
    ),
)]
pub async fn get_policies(
    _caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let stored = state.authz.policies.store().read(&tenant).await?;
    Ok(Json(match stored.current {
        Some(v) => json!(v),
        None => json!({"version": 0, "policies": ""}),
    }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/policies/versions",
    operation_id = "list_policy_versions",
    tag = "policies",
    params(p::Tenant),
    responses(
        (status = 200, description = "Every version, without its text", body = shapes::PolicyVersions),
        (status = 404, description = "`tenant_not_found`", body = PolicyErrorBody),
    ),
)]
pub async fn versions(
    _caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let versions = state.authz.policies.store().versions(&tenant).await?;
    let current = versions.iter().find(|v| v.current).map_or(0, |v| v.version);
    Ok(Json(json!({"current": current, "versions": versions})))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/policies/versions/{n}",
    operation_id = "get_policy_version",
    tag = "policies",
    params(p::TenantVersion),
    responses(
        (status = 200, description = "That version", body = mirrors::PolicyVersion),
        (status = 404, description = "`tenant_not_found`, `not_found`", body = PolicyErrorBody),
    ),
)]
pub async fn version(
    _caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, n)): ApiPath<(String, u64)>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    Ok(Json(json!(
        state.authz.policies.store().version(&tenant, n).await?
    )))
}

#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant}/policies/versions/{n}/restore",
    operation_id = "restore_policy_version",
    tag = "policies",
    params(p::TenantVersion),
    responses(
        (status = 200, description = "A new version with that version's text", body = shapes::Restored),
        (status = 400, description = "`invalid_policies`: it no longer compiles beside the links", body = PolicyErrorBody),
        (status = 404, description = "`tenant_not_found`, `not_found`", body = PolicyErrorBody),
        (status = 409, description = "`conflict`", body = PolicyErrorBody),
    ),
)]
pub async fn restore(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, n)): ApiPath<(String, u64)>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let receipt = state
        .authz
        .policies
        .store()
        .restore(&tenant, n, &caller.author())
        .await?;
    Ok(Json(
        json!({"version": receipt.version, "restored_from": n}),
    ))
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/entities",
    operation_id = "put_entities",
    tag = "policies",
    params(p::Tenant),
    request_body = Vec<Object>,
    responses(
        (status = 200, description = "Stored", body = shapes::EntitiesWritten),
        (status = 400, description = "`invalid_entities` with `diagnostics`; `invalid_request`", body = PolicyErrorBody),
        (status = 404, description = "`tenant_not_found`", body = PolicyErrorBody),
        (status = 409, description = "`conflict`", body = PolicyErrorBody),
    ),
)]
pub async fn put_entities(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(body, _): ApiJson<Vec<Value>, AuthzError>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let count = body.len();
    let receipt = state
        .authz
        .policies
        .store()
        .put_entities(&tenant, Value::Array(body), &caller.author())
        .await?;
    Ok(Json(json!({"version": receipt.version, "entities": count})))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/entities",
    operation_id = "get_entities",
    tag = "policies",
    params(p::Tenant),
    responses(
        (status = 200, description = "The tenant's entities", body = mirrors::StoredEntities),
        (status = 404, description = "`tenant_not_found`", body = PolicyErrorBody),
    ),
)]
pub async fn get_entities(
    _caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let stored = state.authz.policies.store().read(&tenant).await?;
    Ok(Json(match stored.entities {
        Some(e) => json!(e),
        None => json!({"entities": []}),
    }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/policies/links",
    operation_id = "list_policy_links",
    tag = "policies",
    params(p::Tenant),
    responses(
        (status = 200, description = "The template-linked policies", body = shapes::PolicyLinks),
        (status = 404, description = "`tenant_not_found`", body = PolicyErrorBody),
    ),
)]
pub async fn links(
    _caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let stored = state.authz.policies.store().read(&tenant).await?;
    Ok(Json(json!({"links": stored.links})))
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/policies/links/{id}",
    operation_id = "put_policy_link",
    tag = "policies",
    params(p::Tenant, ("id" = String, Path, description = "The link's policy id")),
    request_body = PutLink,
    responses(
        (status = 200, description = "Linked", body = shapes::LinkWritten),
        (status = 400, description = "`invalid_link` with `diagnostics`; `invalid_request`", body = PolicyErrorBody),
        (status = 404, description = "`tenant_not_found`", body = PolicyErrorBody),
        (status = 409, description = "`conflict`", body = PolicyErrorBody),
    ),
)]
pub async fn put_link(
    caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ApiJson(body, _): ApiJson<PutLink, AuthzError>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let receipt = state
        .authz
        .policies
        .store()
        .link(&tenant, &id, &body.template, body.values, &caller.author())
        .await?;
    Ok(Json(json!({"version": receipt.version, "link": id})))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/policies/links/{id}",
    operation_id = "delete_policy_link",
    tag = "policies",
    params(p::Tenant, ("id" = String, Path, description = "The link's policy id")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 404, description = "`tenant_not_found`, `not_found`", body = PolicyErrorBody),
        (status = 409, description = "`conflict`", body = PolicyErrorBody),
    ),
)]
pub async fn delete_link(
    _caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> AuthzResult<StatusCode> {
    require_tenant(&state, &tenant).await?;
    state.authz.policies.store().unlink(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
