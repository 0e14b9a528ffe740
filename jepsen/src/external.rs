//! Driving a cluster the harness did not start (`--nodes-file FILE`): its
//! nodes' addresses, and shell commands that stop and start each node, as
//! an operator's tools would (`systemctl`, `ssh`, `docker`). Every
//! workload runs; the one fault is `kill` (the node's `stop` command, then
//! its `start` command when the fault ends).
//!
//! The file (JSON):
//!
//! ```json
//! {"admin_token": "...",
//!  "nodes": [{"id": 1, "http": "http://10.0.0.1:8080",
//!             "stop": "ssh n1 systemctl kill -s KILL rsp",
//!             "start": "ssh n1 systemctl start rsp"}]}
//! ```
//!
//! `admin_token` may be left out and given as `RSP_ADMIN_TOKEN`. The
//! workload's tenant and keys are named after the run, so runs do not
//! collide with each other or with the cluster's own data.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rsp_chaos::AdminClient;
use serde::Deserialize;
use tokio::sync::{Mutex, watch};

use crate::client::KvClient;
use crate::harness::{Members, conclude, join_workers, spawn_kill_nemesis, spawn_workers};
use crate::history::Recorder;
use crate::nemesis::NemesisKind;
use crate::options::{Refused, RunOptions, RunOutcome};
use crate::report;
use crate::roster::Roster;
use crate::workload::{Workload, oidc::Nodes};

/// The environment variable with the admin token when the file has none.
pub const ADMIN_TOKEN_ENV: &str = "RSP_ADMIN_TOKEN";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesFile {
    #[serde(default)]
    pub admin_token: Option<String>,
    pub nodes: Vec<NodeEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: u64,
    /// `http://host:port` of the node's API.
    pub http: String,
    #[serde(default)]
    pub stop: Option<String>,
    #[serde(default)]
    pub start: Option<String>,
}

impl NodesFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: NodesFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a nodes file", path.display()))?;
        if file.nodes.is_empty() {
            bail!("{}: no nodes", path.display());
        }
        Ok(file)
    }

    fn token(&self) -> Result<String> {
        self.admin_token
            .clone()
            .or_else(|| std::env::var(ADMIN_TOKEN_ENV).ok())
            .filter(|t| !t.is_empty())
            .with_context(|| format!("no admin_token in the nodes file and no {ADMIN_TOKEN_ENV}"))
    }
}

/// Runs `command` with `sh -c`; an error unless it exits 0.
async fn shell(command: &str) -> Result<()> {
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .status()
        .await
        .with_context(|| format!("running `{command}`"))?;
    if !status.success() {
        bail!("`{command}` exited with {status}");
    }
    Ok(())
}

struct External {
    nodes: Vec<NodeEntry>,
}

impl Members for External {
    async fn kill(&mut self, i: usize) -> Result<()> {
        shell(self.nodes[i].stop.as_deref().unwrap_or("false")).await
    }

    async fn restart(&mut self, i: usize) -> Result<()> {
        shell(self.nodes[i].start.as_deref().unwrap_or("false")).await
    }

    fn describe(&self, i: usize) -> String {
        format!("stop node {}, then start it", self.nodes[i].id)
    }
}

/// Waits until every node answers `/readyz` with 200.
async fn wait_ready(admin: &[AdminClient], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    for a in admin {
        while !a.readyz().await.is_ok_and(|s| s == 200) {
            if Instant::now() >= deadline {
                bail!("{} not ready in time", a.base_url());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// A run against the cluster of `file`.
pub(crate) async fn run(
    opts: RunOptions,
    id: String,
    workload: Arc<Workload>,
    file: &Path,
) -> Result<RunOutcome> {
    let file = NodesFile::load(file).map_err(|e| Refused(format!("{e:#}")))?;
    let token = file.token().map_err(|e| Refused(format!("{e:#}")))?;
    if opts
        .nemesis
        .iter()
        .any(|k| !matches!(k, NemesisKind::Kill(None)))
    {
        return Err(
            Refused("against an existing cluster the only nemesis is `kill`".into()).into(),
        );
    }
    if !opts.nemesis.is_empty()
        && file
            .nodes
            .iter()
            .any(|n| n.stop.is_none() || n.start.is_none())
    {
        return Err(Refused(
            "the kill nemesis needs a stop and a start command for every node".into(),
        )
        .into());
    }
    let dir = opts.store.join(&id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let admin: Vec<AdminClient> = file
        .nodes
        .iter()
        .map(|n| Ok(AdminClient::new(n.http.clone(), token.clone())?.with_timeout(opts.op_timeout)))
        .collect::<Result<_>>()?;
    let converge = Duration::from_secs(60);
    wait_ready(&admin, converge).await?;
    let clients: Vec<KvClient> = file
        .nodes
        .iter()
        .zip(&admin)
        .map(|(n, a)| KvClient::new(n.id, a.clone(), opts.op_timeout))
        .collect();
    let nodes = Nodes {
        ids: file.nodes.iter().map(|n| n.id).collect(),
        http: file.nodes.iter().map(|n| n.http.clone()).collect(),
        admin: admin.clone(),
    };
    workload
        .prepare(nodes, opts.concurrency, opts.op_timeout)
        .await
        .context("preparing the workload")?;
    let recorder = Arc::new(Recorder::to_file(&dir.join("history.jsonl"))?);
    let members = Arc::new(Mutex::new(External {
        nodes: file.nodes.clone(),
    }));
    let (stop_tx, stop_rx) = watch::channel(false);
    let roster = Arc::new(Roster::fixed(clients.clone()));
    let workers = spawn_workers(&opts, &workload, &roster, &recorder, &stop_rx);
    let nemesis = spawn_kill_nemesis(members, file.nodes.len(), &recorder, &opts, &stop_rx);
    tokio::time::sleep(opts.time_limit).await;
    let _ = stop_tx.send(true);
    let mut harness_errors = Vec::new();
    join_workers(workers, opts.op_timeout, &mut harness_errors).await;
    let nemesis_log = nemesis.await.unwrap_or_default();
    if let Err(e) = wait_ready(&admin, converge).await {
        harness_errors.push(format!("cluster did not recover: {e:#}"));
    }
    workload.finish(&recorder, &clients, converge).await;
    recorder.flush()?;
    let (results, events) =
        conclude(id, &opts, &workload, &recorder, nemesis_log, harness_errors).await?;
    report::write(&dir, &results, &events)?;
    Ok(RunOutcome { dir, results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_file_names_addresses_and_commands() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nodes.json");
        std::fs::write(
            &path,
            r#"{"admin_token": "t", "nodes": [
                {"id": 1, "http": "http://127.0.0.1:1", "stop": "kill 1", "start": "start 1"},
                {"id": 2, "http": "http://127.0.0.1:2"}]}"#,
        )
        .expect("write");
        let f = NodesFile::load(&path).expect("loads");
        assert_eq!(f.nodes.len(), 2);
        assert_eq!(f.nodes[0].stop.as_deref(), Some("kill 1"));
        assert_eq!(f.nodes[1].start, None);
        assert_eq!(f.token().expect("token"), "t");
        std::fs::write(&path, r#"{"nodes": [], "extra": 1}"#).expect("write");
        assert!(NodesFile::load(&path).is_err());
    }
}
