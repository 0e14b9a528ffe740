//! What a console page or form may be asked for: each console route stands
//! for an admin API route ([`api_route`]), and a signed-in session may use
//! it only if the admin API would let the same principal call that route
//! ([`authorize`]: [`admin_access::decide`] then
//! [`AdminCaller::authorize`], the built-in Cedar admin policies). So the
//! console cannot grant more than the API: a tenant administrator sees and
//! changes their own tenant's users, clients and policies, and is refused
//! the tenant list, tenant creation, renaming and deletion, and the
//! cluster page. A console route missing from the table stands for no
//! admin route, which only the operator may call.

use axum::http::{Method, StatusCode};
use rsp_policies::AdminAction;

use super::page::Problem;
use super::session::SignedIn;
use crate::authz::admin_access;
#[cfg(doc)]
use crate::authz::caller::AdminCaller;
use crate::state::AppState;

/// What a console route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// Only a session (signing out).
    Session,
    /// What calling this admin API route with this method needs.
    Api(Method, &'static str),
}

const T: &str = "/admin/v1/tenants/{tenant}";

/// The admin API route the console route `route` (as axum matched it)
/// stands for with `method`.
pub fn api_route(method: &Method, route: &str) -> Needs {
    use Needs::{Api, Session};
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let (api_method, api): (Method, &'static str) = match route {
        "/admin/logout" if post => return Session,
        "/admin/tenants" if get => (Method::GET, "/admin/v1/tenants"),
        "/admin/tenants" if post => (Method::POST, "/admin/v1/tenants"),
        "/admin/tenants/{tenant}" if get => (Method::GET, T),
        "/admin/tenants/{tenant}" if post => (Method::PATCH, T),
        "/admin/tenants/{tenant}/delete" if post => (Method::DELETE, T),
        "/admin/tenants/{tenant}/users" if get => (Method::GET, "/admin/v1/tenants/{tenant}/users"),
        "/admin/tenants/{tenant}/users" if post => {
            (Method::POST, "/admin/v1/tenants/{tenant}/users")
        }
        "/admin/tenants/{tenant}/users/{user}" if get => {
            (Method::GET, "/admin/v1/tenants/{tenant}/users/{user}")
        }
        "/admin/tenants/{tenant}/users/{user}/disabled" if post => {
            (Method::PATCH, "/admin/v1/tenants/{tenant}/users/{user}")
        }
        "/admin/tenants/{tenant}/users/{user}/password" if post => (
            Method::PUT,
            "/admin/v1/tenants/{tenant}/users/{user}/password",
        ),
        "/admin/tenants/{tenant}/users/{user}/factors/{factor}/delete" if post => (
            Method::DELETE,
            "/admin/v1/tenants/{tenant}/users/{user}/factors/{factor}",
        ),
        "/admin/tenants/{tenant}/users/{user}/sessions/revoke" if post => (
            Method::DELETE,
            "/admin/v1/tenants/{tenant}/users/{user}/sessions",
        ),
        "/admin/tenants/{tenant}/clients" if get => {
            (Method::GET, "/admin/v1/tenants/{tenant}/clients")
        }
        "/admin/tenants/{tenant}/clients" if post => {
            (Method::POST, "/admin/v1/tenants/{tenant}/clients")
        }
        "/admin/tenants/{tenant}/clients/{client}" if get => {
            (Method::GET, "/admin/v1/tenants/{tenant}/clients/{client}")
        }
        "/admin/tenants/{tenant}/clients/{client}" if post => {
            (Method::PATCH, "/admin/v1/tenants/{tenant}/clients/{client}")
        }
        "/admin/tenants/{tenant}/clients/{client}/secret" if post => (
            Method::POST,
            "/admin/v1/tenants/{tenant}/clients/{client}/secret",
        ),
        "/admin/tenants/{tenant}/policies" if get => {
            (Method::GET, "/admin/v1/tenants/{tenant}/policies")
        }
        "/admin/tenants/{tenant}/policies" if post => {
            (Method::PUT, "/admin/v1/tenants/{tenant}/policies")
        }
        "/admin/cluster" if get => (Method::GET, "/admin/v1/cluster"),
        _ => (method.clone(), ""),
    };
    Api(api_method, api)
}

/// Whether `signed` may use the console route `route` with `method`, its
/// `{tenant}` segment being `tenant`: 403 otherwise.
pub fn authorize(
    state: &AppState,
    signed: &SignedIn,
    method: &Method,
    route: &str,
    tenant: Option<String>,
) -> Result<(), Problem> {
    let Needs::Api(api_method, api) = api_route(method, route) else {
        return Ok(());
    };
    let (action, resource) = admin_access::decide(&api_method, api, tenant);
    signed
        .caller()
        .authorize(state, action, resource)
        .map_err(|e| {
            if e.status == StatusCode::FORBIDDEN {
                Problem::new(StatusCode::FORBIDDEN, refusal(action))
            } else {
                Problem::new(
                    e.status,
                    "The console cannot decide this right now. Try again.",
                )
            }
        })
}

/// Why a page was refused, in words.
fn refusal(action: AdminAction) -> &'static str {
    match action {
        AdminAction::ReadCluster | AdminAction::ManageNodes => {
            "Only the operator (signed in with the admin token) may see the cluster."
        }
        AdminAction::CreateTenant | AdminAction::DeleteTenant | AdminAction::Unclassified => {
            "Only the operator (signed in with the admin token) may do this."
        }
        _ => "You may only administer your own tenant.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::admin_access::Target;

    /// Every console route and method the router serves (besides the
    /// sign-in pages and the stylesheet, which need no session).
    const ROUTES: [(&str, &str); 23] = [
        ("POST", "/admin/logout"),
        ("GET", "/admin/tenants"),
        ("POST", "/admin/tenants"),
        ("GET", "/admin/tenants/{tenant}"),
        ("POST", "/admin/tenants/{tenant}"),
        ("POST", "/admin/tenants/{tenant}/delete"),
        ("GET", "/admin/tenants/{tenant}/users"),
        ("POST", "/admin/tenants/{tenant}/users"),
        ("GET", "/admin/tenants/{tenant}/users/{user}"),
        ("POST", "/admin/tenants/{tenant}/users/{user}/disabled"),
        ("POST", "/admin/tenants/{tenant}/users/{user}/password"),
        (
            "POST",
            "/admin/tenants/{tenant}/users/{user}/factors/{factor}/delete",
        ),
        (
            "POST",
            "/admin/tenants/{tenant}/users/{user}/sessions/revoke",
        ),
        ("GET", "/admin/tenants/{tenant}/clients"),
        ("POST", "/admin/tenants/{tenant}/clients"),
        ("GET", "/admin/tenants/{tenant}/clients/{client}"),
        ("POST", "/admin/tenants/{tenant}/clients/{client}"),
        ("POST", "/admin/tenants/{tenant}/clients/{client}/secret"),
        ("GET", "/admin/tenants/{tenant}/policies"),
        ("POST", "/admin/tenants/{tenant}/policies"),
        ("GET", "/admin/cluster"),
        ("GET", "/admin/tenants/{tenant}/something-new"),
        ("POST", "/admin/tenants/{tenant}/users"),
    ];

    #[test]
    fn console_routes_stand_for_admin_routes_of_the_same_family() {
        let family = |m: &str, r: &str| {
            let method = Method::from_bytes(m.as_bytes()).expect("method");
            match api_route(&method, r) {
                Needs::Session => None,
                Needs::Api(am, a) => Some(admin_access::classify(&am, a)),
            }
        };
        let tenant_scoped = [
            "/admin/tenants/{tenant}/users",
            "/admin/tenants/{tenant}/clients",
            "/admin/tenants/{tenant}/policies",
        ];
        for (m, r) in ROUTES {
            let got = family(m, r);
            match r {
                "/admin/logout" => assert_eq!(got, None),
                "/admin/cluster" => {
                    assert_eq!(got, Some((AdminAction::ReadCluster, Target::Cluster)))
                }
                "/admin/tenants" if m == "GET" => {
                    assert_eq!(got, Some((AdminAction::Unclassified, Target::Cluster)))
                }
                "/admin/tenants" => {
                    assert_eq!(got, Some((AdminAction::CreateTenant, Target::Cluster)))
                }
                "/admin/tenants/{tenant}" if m == "GET" => {
                    assert_eq!(got, Some((AdminAction::ReadTenant, Target::Tenant)))
                }
                "/admin/tenants/{tenant}" => {
                    assert_eq!(got, Some((AdminAction::Unclassified, Target::Cluster)))
                }
                "/admin/tenants/{tenant}/delete" => {
                    assert_eq!(got, Some((AdminAction::DeleteTenant, Target::Tenant)))
                }
                "/admin/tenants/{tenant}/something-new" => {
                    assert_eq!(got, Some((AdminAction::Unclassified, Target::Cluster)))
                }
                r if tenant_scoped.iter().any(|p| r.starts_with(p)) => {
                    let (action, target) = got.expect("an admin route");
                    assert_eq!(target, Target::Tenant, "{m} {r}");
                    assert_ne!(action, AdminAction::Unclassified, "{m} {r}");
                }
                other => panic!("route {other} not covered by this test"),
            }
        }
    }
}
