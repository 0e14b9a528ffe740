//! The policy evaluator actor hosts each tenant's Cedar snapshot: loaded
//! from storage, swapped when `policy/head` changes, read directly by
//! decisions, reloaded after a restart, dropped when the tenant idles.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rsp_actors::{ChildKind, Fault, TenantHandle};
use rsp_policies::cedar_policy::Decision;
use rsp_policies::{DecisionRequest, Outcome, PolicyConfig, PolicyStore, parse_uid};
use serde_json::json;

use crate::support::{config, start, wait_for};

fn ask(action: &str) -> DecisionRequest {
    DecisionRequest {
        principal: parse_uid(&json!("User::\"alice\""), "principal").expect("principal"),
        action: parse_uid(&json!(format!("Action::\"{action}\"")), "action").expect("action"),
        resource: parse_uid(&json!("Doc::\"1\""), "resource").expect("resource"),
        context: None,
        entities: vec![],
    }
}

async fn decide(h: &TenantHandle, action: &str) -> Outcome {
    let snapshot = h
        .policies()
        .snapshot(Instant::now())
        .await
        .expect("snapshot");
    snapshot.decide(&ask(action), true).expect("decides")
}

/// Policy `v{n}` permits action `a{n}` only.
fn version_text(n: u64) -> String {
    format!("@id(\"v{n}\")\npermit (principal, action == Action::\"a{n}\", resource);")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_policies_denies_with_no_reason() {
    let nodes = start(1, config()).await;
    let h = nodes.rt(1).tenant("acme").await.expect("tenant");
    let out = decide(&h, "read").await;
    assert_eq!(out.decision, Decision::Deny);
    assert!(out.reason.is_empty() && out.errors.is_empty(), "{out:?}");
    let published = h.policies().published().expect("published after load");
    assert_eq!(published.head_rev, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_node_governs_the_next_decision_on_every_node() {
    let nodes = start(3, config()).await;
    let store = PolicyStore::new(nodes.cluster.node(1).clone(), PolicyConfig::default());
    // Every node has loaded (and so holds) the empty set first.
    for id in 1..=3 {
        let h = nodes.rt(id).tenant("acme").await.expect("tenant");
        assert_eq!(decide(&h, "a1").await.decision, Decision::Deny);
    }
    for n in 1..=3 {
        store
            .put_policies("acme", version_text(n), None, "test")
            .await
            .expect("write acknowledged");
        // Right after the acknowledgement, on every node.
        for id in 1..=3 {
            let h = nodes.rt(id).tenant("acme").await.expect("tenant");
            let out = decide(&h, &format!("a{n}")).await;
            assert_eq!(out.decision, Decision::Allow, "node {id}, version {n}");
            assert_eq!(out.reason, vec![format!("v{n}")]);
            let old = decide(&h, &format!("a{}", n - 1)).await;
            assert_eq!(
                old.decision,
                Decision::Deny,
                "node {id} still sees v{}",
                n - 1
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_swaps_the_published_snapshot_without_any_decision() {
    let nodes = start(3, config()).await;
    let store = PolicyStore::new(nodes.cluster.node(1).clone(), PolicyConfig::default());
    let h = nodes.rt(2).tenant("acme").await.expect("tenant");
    decide(&h, "a1").await;
    let receipt = store
        .put_policies("acme", version_text(1), None, "test")
        .await
        .expect("write");
    let published = wait_for("node 2 swapped in v1", Duration::from_secs(5), || async {
        h.policies()
            .published()
            .filter(|s| s.head.version == receipt.version)
    })
    .await;
    assert_eq!(published.compiled.policies.num_of_policies(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_decision_reads_the_published_snapshot_without_asking_the_actor() {
    let nodes = start(1, config()).await;
    let store = PolicyStore::new(nodes.cluster.node(1).clone(), PolicyConfig::default());
    store
        .put_policies("acme", version_text(1), None, "test")
        .await
        .expect("write");
    let h = nodes.rt(1).tenant("acme").await.expect("tenant");
    assert_eq!(decide(&h, "a1").await.decision, Decision::Allow);
    // The evaluator's mailbox is blocked for longer than a call may wait;
    // decisions do not go through it.
    h.inject_fault(ChildKind::Policy, Fault::Stall(Duration::from_secs(5)))
        .expect("stall");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    for _ in 0..100 {
        assert_eq!(decide(&h, "a1").await.decision, Decision::Allow);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "100 decisions took {:?} with the evaluator stalled",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_evaluator_reloads_the_set_from_storage() {
    let nodes = start(1, config()).await;
    let store = PolicyStore::new(nodes.cluster.node(1).clone(), PolicyConfig::default());
    store
        .put_policies("acme", version_text(1), None, "test")
        .await
        .expect("write");
    let rt = nodes.rt(1);
    let h = rt.tenant("acme").await.expect("tenant");
    assert_eq!(decide(&h, "a1").await.decision, Decision::Allow);
    h.inject_fault(ChildKind::Policy, Fault::Panic)
        .expect("panic");
    wait_for("evaluator restarted", Duration::from_secs(5), || async {
        rt.health()
            .tenant("acme")
            .filter(|t| t.restarts >= 1)
            .map(|_| ())
    })
    .await;
    // The new incarnation loaded v1 as it started, and follows writes.
    wait_for("v1 published again", Duration::from_secs(5), || async {
        h.policies().published().filter(|s| s.head.version == 1)
    })
    .await;
    store
        .put_policies("acme", version_text(2), None, "test")
        .await
        .expect("write v2");
    assert_eq!(decide(&h, "a2").await.decision, Decision::Allow);
    assert_eq!(decide(&h, "a1").await.decision, Decision::Deny);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tenant_drops_its_snapshot_and_loads_it_again_on_next_use() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_millis(300);
    let nodes = start(1, cfg).await;
    let store = PolicyStore::new(nodes.cluster.node(1).clone(), PolicyConfig::default());
    store
        .put_policies("acme", version_text(1), None, "test")
        .await
        .expect("write");
    let rt = nodes.rt(1);
    let old = rt.tenant("acme").await.expect("tenant");
    assert_eq!(decide(&old, "a1").await.decision, Decision::Allow);
    assert!(old.policies().published().is_some());
    wait_for("idle tenant stopped", Duration::from_secs(5), || async {
        rt.health().tenant("acme").is_none().then_some(())
    })
    .await;
    assert!(
        old.policies().published().is_none(),
        "the stopped tenant still holds its snapshot"
    );
    // The old handle starts the tenant again; the new incarnation loads.
    assert_eq!(decide(&old, "a1").await.decision, Decision::Allow);
    let now = rt.tenant("acme").await.expect("tenant");
    assert_eq!(now.policies().published().map(|s| s.head.version), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_during_rapid_writes_always_see_one_whole_version() {
    // The reader spins: lift the tenant's requests-per-second quota.
    let mut cfg = config();
    cfg.limits.requests_per_sec = 1e9;
    cfg.limits.request_burst = 1e9;
    let nodes = start(1, cfg).await;
    let store = PolicyStore::new(nodes.cluster.node(1).clone(), PolicyConfig::default());
    let h = nodes.rt(1).tenant("acme").await.expect("tenant");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (h, done) = (h.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = 0u64;
            while !done.load(Ordering::SeqCst) {
                let s = h
                    .policies()
                    .snapshot(Instant::now())
                    .await
                    .expect("snapshot");
                let v = s.head.version;
                assert!(v >= seen, "went back from v{seen} to v{v}");
                seen = v;
                if v > 0 {
                    let out = s.decide(&ask(&format!("a{v}")), true).expect("decides");
                    assert_eq!(out.reason, vec![format!("v{v}")], "head says v{v}");
                    let prev = s
                        .decide(&ask(&format!("a{}", v - 1)), true)
                        .expect("decides");
                    assert_eq!(prev.decision, Decision::Deny, "v{v} mixed with v{}", v - 1);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    for n in 1..=20 {
        store
            .put_policies("acme", version_text(n), None, "test")
            .await
            .expect("write");
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.expect("reader");
    assert!(seen >= 1, "the reader saw no version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_quorum_refuses_to_decide_rather_than_answer_stale() {
    let cluster = rsp_consensus::testing::TestCluster::start_with(3, &|c| {
        c.read_timeout = Duration::from_millis(500)
    })
    .await
    .expect("cluster");
    let node = &cluster.nodes[2];
    let bound = PolicyConfig {
        local_bound: Duration::from_millis(300),
        ..PolicyConfig::default()
    };
    let rt = rsp_actors::TenantRuntime::start_with(
        node.consensus.clone(),
        config(),
        &node.registry,
        bound,
    )
    .await
    .expect("runtime");
    node.consensus.ready().await.expect("ready");
    let h = rt.tenant("acme").await.expect("tenant");
    assert_eq!(decide(&h, "a1").await.decision, Decision::Deny);
    cluster.stop(1).await;
    cluster.stop(2).await;
    // Within the bound it may still answer from what it has; past it, it
    // must confirm with a quorum first, and there is none.
    let err = wait_for("a decision refused", Duration::from_secs(10), || async {
        h.policies().snapshot(Instant::now()).await.err()
    })
    .await;
    assert_eq!(err.code(), "unavailable", "{err:?}");
    assert!(
        h.policies().published().is_some(),
        "it still holds the set; it just may not use it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_bounded_by_in_flight_calls_not_the_request_quota() {
    let mut cfg = config();
    cfg.limits.requests_per_sec = 1.0;
    cfg.limits.request_burst = 1.0;
    let nodes = start(1, cfg).await;
    let h = nodes.rt(1).tenant("acme").await.expect("tenant");
    for _ in 0..50 {
        assert_eq!(decide(&h, "a1").await.decision, Decision::Deny);
    }
    // Metered calls still pass through the quota.
    let refused = wait_for("a metered call refused", Duration::from_secs(5), || async {
        h.rate_limits().check("login", "192.0.2.1").await.err()
    })
    .await;
    assert_eq!(refused.code(), "quota_exceeded", "{refused:?}");
}
