//! Reads right after a power cut of every node: the leader must not resume
//! its old term with a committed index that the cut rolled back.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use rsp_chaos::experiments::powercut;
use rsp_chaos::{Cluster, ClusterSpec, Consistency};

const CONVERGE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_power_cut_leadership_is_won_again_and_reads_see_every_acknowledged_write()
-> Result<()> {
    let base = tempfile::tempdir()?;
    let spec = powercut::instrument(ClusterSpec::new(3).base_dir(base.path()).fast_raft())?;
    let cluster = Cluster::start(spec).await?;
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    let client = cluster.client(leader)?;
    let mut acked = Vec::new();
    for i in 0..40 {
        let (key, value) = (format!("cut/{i}"), format!("v{i}"));
        client.kv_put(&key, &value, None).await?.success()?;
        acked.push((key, value));
    }
    let term = client.cluster_info().await?.term;

    let ids = cluster.ids();
    powercut::cut(&cluster, &ids).await?;
    let restarts = ids.iter().map(|id| cluster.restart(*id));
    for started in futures::future::join_all(restarts).await {
        started?;
    }

    // Read at once, on every node, newest writes first: a node answering
    // before it has applied what the cluster acknowledged answers 404.
    for (key, value) in acked.iter().rev().take(10) {
        for id in &ids {
            let node = cluster.client(*id)?.with_timeout(Duration::from_secs(2));
            let got = cluster
                .wait_until(CONVERGE, "a linearizable read", || async {
                    node.kv_value(key, Consistency::Linearizable).await
                })
                .await?;
            match got {
                Some(read) if read.value == *value => {}
                Some(read) => bail!(
                    "node {id} read {key} = {}, acknowledged {value}",
                    read.value
                ),
                None => bail!("node {id} read {key}: not found, though acknowledged as {value}"),
            }
        }
    }

    let leader = cluster.wait_for_leader(CONVERGE).await?;
    let now = cluster.client(leader)?.cluster_info().await?.term;
    ensure!(
        now > term,
        "node {leader} leads in term {now}: leadership after a restart must be won in a term after {term}"
    );
    Ok(())
}
