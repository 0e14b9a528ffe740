//! The web console at `/admin/`: server-rendered pages (askama,
//! HTML-escaped) for the admin API's everyday operations, signed in with
//! the admin token (the operator) or through a tenant's own OIDC login (a
//! tenant administrator, who sees and changes only their tenant).
//!
//! Parts:
//! - `session`: the console session cookie (an HMAC-sealed, expiring
//!   value naming its principal; never a token) and the anti-forgery token
//!   bound to it; [`SignedIn`] (a checked session, as an extractor: pages
//!   without one redirect to the sign-in page) and [`ConsoleForm`] (a
//!   posted form whose anti-forgery token has been checked).
//! - `access`: which admin API route each console route stands for, and
//!   the admin API's own authorization of it.
//! - `page`: answers with the console's security headers (a CSP without
//!   script or inline style, no framing, `no-store`) and its stylesheet.
//! - `calls`: the one road to the operations: the console calls the admin
//!   API's own handlers, as the operator, so every write keeps their
//!   guarantees and their error messages are shown on the page.
//! - `sign_in` (the admin token), `tenant_sign_in` (a tenant
//!   administrator, through the tenant's built-in console client),
//!   `tenants`, `users`, `clients`, `policies`, `cluster`: the
//!   pages; `templates`: their askama structs.
//!
//! Not for: anything the admin API does not offer, or more than it would
//! let the signed-in principal do.

mod access;
mod audited;
mod calls;
mod clients;
mod cluster;
mod page;
mod policies;
mod session;
mod sign_in;
mod templates;
mod tenant_sign_in;
mod tenants;
mod users;

use axum::Router;
use axum::routing::{get, post};

pub use session::{ConsoleForm, Principal, SESSION_COOKIE, SESSION_LIFETIME, SignedIn};

use crate::state::AppState;

/// The console's routes, all under `/admin/` (beside, not under, the
/// admin API's `/admin/v1/`).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/admin", get(sign_in::to_home))
        .route("/admin/", get(sign_in::home))
        .route("/admin/login", get(sign_in::to_home).post(sign_in::sign_in))
        .route("/admin/logout", post(sign_in::sign_out))
        .route("/admin/tenant-signin", get(tenant_sign_in::choose))
        .route("/admin/t/{tenant}/signin", get(tenant_sign_in::start))
        .route("/admin/t/{tenant}/callback", get(tenant_sign_in::callback))
        .route("/admin/assets/console.css", get(page::stylesheet))
        .route("/admin/tenants", get(tenants::list).post(tenants::create))
        .route(
            "/admin/tenants/{tenant}",
            get(tenants::show).post(tenants::rename),
        )
        .route("/admin/tenants/{tenant}/delete", post(tenants::delete))
        .route(
            "/admin/tenants/{tenant}/users",
            get(users::list).post(users::create),
        )
        .route("/admin/tenants/{tenant}/users/{user}", get(users::show))
        .route(
            "/admin/tenants/{tenant}/users/{user}/disabled",
            post(users::set_disabled),
        )
        .route(
            "/admin/tenants/{tenant}/users/{user}/password",
            post(users::set_password),
        )
        .route(
            "/admin/tenants/{tenant}/users/{user}/factors/{factor}/delete",
            post(users::delete_factor),
        )
        .route(
            "/admin/tenants/{tenant}/users/{user}/sessions/revoke",
            post(users::revoke_sessions),
        )
        .route(
            "/admin/tenants/{tenant}/clients",
            get(clients::list).post(clients::create),
        )
        .route(
            "/admin/tenants/{tenant}/clients/{client}",
            get(clients::show).post(clients::edit),
        )
        .route(
            "/admin/tenants/{tenant}/clients/{client}/secret",
            post(clients::rotate),
        )
        .route(
            "/admin/tenants/{tenant}/policies",
            get(policies::show).post(policies::save),
        )
        .route("/admin/cluster", get(cluster::show))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audited::record,
        ))
}
