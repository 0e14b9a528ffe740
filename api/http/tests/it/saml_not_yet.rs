//! SAML 2.0 is not in this build: its endpoints answer 501
//! `not_implemented` with a message, never a 404 or a pretend success; the
//! admin route stays behind admin authentication.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use support::*;

#[tokio::test]
async fn saml_endpoints_say_they_are_not_implemented() {
    let env = start(1).await;
    env.tenant("acme").await;
    for (method, path) in [
        ("GET", "/t/acme/saml/metadata"),
        ("GET", "/t/acme/saml/sso?SAMLRequest=abc"),
        ("POST", "/t/acme/saml/sso"),
        ("POST", "/t/acme/saml/slo"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .expect("request");
        let a = env.send(0, req).await;
        assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED, "{method} {path}");
        assert_eq!(a.body["error"], "not_implemented", "{method} {path}");
        assert!(
            a.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("SAML")),
            "{:?}",
            a.body
        );
    }

    let sp = r#"{"entity_id":"https://sp.example.com","acs_url":"https://sp.example.com/acs"}"#;
    let register = |token: Option<&str>| {
        let mut req = Request::post("/admin/v1/tenants/acme/saml/service-providers")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(Body::from(sp)).expect("request")
    };
    let anonymous = env.send(0, register(None)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let operator = env.send(0, register(Some("admin"))).await;
    assert_eq!(operator.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(operator.body["error"], "not_implemented");
}
