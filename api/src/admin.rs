//! The admin API (`/admin/v1`), as in the outside contract. Every handler
//! takes the [`crate::extract::Admin`] extractor.

pub mod accounts;
pub mod cluster;
pub mod kv;
pub mod tenants;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/tenants", post(tenants::create))
        .route(
            "/admin/v1/tenants/{tenant}",
            get(tenants::get).delete(tenants::delete),
        )
        .route(
            "/admin/v1/tenants/{tenant}/users",
            post(accounts::create_user),
        )
        .route(
            "/admin/v1/tenants/{tenant}/clients",
            post(accounts::create_client),
        )
        .route("/admin/v1/cluster", get(cluster::status))
        .route("/admin/v1/cluster/nodes", post(cluster::add_node))
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
