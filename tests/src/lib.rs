//! `rsp-tests`: end-to-end tests that start real `rsp` clusters as child
//! processes (through `rsp-chaos`) and check the promises of the outside
//! contract.
//!
//! Parts:
//! - `tests/*.rs`: one file per behaviour group (replication, failover,
//!   snapshot join, membership, partitions, TTL);
//! - `fuzz`: the bodies of the fuzz targets (see `tests/fuzz/`);
//! - this library: small helpers those files share: a cluster spec with
//!   short Raft timers, acknowledged writes, continuous writers that record
//!   which writes were acknowledged, and metric parsing.
//!
//! The `rsp` binary must be built first (`cargo build -p rsp-node`, or set
//! `RSP_BIN`). Not for: unit tests of single crates, which live beside them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rsp_chaos::admin::KvWrite;
use rsp_chaos::{AdminClient, ClusterSpec, Consistency};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub mod fuzz;

pub use rsp_chaos;

/// Deadline for a cluster to converge after an action (election, catch-up).
pub const CONVERGE: Duration = Duration::from_secs(20);

/// Timeout of a single client write in the helpers below.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(3);

/// A cluster of `n` nodes with short Raft timers, as the tests use.
pub fn spec(n: usize) -> ClusterSpec {
    ClusterSpec::new(n).fast_raft()
}

/// Puts `key = value` and fails unless the write is acknowledged (200).
pub async fn put_acked(client: &AdminClient, key: &str, value: &str) -> Result<KvWrite> {
    let resp = client.kv_put(key, value, None).await?;
    if resp.status != 200 {
        bail!(
            "PUT {key} on {}: HTTP {}: {}",
            client.base_url(),
            resp.status,
            resp.body
        );
    }
    resp.json()
}

/// The value of `key` read with `consistency`, `None` when absent.
pub async fn read_value(
    client: &AdminClient,
    key: &str,
    consistency: Consistency,
) -> Result<Option<String>> {
    Ok(client.kv_value(key, consistency).await?.map(|r| r.value))
}

/// The value of a Prometheus metric without labels.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// What continuous writers saw.
#[derive(Debug, Default, Clone)]
pub struct WriteLog {
    /// Acknowledged writes (`key`, `value`), in acknowledgement order per
    /// writer.
    pub acked: Vec<(String, String)>,
    /// Writes answered with an error status (outcome unknown: they may or
    /// may not have been committed).
    pub rejected: u64,
    /// Writes without an answer (timeout, connection closed): indeterminate.
    pub indeterminate: u64,
}

/// Writers that put unique keys continuously, spreading them over nodes.
pub struct Writers {
    stop: watch::Sender<bool>,
    acked: Arc<AtomicU64>,
    tasks: JoinSet<WriteLog>,
}

impl Writers {
    /// `writers` tasks; writer `t`'s `n`-th write puts `<prefix>/<t>/<n>` with
    /// value `v-<t>-<n>` on `clients[(t + n) % len]`.
    pub fn spawn(clients: Vec<AdminClient>, writers: usize, prefix: &str) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let acked = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        let clients: Vec<AdminClient> = clients
            .into_iter()
            .map(|c| c.with_timeout(WRITE_TIMEOUT))
            .collect();
        for t in 0..writers {
            let clients = clients.clone();
            let stop_rx = stop_rx.clone();
            let acked = acked.clone();
            let prefix = prefix.to_string();
            tasks.spawn(async move {
                let mut log = WriteLog::default();
                let mut n = 0usize;
                while !*stop_rx.borrow() && !clients.is_empty() {
                    let client = &clients[(t + n) % clients.len()];
                    let key = format!("{prefix}/{t}/{n}");
                    let value = format!("v-{t}-{n}");
                    n += 1;
                    match client.kv_put(&key, &value, None).await {
                        Ok(resp) if resp.status == 200 => {
                            log.acked.push((key, value));
                            acked.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Ok(_) => log.rejected += 1,
                        Err(_) => log.indeterminate += 1,
                    }
                    // Pace retries against a dead or leaderless node.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                log
            });
        }
        Self { stop, acked, tasks }
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` writes have been acknowledged in all.
    pub async fn wait_acked(&self, n: u64, timeout: Duration) -> Result<()> {
        let acked = self.acked.clone();
        rsp_chaos::wait_until(timeout, &format!("{n} acknowledged writes"), || {
            let seen = acked.load(Ordering::Relaxed);
            async move {
                if seen >= n {
                    Ok(())
                } else {
                    bail!("{seen} acknowledged")
                }
            }
        })
        .await
    }

    /// Stops the writers (each finishes its write in flight) and merges
    /// their logs.
    pub async fn stop(mut self) -> Result<WriteLog> {
        let _ = self.stop.send(true);
        let mut all = WriteLog::default();
        let joined = tokio::time::timeout(WRITE_TIMEOUT * 3, async {
            while let Some(log) = self.tasks.join_next().await {
                let log = log.context("writer task failed")?;
                all.acked.extend(log.acked);
                all.rejected += log.rejected;
                all.indeterminate += log.indeterminate;
            }
            Ok::<(), anyhow::Error>(())
        })
        .await;
        match joined {
            Ok(r) => r.map(|_| all),
            Err(_) => bail!("writers did not stop in time"),
        }
    }
}

/// Checks that every acknowledged write reads back on the node `client`
/// talks to, with `consistency`; returns the keys missing or wrong.
pub async fn missing_writes(
    client: &AdminClient,
    acked: &[(String, String)],
    consistency: Consistency,
) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for (key, value) in acked {
        match read_value(client, key, consistency).await? {
            Some(v) if &v == value => {}
            other => missing.push(format!("{key}: want {value}, got {other:?}")),
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_reads_an_unlabelled_sample() {
        let text = "# HELP rsp_raft_term x\n# TYPE rsp_raft_term gauge\nrsp_raft_term 3\nrsp_raft_term_other 9\n";
        assert_eq!(metric(text, "rsp_raft_term"), Some(3.0));
        assert_eq!(metric(text, "missing"), None);
    }
}
