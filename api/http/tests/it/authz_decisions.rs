//! `POST {issuer}/authz/v1/is_authorized` and its batch form, with the
//! policy admin API: one behaviour per test.

use crate::authz;
use crate::support;

use authz::*;
use serde_json::{Value, json};
use support::*;

const T: &str = "acme";
const VIEW: &str = r#"Action::"view""#;

async fn env_with(policies: &str) -> Env {
    let env = start(1).await;
    env.tenant(T).await;
    let a = put_policies(&env, 0, T, policies, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    env
}

#[tokio::test]
async fn a_matching_permit_allows_with_the_contracts_shape() {
    let env = env_with(r#"@id("alice-doc1") permit(principal == User::"alice", action == Action::"view", resource == Doc::"1");"#).await;
    let a = is_authorized(&env, T, ask(r#"User::"alice""#, VIEW, r#"Doc::"1""#)).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body,
        json!({"decision": "Allow", "diagnostics": {"reason": ["alice-doc1"], "errors": []}})
    );
}

#[tokio::test]
async fn no_matching_permit_denies() {
    let env = env_with(r#"permit(principal == User::"alice", action, resource);"#).await;
    let a = is_authorized(&env, T, ask(r#"User::"bob""#, VIEW, r#"Doc::"1""#)).await;
    assert_eq!(a.status, 200);
    assert_eq!(decision(&a), "Deny");
    assert_eq!(a.body["diagnostics"]["reason"], json!([]));
}

#[tokio::test]
async fn forbid_overrides_permit() {
    let env = env_with(
        r#"@id("all") permit(principal, action, resource);
           @id("no-secret") forbid(principal, action, resource == Doc::"secret");"#,
    )
    .await;
    let a = is_authorized(&env, T, ask(r#"User::"a""#, VIEW, r#"Doc::"secret""#)).await;
    assert_eq!(decision(&a), "Deny");
    assert_eq!(a.body["diagnostics"]["reason"], json!(["no-secret"]));
}

#[tokio::test]
async fn when_and_unless_use_the_requests_context() {
    let env = env_with(r#"permit(principal, action, resource) when { context.mfa } unless { context.ip == "10.6.6.6" };"#).await;
    let with = |c: Value| {
        let mut b = ask(r#"User::"a""#, VIEW, r#"Doc::"1""#);
        b["context"] = c;
        b
    };
    assert_eq!(
        decision(&is_authorized(&env, T, with(json!({"mfa": true, "ip": "10.0.0.1"}))).await),
        "Allow"
    );
    assert_eq!(
        decision(&is_authorized(&env, T, with(json!({"mfa": false, "ip": "10.0.0.1"}))).await),
        "Deny"
    );
    assert_eq!(
        decision(&is_authorized(&env, T, with(json!({"mfa": true, "ip": "10.6.6.6"}))).await),
        "Deny"
    );
}

#[tokio::test]
async fn stored_entity_hierarchy_grants_through_in() {
    let env =
        env_with(r#"permit(principal in Group::"staff", action, resource in Folder::"shared");"#)
            .await;
    let a = put_entities(
        &env,
        T,
        json!([
            {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Group", "id": "eng"}]},
            {"uid": {"type": "Group", "id": "eng"}, "attrs": {}, "parents": [{"type": "Group", "id": "staff"}]},
            {"uid": {"type": "Doc", "id": "1"}, "attrs": {}, "parents": [{"type": "Folder", "id": "shared"}]}
        ]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        decision(&is_authorized(&env, T, ask(r#"User::"alice""#, VIEW, r#"Doc::"1""#)).await),
        "Allow"
    );
    assert_eq!(
        decision(&is_authorized(&env, T, ask(r#"User::"bob""#, VIEW, r#"Doc::"1""#)).await),
        "Deny"
    );
}

#[tokio::test]
async fn request_entities_are_merged_with_stored_ones() {
    let env =
        env_with(r#"permit(principal in Group::"eng", action, resource) when { resource.open };"#)
            .await;
    put_entities(&env, T, json!([{"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Group", "id": "eng"}]}])).await;
    let mut body = ask(r#"User::"alice""#, VIEW, r#"Doc::"9""#);
    body["entities"] =
        json!([{"uid": {"type": "Doc", "id": "9"}, "attrs": {"open": true}, "parents": []}]);
    assert_eq!(decision(&is_authorized(&env, T, body).await), "Allow");
}

#[tokio::test]
async fn template_links_share_a_document_until_unlinked() {
    let env = env_with(r#"@id("share") permit(principal == ?principal, action == Action::"view", resource == ?resource);"#).await;
    let bob_doc7 = ask(r#"User::"bob""#, VIEW, r#"Doc::"7""#);
    assert_eq!(
        decision(&is_authorized(&env, T, bob_doc7.clone()).await),
        "Deny"
    );
    let link = json!({"template": "share", "values": {"?principal": "User::\"bob\"", "?resource": "Doc::\"7\""}});
    let a = call(
        &env,
        0,
        "PUT",
        &format!("/admin/v1/tenants/{T}/policies/links/doc7-bob"),
        Some(ADMIN),
        Some(link),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = is_authorized(&env, T, bob_doc7.clone()).await;
    assert_eq!(decision(&a), "Allow");
    assert_eq!(a.body["diagnostics"]["reason"], json!(["doc7-bob"]));
    let listed = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/{T}/policies/links"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(listed.body["links"][0]["template"], "share");
    let a = call(
        &env,
        0,
        "DELETE",
        &format!("/admin/v1/tenants/{T}/policies/links/doc7-bob"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, 204);
    assert_eq!(decision(&is_authorized(&env, T, bob_doc7).await), "Deny");
}

#[tokio::test]
async fn an_invalid_policy_write_is_refused_with_cedars_diagnostics() {
    let env = start(1).await;
    env.tenant(T).await;
    let a = put_policies(
        &env,
        0,
        T,
        "permit(principal, action, resource) when { 1 + };",
        None,
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.error(), "invalid_policies");
    let d = a.body["diagnostics"].as_array().expect("diagnostics");
    assert!(!d.is_empty());
    assert!(d[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(d[0]["source_ranges"].is_array(), "{}", a.body);
}

#[tokio::test]
async fn a_write_that_fails_schema_validation_is_refused_naming_the_policy() {
    let env = start(1).await;
    env.tenant(T).await;
    let schema = json!({"": {
        "entityTypes": {"User": {}, "Doc": {}},
        "actions": {"view": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Doc"]}}}
    }});
    let a = put_policies(
        &env,
        0,
        T,
        r#"@id("bad") permit(principal == Usr::"x", action == Action::"view", resource);"#,
        Some(schema.clone()),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.error(), "invalid_policies");
    assert_eq!(a.body["diagnostics"][0]["policy_id"], "bad");
    let a = put_policies(
        &env,
        0,
        T,
        "permit(principal, action, resource);",
        Some(json!({"": {"entityTypes": 5}})),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.error(), "invalid_schema");
    let a = put_policies(
        &env,
        0,
        T,
        r#"permit(principal, action == Action::"view", resource);"#,
        Some(schema),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn versions_are_listed_and_an_old_one_restored() {
    let env = env_with(r#"@id("one") permit(principal == User::"alice", action, resource);"#).await;
    let a = put_policies(
        &env,
        0,
        T,
        r#"@id("two") permit(principal == User::"bob", action, resource);"#,
        None,
    )
    .await;
    assert_eq!(a.body["version"], 2);
    let alice = ask(r#"User::"alice""#, VIEW, r#"Doc::"1""#);
    assert_eq!(
        decision(&is_authorized(&env, T, alice.clone()).await),
        "Deny"
    );
    let a = call(
        &env,
        0,
        "POST",
        &format!("/admin/v1/tenants/{T}/policies/versions/1/restore"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, json!({"version": 3, "restored_from": 1}));
    assert_eq!(decision(&is_authorized(&env, T, alice).await), "Allow");
    let v = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/{T}/policies/versions"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(v.body["current"], 3);
    let versions = v.body["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["author"], "admin-token");
    assert_eq!(versions[2]["restored_from"], 1);
    let cur = call(
        &env,
        0,
        "GET",
        &format!("/admin/v1/tenants/{T}/policies"),
        Some(ADMIN),
        None,
    )
    .await;
    assert!(
        cur.body["policies"]
            .as_str()
            .is_some_and(|p| p.contains("\"one\""))
    );
    let missing = call(
        &env,
        0,
        "POST",
        &format!("/admin/v1/tenants/{T}/policies/versions/42/restore"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn a_batch_answers_each_request_in_order() {
    let env = env_with(r#"permit(principal == User::"alice", action, resource);"#).await;
    let body = json!({"requests": [
        ask(r#"User::"alice""#, VIEW, r#"Doc::"1""#),
        ask(r#"User::"bob""#, VIEW, r#"Doc::"1""#),
    ]});
    let a = call(
        &env,
        0,
        "POST",
        &format!("/t/{T}/authz/v1/is_authorized_batch"),
        Some(ADMIN),
        Some(body),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["results"][0]["decision"], "Allow");
    assert_eq!(a.body["results"][1]["decision"], "Deny");
}

#[tokio::test]
async fn malformed_requests_are_400s_with_diagnostics_never_500s() {
    let env = env_with("permit(principal, action, resource);").await;
    let cases = [
        json!({"principal": "User::alice", "action": VIEW, "resource": "Doc::\"1\""}),
        json!({"principal": 5, "action": VIEW, "resource": "Doc::\"1\""}),
        json!({"action": VIEW, "resource": "Doc::\"1\""}),
        json!({"principal": "User::\"a\"", "action": VIEW, "resource": "Doc::\"1\"", "context": [1]}),
        json!({"principal": "User::\"a\"", "action": VIEW, "resource": "Doc::\"1\"", "bogus": 1}),
        json!({"principal": "User::\"a\"", "action": VIEW, "resource": "Doc::\"1\"", "entities": [{"uid": 3}]}),
        json!({"principal": "User::\"a\"", "access_token": "x.y.z", "action": VIEW, "resource": "Doc::\"1\""}),
        json!({"access_token": "not-a-jwt", "action": VIEW, "resource": "Doc::\"1\""}),
        json!([]),
    ];
    for body in cases {
        let a = is_authorized(&env, T, body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        assert!(
            a.body["diagnostics"]
                .as_array()
                .is_some_and(|d| !d.is_empty()),
            "{body}: {}",
            a.body
        );
    }
    let raw = env
        .send(
            0,
            axum::http::Request::post(format!("/t/{T}/authz/v1/is_authorized"))
                .header("authorization", ADMIN)
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{not json"))
                .expect("request"),
        )
        .await;
    assert_eq!(raw.status, 400);
}

#[tokio::test]
async fn callers_need_a_token_with_authz_check() {
    let env = env_with("permit(principal, action, resource);").await;
    let body = ask(r#"User::"a""#, VIEW, r#"Doc::"1""#);
    let none = call(
        &env,
        0,
        "POST",
        &format!("/t/{T}/authz/v1/is_authorized"),
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(none.status, 401);
    assert!(none.headers.contains_key("www-authenticate"));
    let garbage = is_authorized_on(&env, 0, T, "Bearer nope", body.clone()).await;
    assert_eq!(garbage.status, 401);
    let without = token(&env, T, "reader", &["docs:read"]).await;
    let a = is_authorized_on(&env, 0, T, &format!("Bearer {without}"), body.clone()).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let with = token(&env, T, "pep", &["authz:check"]).await;
    let a = is_authorized_on(&env, 0, T, &format!("Bearer {with}"), body.clone()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(decision(&a), "Allow");
    // Another tenant's token does not verify here.
    env.tenant("globex").await;
    let a = is_authorized_on(&env, 0, "globex", &format!("Bearer {with}"), body).await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn the_principal_and_its_attributes_can_come_from_an_access_token() {
    let env = env_with(r#"@id("readers") permit(principal, action, resource) when { principal.scopes.contains("docs:read") && principal.client_id == "svc" };"#).await;
    let subject = token(&env, T, "svc", &["docs:read"]).await;
    let other = token(&env, T, "svc2", &["docs:write"]).await;
    let body = |t: &str| json!({"access_token": t, "action": VIEW, "resource": "Doc::\"1\""});
    let a = is_authorized(&env, T, body(&subject)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(decision(&a), "Allow");
    assert_eq!(
        decision(&is_authorized(&env, T, body(&other)).await),
        "Deny"
    );
}

#[tokio::test]
async fn an_unknown_tenant_is_404() {
    let env = start(1).await;
    let a = is_authorized(&env, "nobody", ask(r#"User::"a""#, VIEW, r#"Doc::"1""#)).await;
    assert_eq!(a.status, 404);
}
