//! `GET /admin/v1/openapi.json`: the admin API as an OpenAPI 3.1
//! document, generated from the handlers' `#[utoipa::path]` annotations
//! (so it cannot drift from them), with the request bodies' and answers'
//! schemas.
//!
//! Parts: [`AdminApi`] lists every annotated handler; [`shapes`] describes
//! the answers handlers build with `json!` and the error bodies;
//! [`mirrors`] describes the types other crates own that routes take or
//! answer as they are; [`params`] holds the shared path, query and header
//! parameters. `Common` (a modifier) adds what every admin call shares:
//! the bearer scheme and the errors any call may answer.
//!
//! `api/http/tests/it/admin_openapi.rs` proves the document complete:
//! every method of every route [`super::routes`] serves is in it, and
//! nothing else is. A new route without an annotation fails that test.

#[cfg(test)]
mod mirror_checks;
pub mod mirrors;
pub mod params;
pub mod shapes;

use axum::Json;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{
    accounts, audit, clients, cluster, factors, keys, kv, mfa_policy, policies, saml, sessions,
    tenants, usage, users,
};
use crate::authz::caller::AdminCaller;

/// The name of the security scheme every operation requires.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rsp admin API",
        description = "Administration of an rsp cluster: tenants, users, clients, factors, \
                       sessions, signing keys, policies, SAML service providers, the cluster \
                       and the operator key-value space. Errors are \
                       `{\"error\": \"<stable_code>\", \"message\"}` (docs/admin-api.md)."
    ),
    paths(
        document,
        audit::list,
        audit::export,
        audit::list_cluster,
        usage::get,
        tenants::create,
        tenants::list,
        tenants::get,
        tenants::patch,
        tenants::delete,
        accounts::create_user,
        users::list,
        users::get,
        users::patch,
        users::set_password,
        users::delete,
        accounts::create_client,
        clients::list,
        clients::get,
        clients::patch,
        clients::delete,
        clients::rotate_secret,
        factors::create,
        factors::list,
        factors::reset,
        factors::delete,
        mfa_policy::get,
        mfa_policy::put,
        sessions::list,
        sessions::revoke_user,
        sessions::revoke,
        keys::list,
        keys::rotate,
        keys::get_settings,
        keys::put_settings,
        policies::get_policies,
        policies::put_policies,
        policies::versions,
        policies::version,
        policies::restore,
        policies::links,
        policies::put_link,
        policies::delete_link,
        policies::get_entities,
        policies::put_entities,
        saml::create,
        saml::list,
        saml::get,
        saml::replace,
        saml::delete,
        cluster::status,
        cluster::add_node,
        cluster::remove_node,
        cluster::kek_status,
        cluster::kek_rotate,
        cluster::backup,
        kv::get,
        kv::put,
        kv::delete,
        kv::txn,
        kv::watch,
    ),
    modifiers(&Common),
    tags(
        (name = "tenants", description = "Tenants"),
        (name = "users", description = "A tenant's users"),
        (name = "clients", description = "A tenant's OAuth clients"),
        (name = "factors", description = "Users' second factors and the tenant's MFA policy"),
        (name = "sessions", description = "Users' browser sessions"),
        (name = "keys", description = "A tenant's signing keys"),
        (name = "policies", description = "A tenant's Cedar policies, links and entities"),
        (name = "saml", description = "A tenant's SAML service providers"),
        (name = "cluster", description = "The cluster's membership and key-encryption key"),
        (name = "kv", description = "The operator key-value space"),
        (name = "audit", description = "The audit trail and usage per day"),
        (name = "openapi", description = "This document"),
    ),
)]
pub struct AdminApi;

/// What every admin operation shares.
struct Common;

/// Errors any admin call may answer, whatever its route.
const COMMON_ERRORS: [(&str, &str); 5] = [
    (
        "401",
        "`missing_token`, `invalid_token`: no token, or not a valid one",
    ),
    (
        "403",
        "`forbidden`: the admin policies deny this caller this call; `insufficient_scope`: a token without `rsp:admin`",
    ),
    (
        "429",
        "`too_many_requests` (with `Retry-After`): too many failed authentications from this address",
    ),
    ("500", "`internal_error`: details only in the server log"),
    (
        "503",
        "`unavailable` (with `Retry-After`): no quorum or leader reachable; nothing was applied",
    ),
];

/// Writes may also carry too large a body, or time out.
const WRITE_ERRORS: [(&str, &str); 2] = [
    ("413", "`payload_too_large`: a body over 1 MiB"),
    (
        "504",
        "`outcome_unknown`: the write was sent but not answered in time; it may have been applied",
    ),
];

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token, or an access token of a tenant with scope `rsp:admin`",
                    ))
                    .build(),
            ),
        );
        let error = || {
            ResponseBuilder::new().content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
        };
        for item in doc.paths.paths.values_mut() {
            let reads = [&mut item.get];
            let writes = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            let ops = reads
                .into_iter()
                .map(|op| (op, false))
                .chain(writes.into_iter().map(|op| (op, true)));
            for (op, write) in ops {
                let Some(op) = op.as_mut() else { continue };
                op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                let extra = if write { &WRITE_ERRORS[..] } else { &[] };
                for (status, description) in COMMON_ERRORS.iter().chain(extra) {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error().description(*description).build().into());
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/admin/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "openapi",
    responses(
        (status = 200, description = "The admin API as an OpenAPI 3.1 document", body = Object),
    ),
)]
pub async fn document(_: AdminCaller) -> Json<Document> {
    Json(AdminApi::openapi())
}
