//! What cluster to start ([`ClusterSpec`]) and how a later node joins
//! ([`NodeJoin`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// An N-node cluster on this machine. Node ids are `1..=nodes`; node 1
/// bootstraps and the others join it in order.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub nodes: usize,
    /// Ids (among `2..=nodes`) that join with `--learner`.
    pub learners: Vec<u64>,
    /// Zone labels, assigned round-robin (`--zone`); empty: no flag.
    pub zones: Vec<String>,
    /// `--region` for every node.
    pub region: Option<String>,
    /// Route every peer link through a fault-injecting proxy (default true).
    pub proxies: bool,
    /// Proxies pre-bound for ids `nodes+1..=nodes+spare_nodes`, so nodes
    /// added later are reachable through proxies from the first nodes too.
    pub spare_nodes: usize,
    /// Where node dirs go; a fresh temp dir when `None`.
    pub base_dir: Option<PathBuf>,
    /// Keep the base dir even when everything passed.
    pub keep_dir: bool,
    /// Extra arguments for every node.
    pub args: Vec<String>,
    /// Extra arguments for one node.
    pub node_args: BTreeMap<u64, Vec<String>>,
    /// Extra environment for every node.
    pub env: Vec<(String, String)>,
    /// The `rsp` binary; [`crate::binary::rsp_binary`] when `None`.
    pub binary: Option<PathBuf>,
    /// The admin token; generated when `None`.
    pub admin_token: Option<String>,
    /// Per node: how long to wait for its ready line.
    pub ready_timeout: Duration,
    /// Per node: how long to wait for it to be listed as a member.
    pub join_timeout: Duration,
    /// After start, also wait until every node's `/readyz` is 200 and a
    /// leader is agreed (default true).
    pub wait_ready: bool,
}

impl ClusterSpec {
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            learners: Vec::new(),
            zones: Vec::new(),
            region: None,
            proxies: true,
            spare_nodes: 2,
            base_dir: None,
            keep_dir: false,
            args: Vec::new(),
            node_args: BTreeMap::new(),
            env: Vec::new(),
            binary: None,
            admin_token: None,
            ready_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(30),
            wait_ready: true,
        }
    }

    pub fn zones<S: Into<String>>(mut self, zones: impl IntoIterator<Item = S>) -> Self {
        self.zones = zones.into_iter().map(Into::into).collect();
        self
    }

    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    pub fn learner(mut self, id: u64) -> Self {
        self.learners.push(id);
        self
    }

    pub fn without_proxies(mut self) -> Self {
        self.proxies = false;
        self
    }

    pub fn spare_nodes(mut self, n: usize) -> Self {
        self.spare_nodes = n;
        self
    }

    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn node_args<S: Into<String>>(
        mut self,
        id: u64,
        args: impl IntoIterator<Item = S>,
    ) -> Self {
        self.node_args
            .entry(id)
            .or_default()
            .extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Short Raft timers for tests: `--heartbeat-ms 50 --election-timeout-ms 300`.
    pub fn fast_raft(self) -> Self {
        self.args(["--heartbeat-ms", "50", "--election-timeout-ms", "300"])
    }

    /// The zone of node `id` (round-robin over `zones`).
    pub fn zone_of(&self, id: u64) -> Option<String> {
        if self.zones.is_empty() || id == 0 {
            return None;
        }
        let index = (id as usize - 1) % self.zones.len();
        self.zones.get(index).cloned()
    }
}

/// How [`crate::Cluster::add_node`] brings a new node in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinMode {
    /// `--join <peer addr of a member>`, as a voter.
    Voter,
    /// `--join <peer addr of a member> --learner`.
    Learner,
    /// `--no-bootstrap`: the node waits for an operator's
    /// `POST /admin/v1/cluster/nodes`.
    NoBootstrap,
}

/// A node added after start.
#[derive(Debug, Clone)]
pub struct NodeJoin {
    pub mode: JoinMode,
    /// Defaults to the round-robin zone of its id.
    pub zone: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl NodeJoin {
    pub fn voter() -> Self {
        Self::with_mode(JoinMode::Voter)
    }

    pub fn learner() -> Self {
        Self::with_mode(JoinMode::Learner)
    }

    pub fn no_bootstrap() -> Self {
        Self::with_mode(JoinMode::NoBootstrap)
    }

    fn with_mode(mode: JoinMode) -> Self {
        Self {
            mode,
            zone: None,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_assigned_round_robin() {
        let spec = ClusterSpec::new(5).zones(["a", "b"]);
        let zones: Vec<_> = (1..=5).map(|id| spec.zone_of(id)).collect();
        let want: Vec<_> = ["a", "b", "a", "b", "a"]
            .iter()
            .map(|z| Some(z.to_string()))
            .collect();
        assert_eq!(zones, want);
        assert_eq!(ClusterSpec::new(1).zone_of(1), None);
    }
}
