//! An N-node `rsp` cluster of child processes on this machine, with a
//! fault-injecting proxy on every directed peer link.
//!
//! Start-up: with proxies on (the default), one [`LinkProxy`] per directed
//! link `i -> j` is bound first and node `i` starts with
//! `--peer-route j=<proxy addr>` for every other `j`, so it reaches `j` only
//! through that proxy. A proxy learns its target once `j`'s real peer port is
//! known (from `j`'s ready line, or earlier from the membership list while `j`
//! is still joining). Node 1 bootstraps a one-node cluster; nodes `2..=N`
//! start one by one with `--join <node 1 peer addr>` and the harness waits
//! until node 1 lists each of them.
//!
//! Limits: nodes added beyond `spare_nodes` are reached directly (without a
//! proxy) by the nodes that were started before them, since those nodes have
//! no route for them. HTTP traffic (tests' requests) never goes through a
//! proxy.
//!
//! Membership as an operator changes it (`operations.rs`): a node removed
//! from the cluster on purpose is *retired*; [`Cluster::ids`] and
//! [`Cluster::live_ids`] leave it out, so faults, healing and clients no
//! longer pick it, and its id is never given again.
//!
//! Every method takes `&self`, so a cluster can be shared (`Arc`) between a
//! nemesis and the clients of an experiment. Dropping the cluster kills every
//! node; when the thread is panicking (a failed test), when the spec says
//! `keep_dir`, or when `RSP_CHAOS_KEEP_DIRS=1` is set, the node dirs and logs
//! are kept and their path is printed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use rand::Rng;
use tempfile::TempDir;

mod links;
mod observe;
mod operations;

pub use operations::Replacement;

use crate::admin::{AdminClient, ClusterInfo};
use crate::binary::rsp_binary;
use crate::process::{NodeProcess, NodeSpec, ReadyInfo};
use crate::proxy::LinkProxy;
use crate::spec::{ClusterSpec, JoinMode, NodeJoin};
use crate::wait;

/// Set (to anything but `0`) to keep every cluster's node dirs and logs,
/// e.g. to inspect a test that failed by returning an error.
pub const KEEP_DIRS_ENV: &str = "RSP_CHAOS_KEEP_DIRS";

/// A directed peer link `(from, to)`.
type Link = (u64, u64);

/// Time one status query of a node may take inside helpers.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One node of the cluster.
pub struct ClusterNode {
    pub id: u64,
    pub zone: Option<String>,
    pub process: NodeProcess,
}

enum BaseDir {
    Temp(Option<TempDir>),
    Fixed(PathBuf),
}

/// A running cluster. See the module docs.
pub struct Cluster {
    spec: ClusterSpec,
    binary: PathBuf,
    base: Mutex<BaseDir>,
    base_path: PathBuf,
    token: String,
    /// The cluster's join token, given to every node as `RSP_JOIN_TOKEN`.
    join_token: String,
    client: AdminClient,
    nodes: RwLock<BTreeMap<u64, Arc<ClusterNode>>>,
    /// Nodes removed from the cluster on purpose (see the module docs).
    retired: RwLock<BTreeSet<u64>>,
    proxies: RwLock<BTreeMap<Link, Arc<LinkProxy>>>,
    /// Serialises membership changes made by the harness.
    membership: tokio::sync::Mutex<()>,
}

fn generate_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Cluster {
    /// Starts the cluster described by `spec` and waits until it is formed.
    /// On failure every node is killed, the node dirs are kept, and the error
    /// names them.
    pub async fn start(spec: ClusterSpec) -> Result<Self> {
        ensure!(spec.nodes >= 1, "a cluster needs at least one node");
        let binary = match &spec.binary {
            Some(b) => b.clone(),
            None => rsp_binary()?,
        };
        let (base, base_path) = match &spec.base_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                (BaseDir::Fixed(dir.clone()), dir.clone())
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("rsp-cluster-")
                    .tempdir()
                    .context("creating the cluster's temp dir")?;
                let path = tmp.path().to_path_buf();
                (BaseDir::Temp(Some(tmp)), path)
            }
        };
        let token = spec.admin_token.clone().unwrap_or_else(generate_token);
        let client = AdminClient::new("http://127.0.0.1", token.clone())?;
        let cluster = Self {
            spec,
            binary,
            base: Mutex::new(base),
            base_path,
            token,
            join_token: generate_token(),
            client,
            nodes: RwLock::new(BTreeMap::new()),
            retired: RwLock::new(BTreeSet::new()),
            proxies: RwLock::new(BTreeMap::new()),
            membership: tokio::sync::Mutex::new(()),
        };
        match cluster.boot().await {
            Ok(()) => Ok(cluster),
            Err(e) => {
                let dir = cluster.keep_dir();
                Err(e.context(format!(
                    "cluster start failed; node dirs and logs kept in {}",
                    dir.display()
                )))
            }
        }
    }

    async fn boot(&self) -> Result<()> {
        let n = self.spec.nodes as u64;
        if self.spec.proxies {
            let last = n + self.spec.spare_nodes as u64;
            for from in 1..=n {
                for to in (1..=last).filter(|to| *to != from) {
                    self.bind_proxy(from, to, None).await?;
                }
            }
        }
        self.launch(1, Vec::new(), None, &[], &[]).await?;
        let join = self.peer_addr(1)?.to_string();
        for id in 2..=n {
            let mut join_args = vec!["--join".to_string(), join.clone()];
            if self.spec.learners.contains(&id) {
                join_args.push("--learner".to_string());
            }
            self.launch(id, join_args, Some(1), &[], &[]).await?;
            self.wait_for_member(id, &[1]).await?;
        }
        if self.spec.wait_ready {
            let timeout = self.spec.join_timeout;
            self.wait_all_ready(timeout).await?;
            self.wait_for_leader(timeout).await?;
        }
        Ok(())
    }

    async fn bind_proxy(
        &self,
        from: u64,
        to: u64,
        target: Option<SocketAddr>,
    ) -> Result<Arc<LinkProxy>> {
        let proxy = Arc::new(LinkProxy::bind(target).await?);
        write(&self.proxies).insert((from, to), proxy.clone());
        Ok(proxy)
    }

    /// Spawns node `id` and waits for its ready line. `resolve_via` names a
    /// member whose membership list reveals the new node's peer address
    /// before it is ready (for nodes that print ready only once joined).
    async fn launch(
        &self,
        id: u64,
        join_args: Vec<String>,
        resolve_via: Option<u64>,
        extra_args: &[String],
        extra_env: &[(String, String)],
    ) -> Result<()> {
        self.launch_in_zone(
            id,
            self.spec.zone_of(id),
            join_args,
            resolve_via,
            extra_args,
            extra_env,
        )
        .await
    }

    async fn launch_in_zone(
        &self,
        id: u64,
        zone: Option<String>,
        join_args: Vec<String>,
        resolve_via: Option<u64>,
        extra_args: &[String],
        extra_env: &[(String, String)],
    ) -> Result<()> {
        let mut spec = NodeSpec::new(&self.binary, self.base_path.join(format!("n{id}")));
        spec.node_id = Some(id);
        spec.ready_timeout = self.spec.ready_timeout;
        let mut args = Vec::new();
        if let Some(zone) = &zone {
            args.extend(["--zone".to_string(), zone.clone()]);
        }
        if let Some(region) = &self.spec.region {
            args.extend(["--region".to_string(), region.clone()]);
        }
        for ((from, to), proxy) in read(&self.proxies).iter() {
            if *from == id {
                args.extend(["--peer-route".to_string(), format!("{to}={}", proxy.addr())]);
            }
        }
        args.extend(self.spec.args.iter().cloned());
        if let Some(node_args) = self.spec.node_args.get(&id) {
            args.extend(node_args.iter().cloned());
        }
        args.extend(join_args);
        args.extend(extra_args.iter().cloned());
        spec.args = args;
        spec.env = vec![
            ("RSP_ADMIN_TOKEN".to_string(), self.token.clone()),
            ("RSP_JOIN_TOKEN".to_string(), self.join_token.clone()),
        ];
        spec.env.extend(self.spec.env.iter().cloned());
        spec.env.extend(extra_env.iter().cloned());

        let process = NodeProcess::spawn(spec)?;
        let resolver = match resolve_via.and_then(|via| self.client(via).ok()) {
            Some(client) if self.spec.proxies => {
                let links = self.links_into(id);
                Some(tokio::spawn(resolve_targets(client, id, links)))
            }
            _ => None,
        };
        let ready = process.wait_ready().await;
        if let Some(task) = resolver {
            task.abort();
        }
        let ready = match ready {
            Ok(ready) => ready,
            Err(e) => {
                let _ = process.kill().await;
                return Err(e);
            }
        };
        ensure!(
            ready.node_id == id,
            "node started with --node-id {id} reports node_id {}",
            ready.node_id
        );
        self.point_links_to(id, ready.peer_addr);
        let node = Arc::new(ClusterNode { id, zone, process });
        write(&self.nodes).insert(id, node);
        Ok(())
    }

    fn links_into(&self, to: u64) -> Vec<Arc<LinkProxy>> {
        read(&self.proxies)
            .iter()
            .filter(|((_, t), _)| *t == to)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn point_links_to(&self, to: u64, peer_addr: SocketAddr) {
        for proxy in self.links_into(to) {
            proxy.set_target(Some(peer_addr));
        }
    }

    /// Waits until a live node among `ask` (any live node when empty) lists
    /// `id` as a member.
    async fn wait_for_member(&self, id: u64, ask: &[u64]) -> Result<ClusterInfo> {
        let what = format!("node {id} to be listed as a member");
        wait::wait_until(self.spec.join_timeout, &what, || async {
            let candidates = if ask.is_empty() {
                self.live_ids()
            } else {
                ask.to_vec()
            };
            let mut seen = Vec::new();
            for via in candidates.into_iter().filter(|via| *via != id) {
                let client = self.client(via)?.with_timeout(PROBE_TIMEOUT);
                match client.cluster_info().await {
                    Ok(info) if info.member(id).is_some() => return Ok(info),
                    Ok(info) => seen.push(format!("node {via}: members {:?}", info.member_ids())),
                    Err(e) => seen.push(format!("node {via}: {e:#}")),
                }
            }
            bail!("{}", seen.join("; "))
        })
        .await
        .with_context(|| format!("log of node {id}:\n{}", self.log_tail(id, 30)))
    }

    // --- nodes -------------------------------------------------------------

    /// Every node the harness started and has not retired, dead or alive.
    pub fn ids(&self) -> Vec<u64> {
        let retired = read(&self.retired);
        read(&self.nodes)
            .keys()
            .copied()
            .filter(|id| !retired.contains(id))
            .collect()
    }

    /// Nodes not retired whose process runs and is not paused.
    pub fn live_ids(&self) -> Vec<u64> {
        let retired = read(&self.retired);
        read(&self.nodes)
            .values()
            .filter(|n| n.process.is_running() && !n.process.is_paused())
            .map(|n| n.id)
            .filter(|id| !retired.contains(id))
            .collect()
    }

    /// Nodes removed from the cluster on purpose, in id order.
    pub fn retired_ids(&self) -> Vec<u64> {
        read(&self.retired).iter().copied().collect()
    }

    /// Takes `id` out of [`Cluster::ids`] for good (after the membership no
    /// longer holds it, or as it dies for good) and drops the proxies of
    /// its links (a long run retires many nodes); its process is not
    /// stopped here.
    pub fn retire(&self, id: u64) {
        write(&self.retired).insert(id);
        write(&self.proxies).retain(|(from, to), _| *from != id && *to != id);
    }

    pub fn node(&self, id: u64) -> Result<Arc<ClusterNode>> {
        read(&self.nodes)
            .get(&id)
            .cloned()
            .ok_or_else(|| anyhow!("no node {id} in this cluster"))
    }

    pub fn zone_of(&self, id: u64) -> Option<String> {
        self.node(id).ok().and_then(|n| n.zone.clone())
    }

    pub fn nodes_in_zone(&self, zone: &str) -> Vec<u64> {
        read(&self.nodes)
            .values()
            .filter(|n| n.zone.as_deref() == Some(zone))
            .map(|n| n.id)
            .collect()
    }

    /// `http://<http addr>` of node `id`.
    pub fn http(&self, id: u64) -> Result<String> {
        Ok(self.node(id)?.process.base_url())
    }

    /// The real peer address of node `id` (not its proxy).
    pub fn peer_addr(&self, id: u64) -> Result<SocketAddr> {
        Ok(self.node(id)?.process.peer_addr())
    }

    /// An admin client for node `id`.
    pub fn client(&self, id: u64) -> Result<AdminClient> {
        Ok(self.client.for_node(self.http(id)?))
    }

    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// The join token every node of this cluster is started with.
    pub fn join_token(&self) -> &str {
        &self.join_token
    }

    pub fn base_dir(&self) -> PathBuf {
        self.base_path.clone()
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The last `n` lines of node `id`'s log.
    pub fn log_tail(&self, id: u64, n: usize) -> String {
        self.node(id)
            .map(|node| node.process.log_tail(n))
            .unwrap_or_default()
    }

    /// The last `n` lines of every node's log (retired ones too), for
    /// failure messages.
    pub fn logs(&self, n: usize) -> String {
        let all: Vec<u64> = read(&self.nodes).keys().copied().collect();
        all.into_iter()
            .map(|id| format!("--- node {id} ---\n{}", self.log_tail(id, n)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Keeps the node dirs after the cluster is dropped; returns their path.
    pub fn keep_dir(&self) -> PathBuf {
        let mut base = self.base.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *base {
            BaseDir::Temp(tmp) => {
                if let Some(tmp) = tmp.take() {
                    let _ = tmp.keep();
                }
                self.base_path.clone()
            }
            BaseDir::Fixed(path) => path.clone(),
        }
    }

    // --- process faults ----------------------------------------------------

    /// `kill -9` node `id` and wait for it to be gone.
    pub async fn kill(&self, id: u64) -> Result<()> {
        self.node(id)?.process.kill().await
    }

    /// SIGSTOP node `id`.
    pub fn pause(&self, id: u64) -> Result<()> {
        self.node(id)?.process.pause()
    }

    /// SIGCONT node `id`.
    pub fn resume(&self, id: u64) -> Result<()> {
        self.node(id)?.process.resume()
    }

    /// SIGTERM node `id` and wait up to `timeout` for it to exit.
    pub async fn terminate(&self, id: u64, timeout: Duration) -> Result<ExitStatus> {
        self.node(id)?.process.terminate(timeout).await
    }

    /// Starts node `id` again from its data dir on the same ports (killing
    /// it first if it still runs).
    pub async fn restart(&self, id: u64) -> Result<ReadyInfo> {
        let node = self.node(id)?;
        let ready = node.process.restart().await?;
        self.point_links_to(id, ready.peer_addr);
        Ok(ready)
    }

    /// Starts node `max id + 1` (retired ids count) and brings it in as
    /// `join` says. For
    /// `Voter`/`Learner` it returns once a member lists it; for
    /// `NoBootstrap` once it is ready (the caller then adds it with
    /// `POST /admin/v1/cluster/nodes`).
    pub async fn add_node(&self, join: NodeJoin) -> Result<u64> {
        let _guard = self.membership.lock().await;
        let id = read(&self.nodes).keys().last().copied().unwrap_or(0) + 1;
        let existing = self.ids();
        if self.spec.proxies {
            for other in &existing {
                let target = Some(self.peer_addr(*other)?);
                self.bind_proxy(id, *other, target).await?;
                if !read(&self.proxies).contains_key(&(*other, id)) {
                    // `other` has no route for `id` and will connect directly;
                    // this proxy only exists for symmetry.
                    self.bind_proxy(*other, id, None).await?;
                }
            }
        }
        let via = match self.leader().await.ok().flatten() {
            Some(leader) => leader,
            None => *self
                .live_ids()
                .first()
                .ok_or_else(|| anyhow!("no live node to join"))?,
        };
        let mut join_args = Vec::new();
        match join.mode {
            JoinMode::Voter | JoinMode::Learner => {
                join_args.extend(["--join".to_string(), self.peer_addr(via)?.to_string()]);
                if join.mode == JoinMode::Learner {
                    join_args.push("--learner".to_string());
                }
            }
            JoinMode::NoBootstrap => join_args.push("--no-bootstrap".to_string()),
        }
        let zone = join.zone.clone().or_else(|| self.spec.zone_of(id));
        self.launch_in_zone(id, zone, join_args, Some(via), &join.args, &join.env)
            .await?;
        if join.mode != JoinMode::NoBootstrap {
            self.wait_for_member(id, &[]).await?;
        }
        Ok(id)
    }
}

/// Points the proxies into a joining node at its peer address as soon as a
/// member lists it (its ready line may come only after it has caught up,
/// which needs those proxies).
async fn resolve_targets(client: AdminClient, id: u64, links: Vec<Arc<LinkProxy>>) {
    let client = client.with_timeout(PROBE_TIMEOUT);
    loop {
        if let Ok(info) = client.cluster_info().await {
            let addr = info
                .member(id)
                .and_then(|m| m.peer_addr.parse::<SocketAddr>().ok());
            if let Some(addr) = addr {
                for link in &links {
                    link.set_target(Some(addr));
                }
                return;
            }
        }
        tokio::time::sleep(wait::POLL_INTERVAL).await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let nodes: Vec<Arc<ClusterNode>> = read(&self.nodes).values().cloned().collect();
        for node in &nodes {
            let _ = node.process.signal(libc::SIGKILL);
        }
        // Let the kernel finish them before their dirs are removed (a
        // SIGKILLed process is gone within milliseconds).
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while nodes.iter().any(|n| n.process.is_running()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let keep_env = std::env::var_os(KEEP_DIRS_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        if std::thread::panicking() || self.spec.keep_dir || keep_env {
            let dir = self.keep_dir();
            eprintln!("rsp-chaos: cluster dirs and logs kept in {}", dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn require_send<T: Send>(_: &T) {}
    fn require_send_sync<T: Send + Sync>() {}

    /// A cluster can be shared with a nemesis task: it is `Send + Sync` and
    /// its futures are `Send`. (Type-checked only; never run.)
    #[allow(dead_code)]
    fn futures_are_send(c: &Cluster) {
        require_send_sync::<Cluster>();
        require_send(&c.add_node(NodeJoin::voter()));
        require_send(&c.restart(1));
        require_send(&c.kill(1));
        require_send(&c.wait_for_leader(Duration::from_secs(1)));
        require_send(&c.wait_all_ready(Duration::from_secs(1)));
        require_send(&c.views());
    }
}
