//! Decisions on compiled states, one behaviour per test, each checked with
//! and without the index.

use std::collections::BTreeMap;

use cedar_policy::Decision;
use rsp_policies::compile::compile;
use rsp_policies::records::{PolicyVersion, StoredLink};
use rsp_policies::{DecisionRequest, Outcome, Snapshot, parse_uid};
use serde_json::{Value, json};

fn version(policies: &str, schema: Option<Value>) -> PolicyVersion {
    PolicyVersion {
        version: 1,
        policies: policies.to_string(),
        schema,
        author: "test".into(),
        time_ms: 0,
        restored_from: None,
    }
}

fn snapshot(policies: &str, entities: Option<Value>, links: &[StoredLink]) -> Snapshot {
    let compiled =
        compile(Some(&version(policies, None)), links, entities.as_ref()).expect("compiles");
    Snapshot::build(1, Default::default(), compiled).expect("indexes")
}

fn req(p: &str, a: &str, r: &str, context: Option<Value>) -> DecisionRequest {
    DecisionRequest {
        principal: parse_uid(&json!(p), "principal").expect("principal"),
        action: parse_uid(&json!(a), "action").expect("action"),
        resource: parse_uid(&json!(r), "resource").expect("resource"),
        context,
        entities: vec![],
    }
}

/// Decide both ways; they must agree.
fn decide(s: &Snapshot, r: &DecisionRequest) -> Outcome {
    let sliced = s.decide(r, true).expect("decides");
    let whole = s.decide(r, false).expect("decides");
    assert_eq!(sliced, whole, "index and whole set disagree");
    sliced
}

const VIEW: &str = r#"Action::"view""#;

#[test]
fn a_matching_permit_allows_and_is_the_reason() {
    let s = snapshot(
        r#"@id("alice-views-doc1") permit(principal == User::"alice", action == Action::"view", resource == Doc::"1");"#,
        None,
        &[],
    );
    let o = decide(&s, &req(r#"User::"alice""#, VIEW, r#"Doc::"1""#, None));
    assert_eq!(o.decision, Decision::Allow);
    assert_eq!(o.reason, vec!["alice-views-doc1".to_string()]);
}

#[test]
fn no_matching_permit_denies_with_no_reason() {
    let s = snapshot(
        r#"permit(principal == User::"alice", action == Action::"view", resource == Doc::"1");"#,
        None,
        &[],
    );
    let o = decide(&s, &req(r#"User::"bob""#, VIEW, r#"Doc::"1""#, None));
    assert_eq!(o.decision, Decision::Deny);
    assert!(o.reason.is_empty());
}

#[test]
fn forbid_overrides_permit() {
    let s = snapshot(
        r#"@id("everyone") permit(principal, action, resource);
           @id("not-doc2") forbid(principal, action, resource == Doc::"2");"#,
        None,
        &[],
    );
    assert_eq!(
        decide(&s, &req(r#"User::"a""#, VIEW, r#"Doc::"1""#, None)).decision,
        Decision::Allow
    );
    let o = decide(&s, &req(r#"User::"a""#, VIEW, r#"Doc::"2""#, None));
    assert_eq!(o.decision, Decision::Deny);
    assert_eq!(o.reason, vec!["not-doc2".to_string()]);
}

#[test]
fn when_and_unless_read_the_context() {
    let s = snapshot(
        r#"permit(principal, action, resource) when { context.mfa == true } unless { context.country == "XX" };"#,
        None,
        &[],
    );
    let r = |c: Value| req(r#"User::"a""#, VIEW, r#"Doc::"1""#, Some(c));
    assert_eq!(
        decide(&s, &r(json!({"mfa": true, "country": "FR"}))).decision,
        Decision::Allow
    );
    assert_eq!(
        decide(&s, &r(json!({"mfa": false, "country": "FR"}))).decision,
        Decision::Deny
    );
    assert_eq!(
        decide(&s, &r(json!({"mfa": true, "country": "XX"}))).decision,
        Decision::Deny
    );
}

#[test]
fn a_policy_that_errors_is_reported_and_skipped() {
    let s = snapshot(
        r#"@id("needs-level") permit(principal, action, resource) when { context.level > 3 };"#,
        None,
        &[],
    );
    let o = decide(
        &s,
        &req(r#"User::"a""#, VIEW, r#"Doc::"1""#, Some(json!({}))),
    );
    assert_eq!(o.decision, Decision::Deny);
    assert_eq!(o.errors.len(), 1);
    assert_eq!(o.errors[0].policy_id, "needs-level");
}

#[test]
fn entity_hierarchy_grants_through_in() {
    let entities = json!([
        {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Group", "id": "eng"}]},
        {"uid": {"type": "Group", "id": "eng"}, "attrs": {}, "parents": [{"type": "Group", "id": "staff"}]},
        {"uid": {"type": "Doc", "id": "1"}, "attrs": {}, "parents": [{"type": "Folder", "id": "shared"}]},
    ]);
    let s = snapshot(
        r#"@id("staff-shared") permit(principal in Group::"staff", action, resource in Folder::"shared");"#,
        Some(entities),
        &[],
    );
    assert_eq!(
        decide(&s, &req(r#"User::"alice""#, VIEW, r#"Doc::"1""#, None)).decision,
        Decision::Allow
    );
    assert_eq!(
        decide(&s, &req(r#"User::"bob""#, VIEW, r#"Doc::"1""#, None)).decision,
        Decision::Deny
    );
    assert_eq!(
        decide(&s, &req(r#"User::"alice""#, VIEW, r#"Doc::"2""#, None)).decision,
        Decision::Deny
    );
}

#[test]
fn request_entities_are_merged_over_stored_ones() {
    let entities = json!([{"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []}]);
    let s = snapshot(
        r#"permit(principal in Group::"eng", action, resource);"#,
        Some(entities),
        &[],
    );
    let mut r = req(r#"User::"alice""#, VIEW, r#"Doc::"1""#, None);
    assert_eq!(decide(&s, &r).decision, Decision::Deny);
    r.entities = vec![
        json!({"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": [{"type": "Group", "id": "eng"}]}),
    ];
    assert_eq!(decide(&s, &r).decision, Decision::Allow);
}

#[test]
fn template_linked_policies_share_one_document() {
    let link = StoredLink {
        id: "share-doc1-bob".into(),
        template: "share".into(),
        values: BTreeMap::from([
            ("?principal".to_string(), r#"User::"bob""#.to_string()),
            ("?resource".to_string(), r#"Doc::"1""#.to_string()),
        ]),
        author: "t".into(),
        time_ms: 0,
    };
    let s = snapshot(
        r#"@id("share") permit(principal == ?principal, action == Action::"view", resource == ?resource);"#,
        None,
        &[link],
    );
    let o = decide(&s, &req(r#"User::"bob""#, VIEW, r#"Doc::"1""#, None));
    assert_eq!(o.decision, Decision::Allow);
    assert_eq!(o.reason, vec!["share-doc1-bob".to_string()]);
    assert_eq!(
        decide(&s, &req(r#"User::"bob""#, VIEW, r#"Doc::"2""#, None)).decision,
        Decision::Deny
    );
    assert_eq!(
        decide(&s, &req(r#"User::"eve""#, VIEW, r#"Doc::"1""#, None)).decision,
        Decision::Deny
    );
}

#[test]
fn a_bad_uid_in_a_request_is_refused_with_a_diagnostic() {
    let err = parse_uid(&json!("User::alice"), "principal").expect_err("not a uid");
    match err {
        rsp_policies::PolicyError::Invalid {
            code, diagnostics, ..
        } => {
            assert_eq!(code, "invalid_request");
            assert!(!diagnostics.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_index_puts_scoped_policies_in_their_own_buckets() {
    let s = snapshot(
        r#"permit(principal == User::"a", action, resource);
           permit(principal, action, resource == Doc::"1");
           permit(principal in Group::"g", action, resource);
           permit(principal is User, action, resource);
           permit(principal, action, resource);"#,
        None,
        &[],
    );
    assert_eq!(s.index.len(), 5);
    assert_eq!(s.index.bucket_count(), 5);
}
