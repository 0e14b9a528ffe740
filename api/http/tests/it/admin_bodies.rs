//! The admin routes that read a request body are exactly those of
//! `rsp_api::admin::bodies::AdminBody::ALL`, the list the `admin_json` fuzz
//! target runs outside bytes through: found from the router itself, so a
//! route added later with a body fails here until it is listed there.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use rsp_api::admin::bodies::AdminBody;
use tower::ServiceExt;

use crate::authz::ADMIN;
use crate::support::{Env, start};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `pattern` with every parameter set: a tenant that does not exist (so
/// no handler that ignores its body gets far), numbers no node or version
/// has.
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

/// The status of `method path` as the operator, with `body` as JSON or
/// with no body at all. The answer's body is not read (the kv watch
/// streams).
async fn status(env: &Env, method: &str, path: &str, body: Option<&str>) -> StatusCode {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, ADMIN);
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    env.apps[0]
        .clone()
        .oneshot(req)
        .await
        .expect("response")
        .status()
}

#[tokio::test]
async fn every_admin_route_that_reads_a_body_is_an_admin_body() {
    let env = start(1).await;
    let mut reading = BTreeSet::new();
    let mut routed = 0;
    for pattern in rsp_api::admin::routes().paths() {
        let path = concrete(pattern);
        for method in METHODS {
            let malformed = status(&env, method, &path, Some(r#"{"fuzz": ["#)).await;
            if malformed == StatusCode::METHOD_NOT_ALLOWED {
                continue;
            }
            routed += 1;
            let none = status(&env, method, &path, None).await;
            if malformed != none {
                reading.insert((method, *pattern));
            }
        }
    }
    assert!(routed >= 30, "only {routed} routed methods");
    let listed: BTreeSet<_> = AdminBody::ALL.iter().map(|k| k.route()).collect();
    assert_eq!(
        reading, listed,
        "routes reading a body (left) and rsp_api::admin::bodies::AdminBody::ALL (right) differ"
    );
}
