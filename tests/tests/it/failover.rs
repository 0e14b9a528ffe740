//! Failover: `kill -9` of the leader (or a follower) while clients write
//! continuously. A new leader commits, no acknowledged write is lost, and a
//! killed node restarts from its data dir and catches up.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use rsp_chaos::{AdminClient, Cluster, Consistency};
use rsp_tests::{CONVERGE, Writers, missing_writes, put_acked, read_value, spec};

fn clients(cluster: &Cluster) -> Result<Vec<AdminClient>> {
    cluster
        .ids()
        .into_iter()
        .map(|id| cluster.client(id))
        .collect()
}

/// Every acknowledged write must be readable linearizably on every live node.
async fn assert_no_acknowledged_write_lost(
    cluster: &Cluster,
    acked: &[(String, String)],
) -> Result<()> {
    for id in cluster.live_ids() {
        let missing =
            missing_writes(&cluster.client(id)?, acked, Consistency::Linearizable).await?;
        ensure!(
            missing.is_empty(),
            "node {id} lost {} of {} acknowledged writes, e.g. {:?}\n{}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)],
            cluster.logs(30)
        );
    }
    Ok(())
}

/// Waits until node `id` serves every acknowledged write from local state.
async fn wait_caught_up(cluster: &Cluster, id: u64, acked: &[(String, String)]) -> Result<()> {
    let client = cluster.client(id)?;
    let Some((last_key, last_value)) = acked.last() else {
        bail!("no acknowledged writes to catch up on");
    };
    cluster
        .wait_until(CONVERGE, &format!("node {id} to catch up"), || async {
            match read_value(&client, last_key, Consistency::Local).await? {
                Some(v) if &v == last_value => Ok(()),
                other => bail!("{last_key} = {other:?} locally"),
            }
        })
        .await?;
    // Once the latest write is there, everything before it must be too.
    let missing = missing_writes(&client, acked, Consistency::Local).await?;
    ensure!(
        missing.is_empty(),
        "restarted node {id} misses {} writes locally, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_a_new_one_and_loses_no_acknowledged_write() -> Result<()> {
    let cluster = Cluster::start(spec(3)).await?;
    let old_leader = cluster.wait_for_leader(CONVERGE).await?;

    let writers = Writers::spawn(clients(&cluster)?, 4, "failover/leader");
    writers.wait_acked(30, CONVERGE).await?;

    cluster.kill(old_leader).await?;
    let before_kill = writers.acked();
    let new_leader = cluster.wait_for_leader(CONVERGE).await?;
    ensure!(new_leader != old_leader, "leader {old_leader} was killed");
    // The new leader commits: acknowledged writes keep coming.
    writers.wait_acked(before_kill + 30, CONVERGE).await?;
    let log = writers.stop().await?;
    ensure!(
        log.acked.len() >= 60,
        "only {} writes acknowledged",
        log.acked.len()
    );

    assert_no_acknowledged_write_lost(&cluster, &log.acked).await?;

    // The killed leader restarts from its data dir, without --join, and
    // catches up with what was written while it was down.
    cluster.restart(old_leader).await?;
    put_acked(
        &cluster.client(new_leader)?,
        "failover/leader/after-restart",
        "latest",
    )
    .await?;
    let mut all = log.acked.clone();
    all.push(("failover/leader/after-restart".into(), "latest".into()));
    wait_caught_up(&cluster, old_leader, &all).await?;
    let view = cluster.client(old_leader)?.cluster_info().await?;
    ensure!(
        view.member_ids().len() == 3,
        "membership after restart: {view:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_killed_during_writes_restarts_from_its_data_dir_and_catches_up() -> Result<()> {
    let cluster = Cluster::start(spec(3)).await?;
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .ok_or_else(|| anyhow::anyhow!("no follower"))?;
    let data_dir = cluster.node(follower)?.process.data_dir();

    let writers = Writers::spawn(vec![cluster.client(leader)?], 3, "failover/follower");
    writers.wait_acked(20, CONVERGE).await?;
    cluster.kill(follower).await?;
    let at_kill = writers.acked();
    // Two of three nodes still form a quorum.
    writers.wait_acked(at_kill + 40, CONVERGE).await?;
    cluster.restart(follower).await?;
    ensure!(
        cluster.node(follower)?.process.data_dir() == data_dir,
        "restart must reuse the data dir"
    );
    writers.wait_acked(at_kill + 60, CONVERGE).await?;
    let log = writers.stop().await?;

    wait_caught_up(&cluster, follower, &log.acked).await?;
    assert_no_acknowledged_write_lost(&cluster, &log.acked).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_replaced_and_steps_down_after_resume() -> Result<()> {
    let cluster = Cluster::start(spec(3)).await?;
    let old_leader = cluster.wait_for_leader(CONVERGE).await?;
    cluster.pause(old_leader)?;
    let new_leader = cluster.wait_for_leader(CONVERGE).await?;
    ensure!(
        new_leader != old_leader,
        "paused leader {old_leader} still leads"
    );
    put_acked(
        &cluster.client(new_leader)?,
        "failover/pause",
        "while-paused",
    )
    .await?;
    cluster.resume(old_leader)?;

    let client = cluster.client(old_leader)?;
    cluster
        .wait_until(
            CONVERGE,
            "the resumed node to follow the new leader",
            || async {
                let view = client.cluster_info().await?;
                ensure!(!view.is_leader() && view.leader.is_some(), "view: {view:?}");
                Ok(())
            },
        )
        .await?;
    // Reads on the resumed node never go back in time.
    let read = client
        .with_timeout(Duration::from_secs(10))
        .kv_value("failover/pause", Consistency::Linearizable)
        .await?;
    ensure!(
        read.as_ref().map(|r| r.value.as_str()) == Some("while-paused"),
        "linearizable read on the resumed node: {read:?}"
    );
    Ok(())
}
