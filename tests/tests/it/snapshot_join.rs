//! A node that joins after the log was purged catches up from a snapshot.

use std::time::Duration;

use anyhow::{Result, anyhow, bail, ensure};
use rsp_chaos::{Cluster, Consistency, NodeJoin};
use rsp_tests::{CONVERGE, metric, put_acked, spec};
use tokio::task::JoinSet;

const KEYS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_after_log_purge_catches_up_from_a_snapshot() -> Result<()> {
    let cluster = Cluster::start(spec(3).args(["--snapshot-threshold", "20"])).await?;
    let leader = cluster.wait_for_leader(CONVERGE).await?;

    // 200 keys from 4 concurrent writers through the leader.
    let mut writers = JoinSet::new();
    for w in 0..4 {
        let client = cluster.client(leader)?;
        writers.spawn(async move {
            for i in (w..KEYS).step_by(4) {
                put_acked(&client, &format!("snap/{i:03}"), &format!("value-{i}")).await?;
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(done) = writers.join_next().await {
        done??;
    }

    // Precondition: the leader has purged the start of its log, so the new
    // node cannot be served from the log alone.
    let leader_client = cluster.client(leader)?;
    let purged = cluster
        .wait_until(CONVERGE, "the leader to purge its log", || async {
            let metrics = leader_client.metrics().await?;
            let purged = metric(&metrics, "rsp_raft_purged_index").unwrap_or(0.0);
            ensure!(purged >= 1.0, "rsp_raft_purged_index = {purged}");
            Ok(purged)
        })
        .await?;

    let id = cluster.add_node(NodeJoin::voter()).await?;
    let client = cluster.client(id)?;
    // Caught up: the node is ready (it knows a leader and has applied what
    // was committed) and is a voter.
    cluster
        .wait_until(CONVERGE, "the new node to be a ready voter", || async {
            let view = client.cluster_info().await?;
            let role = view.member(id).map(|m| m.role.clone());
            ensure!(
                matches!(role.as_deref(), Some("follower" | "leader")),
                "role {role:?}"
            );
            ensure!(client.readyz().await? == 200, "/readyz not 200");
            Ok(())
        })
        .await?;

    let metrics = client.metrics().await?;
    let snapshot = metric(&metrics, "rsp_raft_snapshot_index").unwrap_or(0.0);
    ensure!(
        snapshot >= purged,
        "node {id} snapshot index {snapshot}, leader purged up to {purged}: it did not install a snapshot"
    );

    let local = client.with_timeout(Duration::from_secs(5));
    let mut missing = Vec::new();
    for i in 0..KEYS {
        let key = format!("snap/{i:03}");
        match local.kv_value(&key, Consistency::Local).await? {
            Some(r) if r.value == format!("value-{i}") => {}
            other => missing.push(format!("{key}: {:?}", other.map(|r| r.value))),
        }
    }
    if !missing.is_empty() {
        bail!(
            "node {id} reports caught up but misses {} of {KEYS} keys locally, e.g. {:?}\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            cluster.log_tail(id, 40)
        );
    }

    // And it takes part in new writes.
    put_acked(&client, "snap/after-join", "yes").await?;
    let read = cluster
        .client(leader)?
        .kv_value("snap/after-join", Consistency::Linearizable)
        .await?
        .ok_or_else(|| anyhow!("write through the new node not visible on the leader"))?;
    ensure!(read.value == "yes");
    Ok(())
}
