//! A cluster mid-upgrade from the previous release (the commit
//! `deploy/previous-release` pins, built by `scripts/build-previous-release`)
//! to this build: Raft snapshots cross versions both ways. A node that was
//! down while the leader compacted its log past it can only catch up by
//! installing the leader's snapshot, so the old binary must read a
//! snapshot the new one made, and the reverse.
//!
//! The rolling upgrade under load, checked by the Jepsen `register`
//! checker, is in `jepsen/tests/runs.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use rsp_chaos::binary::{previous_release_binary, rsp_binary};
use rsp_chaos::{Cluster, Consistency};
use rsp_tests::{CONVERGE, metric, put_acked, spec};

/// Keys written while a node is down: with a snapshot every 20 entries,
/// enough for the leader to purge well past it.
const KEYS: usize = 120;

/// Bytes of each value: 120 keys make a snapshot of about 6 MiB, sent in
/// several chunks (openraft's are 3 MiB).
const VALUE_BYTES: usize = 48 << 10;

fn value(i: usize) -> String {
    format!("v{i}-{}", "x".repeat(VALUE_BYTES))
}

/// SIGTERM waits this long for a node to stop.
const STOP: Duration = Duration::from_secs(30);

/// Puts `key = value` until it is acknowledged: while snapshots of a few
/// MiB are taken every 20 entries, the previous release stalls long enough
/// for the leader to stand aside now and then (503 `unavailable`: nothing
/// applied), and the same put again is harmless.
async fn put_eventually(cluster: &Cluster, key: &str, value: &str) -> Result<()> {
    cluster
        .wait_until(
            CONVERGE,
            &format!("PUT {key} to be acknowledged"),
            || async {
                let leader = cluster.wait_for_leader(CONVERGE).await?;
                put_acked(&cluster.client(leader)?, key, value).await?;
                Ok(())
            },
        )
        .await
}

async fn metric_of(cluster: &Cluster, id: u64, name: &str) -> Result<f64> {
    let text = cluster.client(id)?.metrics().await?;
    metric(&text, name).with_context(|| format!("node {id} has no metric {name}"))
}

/// Restarts the leader on its own binary (its SIGTERM hands leadership
/// on) until a node for which `want` holds leads.
async fn steer_leadership(cluster: &Cluster, want: impl Fn(&Path) -> bool) -> Result<u64> {
    for _ in 0..6 {
        let leader = cluster.wait_for_leader(CONVERGE).await?;
        let binary = cluster.binary_of(leader)?;
        if want(&binary) {
            return Ok(leader);
        }
        cluster.upgrade_node(leader, &binary).await?;
    }
    bail!("leadership never reached the wanted binary in 6 hand-offs")
}

/// Stops `down`, writes `KEYS` keys under `prefix` through the others until
/// the leader has purged its log past `down`'s last entry, then starts
/// `down` again on `binary` and checks that it installed a snapshot and
/// holds every key.
async fn catch_up_from_a_snapshot(
    cluster: &Cluster,
    down: u64,
    binary: &Path,
    prefix: &str,
) -> Result<()> {
    let last = metric_of(cluster, down, "rsp_raft_last_log_index").await?;
    let status = cluster.node(down)?.process.terminate(STOP).await?;
    ensure!(status.success(), "node {down} exited with {status}");
    for i in 0..KEYS {
        put_eventually(cluster, &format!("{prefix}/{i:03}"), &value(i)).await?;
    }
    let purged = cluster
        .wait_until(
            CONVERGE,
            "the leader to purge past the node that is down",
            || async {
                let leader = cluster.wait_for_leader(CONVERGE).await?;
                let mut purged = metric_of(cluster, leader, "rsp_raft_purged_index").await?;
                if purged <= last {
                    // More entries, more snapshots.
                    put_eventually(cluster, &format!("{prefix}/more"), "x").await?;
                    purged = metric_of(cluster, leader, "rsp_raft_purged_index").await?;
                }
                ensure!(
                    purged > last,
                    "purged {purged}, node {down} has up to {last}"
                );
                Ok(purged)
            },
        )
        .await?;

    cluster.upgrade_node(down, binary).await?;
    let snapshot = metric_of(cluster, down, "rsp_raft_snapshot_index").await?;
    ensure!(
        snapshot >= purged,
        "node {down} snapshot index {snapshot} < leader's purged {purged}: no snapshot installed\n{}",
        cluster.log_tail(down, 40)
    );
    let local = cluster.client(down)?;
    let mut missing = Vec::new();
    for i in 0..KEYS {
        let key = format!("{prefix}/{i:03}");
        match local.kv_value(&key, Consistency::Local).await? {
            Some(r) if r.value == value(i) => {}
            other => missing.push(format!("{key}: {:?}", other.map(|r| r.value.len()))),
        }
    }
    ensure!(
        missing.is_empty(),
        "node {down} misses {} of {KEYS} keys after the snapshot, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_cross_versions_in_both_directions_during_an_upgrade() -> Result<()> {
    let previous: PathBuf = previous_release_binary()?;
    let current: PathBuf = rsp_binary()?;
    let mut cluster_spec = spec(3).args(["--snapshot-threshold", "20"]);
    cluster_spec.binary = Some(previous.clone());
    let cluster = Cluster::start(cluster_spec).await?;
    put_eventually(&cluster, "upgrade/before", "old").await?;
    let leader = cluster.wait_for_leader(CONVERGE).await?;

    // One follower upgraded, then made leader: an upgraded leader with
    // followers on the previous release.
    let first = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .context("a follower")?;
    cluster.upgrade_node(first, &current).await?;
    let new_leader = steer_leadership(&cluster, |b| b == current).await?;
    ensure!(new_leader == first, "leader {new_leader}, upgraded {first}");

    // New to old: a previous-release follower installs the upgraded
    // leader's snapshot.
    let old_follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != first)
        .context("an old follower")?;
    catch_up_from_a_snapshot(&cluster, old_follower, &previous, "upgrade/new-to-old")
        .await
        .context("a previous-release node catching up from an upgraded leader")?;

    // Old to new: the upgraded node goes down, a previous-release node
    // leads, and the upgraded node installs its snapshot.
    let old_leader = steer_leadership(&cluster, |b| b == previous)
        .await
        .context("an old leader")?;
    let down = cluster
        .ids()
        .into_iter()
        .find(|id| cluster.binary_of(*id).is_ok_and(|b| b == current) && *id != old_leader)
        .context("an upgraded follower")?;
    catch_up_from_a_snapshot(&cluster, down, &current, "upgrade/old-to-new")
        .await
        .context("an upgraded node catching up from a previous-release leader")?;

    // Everything written is readable, through every node.
    for id in cluster.ids() {
        let v = cluster
            .client(id)?
            .kv_value("upgrade/before", Consistency::Linearizable)
            .await?
            .map(|r| r.value);
        ensure!(v.as_deref() == Some("old"), "node {id} reads {v:?}");
    }
    Ok(())
}
