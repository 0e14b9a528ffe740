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

use crate::authz::caller::{AdminCaller, require_tenant};
use crate::authz::error::{AuthzError, AuthzResult};
use crate::extract::ApiJson;
use crate::extract::ApiPath;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutPolicies {
    policies: String,
    #[serde(default)]
    schema: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutLink {
    template: String,
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

pub async fn links(
    _caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> AuthzResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let stored = state.authz.policies.store().read(&tenant).await?;
    Ok(Json(json!({"links": stored.links})))
}

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

pub async fn delete_link(
    _caller: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> AuthzResult<StatusCode> {
    require_tenant(&state, &tenant).await?;
    state.authz.policies.store().unlink(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
