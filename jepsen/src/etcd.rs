//! A trusted system to check the checker against: a local etcd cluster
//! (Debian's `etcd-server`, found on `PATH` or through `ETCD_BIN`), which
//! the `register` workload drives through an [`EtcdClient`] per member as
//! it drives `rsp` (`rsp-jepsen run --target etcd`).
//!
//! Its nemesis knows one fault, `kill` (SIGKILL a member, restart it when
//! the fault ends). If etcd is valid under the same workload and checker
//! that find `rsp`'s injected bugs, a finding against `rsp` is not an
//! artefact of the harness.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, watch};

use crate::checker::Validity;
use crate::client::KvClient;
use crate::etcd_client::EtcdClient;
use crate::harness::{Members, conclude, join_workers, spawn_kill_nemesis, spawn_workers};
use crate::history::Recorder;
use crate::nemesis::NemesisKind;
use crate::options::{Refused, RunOptions, RunOutcome};
use crate::report;
use crate::roster::Roster;
use crate::workload::Workload;

/// The environment variable naming the etcd binary.
pub const ETCD_BIN_ENV: &str = "ETCD_BIN";

/// The etcd binary: `ETCD_BIN`, else `etcd` on `PATH`.
pub fn binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(ETCD_BIN_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
        .context("etcd not found (install Debian's etcd-server, or set ETCD_BIN)")
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// A local etcd cluster of child processes (killed on drop).
pub struct EtcdCluster {
    bin: PathBuf,
    dir: PathBuf,
    members: Vec<Member>,
    initial: String,
}

impl EtcdCluster {
    /// Starts `n` members under `dir` and waits until every one is healthy.
    pub async fn start(n: usize, dir: &Path) -> Result<Self> {
        let bin = binary()?;
        let mut members = Vec::new();
        for i in 0..n {
            members.push(Member {
                name: format!("e{i}"),
                client_port: free_port()?,
                peer_port: free_port()?,
                child: None,
            });
        }
        let initial = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            bin,
            dir: dir.to_path_buf(),
            members,
            initial,
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        cluster.wait_healthy(Duration::from_secs(60)).await?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let m = &self.members[i];
        let data = self.dir.join(&m.name);
        std::fs::create_dir_all(&data)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", m.name)))?;
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(&self.bin)
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "rsp-jepsen"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// `http://127.0.0.1:<client port>` of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Waits until every running member answers `/health` with true.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + timeout;
        for (m, url) in self.members.iter().zip(self.endpoints()) {
            if m.child.is_none() {
                continue;
            }
            loop {
                let ok = match http.get(format!("{url}/health")).send().await {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|v| v["health"] == json!("true")),
                    Err(_) => false,
                };
                if ok {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!("etcd member {} not healthy in time", m.name);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// SIGKILL member `i`.
    pub async fn kill_member(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.members[i].child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts member `i` again on its data dir (if it is down).
    pub fn spawn_again(&mut self, i: usize) -> Result<()> {
        if self.members[i].child.is_none() {
            self.spawn(i)?;
        }
        Ok(())
    }
}

impl Members for EtcdCluster {
    async fn kill(&mut self, i: usize) -> Result<()> {
        self.kill_member(i).await
    }

    async fn restart(&mut self, i: usize) -> Result<()> {
        self.spawn_again(i)
    }

    fn describe(&self, i: usize) -> String {
        format!("SIGKILL etcd member {}, then restart it", i + 1)
    }
}

/// A run against a local etcd cluster: the same clients, pacing, history,
/// checker and report as a run against `rsp`; faults: `kill` only.
pub(crate) async fn run(
    opts: RunOptions,
    id: String,
    workload: Arc<Workload>,
) -> Result<RunOutcome> {
    if opts.workload != "register" {
        return Err(Refused("against etcd only the register workload runs".into()).into());
    }
    if opts
        .nemesis
        .iter()
        .any(|k| !matches!(k, NemesisKind::Kill(None)))
    {
        return Err(Refused("against etcd the only nemesis is `kill`".into()).into());
    }
    binary().map_err(|e| Refused(format!("{e:#}")))?;
    let dir = opts.store.join(&id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let cluster = Arc::new(Mutex::new(
        EtcdCluster::start(opts.nodes, &dir.join("nodes")).await?,
    ));
    let recorder = Arc::new(Recorder::to_file(&dir.join("history.jsonl"))?);
    let clients = {
        let c = cluster.lock().await;
        c.endpoints()
            .into_iter()
            .enumerate()
            .map(|(i, url)| KvClient::etcd(i as u64 + 1, EtcdClient::new(url, opts.op_timeout)?))
            .collect::<Result<Vec<_>>>()?
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let roster = Arc::new(Roster::fixed(clients.clone()));
    let workers = spawn_workers(&opts, &workload, &roster, &recorder, &stop_rx);
    let nemesis = spawn_kill_nemesis(cluster.clone(), opts.nodes, &recorder, &opts, &stop_rx);
    tokio::time::sleep(opts.time_limit).await;
    let _ = stop_tx.send(true);
    let mut harness_errors = Vec::new();
    join_workers(workers, opts.op_timeout, &mut harness_errors).await;
    let nemesis_log = nemesis.await.unwrap_or_default();
    {
        let mut c = cluster.lock().await;
        for i in 0..c.len() {
            if let Err(e) = c.spawn_again(i) {
                harness_errors.push(format!("restart: {e:#}"));
            }
        }
        if let Err(e) = c.wait_healthy(Duration::from_secs(60)).await {
            harness_errors.push(format!("etcd did not recover: {e:#}"));
        }
    }
    recorder.flush()?;
    let (results, events) =
        conclude(id, &opts, &workload, &recorder, nemesis_log, harness_errors).await?;
    report::write(&dir, &results, &events)?;
    drop(cluster);
    if results.valid == Validity::Valid {
        let _ = std::fs::remove_dir_all(dir.join("nodes"));
    }
    Ok(RunOutcome { dir, results })
}
