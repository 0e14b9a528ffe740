//! Every admin route is authorized by the built-in Cedar admin policies,
//! through one layer over the admin router: the routes are enumerated from
//! the router itself, so a route added later is checked here too.

use crate::authz;
use crate::support;

use authz::*;
use serde_json::json;
use support::*;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn two_tenants() -> Env {
    let env = start(1).await;
    env.tenant("acme").await;
    env.tenant("globex").await;
    env
}

/// `pattern` with `{tenant}` set to `tenant` and every other parameter to
/// a plausible value.
fn concrete(pattern: &str, tenant: &str) -> String {
    pattern
        .split('/')
        .map(|seg| match seg {
            "{tenant}" => tenant.to_string(),
            "{n}" | "{id}" => "1".to_string(),
            s if s.starts_with('{') => "x".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_enumerated_routes_include_every_family() {
    let routes = rsp_api::admin::routes();
    let paths = routes.paths();
    for needle in [
        "/admin/v1/tenants",
        "/admin/v1/tenants/{tenant}",
        "/admin/v1/tenants/{tenant}/users",
        "/admin/v1/tenants/{tenant}/clients",
        "/admin/v1/tenants/{tenant}/users/{user}/factors",
        "/admin/v1/tenants/{tenant}/policies",
        "/admin/v1/tenants/{tenant}/entities",
        "/admin/v1/cluster",
        "/admin/v1/cluster/nodes",
        "/admin/v1/kv/{key}",
    ] {
        assert!(paths.contains(&needle), "{needle} missing from {paths:?}");
    }
}

#[tokio::test]
async fn every_admin_route_refuses_anonymous_callers_and_another_tenants_admin() {
    let env = two_tenants().await;
    let acme_admin = format!(
        "Bearer {}",
        token(&env, "acme", "acme-ops", &["rsp:admin"]).await
    );
    let routes = rsp_api::admin::routes();
    assert!(routes.paths().len() >= 15, "{:?}", routes.paths());
    for pattern in routes.paths() {
        let path = concrete(pattern, "globex");
        let mut routed = false;
        for method in METHODS {
            let body = (method != "GET" && method != "DELETE").then(|| json!({}));
            let anon = call(&env, 0, method, &path, None, body.clone()).await;
            if anon.status == 405 {
                continue;
            }
            routed = true;
            assert_eq!(
                anon.status, 401,
                "{method} {path} without a token: {}",
                anon.body
            );
            let bad = call(
                &env,
                0,
                method,
                &path,
                Some("Bearer not-a-token"),
                body.clone(),
            )
            .await;
            assert_eq!(bad.status, 401, "{method} {path} with junk: {}", bad.body);
            let other = call(&env, 0, method, &path, Some(&acme_admin), body).await;
            assert_eq!(
                other.status, 403,
                "{method} {path} as acme's admin: {}",
                other.body
            );
            assert_eq!(other.error(), "forbidden", "{method} {path}");
        }
        assert!(routed, "no method of {pattern} is routed");
    }
    // Nothing happened to globex or the cluster.
    let g = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/globex",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(g.status, 200, "{}", g.body);
}

#[tokio::test]
async fn a_tenant_admin_manages_its_own_tenant_through_every_family() {
    let env = two_tenants().await;
    let auth = format!(
        "Bearer {}",
        token(&env, "acme", "acme-ops", &["rsp:admin"]).await
    );
    let a = call(&env, 0, "GET", "/admin/v1/tenants/acme", Some(&auth), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call(
        &env,
        0,
        "POST",
        "/admin/v1/tenants/acme/users",
        Some(&auth),
        Some(json!({"username": "carol", "password": "a long enough password"})),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let user = a.str("id");
    let a = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/acme/users/{user}/factors"),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call(
        &env,
        0,
        "POST",
        "/admin/v1/tenants/acme/clients",
        Some(&auth),
        Some(
            json!({"client_id": "svc", "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "client_secret_basic"}),
        ),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = call(
        &env,
        0,
        "PUT",
        "/admin/v1/tenants/acme/policies",
        Some(&auth),
        Some(json!({"policies": "permit(principal, action, resource);"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call(
        &env,
        0,
        "PUT",
        "/admin/v1/tenants/acme/entities",
        Some(&auth),
        Some(json!([])),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Not the tenant itself, not other tenants, not the cluster.
    for (method, path, body) in [
        ("DELETE", "/admin/v1/tenants/acme", None),
        (
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": "mine", "display_name": "Mine"})),
        ),
        ("GET", "/admin/v1/cluster", None),
        ("PUT", "/admin/v1/kv/k", Some(json!({"value": "v"}))),
        ("GET", "/admin/v1/tenants/globex", None),
        (
            "POST",
            "/admin/v1/tenants/globex/users",
            Some(json!({"username": "mallory", "password": "a long enough password"})),
        ),
    ] {
        let a = call(&env, 0, method, path, Some(&auth), body).await;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
        assert_eq!(a.error(), "forbidden");
    }
    let a = call(&env, 0, "GET", "/admin/v1/tenants/acme", Some(ADMIN), None).await;
    assert_eq!(a.status, 200, "acme still exists: {}", a.body);
}

#[tokio::test]
async fn a_token_without_rsp_admin_gets_insufficient_scope_everywhere() {
    let env = two_tenants().await;
    let pep = format!(
        "Bearer {}",
        token(&env, "acme", "pep", &["authz:check"]).await
    );
    for (method, path) in [
        ("GET", "/admin/v1/tenants/acme"),
        ("POST", "/admin/v1/tenants/acme/users"),
        ("GET", "/admin/v1/cluster"),
    ] {
        let a = call(&env, 0, method, path, Some(&pep), Some(json!({}))).await;
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
        assert_eq!(a.error(), "insufficient_scope");
    }
}

#[tokio::test]
async fn the_operator_token_reaches_every_route() {
    let env = two_tenants().await;
    let mut reads = 0;
    for pattern in rsp_api::admin::routes().paths() {
        // Reads only (writes are the contract tests' job); the kv watch
        // streams.
        let path = concrete(pattern, "globex");
        if path.ends_with("/watch") {
            continue;
        }
        let a = call(&env, 0, "GET", &path, Some(ADMIN), None).await;
        if a.status == 405 {
            continue;
        }
        reads += 1;
        assert!(
            a.status != 401 && a.status != 403,
            "GET {path} as the operator: {} {}",
            a.status,
            a.body
        );
    }
    assert!(reads >= 8, "only {reads} readable routes");
}
