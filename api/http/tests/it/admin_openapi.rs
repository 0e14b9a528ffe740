//! `GET /admin/v1/openapi.json` describes exactly the admin API the router
//! serves: every method of every route `rsp_api::admin::routes()` records
//! is an operation of the document and the document has no other; every
//! route that takes a body has a `requestBody`; and the answers of a few
//! routes have exactly the fields their schemas list. The routes are
//! found from the router itself (a method it does not serve answers the
//! operator 405), so a route added later without a `#[utoipa::path]`
//! annotation fails here, named.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use rsp_api::admin::bodies::AdminBody;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::authz::{ADMIN, call};
use crate::support::{Env, start};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const PATH: &str = "/admin/v1/openapi.json";

/// `pattern` with every parameter set: a tenant that does not exist and
/// numbers no node or version has, so the calls below change nothing.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| match seg {
            "{tenant}" => "nobody",
            "{n}" | "{id}" => "99",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The status of `method path` as the operator, with a malformed JSON
/// body (so no route that reads one acts). The answer's body is not read
/// (the kv watch streams).
async fn status(env: &Env, method: &str, path: &str) -> StatusCode {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, ADMIN)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"probe": ["#))
        .expect("request");
    env.apps[0]
        .clone()
        .oneshot(req)
        .await
        .expect("response")
        .status()
}

/// Every (method, route pattern) the admin router serves: a method it
/// does not serve answers the operator 405.
async fn served(env: &Env) -> BTreeSet<(String, String)> {
    let mut served = BTreeSet::new();
    for pattern in rsp_api::admin::routes().paths() {
        let path = concrete(pattern);
        for method in METHODS {
            if status(env, method, &path).await != StatusCode::METHOD_NOT_ALLOWED {
                served.insert((method.to_string(), pattern.to_string()));
            }
        }
    }
    served
}

/// Every (method, path) the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method.to_lowercase()).is_some() {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

async fn document(env: &Env) -> Value {
    let a = call(env, 0, "GET", PATH, Some(ADMIN), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

#[tokio::test]
async fn every_route_the_router_serves_is_in_the_document_and_nothing_else() {
    let env = start(1).await;
    let doc = document(&env).await;
    let served = served(&env).await;
    assert!(served.len() >= 50, "only {} routed methods", served.len());
    let documented = documented(&doc);
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "admin routes without a #[utoipa::path] annotation listed in \
         rsp_api::admin::openapi::AdminApi: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        extra.is_empty(),
        "the OpenAPI document describes routes the router does not serve: {extra:?}"
    );
    // Each operation names its stable error codes, its security and a
    // unique operationId.
    let mut ids = BTreeSet::new();
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
        assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
        for status in ["401", "403", "500", "503"] {
            let described = op["responses"][status]["description"].as_str();
            assert!(
                described.is_some_and(|d| d.contains('`')),
                "{method} {path}: no {status} with its code"
            );
        }
    }
}

#[tokio::test]
async fn every_route_that_takes_a_body_documents_it() {
    let env = start(1).await;
    let doc = document(&env).await;
    for kind in AdminBody::ALL {
        let (method, path) = kind.route();
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{kind:?}: {method} {path} is not documented"
        );
        let content = &op["requestBody"]["content"]["application/json"]["schema"];
        assert!(
            content.is_object(),
            "{kind:?}: {method} {path} has no JSON requestBody: {op}"
        );
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_a_bearer_scheme() {
    let env = start(1).await;
    let doc = document(&env).await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1"), "{version}");
    assert_eq!(doc["info"]["title"], "rsp admin API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    // Every schema a document refers to is in it.
    let text = doc.to_string();
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = &piece[..piece.find('"').expect("ref end")];
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling reference to {name}"
        );
    }
}

#[tokio::test]
async fn the_document_needs_an_admin_caller() {
    let env = start(1).await;
    let a = call(&env, 0, "GET", PATH, None, None).await;
    assert_eq!(a.status, 401, "{}", a.body);
    let a = call(&env, 0, "GET", PATH, Some("Bearer not-a-token"), None).await;
    assert_eq!(a.status, 401, "{}", a.body);
}

/// The property names of the schema `method path` answers with `status`.
fn answer_fields(doc: &Value, method: &str, path: &str, status: &str) -> BTreeSet<String> {
    let schema =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    let name = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .unwrap_or_else(|| panic!("{method} {path} {status}: no schema reference: {schema}"));
    let properties = doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{name} has no properties"));
    properties.keys().cloned().collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

#[tokio::test]
async fn answers_have_exactly_the_fields_their_schemas_list() {
    let env = start(1).await;
    let doc = document(&env).await;
    let mut checks = Vec::new();
    let mut check = |method: &str, path: &str, status: &str, body: &Value| {
        checks.push(format!("{method} {path}"));
        assert_eq!(
            answer_fields(&doc, method, path, status),
            keys(body),
            "{method} {path}: schema (left) and answer (right) differ"
        );
    };
    let t = "/admin/v1/tenants/{tenant}";
    let a = call(
        &env,
        0,
        "POST",
        "/admin/v1/tenants",
        Some(ADMIN),
        Some(json!({"id": "acme"})),
    )
    .await;
    check("post", "/admin/v1/tenants", "201", &a.body);
    let a = call(&env, 0, "GET", "/admin/v1/tenants/acme", Some(ADMIN), None).await;
    check("get", t, "200", &a.body);
    let a = call(
        &env,
        0,
        "POST",
        "/admin/v1/tenants/acme/users",
        Some(ADMIN),
        Some(json!({"username": "alice", "password": "a long enough password"})),
    )
    .await;
    check("post", &format!("{t}/users"), "201", &a.body);
    let user = a.body["id"].as_str().expect("id").to_string();
    let a = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/acme/users/{user}"),
        Some(ADMIN),
        None,
    )
    .await;
    check("get", &format!("{t}/users/{{user}}"), "200", &a.body);
    let a = call(
        &env,
        0,
        "POST",
        "/admin/v1/tenants/acme/clients",
        Some(ADMIN),
        Some(
            json!({"client_id": "svc", "grant_types": ["client_credentials"],
                    "token_endpoint_auth_method": "client_secret_basic"}),
        ),
    )
    .await;
    check("post", &format!("{t}/clients"), "201", &a.body);
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/acme/clients/svc",
        Some(ADMIN),
        None,
    )
    .await;
    check("get", &format!("{t}/clients/{{client}}"), "200", &a.body);
    for (path, status) in [
        ("/keys/settings", "200"),
        ("/mfa-policy", "200"),
        ("/policies", "200"),
        ("/entities", "200"),
    ] {
        let a = call(
            &env,
            0,
            "GET",
            &format!("/admin/v1/tenants/acme{path}"),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        // Before any write, the policy and entity answers leave out who
        // wrote them; their schemas list those fields as optional.
        let fields = answer_fields(&doc, "get", &format!("{t}{path}"), status);
        assert!(keys(&a.body).is_subset(&fields), "{path}: {}", a.body);
        if path.starts_with("/keys") || path.starts_with("/mfa") {
            check("get", &format!("{t}{path}"), status, &a.body);
        }
    }
    let a = call(&env, 0, "GET", "/admin/v1/cluster", Some(ADMIN), None).await;
    check("get", "/admin/v1/cluster", "200", &a.body);
    let member = &a.body["members"][0];
    let mut fields = BTreeSet::new();
    for field in doc["components"]["schemas"]["MemberStatus"]["properties"]
        .as_object()
        .expect("MemberStatus")
        .keys()
    {
        fields.insert(field.clone());
    }
    assert_eq!(fields, keys(member), "a member of /admin/v1/cluster");
    assert!(checks.len() >= 8, "{checks:?}");
}
