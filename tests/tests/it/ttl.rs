//! TTL: a key put with `ttl_ms` expires through the log, so every node
//! reports the expiry at the same revision, and it then reads 404 everywhere.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail, ensure};
use rsp_chaos::{Cluster, Consistency, WatchEvent};
use rsp_tests::{CONVERGE, spec};
use tokio::task::JoinSet;

const KEY: &str = "ttl/session";
const TTL_MS: u64 = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_key_expires_at_the_same_revision_on_every_node() -> Result<()> {
    let cluster = Cluster::start(spec(3)).await?;
    cluster.wait_for_leader(CONVERGE).await?;

    // A watch on every node, registered before the put.
    let mut watches = Vec::new();
    for id in cluster.ids() {
        let stream = cluster
            .client(id)?
            .kv_watch("ttl/", Duration::from_secs(15))
            .await?;
        watches.push((id, stream));
    }

    let put_at = Instant::now();
    let resp = cluster
        .client(2)?
        .kv_put(KEY, "token", Some(TTL_MS))
        .await?;
    ensure!(
        resp.status == 200,
        "PUT with ttl: {} {}",
        resp.status,
        resp.body
    );
    let put_revision = resp.body["revision"]
        .as_u64()
        .ok_or_else(|| anyhow!("no revision in {}", resp.body))?;

    // Before the deadline the key is there, with its expiry visible.
    let read = cluster
        .client(1)?
        .kv_value(KEY, Consistency::Linearizable)
        .await?
        .ok_or_else(|| anyhow!("ttl key missing right after the put"))?;
    ensure!(read.expires_at_ms.is_some(), "no expires_at_ms: {read:?}");

    // Each node's stream reports the put and then the expiry.
    let mut readers = JoinSet::new();
    for (id, mut stream) in watches {
        readers.spawn(async move {
            let mut seen: Vec<WatchEvent> = Vec::new();
            while let Some(event) = stream.next().await? {
                let done = event.key == KEY && event.kind == "expire";
                seen.push(event);
                if done {
                    return Ok((id, seen, put_at.elapsed()));
                }
            }
            bail!("node {id}: watch ended without an expire event; saw {seen:?}")
        });
    }
    let mut expiries = Vec::new();
    while let Some(joined) = readers.join_next().await {
        let (id, seen, after): (u64, Vec<WatchEvent>, Duration) = joined??;
        let put = seen
            .iter()
            .find(|e| e.key == KEY && e.kind == "put")
            .ok_or_else(|| anyhow!("node {id}: no put event before the expiry: {seen:?}"))?;
        ensure!(
            put.revision == put_revision,
            "node {id}: put at {} vs {put_revision}",
            put.revision
        );
        ensure!(put.value.as_deref() == Some("token"), "node {id}: {put:?}");
        let expire = seen.last().ok_or_else(|| anyhow!("empty"))?;
        ensure!(
            expire.revision > put_revision,
            "node {id}: expiry at revision {} not after the put {put_revision}",
            expire.revision
        );
        ensure!(
            after >= Duration::from_millis(TTL_MS - 100),
            "node {id}: expired after {after:?}, ttl {TTL_MS} ms"
        );
        expiries.push((id, expire.revision));
    }
    let first = expiries[0].1;
    ensure!(
        expiries.iter().all(|(_, rev)| *rev == first),
        "expiry revisions differ between nodes: {expiries:?}"
    );

    // Afterwards the key is gone everywhere, for both read paths.
    for id in cluster.ids() {
        let client = cluster.client(id)?;
        for consistency in [Consistency::Linearizable, Consistency::Local] {
            let resp = client.kv_get(KEY, consistency).await?;
            ensure!(
                resp.status == 404 && resp.error_code() == Some("key_not_found"),
                "node {id} {consistency:?} after expiry: {} {}",
                resp.status,
                resp.body
            );
        }
    }
    Ok(())
}
