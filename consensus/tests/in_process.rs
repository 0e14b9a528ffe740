//! Consensus across three in-process nodes: forwarding, both read paths,
//! TTL expiry at one revision everywhere, and waiting for every node to apply.

use std::time::Duration;

use rsp_consensus::kv::{EventKind, Key, Txn, TxnOp};
use rsp_consensus::testing::TestCluster;
use rsp_consensus::{ConsensusError, Consistency};

fn put(key: &str, value: &str, ttl_ms: Option<u64>) -> Txn {
    Txn::ops(vec![TxnOp::Put {
        key: Key::new("test", key.as_bytes().to_vec()),
        value: value.as_bytes().to_vec(),
        ttl_ms,
    }])
}

fn key(k: &str) -> Key {
    Key::new("test", k.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_follower_is_forwarded_and_readable_linearizably_everywhere() {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let leader = cluster
        .leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let (resp, index) = cluster
        .node(follower)
        .txn_indexed(put("a", "1", None))
        .await
        .expect("write");
    assert!(resp.succeeded);
    assert!(index > 0);
    for id in 1..=3 {
        let (kv, info) = cluster
            .node(id)
            .get(&key("a"), Consistency::Linearizable)
            .await
            .expect("read");
        assert_eq!(kv.expect("present").value, b"1");
        assert!(
            info.applied_index >= index,
            "node {id} read below the write's index"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_keys_expire_at_the_same_revision_on_every_node() {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let mut watches: Vec<_> = (1..=3).map(|id| cluster.node(id).watch()).collect();
    cluster
        .node(2)
        .txn(put("short", "x", Some(400)))
        .await
        .expect("write");
    let mut revisions = Vec::new();
    for (i, rx) in watches.iter_mut().enumerate() {
        let rev = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.kind == EventKind::Expire && ev.key == key("short") => {
                        return ev.revision;
                    }
                    Ok(_) => {}
                    Err(e) => panic!("watch on node {} failed: {e}", i + 1),
                }
            }
        })
        .await
        .expect("expiry seen in time");
        revisions.push(rev);
    }
    assert!(
        revisions.windows(2).all(|w| w[0] == w[1]),
        "expiry revisions differ: {revisions:?}"
    );
    for id in 1..=3 {
        let (kv, _) = cluster
            .node(id)
            .get(&key("short"), Consistency::Local)
            .await
            .expect("read");
        assert!(kv.is_none(), "node {id} still has the expired key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_applied_everywhere_names_the_node_that_is_down() {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let leader = cluster
        .leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let (_, index) = cluster
        .node(leader)
        .txn_indexed(put("b", "1", None))
        .await
        .expect("write");
    let report = cluster
        .node(leader)
        .wait_applied_everywhere(index, Duration::from_secs(5))
        .await;
    assert!(report.complete(), "{report:?}");

    let down = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.stop(down).await;
    let (_, index) = cluster
        .node(leader)
        .txn_indexed(put("b", "2", None))
        .await
        .expect("write with 2 of 3");
    let report = cluster
        .node(leader)
        .wait_applied_everywhere(index, Duration::from_millis(500))
        .await;
    assert_eq!(report.missing, vec![down]);
    assert_eq!(report.confirmed.len(), 2);
}

/// A node that removed itself (the leader, asked to leave) keeps serving
/// writes until it is stopped: it no longer hears from the new leader, so
/// it finds it through the remaining members, and a write it proposed as
/// leader that it never hears the end of does not block the rest. (An
/// admin call's audit record is written after the removal it records.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_leader_still_reaches_the_new_leader_with_its_writes() {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let leader = cluster
        .leader(Duration::from_secs(10))
        .await
        .expect("leader");
    // Writes keep going to the leader while it removes itself, so one is
    // usually in flight when it steps down: the next leader commits it and
    // this node is never told, which must not stop its later writes.
    let busy = cluster.node(leader).clone();
    let writer = tokio::spawn(async move {
        for i in 0.. {
            let _ = busy.txn(put("during-removal", &i.to_string(), None)).await;
        }
    });
    cluster
        .node(leader)
        .remove_node(leader)
        .await
        .expect("remove the leader");
    tokio::time::sleep(Duration::from_millis(200)).await;
    writer.abort();
    let write = tokio::time::timeout(
        Duration::from_secs(20),
        cluster
            .node(leader)
            .txn_indexed(put("after-removal", "1", None)),
    )
    .await
    .expect("the write neither hangs nor outlives its deadline");
    let (_, index) = write.expect("a write through the removed node");
    let other = (1..=3).find(|id| *id != leader).expect("a member");
    let (kv, info) = cluster
        .node(other)
        .get(&key("after-removal"), Consistency::Linearizable)
        .await
        .expect("read");
    assert_eq!(kv.expect("present").value, b"1");
    assert!(info.applied_index >= index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_commands_are_refused_before_the_log() {
    let cluster = TestCluster::start(1).await.expect("cluster");
    let before = cluster.node(1).metrics().last_log_index;
    let big = "x".repeat((1 << 20) + 1);
    match cluster.node(1).txn(put("big", &big, None)).await {
        Err(ConsensusError::BadRequest(_)) => {}
        other => panic!("expected BadRequest, got {other:?}"),
    }
    let bad_keyspace = Txn::ops(vec![TxnOp::Put {
        key: Key::new("", b"k".to_vec()),
        value: vec![],
        ttl_ms: None,
    }]);
    assert!(matches!(
        cluster.node(1).txn(bad_keyspace).await,
        Err(ConsensusError::BadRequest(_))
    ));
    assert_eq!(
        cluster.node(1).metrics().last_log_index,
        before,
        "refused commands reached the log"
    );
}

/// The peer port acts only for holders of the cluster's join token: a
/// caller with another token gets neither the key-encryption key nor a
/// place in the membership nor a write nor a vote, and a request with no
/// tag at all is answered 401; a caller with the token is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_port_serves_only_holders_of_the_join_token() {
    use std::collections::HashMap;

    use rsp_consensus::peer_auth::{JoinToken, PeerAuth};
    use rsp_consensus::rpc::{PeerBody, PeerResponse};
    use rsp_consensus::transport::{Transport, TransportError};
    use rsp_consensus::{META_GROUP, Member};

    let cluster = TestCluster::start(1).await.expect("cluster");
    let node = cluster.node(1);
    node.set_secret("kek", b"the cluster's key-encryption key");
    let addr = node.status_self_member().peer_addr;
    let stranger = Transport::new(None, PeerAuth::new(&JoinToken::generate()), HashMap::new())
        .expect("transport");
    let timeout = Duration::from_secs(5);
    let refused = |r: Result<PeerResponse, TransportError>| {
        assert!(
            matches!(r, Err(TransportError::Unauthenticated { .. })),
            "{r:?}"
        )
    };

    let secret = PeerBody::GetSecret { name: "kek".into() };
    refused(stranger.call(&addr, META_GROUP, secret, timeout).await);
    let me = Member {
        peer_addr: "127.0.0.1:1".into(),
        http_addr: String::new(),
        zone: "z".into(),
        region: "r".into(),
    };
    let add = PeerBody::AddNode {
        id: 9,
        member: me,
        voter: true,
    };
    refused(stranger.call(&addr, META_GROUP, add, timeout).await);
    let write = PeerBody::Write(rsp_consensus::kv::Op::Txn(put("owned", "yes", None)));
    refused(stranger.call(&addr, META_GROUP, write, timeout).await);
    let term = node.metrics().current_term;
    let vote = PeerBody::Vote(openraft::raft::VoteRequest::new(
        openraft::Vote::new(term + 5, 9),
        None,
    ));
    refused(stranger.call(&addr, META_GROUP, vote, timeout).await);

    // Nothing changed.
    assert_eq!(node.metrics().current_term, term);
    let ids: Vec<u64> = node.status().members.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![1]);
    let (kv, _) = node
        .get(&key("owned"), Consistency::Linearizable)
        .await
        .expect("read");
    assert!(kv.is_none(), "a stranger's write was applied");

    // No tag at all: 401 before the body is even decoded.
    let raw = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client")
        .post(format!("http://{addr}/peer/v1/rpc"))
        .body(vec![0u8; 16])
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), 401);

    // The same requests with the cluster's token are served.
    let member = Transport::new(None, node.peer_auth().clone(), HashMap::new()).expect("transport");
    let secret = PeerBody::GetSecret { name: "kek".into() };
    match member.call(&addr, META_GROUP, secret, timeout).await {
        Ok(PeerResponse::Secret(Some(s))) => {
            assert_eq!(s, b"the cluster's key-encryption key".to_vec())
        }
        other => panic!("a member asked for the KEK: {other:?}"),
    }
}

/// The sum over a node's series of `name` whose labels include `label`
/// (counters and gauges by value, histograms by observation count).
fn sample(registry: &prometheus::Registry, name: &str, label: Option<(&str, &str)>) -> f64 {
    let families = registry.gather();
    let Some(family) = families.iter().find(|f| f.name() == name) else {
        return 0.0;
    };
    family
        .get_metric()
        .iter()
        .filter(|m| {
            label.is_none_or(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == k && l.value() == v)
            })
        })
        .map(|m| match family.get_field_type() {
            prometheus::proto::MetricType::COUNTER => m.get_counter().get_value(),
            prometheus::proto::MetricType::HISTOGRAM => m.get_histogram().get_sample_count() as f64,
            _ => m.get_gauge().get_value(),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_metrics_show_leadership_replication_log_syncs_and_snapshots() {
    let cluster = TestCluster::start_with(3, &|c| c.snapshot_threshold = 20)
        .await
        .expect("cluster");
    let leader = cluster
        .leader(Duration::from_secs(10))
        .await
        .expect("leader");
    for i in 0..40 {
        cluster
            .node(leader)
            .txn_indexed(put(&format!("k{i}"), "v", None))
            .await
            .expect("write");
    }
    let leader_registry = &cluster.nodes[(leader - 1) as usize].registry;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let built: f64 = cluster
            .nodes
            .iter()
            .map(|n| {
                sample(
                    &n.registry,
                    "rsp_raft_snapshots_total",
                    Some(("kind", "build")),
                )
            })
            .sum();
        let followers = (1..=3u64)
            .filter(|f| *f != leader)
            .filter(|f| {
                leader_registry.gather().iter().any(|fam| {
                    fam.name() == "rsp_raft_replication_lag_entries"
                        && fam.get_metric().iter().any(|m| {
                            m.get_label()
                                .iter()
                                .any(|l| l.name() == "follower" && l.value() == f.to_string())
                        })
                })
            })
            .count();
        if built >= 1.0 && followers == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "snapshots built: {built}, followers with a lag series: {followers}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sample(
            leader_registry,
            "rsp_raft_replication_lag_entries",
            Some(("follower", &leader.to_string()))
        ),
        0.0,
        "the leader has no lag series of its own"
    );
    for n in &cluster.nodes {
        let r = &n.registry;
        assert!(
            sample(r, "rsp_raft_leader_changes_total", None) >= 1.0,
            "node {} saw no leader",
            n.id
        );
        assert!(
            sample(r, "rsp_storage_log_sync_duration_seconds", None) >= 1.0,
            "node {} timed no log sync",
            n.id
        );
    }
}
