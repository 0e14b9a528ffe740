//! The AuthZEN Authorization API 1.0 endpoints: request and response shapes
//! as in the specification's examples, mapped onto Cedar.

use crate::authz;
use crate::support;

use authz::*;
use serde_json::json;
use support::*;

const T: &str = "acme";

/// The spec's examples use `user`, `document`/`account` and `can_read`.
const POLICIES: &str = r#"
@id("alice-reads-1-and-3")
permit(principal == user::"alice@example.com", action == Action::"read", resource)
  when { resource in [document::"1", document::"3"] };
@id("sales-reads-accounts")
permit(principal is user, action == Action::"can_read", resource is account)
  when { principal has department && principal.department == "Sales" };
"#;

async fn env() -> Env {
    let env = start(1).await;
    env.tenant(T).await;
    let a = put_policies(&env, 0, T, POLICIES, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    env
}

async fn post(env: &Env, path: &str, body: serde_json::Value) -> Answer {
    call(
        env,
        0,
        "POST",
        &format!("/t/{T}/access/v1/{path}"),
        Some(ADMIN),
        Some(body),
    )
    .await
}

fn three_documents(semantic: &str) -> serde_json::Value {
    json!({
        "subject": {"type": "user", "id": "alice@example.com"},
        "action": {"name": "read"},
        "options": {"evaluations_semantic": semantic},
        "evaluations": [
            {"resource": {"type": "document", "id": "1"}},
            {"resource": {"type": "document", "id": "2"}},
            {"resource": {"type": "document", "id": "3"}}
        ]
    })
}

fn decisions(a: &Answer) -> Vec<bool> {
    a.body["evaluations"]
        .as_array()
        .expect("evaluations")
        .iter()
        .map(|e| e["decision"].as_bool().expect("boolean decision"))
        .collect()
}

#[tokio::test]
async fn evaluation_answers_a_boolean_decision_with_subject_properties() {
    let env = env().await;
    // The spec's Access Evaluation Request example, with a property.
    let body = json!({
        "subject": {"type": "user", "id": "alice@acmecorp.com", "properties": {"department": "Sales"}},
        "resource": {"type": "account", "id": "123"},
        "action": {"name": "can_read", "properties": {"method": "GET"}},
        "context": {"time": "1985-10-26T01:22-07:00"}
    });
    let a = post(&env, "evaluation", body.clone()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["decision"], true);
    assert!(
        a.body["context"]["reason_admin"]["en"]
            .as_str()
            .is_some_and(|r| r.contains("sales-reads-accounts"))
    );
    let mut other = body;
    other["subject"]["properties"]["department"] = json!("Legal");
    let a = post(&env, "evaluation", other).await;
    assert_eq!(a.body["decision"], false);
}

#[tokio::test]
async fn evaluations_execute_all_by_default_and_return_every_decision_in_order() {
    let env = env().await;
    let mut body = three_documents("execute_all");
    body.as_object_mut().expect("object").remove("options");
    let a = post(&env, "evaluations", body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(decisions(&a), vec![true, false, true]);
}

#[tokio::test]
async fn deny_on_first_deny_stops_after_the_first_false() {
    let env = env().await;
    let a = post(&env, "evaluations", three_documents("deny_on_first_deny")).await;
    assert_eq!(decisions(&a), vec![true, false]);
}

#[tokio::test]
async fn permit_on_first_permit_stops_after_the_first_true() {
    let env = env().await;
    let a = post(
        &env,
        "evaluations",
        three_documents("permit_on_first_permit"),
    )
    .await;
    assert_eq!(decisions(&a), vec![true]);
}

#[tokio::test]
async fn evaluation_items_override_the_top_level_defaults() {
    let env = env().await;
    // The spec's defaults example: the third item overrides the action.
    let body = json!({
        "subject": {"type": "user", "id": "alice@example.com"},
        "context": {"time": "2024-05-31T15:22-07:00"},
        "action": {"name": "read"},
        "evaluations": [
            {"resource": {"type": "document", "id": "1"}},
            {"resource": {"type": "document", "id": "2"}},
            {"action": {"name": "can_edit"}, "resource": {"type": "document", "id": "3"}}
        ]
    });
    assert_eq!(
        decisions(&post(&env, "evaluations", body).await),
        vec![true, false, false]
    );
}

#[tokio::test]
async fn evaluations_without_an_array_answer_like_evaluation() {
    let env = env().await;
    let body = json!({
        "subject": {"type": "user", "id": "alice@example.com"},
        "action": {"name": "read"},
        "resource": {"type": "document", "id": "1"}
    });
    let a = post(&env, "evaluations", body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["decision"], true);
    assert!(a.body.get("evaluations").is_none());
}

#[tokio::test]
async fn an_item_that_cannot_be_evaluated_is_false_with_an_error_context() {
    let env = env().await;
    let body = json!({
        "action": {"name": "read"},
        "evaluations": [
            {"subject": {"type": "user", "id": "alice@example.com"}, "resource": {"type": "document", "id": "1"}},
            {"resource": {"type": "document", "id": "1"}},
            {"subject": {"type": "not a type!", "id": "x"}, "resource": {"type": "document", "id": "1"}}
        ]
    });
    let a = post(&env, "evaluations", body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(decisions(&a), vec![true, false, false]);
    assert_eq!(a.body["evaluations"][1]["context"]["error"]["status"], 400);
    assert!(a.body["evaluations"][2]["context"]["error"]["message"].is_string());
}

#[tokio::test]
async fn a_malformed_evaluation_is_a_400_and_a_bad_semantic_too() {
    let env = env().await;
    let a = post(
        &env,
        "evaluation",
        json!({"subject": {"type": "user"}, "action": {"name": "read"}}),
    )
    .await;
    assert_eq!(a.status, 400);
    let a = post(&env, "evaluations", three_documents("whatever")).await;
    assert_eq!(a.status, 400);
}

#[tokio::test]
async fn the_request_id_is_echoed() {
    let env = env().await;
    let mut req = json_request(
        "POST",
        &format!("/t/{T}/access/v1/evaluation"),
        Some(ADMIN),
        Some(&json!({
            "subject": {"type": "user", "id": "alice@example.com"},
            "action": {"name": "read"},
            "resource": {"type": "document", "id": "2"}
        })),
    );
    req.headers_mut().insert(
        "x-request-id",
        "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"
            .parse()
            .expect("header"),
    );
    let a = env.send(0, req).await;
    assert_eq!(a.body, json!({"decision": false}));
    assert_eq!(
        a.headers["x-request-id"],
        "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"
    );
}

#[tokio::test]
async fn the_metadata_document_names_the_pdp_and_its_endpoints() {
    let env = env().await;
    let issuer = issuer(T);
    for path in [
        format!("/t/{T}/.well-known/authzen-configuration"),
        format!("/.well-known/authzen-configuration/t/{T}"),
    ] {
        let a = call(&env, 0, "GET", &path, None, None).await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.body,
            json!({
                "policy_decision_point": issuer,
                "access_evaluation_endpoint": format!("{issuer}/access/v1/evaluation"),
                "access_evaluations_endpoint": format!("{issuer}/access/v1/evaluations"),
            })
        );
    }
    let a = call(
        &env,
        0,
        "GET",
        "/t/nobody/.well-known/authzen-configuration",
        None,
        None,
    )
    .await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn the_evaluation_endpoints_need_authz_check() {
    let env = env().await;
    let a = call(
        &env,
        0,
        "POST",
        &format!("/t/{T}/access/v1/evaluation"),
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(a.status, 401);
}
