//! Helpers of the `authz_*` tests, over the shared in-process set-up in
//! `support/oauth.rs`: admin calls for policies and entities, decision
//! calls, and access tokens with chosen scopes.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, header};
use serde_json::{Value, json};

use crate::support::{Answer, ClientSpec, Env};

pub const ADMIN: &str = "Bearer admin";

pub fn json_request(
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .expect("request"),
        None => req.body(Body::empty()).expect("request"),
    }
}

pub async fn call(
    env: &Env,
    node: usize,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> Answer {
    env.send(node, json_request(method, path, auth, body.as_ref()))
        .await
}

pub async fn put_policies(
    env: &Env,
    node: usize,
    tenant: &str,
    policies: &str,
    schema: Option<Value>,
) -> Answer {
    let mut body = json!({ "policies": policies });
    if let Some(s) = schema {
        body["schema"] = s;
    }
    call(
        env,
        node,
        "PUT",
        &format!("/admin/v1/tenants/{tenant}/policies"),
        Some(ADMIN),
        Some(body),
    )
    .await
}

pub async fn put_entities(env: &Env, tenant: &str, entities: Value) -> Answer {
    call(
        env,
        0,
        "PUT",
        &format!("/admin/v1/tenants/{tenant}/entities"),
        Some(ADMIN),
        Some(entities),
    )
    .await
}

pub async fn is_authorized_on(
    env: &Env,
    node: usize,
    tenant: &str,
    auth: &str,
    body: Value,
) -> Answer {
    call(
        env,
        node,
        "POST",
        &format!("/t/{tenant}/authz/v1/is_authorized"),
        Some(auth),
        Some(body),
    )
    .await
}

pub async fn is_authorized(env: &Env, tenant: &str, body: Value) -> Answer {
    is_authorized_on(env, 0, tenant, ADMIN, body).await
}

/// `{"principal", "action", "resource"}` with Cedar uids.
pub fn ask(principal: &str, action: &str, resource: &str) -> Value {
    json!({"principal": principal, "action": action, "resource": resource})
}

pub fn decision(a: &Answer) -> &str {
    a.body["decision"].as_str().unwrap_or("")
}

/// An access token of `tenant` for a fresh client allowed `scopes`.
pub async fn token(env: &Env, tenant: &str, client_id: &str, scopes: &[&str]) -> String {
    let mut spec = ClientSpec::new(client_id, "client_secret_basic", &["client_credentials"]);
    spec.scopes = scopes;
    let client = env.client(tenant, spec).await;
    let scope = scopes.join(" ");
    let answer = env.client_credentials(tenant, &client, &scope).await;
    assert_eq!(answer.status, 200, "token: {}", answer.body);
    answer.str("access_token")
}
