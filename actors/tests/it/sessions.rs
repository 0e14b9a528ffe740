//! Sessions across a three-node cluster: valid everywhere, surviving the
//! loss of the node that made them, and revoked everywhere on return.

use std::collections::BTreeMap;
use std::time::Duration;

use rsp_actors::{ActorError, SessionId, TenantHandle};

use crate::support::{config, start};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_on_a_validates_on_b_and_c_survives_a_and_revoke_on_b_is_in_force_on_c() {
    let nodes = start(3, config()).await;
    let (a, b, c) = (
        nodes.rt(1).tenant("acme").await.expect("a"),
        nodes.rt(2).tenant("acme").await.expect("b"),
        nodes.rt(3).tenant("acme").await.expect("c"),
    );
    let attrs = BTreeMap::from([("amr".to_string(), "pwd".to_string())]);
    let s = a
        .sessions()
        .create("alice", attrs.clone(), MIN, HOUR)
        .await
        .expect("create on A");
    // Presented to another node right away (read-your-writes across nodes).
    for (name, h) in [("B", &b), ("C", &c)] {
        let info = h
            .sessions()
            .validate(&s.id)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.user_id, "alice");
        assert_eq!(info.attrs, attrs);
        assert_eq!(info.handle, s.info.handle);
    }

    // Node A (the first leader) goes away.
    nodes.rt(1).shutdown().await;
    nodes.cluster.stop(1).await;
    for (name, h) in [("B", &b), ("C", &c)] {
        let presented = SessionId::parse(s.id.expose()).expect("id parses");
        h.sessions()
            .validate(&presented)
            .await
            .unwrap_or_else(|e| panic!("{name} after A stopped: {e}"));
    }

    let revocation = b.sessions().revoke(&s.id).await.expect("revoke on B");
    println!("revocation: {revocation:?}");
    assert_eq!(revocation.revoked, 1);
    assert!(revocation.confirmed.contains(&2) && revocation.confirmed.contains(&3));
    assert_eq!(revocation.fenced, vec![1]);
    for (name, h) in [("C", &c), ("B", &b)] {
        assert!(
            matches!(
                h.sessions().validate(&s.id).await,
                Err(ActorError::SessionNotFound)
            ),
            "{name} still accepts a revoked session"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_sessions_are_listed_and_revoked_together_from_any_node() {
    let nodes = start(3, config()).await;
    let handles = nodes.tenant_everywhere("acme").await;
    let mut bobs = Vec::new();
    for h in &handles {
        bobs.push(
            h.sessions()
                .create("bob", BTreeMap::new(), MIN, HOUR)
                .await
                .expect("create"),
        );
    }
    // A user id that extends bob's must not be caught by bob's prefix.
    let other = handles[0]
        .sessions()
        .create("bob/evil", BTreeMap::new(), MIN, HOUR)
        .await
        .expect("create");

    let listed = handles[2]
        .sessions()
        .list_for_user("bob")
        .await
        .expect("list");
    let mut got: Vec<_> = listed.iter().map(|i| i.handle.clone()).collect();
    let mut want: Vec<_> = bobs.iter().map(|s| s.info.handle.clone()).collect();
    got.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    want.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(got, want);

    let r = handles[1]
        .sessions()
        .revoke_all_for_user("bob")
        .await
        .expect("revoke all");
    assert_eq!(r.revoked, 3);
    assert!(r.fenced.is_empty(), "{r:?}");
    let ids: Vec<&SessionId> = bobs.iter().map(|s| &s.id).collect();
    assert_all_ended(&handles, "bob", &ids).await;
    for h in &handles {
        h.sessions()
            .validate(&other.id)
            .await
            .expect("bob/evil unaffected");
    }
}

/// None of `ids` validates on any node, and no node lists a session of
/// `user`.
async fn assert_all_ended(handles: &[TenantHandle], user: &str, ids: &[&SessionId]) {
    for h in handles {
        for id in ids {
            assert!(matches!(
                h.sessions().validate(id).await,
                Err(ActorError::SessionNotFound)
            ));
        }
        let listed = h.sessions().list_for_user(user).await.expect("list");
        assert!(listed.is_empty(), "{listed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_share_transactions_yet_each_gets_its_own_valid_session() {
    let nodes = start(3, config()).await;
    let on_2 = nodes.rt(2).tenant("acme").await.expect("tenant");
    let mut tasks = Vec::new();
    for i in 0..100 {
        let h = on_2.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("user{}", i % 7);
            h.sessions().create(&user, BTreeMap::new(), MIN, HOUR).await
        }));
    }
    let mut made = Vec::new();
    for t in tasks {
        made.push(t.await.expect("task").expect("create"));
    }
    let mut handles: Vec<_> = made
        .iter()
        .map(|s| s.info.handle.as_str().to_string())
        .collect();
    handles.sort();
    handles.dedup();
    assert_eq!(handles.len(), 100, "duplicate sessions");
    let on_3 = nodes.rt(3).tenant("acme").await.expect("tenant");
    for s in &made {
        let info = on_3
            .sessions()
            .validate(&s.id)
            .await
            .expect("valid on node 3");
        assert_eq!(info.user_id, s.info.user_id);
    }
    // Every node's live set follows the writes through watch events.
    for id in 1..=3 {
        let h = nodes.rt(id).tenant("acme").await.expect("tenant");
        crate::support::wait_for(
            "live set counts all sessions",
            Duration::from_secs(5),
            || async { (h.sessions().count().await.ok() == Some(100)).then_some(()) },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_from_before_the_user_tag_keep_working_and_a_shared_tag_does_not_mix_users() {
    use rsp_consensus::Consistency;
    use rsp_consensus::kv::{Key, Txn, TxnOp, tenant_keyspace};

    let nodes = start(3, config()).await;
    let handles = nodes.tenant_everywhere("acme").await;
    let consensus = nodes.cluster.node(1);
    let key_of = |op: &TxnOp| match op {
        TxnOp::Put { key, .. } => key.clone(),
        other => panic!("not a put: {other:?}"),
    };
    let stored = |key: &Key| {
        let key = key.clone();
        async move {
            let (kv, _) = consensus
                .get(&key, Consistency::Linearizable)
                .await
                .expect("read");
            kv.is_some()
        }
    };

    // Two sessions of carol in the earlier layout (22-character ids, record
    // plus index key), one made now.
    let mut legacy = Vec::new();
    for _ in 0..2 {
        let (id, txn) =
            rsp_actors::legacy_session_txn(consensus.clock(), "acme", "carol", MIN, HOUR)
                .expect("txn");
        let index = key_of(&txn.success[1]);
        consensus.txn(txn).await.expect("write legacy session");
        assert_eq!(id.expose().len(), 22);
        legacy.push((id, index));
    }
    let new = handles[1]
        .sessions()
        .create("carol", BTreeMap::new(), MIN, HOUR)
        .await
        .expect("create");
    assert_eq!(new.id.expose().len(), 33);

    // Another user's record under carol's tag (a 64-bit tag collision,
    // forced): never listed or revoked as carol's.
    let (_, mallory) =
        rsp_actors::legacy_session_txn(consensus.clock(), "acme", "mallory", MIN, HOUR)
            .expect("txn");
    let TxnOp::Put { value, ttl_ms, .. } = mallory.success[0].clone() else {
        panic!("record put");
    };
    let tag = &new.info.handle.as_str()[..11];
    let intruder = Key::new(
        tenant_keyspace("acme"),
        format!("session/{tag}{}", "M".repeat(22)),
    );
    let put = TxnOp::Put {
        key: intruder.clone(),
        value,
        ttl_ms,
    };
    consensus.txn(Txn::ops(vec![put])).await.expect("write");

    for h in &handles {
        for (id, _) in &legacy {
            let info = h.sessions().validate(id).await.expect("legacy validates");
            assert_eq!(info.user_id, "carol");
        }
    }
    let touched = handles[2]
        .sessions()
        .touch(&legacy[0].0)
        .await
        .expect("touch");
    assert_eq!(touched.handle, legacy[0].0.handle());
    assert!(stored(&legacy[0].1).await, "touch keeps the index key");

    let mut got: Vec<String> = handles[0]
        .sessions()
        .list_for_user("carol")
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.handle.to_string())
        .collect();
    let mut want: Vec<String> = legacy
        .iter()
        .map(|(id, _)| id.handle().to_string())
        .collect();
    want.push(new.info.handle.to_string());
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // One legacy session revoked alone: record and index key both go.
    let r = handles[0]
        .sessions()
        .revoke(&legacy[1].0)
        .await
        .expect("revoke");
    assert_eq!(r.revoked, 1);
    assert!(!stored(&legacy[1].1).await, "index key left behind");

    let r = handles[2]
        .sessions()
        .revoke_all_for_user("carol")
        .await
        .expect("revoke all");
    assert_eq!(r.revoked, 2);
    assert_all_ended(&handles, "carol", &[&legacy[0].0, &new.id]).await;
    assert!(!stored(&legacy[0].1).await, "index key left behind");
    assert!(stored(&intruder).await, "another user's record was revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_member_has_not_recorded_the_user_tag_feature_sessions_are_made_the_earlier_way() {
    use rsp_consensus::Consistency;
    use rsp_consensus::kv::{Key, Txn, TxnOp};

    let nodes = start(3, config()).await;
    let handles = nodes.tenant_everywhere("acme").await;
    let consensus = nodes.cluster.node(1);
    let create = |i: usize| {
        let h = handles[i].clone();
        async move {
            h.sessions()
                .create("dave", BTreeMap::new(), MIN, HOUR)
                .await
                .expect("create")
        }
    };
    assert_eq!(create(0).await.id.expose().len(), 33);
    let gauge = |id: u64| {
        crate::support::metric(
            nodes.registry(id),
            "rsp_cluster_feature",
            &[("feature", "session-user-tag")],
        )
    };
    assert_eq!(gauge(1), 1.0);

    // Node 3 as a node of the earlier release would be: no record.
    let record = Key::new("sys", "node_features/3");
    let (kv, _) = consensus
        .get(&record, Consistency::Linearizable)
        .await
        .expect("read");
    let kv = kv.expect("node 3 recorded its features");
    assert!(String::from_utf8_lossy(&kv.value).contains("session-user-tag"));
    consensus
        .txn(Txn::ops(vec![TxnOp::Delete {
            key: record.clone(),
        }]))
        .await
        .expect("delete");
    for (i, rt) in nodes.runtimes.iter().enumerate() {
        crate::support::wait_for("the feature off", Duration::from_secs(5), || async {
            (!rt.session_user_tags()).then_some(())
        })
        .await;
        let s = create(i).await;
        assert_eq!(s.id.expose().len(), 22, "node {}", i + 1);
        assert_eq!(s.info.handle.as_str().len(), 22);
        for h in &handles {
            h.sessions().validate(&s.id).await.expect("validates");
        }
    }
    assert_eq!(gauge(2), 0.0);
    let listed = handles[2]
        .sessions()
        .list_for_user("dave")
        .await
        .expect("list");
    assert_eq!(listed.len(), 4);

    // Node 3 upgraded: the feature comes back by itself.
    let put = TxnOp::Put {
        key: record,
        value: kv.value,
        ttl_ms: None,
    };
    consensus.txn(Txn::ops(vec![put])).await.expect("put");
    for rt in &nodes.runtimes {
        crate::support::wait_for("the feature on", Duration::from_secs(5), || async {
            rt.session_user_tags().then_some(())
        })
        .await;
    }
    assert_eq!(create(1).await.id.expose().len(), 33);
    let r = handles[0]
        .sessions()
        .revoke_all_for_user("dave")
        .await
        .expect("revoke all");
    assert_eq!(r.revoked, 5);
}
