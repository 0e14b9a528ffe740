//! The admin API (`/admin/v1`), as in the outside contract.
//!
//! Every route added in [`routes`] sits behind one layer
//! ([`crate::authz::admin_access::guard`]) that authenticates the caller
//! and asks the built-in Cedar admin policies whether it may call this
//! method on this route (401 / 403 `forbidden` otherwise); routes nobody
//! classified are operator-only. Handlers also take the
//! [`crate::authz::caller::AdminCaller`] extractor, which trusts the
//! layer's verdict.

pub mod accounts;
pub mod audit;
#[doc(hidden)]
pub mod bodies;
pub mod clients;
pub mod cluster;
pub mod factors;
pub mod keys;
pub mod kv;
pub mod mfa_policy;
pub mod openapi;
pub mod paging;
pub mod policies;
pub mod preconditions;
pub mod saml;
pub mod sessions;
pub mod tenants;
pub mod usage;
pub mod users;

use axum::Router;
use axum::routing::{MethodRouter, get, post};

use crate::state::AppState;

/// The admin routes, recorded as they are added (tests enumerate them to
/// prove that every one is authorized).
pub struct AdminRoutes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl AdminRoutes {
    fn new() -> Self {
        AdminRoutes {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    pub fn route(mut self, path: &'static str, method_router: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    /// Every route pattern, in the order added.
    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }
}

/// The admin API behind its authorization layer.
pub fn router(state: &AppState) -> Router<AppState> {
    routes()
        .router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::authz::admin_access::guard,
        ))
}

/// Add admin routes here: the layer in [`router`] covers all of them.
pub fn routes() -> AdminRoutes {
    AdminRoutes::new()
        .route(
            "/admin/v1/tenants",
            post(tenants::create).get(tenants::list),
        )
        .route(
            "/admin/v1/tenants/{tenant}",
            get(tenants::get)
                .patch(tenants::patch)
                .delete(tenants::delete),
        )
        .route(
            "/admin/v1/tenants/{tenant}/users",
            post(accounts::create_user).get(users::list),
        )
        .route(
            "/admin/v1/tenants/{tenant}/users/{user}",
            get(users::get).patch(users::patch).delete(users::delete),
        )
        .route(
            "/admin/v1/tenants/{tenant}/users/{user}/password",
            axum::routing::put(users::set_password),
        )
        .route(
            "/admin/v1/tenants/{tenant}/clients",
            post(accounts::create_client).get(clients::list),
        )
        .route(
            "/admin/v1/tenants/{tenant}/clients/{client}",
            get(clients::get)
                .patch(clients::patch)
                .delete(clients::delete),
        )
        .route(
            "/admin/v1/tenants/{tenant}/clients/{client}/secret",
            post(clients::rotate_secret),
        )
        .route(
            "/admin/v1/tenants/{tenant}/users/{user}/factors",
            post(factors::create)
                .get(factors::list)
                .delete(factors::reset),
        )
        .route(
            "/admin/v1/tenants/{tenant}/users/{user}/factors/{factor}",
            axum::routing::delete(factors::delete),
        )
        .route(
            "/admin/v1/tenants/{tenant}/users/{user}/sessions",
            get(sessions::list).delete(sessions::revoke_user),
        )
        .route(
            "/admin/v1/tenants/{tenant}/sessions/{sid}",
            axum::routing::delete(sessions::revoke),
        )
        .route("/admin/v1/tenants/{tenant}/keys", get(keys::list))
        .route("/admin/v1/tenants/{tenant}/keys/rotate", post(keys::rotate))
        .route(
            "/admin/v1/tenants/{tenant}/keys/settings",
            get(keys::get_settings).put(keys::put_settings),
        )
        .route(
            "/admin/v1/tenants/{tenant}/mfa-policy",
            get(mfa_policy::get).put(mfa_policy::put),
        )
        .route(
            "/admin/v1/tenants/{tenant}/policies",
            get(policies::get_policies).put(policies::put_policies),
        )
        .route(
            "/admin/v1/tenants/{tenant}/policies/versions",
            get(policies::versions),
        )
        .route(
            "/admin/v1/tenants/{tenant}/policies/versions/{n}",
            get(policies::version),
        )
        .route(
            "/admin/v1/tenants/{tenant}/policies/versions/{n}/restore",
            post(policies::restore),
        )
        .route(
            "/admin/v1/tenants/{tenant}/policies/links",
            get(policies::links),
        )
        .route(
            "/admin/v1/tenants/{tenant}/policies/links/{id}",
            axum::routing::put(policies::put_link).delete(policies::delete_link),
        )
        .route(
            "/admin/v1/tenants/{tenant}/entities",
            get(policies::get_entities).put(policies::put_entities),
        )
        .route(
            "/admin/v1/tenants/{tenant}/saml/service-providers",
            post(saml::create).get(saml::list),
        )
        .route(
            "/admin/v1/tenants/{tenant}/saml/service-providers/{entity_id}",
            get(saml::get).put(saml::replace).delete(saml::delete),
        )
        .route("/admin/v1/tenants/{tenant}/audit", get(audit::list))
        .route(
            "/admin/v1/tenants/{tenant}/audit/export",
            get(audit::export),
        )
        .route("/admin/v1/tenants/{tenant}/usage", get(usage::get))
        .route("/admin/v1/audit", get(audit::list_cluster))
        .route("/admin/v1/openapi.json", get(openapi::document))
        .route("/admin/v1/cluster", get(cluster::status))
        .route("/admin/v1/cluster/nodes", post(cluster::add_node))
        .route("/admin/v1/cluster/kek", get(cluster::kek_status))
        .route("/admin/v1/cluster/backup", get(cluster::backup))
        .route("/admin/v1/cluster/kek/rotate", post(cluster::kek_rotate))
        .route(
            "/admin/v1/cluster/nodes/{id}",
            axum::routing::delete(cluster::remove_node),
        )
        .route("/admin/v1/kv/txn", post(kv::txn))
        .route("/admin/v1/kv/watch", get(kv::watch))
        .route(
            "/admin/v1/kv/{key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
}
