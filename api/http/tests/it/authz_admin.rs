//! The policy admin API is authorized by the built-in Cedar admin policies:
//! a tenant admin (an access token of its tenant with scope `rsp:admin`)
//! manages its own tenant's policies and nothing else.

use crate::authz;
use crate::support;

use authz::*;
use serde_json::json;
use support::*;

async fn two_tenants() -> Env {
    let env = start(1).await;
    env.tenant("acme").await;
    env.tenant("globex").await;
    env
}

fn put(tenant: &str) -> String {
    format!("/admin/v1/tenants/{tenant}/policies")
}

#[tokio::test]
async fn a_tenant_admin_writes_its_own_tenants_policies_and_is_the_author() {
    let env = two_tenants().await;
    let admin = token(&env, "acme", "acme-ops", &["rsp:admin"]).await;
    let a = call(
        &env,
        0,
        "PUT",
        &put("acme"),
        Some(&format!("Bearer {admin}")),
        Some(json!({"policies": "permit(principal, action, resource);"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = call(
        &env,
        0,
        "GET",
        &format!("{}/versions", put("acme")),
        Some(&format!("Bearer {admin}")),
        None,
    )
    .await;
    assert_eq!(v.body["versions"][0]["author"], "acme/acme-ops");
}

#[tokio::test]
async fn a_tenant_admin_cannot_touch_another_tenant() {
    let env = two_tenants().await;
    let admin = token(&env, "acme", "acme-ops", &["rsp:admin"]).await;
    let auth = format!("Bearer {admin}");
    let a = call(
        &env,
        0,
        "PUT",
        &put("globex"),
        Some(&auth),
        Some(json!({"policies": "permit(principal, action, resource);"})),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.error(), "forbidden");
    let a = call(&env, 0, "GET", &put("globex"), Some(&auth), None).await;
    assert_eq!(a.status, 403);
    let a = call(
        &env,
        0,
        "PUT",
        "/admin/v1/tenants/globex/entities",
        Some(&auth),
        Some(json!([])),
    )
    .await;
    assert_eq!(a.status, 403);
    // Nothing was written to globex.
    let a = call(
        &env,
        0,
        "GET",
        &format!("{}/versions", put("globex")),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.body["versions"], json!([]));
}

#[tokio::test]
async fn a_token_without_rsp_admin_is_refused() {
    let env = two_tenants().await;
    let pep = token(&env, "acme", "pep", &["authz:check"]).await;
    let a = call(
        &env,
        0,
        "PUT",
        &put("acme"),
        Some(&format!("Bearer {pep}")),
        Some(json!({"policies": ""})),
    )
    .await;
    assert_eq!(a.status, 403);
    let a = call(
        &env,
        0,
        "PUT",
        &put("acme"),
        Some("Bearer forged.token.here"),
        Some(json!({"policies": ""})),
    )
    .await;
    assert_eq!(a.status, 401);
    let a = call(
        &env,
        0,
        "PUT",
        &put("acme"),
        None,
        Some(json!({"policies": ""})),
    )
    .await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn the_admin_token_manages_every_tenant() {
    let env = two_tenants().await;
    for t in ["acme", "globex"] {
        let a = call(
            &env,
            0,
            "PUT",
            &put(t),
            Some(ADMIN),
            Some(json!({"policies": "permit(principal, action, resource);"})),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let a = call(
        &env,
        0,
        "PUT",
        &put("nobody"),
        Some(ADMIN),
        Some(json!({"policies": ""})),
    )
    .await;
    assert_eq!(a.status, 404);
}
