//! The replicated policy store: refused writes carry Cedar's diagnostics,
//! versions are kept and restorable, links and entities are validated, and
//! a write acknowledged on one node governs decisions on every other node.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cedar_policy::Decision;
use rsp_consensus::testing::TestCluster;
use rsp_policies::{DecisionRequest, PolicyConfig, PolicyError, PolicyService, parse_uid};
use serde_json::json;

const T: &str = "acme";

fn req(p: &str, r: &str) -> DecisionRequest {
    DecisionRequest {
        principal: parse_uid(&json!(p), "principal").expect("uid"),
        action: parse_uid(&json!(r#"Action::"view""#), "action").expect("uid"),
        resource: parse_uid(&json!(r), "resource").expect("uid"),
        context: None,
        entities: vec![],
    }
}

async fn one_node() -> (TestCluster, PolicyService) {
    let cluster = TestCluster::start(1).await.expect("cluster");
    let service = PolicyService::new(cluster.node(1).clone(), PolicyConfig::default());
    (cluster, service)
}

fn invalid(e: PolicyError) -> (&'static str, Vec<rsp_policies::Diagnostic>) {
    match e {
        PolicyError::Invalid {
            code, diagnostics, ..
        } => (code, diagnostics),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

const SCHEMA_DOCS: &str = r#"{"": {
  "entityTypes": {"User": {}, "Doc": {"shape": {"type": "Record", "attributes": {"public": {"type": "Boolean"}}}}},
  "actions": {"view": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["Doc"]}}}
}}"#;

#[tokio::test]
async fn a_policy_that_does_not_parse_is_refused_with_its_location() {
    let (_c, s) = one_node().await;
    let text = "permit(principal, action, resource) when { principal.name == };";
    let e = s
        .store()
        .put_policies(T, text.into(), None, "t")
        .await
        .expect_err("refused");
    let (code, diagnostics) = invalid(e);
    assert_eq!(code, "invalid_policies");
    assert!(!diagnostics.is_empty());
    assert!(
        diagnostics[0]
            .source_ranges
            .iter()
            .any(|r| r.start <= text.len() && r.end <= text.len() + 1),
        "{diagnostics:?}"
    );
    // Nothing was stored.
    assert_eq!(s.store().read(T).await.expect("read").head.version, 0);
}

#[tokio::test]
async fn a_schema_cedar_cannot_read_is_refused() {
    let (_c, s) = one_node().await;
    let e = s
        .store()
        .put_policies(
            T,
            "permit(principal, action, resource);".into(),
            Some(
                json!({"": {"entityTypes": {"User": {"shape": {"type": "Nope"}}}, "actions": {}}}),
            ),
            "t",
        )
        .await
        .expect_err("refused");
    let (code, diagnostics) = invalid(e);
    assert_eq!(code, "invalid_schema");
    assert!(!diagnostics.is_empty());
}

#[tokio::test]
async fn policies_that_break_the_schema_are_refused_per_policy() {
    let (_c, s) = one_node().await;
    let schema: serde_json::Value = serde_json::from_str(SCHEMA_DOCS).expect("json");
    let good = r#"@id("public") permit(principal, action == Action::"view", resource) when { resource.public };"#;
    s.store()
        .put_policies(T, good.into(), Some(schema.clone()), "t")
        .await
        .expect("valid against the schema");
    let bad = r#"@id("typo") permit(principal, action == Action::"view", resource) when { resource.pubic };"#;
    let (code, diagnostics) = invalid(
        s.store()
            .put_policies(T, bad.into(), Some(schema), "t")
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, "invalid_policies");
    assert_eq!(diagnostics[0].policy_id.as_deref(), Some("typo"));
}

#[tokio::test]
async fn entities_that_break_the_schema_are_refused() {
    let (_c, s) = one_node().await;
    let schema: serde_json::Value = serde_json::from_str(SCHEMA_DOCS).expect("json");
    s.store()
        .put_policies(
            T,
            "permit(principal, action, resource);".into(),
            Some(schema),
            "t",
        )
        .await
        .expect("stored");
    let bad =
        json!([{"uid": {"type": "Doc", "id": "1"}, "attrs": {"public": "yes"}, "parents": []}]);
    let (code, _) = invalid(
        s.store()
            .put_entities(T, bad, "t")
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, "invalid_entities");
    let good =
        json!([{"uid": {"type": "Doc", "id": "1"}, "attrs": {"public": true}, "parents": []}]);
    s.store().put_entities(T, good, "t").await.expect("stored");
}

#[tokio::test]
async fn every_version_is_kept_and_an_old_one_can_be_restored() {
    let (_c, s) = one_node().await;
    let started = || Instant::now();
    let v1 = r#"@id("v1") permit(principal == User::"alice", action, resource);"#;
    let v2 = r#"@id("v2") permit(principal == User::"bob", action, resource);"#;
    assert_eq!(
        s.store()
            .put_policies(T, v1.into(), None, "ann")
            .await
            .expect("v1")
            .version,
        1
    );
    assert_eq!(
        s.store()
            .put_policies(T, v2.into(), None, "ben")
            .await
            .expect("v2")
            .version,
        2
    );
    let alice = req(r#"User::"alice""#, r#"Doc::"1""#);
    assert_eq!(
        s.decide(T, &alice, started()).await.expect("d").decision,
        Decision::Deny
    );

    let receipt = s.store().restore(T, 1, "cat").await.expect("restore");
    assert_eq!(receipt.version, 3);
    assert_eq!(
        s.decide(T, &alice, started()).await.expect("d").decision,
        Decision::Allow
    );

    let versions = s.store().versions(T).await.expect("versions");
    let summary: Vec<(u64, &str, Option<u64>, bool)> = versions
        .iter()
        .map(|v| (v.version, v.author.as_str(), v.restored_from, v.current))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "ann", None, false),
            (2, "ben", None, false),
            (3, "cat", Some(1), true)
        ]
    );
    assert_eq!(s.store().version(T, 3).await.expect("v3").policies, v1);
    assert!(matches!(
        s.store().version(T, 9).await,
        Err(PolicyError::NotFound(_))
    ));
}

#[tokio::test]
async fn links_are_stored_validated_and_removable() {
    let (_c, s) = one_node().await;
    s.store()
        .put_policies(
            T,
            r#"@id("share") permit(principal == ?principal, action, resource == ?resource);"#
                .into(),
            None,
            "t",
        )
        .await
        .expect("template");
    let values = BTreeMap::from([
        ("?principal".to_string(), r#"User::"bob""#.to_string()),
        ("?resource".to_string(), r#"Doc::"7""#.to_string()),
    ]);
    let bob = req(r#"User::"bob""#, r#"Doc::"7""#);
    s.store()
        .link(T, "bob-7", "share", values.clone(), "t")
        .await
        .expect("linked");
    assert_eq!(
        s.decide(T, &bob, Instant::now()).await.expect("d").decision,
        Decision::Allow
    );

    let (code, _) = invalid(
        s.store()
            .link(T, "x", "no-such-template", values.clone(), "t")
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, "invalid_link");
    // A new version without the template would orphan the link: refused.
    let (code, _) = invalid(
        s.store()
            .put_policies(T, "permit(principal, action, resource);".into(), None, "t")
            .await
            .expect_err("refused"),
    );
    assert_eq!(code, "invalid_link");

    s.store().unlink(T, "bob-7").await.expect("unlinked");
    assert_eq!(
        s.decide(T, &bob, Instant::now()).await.expect("d").decision,
        Decision::Deny
    );
    assert!(matches!(
        s.store().unlink(T, "bob-7").await,
        Err(PolicyError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_write_acknowledged_on_node_a_governs_decisions_on_node_c_at_once() {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let a = PolicyService::new(cluster.node(1).clone(), PolicyConfig::default());
    let c = PolicyService::new(cluster.node(3).clone(), PolicyConfig::default());
    let alice = req(r#"User::"alice""#, r#"Doc::"1""#);
    // Node C has a snapshot (and a watcher) before the writes.
    assert_eq!(
        c.decide(T, &alice, Instant::now())
            .await
            .expect("d")
            .decision,
        Decision::Deny
    );
    for round in 0..5 {
        let (text, expected) = if round % 2 == 0 {
            (
                r#"permit(principal == User::"alice", action, resource);"#,
                Decision::Allow,
            )
        } else {
            (
                r#"forbid(principal == User::"alice", action, resource);"#,
                Decision::Deny,
            )
        };
        a.store()
            .put_policies(T, text.into(), None, "t")
            .await
            .expect("acknowledged");
        // The very next decision on C, no waiting.
        let got = c
            .decide(T, &alice, Instant::now())
            .await
            .expect("d")
            .decision;
        assert_eq!(got, expected, "round {round}");
    }
}

#[tokio::test]
async fn the_watcher_swaps_in_a_new_set_without_a_decision_asking() {
    let cluster = TestCluster::start(2).await.expect("cluster");
    let a = PolicyService::new(cluster.node(1).clone(), PolicyConfig::default());
    let b = PolicyService::new(cluster.node(2).clone(), PolicyConfig::default());
    let before = b.snapshot(T, Instant::now()).await.expect("snapshot");
    a.store()
        .put_policies(T, "permit(principal, action, resource);".into(), None, "t")
        .await
        .expect("written");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // No decision runs here: only the watch task can swap the set.
        let now = b.peek(T).expect("loaded");
        if now.head.version == 1 {
            assert!(now.head_rev > before.head_rev);
            break;
        }
        assert!(Instant::now() < deadline, "snapshot never swapped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn short_bound() -> PolicyConfig {
    PolicyConfig {
        confirm_timeout: Duration::from_millis(300),
        local_bound: Duration::from_millis(400),
        ..PolicyConfig::default()
    }
}

#[tokio::test]
async fn a_write_with_a_member_down_waits_out_the_bound_and_names_it() {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let a = PolicyService::new(cluster.node(1).clone(), short_bound());
    cluster.stop(3).await;
    let started = Instant::now();
    let receipt = a
        .store()
        .put_policies(T, "permit(principal, action, resource);".into(), None, "t")
        .await
        .expect("a quorum acknowledges");
    assert_eq!(receipt.unconfirmed, vec![3]);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_node_cut_off_from_the_quorum_refuses_to_decide_rather_than_answer_stale() {
    let cluster = TestCluster::start_with(3, &|c| c.read_timeout = Duration::from_millis(500))
        .await
        .expect("cluster");
    let c = PolicyService::new(cluster.node(3).clone(), short_bound());
    let alice = req(r#"User::"alice""#, r#"Doc::"1""#);
    assert_eq!(
        c.decide(T, &alice, Instant::now())
            .await
            .expect("d")
            .decision,
        Decision::Deny
    );
    cluster.stop(1).await;
    cluster.stop(2).await;
    // Within the bound it may still answer from what it has; past it, it
    // must confirm with a quorum first, and there is none.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let e = c
        .decide(T, &alice, Instant::now())
        .await
        .expect_err("no quorum, no decision");
    assert!(matches!(e, PolicyError::Consensus(_)), "{e:?}");
}
