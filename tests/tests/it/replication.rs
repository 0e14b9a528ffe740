//! Replication: a write acknowledged by any node is visible to a linearizable
//! read on every node at once, and local reads converge on every node.

use anyhow::{Result, ensure};
use rsp_chaos::{Cluster, Consistency};
use rsp_tests::{CONVERGE, put_acked, read_value, spec};

/// Writes one key through each node, then reads every key linearizably on
/// every node, without waiting: an acknowledged write must be visible.
async fn writes_on_any_node_are_linearizably_readable_everywhere(nodes: usize) -> Result<()> {
    let cluster = Cluster::start(spec(nodes)).await?;
    let ids = cluster.ids();
    ensure!(ids.len() == nodes, "started {ids:?}");

    let mut written = Vec::new();
    for id in &ids {
        let key = format!("replication/{nodes}/{id}");
        let value = format!("written-through-{id}");
        put_acked(&cluster.client(*id)?, &key, &value).await?;
        written.push((key, value));
    }
    for reader in &ids {
        let client = cluster.client(*reader)?;
        for (key, value) in &written {
            let read = client.kv_value(key, Consistency::Linearizable).await?;
            let read = read.ok_or_else(|| {
                anyhow::anyhow!(
                    "node {reader}: acknowledged {key} not found\n{}",
                    cluster.logs(20)
                )
            })?;
            ensure!(
                &read.value == value,
                "node {reader}: {key} = {:?}",
                read.value
            );
            ensure!(
                read.read.node_id == *reader,
                "served by {}",
                read.read.node_id
            );
            ensure!(read.read.consistency == "linearizable", "{:?}", read.read);
        }
    }

    // The harness really sits on the peer links: the leader reached every
    // follower through its proxy.
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    for follower in ids.iter().filter(|id| **id != leader) {
        let link = cluster
            .link(leader, *follower)
            .ok_or_else(|| anyhow::anyhow!("no proxy {leader} -> {follower}"))?;
        ensure!(
            link.stats().bytes > 0,
            "link {leader} -> {follower}: {:?}",
            link.stats()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_a_write_on_any_node_is_readable_on_all() -> Result<()> {
    writes_on_any_node_are_linearizably_readable_everywhere(3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_a_write_on_any_node_is_readable_on_all() -> Result<()> {
    writes_on_any_node_are_linearizably_readable_everywhere(5).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_reads_converge_on_every_node_and_versions_agree() -> Result<()> {
    let cluster = Cluster::start(spec(3)).await?;
    let writer = cluster.client(2)?;
    let first = put_acked(&writer, "replication/local", "one").await?;
    let second = put_acked(&writer, "replication/local", "two").await?;
    ensure!(
        second.revision > first.revision,
        "revisions must grow: {first:?} then {second:?}"
    );
    ensure!(
        second.version == first.version + 1,
        "{first:?} then {second:?}"
    );

    for id in cluster.ids() {
        let client = cluster.client(id)?;
        let read = cluster
            .wait_until(
                CONVERGE,
                &format!("node {id} to see `two` locally"),
                || async {
                    let read = client
                        .kv_value("replication/local", Consistency::Local)
                        .await?;
                    match read {
                        Some(r) if r.value == "two" => Ok(r),
                        other => anyhow::bail!("local read: {other:?}"),
                    }
                },
            )
            .await?;
        ensure!(read.read.consistency == "local", "{:?}", read.read);
        ensure!(read.read.node_id == id, "{:?}", read.read);
        ensure!(
            read.version == second.version && read.mod_revision == second.revision,
            "node {id}: version {} mod_revision {}, leader said {second:?}",
            read.version,
            read.mod_revision
        );
        ensure!(
            read.create_revision == first.revision,
            "node {id}: {read:?}"
        );
    }

    // A key never written is absent everywhere, with the stable error code.
    for id in cluster.ids() {
        let client = cluster.client(id)?;
        let resp = client
            .kv_get("replication/never", Consistency::Linearizable)
            .await?;
        ensure!(
            resp.status == 404,
            "node {id}: {} {}",
            resp.status,
            resp.body
        );
        ensure!(resp.error_code() == Some("key_not_found"), "{}", resp.body);
        ensure!(
            read_value(&client, "replication/never", Consistency::Local)
                .await?
                .is_none()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_with_latency_and_jitter_on_every_peer_link() -> Result<()> {
    let cluster = Cluster::start(spec(3)).await?;
    // ~10 ms each way, well under the 50 ms heartbeat the tests run with.
    cluster.set_latency(
        std::time::Duration::from_millis(8),
        std::time::Duration::from_millis(4),
    )?;
    for id in cluster.ids() {
        let started = std::time::Instant::now();
        put_acked(
            &cluster.client(id)?,
            &format!("replication/slow/{id}"),
            "slow",
        )
        .await?;
        // A commit needs at least one round trip to a follower: >= 2 x 4 ms.
        let took = started.elapsed();
        ensure!(
            took >= std::time::Duration::from_millis(8),
            "write through node {id} took {took:?}: the latency is not applied"
        );
    }
    for reader in cluster.ids() {
        let client = cluster.client(reader)?;
        for id in cluster.ids() {
            let key = format!("replication/slow/{id}");
            let v = read_value(&client, &key, Consistency::Linearizable).await?;
            ensure!(v.as_deref() == Some("slow"), "node {reader}: {key} = {v:?}");
        }
    }
    cluster.heal()?;
    Ok(())
}
