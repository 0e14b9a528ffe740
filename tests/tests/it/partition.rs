//! Partitions: the majority side keeps (or elects) a leader and commits; the
//! minority side acknowledges no write and answers linearizable reads with
//! 503 rather than a stale value; after healing the minority catches up.

use std::time::Duration;

use anyhow::{Result, anyhow, bail, ensure};
use rsp_chaos::{AdminClient, Cluster, Consistency};
use rsp_tests::{CONVERGE, put_acked, read_value, spec};

const KEY: &str = "partition/register";

/// Puts through the majority until acknowledged (a leader change on the
/// majority side can make an attempt fail; retrying a put is harmless here).
async fn put_on_majority(cluster: &Cluster, majority: &[u64], value: &str) -> Result<()> {
    let clients: Vec<AdminClient> = majority
        .iter()
        .map(|id| {
            cluster
                .client(*id)
                .map(|c| c.with_timeout(Duration::from_secs(3)))
        })
        .collect::<Result<_>>()?;
    cluster
        .wait_until(CONVERGE, "a write acknowledged by the majority", || async {
            let mut seen = Vec::new();
            for client in &clients {
                match client.kv_put(KEY, value, None).await {
                    Ok(r) if r.status == 200 => return Ok(()),
                    Ok(r) => seen.push(format!("{} {}", r.status, r.body)),
                    Err(e) => seen.push(format!("{e:#}")),
                }
            }
            bail!("{}", seen.join("; "))
        })
        .await
}

/// What must hold on a minority node while the partition lasts.
async fn assert_minority_is_safe(cluster: &Cluster, id: u64) -> Result<()> {
    let client = cluster.client(id)?.with_timeout(Duration::from_secs(8));
    // A write there is never acknowledged: an error status or no answer.
    let key = format!("partition/minority-write/{id}");
    match client.kv_put(&key, "must-not-be-acked", None).await {
        Ok(r) if r.is_success() => bail!(
            "minority node {id} acknowledged a write: {} {}\n{}",
            r.status,
            r.body,
            cluster.log_tail(id, 30)
        ),
        _ => {}
    }
    // A linearizable read answers 503 `unavailable`, not the stale value.
    let resp = client
        .kv_get(KEY, Consistency::Linearizable)
        .await
        .map_err(|e| {
            anyhow!("linearizable read on minority node {id} did not answer in time: {e:#}")
        })?;
    ensure!(
        resp.status == 503 && resp.error_code() == Some("unavailable"),
        "linearizable read on minority node {id}: {} {}",
        resp.status,
        resp.body
    );
    Ok(())
}

/// After healing, every node sees the majority's last write locally.
async fn wait_all_see(cluster: &Cluster, value: &str) -> Result<()> {
    for id in cluster.ids() {
        let client = cluster.client(id)?;
        cluster
            .wait_until(
                CONVERGE,
                &format!("node {id} to catch up after heal"),
                || async {
                    match read_value(&client, KEY, Consistency::Local).await? {
                        Some(v) if v == value => Ok(()),
                        other => bail!("{KEY} = {other:?}"),
                    }
                },
            )
            .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_minority_cannot_commit_or_read_stale_and_catches_up_after_heal() -> Result<()>
{
    let cluster = Cluster::start(spec(5)).await?;
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    put_acked(&cluster.client(leader)?, KEY, "before").await?;

    let minority: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .take(2)
        .collect();
    let majority: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| !minority.contains(id))
        .collect();
    cluster.partition(&[&majority, &minority])?;

    put_on_majority(&cluster, &majority, "after").await?;
    let still = cluster.wait_for_leader(CONVERGE).await?;
    ensure!(
        majority.contains(&still),
        "leader {still} outside the majority {majority:?}"
    );
    for id in &minority {
        assert_minority_is_safe(&cluster, *id).await?;
    }
    // The majority keeps serving linearizable reads of the new value.
    let read = read_value(&cluster.client(still)?, KEY, Consistency::Linearizable).await?;
    ensure!(read.as_deref() == Some("after"), "majority read {read:?}");

    cluster.heal()?;
    wait_all_see(&cluster, "after").await?;
    for id in &minority {
        let read = read_value(&cluster.client(*id)?, KEY, Consistency::Linearizable).await?;
        ensure!(
            read.as_deref() == Some("after"),
            "node {id} after heal: {read:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolating_the_leader_with_a_minority_moves_leadership_to_the_majority() -> Result<()> {
    let cluster = Cluster::start(spec(5)).await?;
    let old_leader = cluster.wait_for_leader(CONVERGE).await?;
    put_acked(&cluster.client(old_leader)?, KEY, "before").await?;
    let old_term = cluster.client(old_leader)?.cluster_info().await?.term;

    let buddy = cluster
        .ids()
        .into_iter()
        .find(|id| *id != old_leader)
        .ok_or_else(|| anyhow!("no follower"))?;
    let minority = vec![old_leader, buddy];
    let majority: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| !minority.contains(id))
        .collect();
    cluster.partition(&[&majority, &minority])?;

    // The majority elects one of its own and commits.
    let (new_leader, new_term) = cluster
        .wait_until(CONVERGE, "a leader on the majority side", || async {
            let mut leaders = Vec::new();
            for id in &majority {
                let view = cluster.client(*id)?.cluster_info().await?;
                if view.is_leader() {
                    leaders.push((*id, view.term));
                }
            }
            match leaders.as_slice() {
                [one] => Ok(*one),
                other => bail!("majority leaders: {other:?}"),
            }
        })
        .await?;
    ensure!(
        new_term > old_term,
        "new leader {new_leader} in term {new_term}, old term {old_term}"
    );
    put_on_majority(&cluster, &majority, "after").await?;

    // The old leader, cut off, acknowledges nothing and serves no stale
    // linearizable read, even if it still believes it leads.
    for id in &minority {
        assert_minority_is_safe(&cluster, *id).await?;
    }

    cluster.heal()?;
    wait_all_see(&cluster, "after").await?;
    // One leader again, and the old leader follows it.
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    let client = cluster.client(old_leader)?;
    cluster
        .wait_until(
            CONVERGE,
            "the old leader to follow the agreed leader",
            || async {
                let view = client.cluster_info().await?;
                ensure!(
                    view.leader == Some(leader),
                    "it follows {:?}, not {leader}",
                    view.leader
                );
                Ok(())
            },
        )
        .await?;
    Ok(())
}
