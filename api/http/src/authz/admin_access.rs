//! The admin API is authorized by Cedar, in one place: a layer over every
//! `/admin/v1` route ([`crate::admin::router`]) that
//!
//! 1. authenticates the caller ([`authenticate_admin`]: the admin token,
//!    or an access token of a tenant carrying scope `rsp:admin`), 401
//!    otherwise;
//! 2. classifies the matched route and method into a Cedar action and
//!    resource ([`classify`]);
//! 3. asks the built-in admin policies (`rsp_policies::admin`), 403
//!    `forbidden` when they deny;
//! 4. hands the authorized caller to the handler (the [`Granted`] request
//!    extension, read by the [`crate::authz::caller::AdminCaller`]
//!    extractor).
//!
//! Classification is by route pattern, not by handler, so a route added
//! later is covered without touching this file: a route in a known family
//! (a tenant's users, sessions, MFA policy, clients, SAML providers,
//! policies and entities; the
//! cluster; the key-value API) takes that family's action, and anything
//! else is `Unclassified` on the cluster, which only the operator may do.

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rsp_policies::{AdminAction, AdminResource};

use crate::admin::audit;
use crate::authz::caller::{Granted, authenticate_admin};
use crate::state::AppState;
use rsp_identity::audit::Outcome;

/// Where the resource of an admin call comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `Rsp::Cluster::"cluster"`.
    Cluster,
    /// `Rsp::Tenant::"<the {tenant} path segment>"`.
    Tenant,
}

const TENANT_ROUTE: &str = "/admin/v1/tenants/{tenant}";

/// The Cedar action and resource of `method` on the route pattern `route`
/// (as axum matched it, e.g. `/admin/v1/tenants/{tenant}/users`).
pub fn classify(method: &Method, route: &str) -> (AdminAction, Target) {
    let read = method == Method::GET || method == Method::HEAD;
    if route == "/admin/v1/tenants" {
        return if method == Method::POST {
            (AdminAction::CreateTenant, Target::Cluster)
        } else {
            (AdminAction::Unclassified, Target::Cluster)
        };
    }
    if route == TENANT_ROUTE {
        return match *method {
            Method::GET | Method::HEAD => (AdminAction::ReadTenant, Target::Tenant),
            Method::DELETE => (AdminAction::DeleteTenant, Target::Tenant),
            _ => (AdminAction::Unclassified, Target::Cluster),
        };
    }
    if let Some(rest) = route
        .strip_prefix(TENANT_ROUTE)
        .and_then(|r| r.strip_prefix('/'))
    {
        let family = rest.split('/').next().unwrap_or("");
        let action = match family {
            "users" | "sessions" | "mfa-policy" => AdminAction::ManageAccounts,
            "clients" | "saml" => AdminAction::ManageClients,
            "policies" if read => AdminAction::ReadPolicies,
            "policies" => AdminAction::WritePolicies,
            "entities" if read => AdminAction::ReadPolicies,
            "entities" => AdminAction::WriteEntities,
            // A tenant's administrators read its trail and usage.
            "audit" | "usage" if read => AdminAction::ReadTenant,
            _ => return (AdminAction::Unclassified, Target::Cluster),
        };
        return (action, Target::Tenant);
    }
    if route == "/admin/v1/cluster" || route.starts_with("/admin/v1/cluster/") {
        let action = if read {
            AdminAction::ReadCluster
        } else {
            AdminAction::ManageNodes
        };
        return (action, Target::Cluster);
    }
    if route == "/admin/v1/kv" || route.starts_with("/admin/v1/kv/") {
        return (AdminAction::RawKeyValue, Target::Cluster);
    }
    (AdminAction::Unclassified, Target::Cluster)
}

/// The Cedar action and resource of `method` on the admin route pattern
/// `route` whose `{tenant}` segment (if any) is `tenant`. The web console
/// asks the same for the admin route each of its pages stands for.
pub fn decide(
    method: &Method,
    route: &str,
    tenant: Option<String>,
) -> (AdminAction, AdminResource) {
    let (action, target) = classify(method, route);
    match (target, tenant) {
        (Target::Tenant, Some(t)) => (action, AdminResource::Tenant(t)),
        // A tenant route without a tenant segment cannot happen with the
        // patterns above; the cluster is the stricter resource anyway.
        (Target::Tenant, None) => (AdminAction::Unclassified, AdminResource::Cluster),
        (Target::Cluster, _) => (action, AdminResource::Cluster),
    }
}

/// The layer's function (installed with `route_layer`, so the route is
/// matched and its path parameters are known).
pub async fn guard(
    State(state): State<AppState>,
    matched: MatchedPath,
    params: RawPathParams,
    method: Method,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let caller = match authenticate_admin(&parts, &state).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let mut request = Request::from_parts(parts, body);
    let tenant = params
        .iter()
        .find(|(name, _)| *name == "tenant")
        .map(|(_, v)| v.to_string());
    let ip = crate::miss_limit::peer_ip(request.extensions());
    let (action, resource) = decide(&method, matched.as_str(), tenant);
    if let Err(e) = caller.authorize(&state, action, resource.clone()) {
        // A refused change is a security event; a refused read is not
        // recorded.
        let response = e.into_response();
        if !audit::recorded(&method) {
            return response;
        }
        let call = audit::Call {
            principal: &caller.principal,
            method: &method,
            route: matched.as_str(),
            params: owned(&params),
            ip,
            via: None,
        };
        return audit::record_call(&state, call, Outcome::Failure, response).await;
    }
    let principal = caller.principal.clone();
    request.extensions_mut().insert(Granted {
        caller,
        action,
        resource,
    });
    let response = next.run(request).await;
    if !audit::recorded(&method) {
        return response;
    }
    let outcome = audit::outcome_of(response.status());
    let call = audit::Call {
        principal: &principal,
        method: &method,
        route: matched.as_str(),
        params: owned(&params),
        ip,
        via: None,
    };
    audit::record_call(&state, call, outcome, response).await
}

pub(crate) fn owned(params: &RawPathParams) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_their_families_and_the_rest_is_unclassified() {
        let t = "/admin/v1/tenants/{tenant}";
        let cases = [
            (
                Method::POST,
                "/admin/v1/tenants".to_string(),
                AdminAction::CreateTenant,
                Target::Cluster,
            ),
            (
                Method::GET,
                t.to_string(),
                AdminAction::ReadTenant,
                Target::Tenant,
            ),
            (
                Method::DELETE,
                t.to_string(),
                AdminAction::DeleteTenant,
                Target::Tenant,
            ),
            (
                Method::PUT,
                t.to_string(),
                AdminAction::Unclassified,
                Target::Cluster,
            ),
            (
                Method::POST,
                format!("{t}/users"),
                AdminAction::ManageAccounts,
                Target::Tenant,
            ),
            (
                Method::DELETE,
                format!("{t}/users/{{user}}/factors/{{factor}}"),
                AdminAction::ManageAccounts,
                Target::Tenant,
            ),
            (
                Method::DELETE,
                format!("{t}/sessions/{{handle}}"),
                AdminAction::ManageAccounts,
                Target::Tenant,
            ),
            (
                Method::POST,
                format!("{t}/clients"),
                AdminAction::ManageClients,
                Target::Tenant,
            ),
            (
                Method::POST,
                format!("{t}/saml/service-providers"),
                AdminAction::ManageClients,
                Target::Tenant,
            ),
            (
                Method::GET,
                format!("{t}/policies/versions"),
                AdminAction::ReadPolicies,
                Target::Tenant,
            ),
            (
                Method::POST,
                format!("{t}/policies/versions/{{n}}/restore"),
                AdminAction::WritePolicies,
                Target::Tenant,
            ),
            (
                Method::GET,
                format!("{t}/entities"),
                AdminAction::ReadPolicies,
                Target::Tenant,
            ),
            (
                Method::PUT,
                format!("{t}/entities"),
                AdminAction::WriteEntities,
                Target::Tenant,
            ),
            (
                Method::POST,
                format!("{t}/something-new"),
                AdminAction::Unclassified,
                Target::Cluster,
            ),
            (
                Method::GET,
                "/admin/v1/cluster".to_string(),
                AdminAction::ReadCluster,
                Target::Cluster,
            ),
            (
                Method::DELETE,
                "/admin/v1/cluster/nodes/{id}".to_string(),
                AdminAction::ManageNodes,
                Target::Cluster,
            ),
            (
                Method::GET,
                "/admin/v1/kv/{key}".to_string(),
                AdminAction::RawKeyValue,
                Target::Cluster,
            ),
            (
                Method::GET,
                "/admin/v1/tenantsfoo".to_string(),
                AdminAction::Unclassified,
                Target::Cluster,
            ),
            (
                Method::GET,
                "/admin/v1/backup".to_string(),
                AdminAction::Unclassified,
                Target::Cluster,
            ),
            (
                Method::GET,
                String::new(),
                AdminAction::Unclassified,
                Target::Cluster,
            ),
        ];
        for (method, route, action, target) in cases {
            assert_eq!(
                classify(&method, &route),
                (action, target),
                "{method} {route}"
            );
        }
    }
}
