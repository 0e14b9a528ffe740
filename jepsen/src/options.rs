//! What a run is asked ([`RunOptions`], [`Target`]) and how it answers
//! ([`RunOutcome`], or [`Refused`] when it cannot start as asked).

use std::path::PathBuf;
use std::time::Duration;

use crate::nemesis::NemesisKind;
use crate::report::Results;
use crate::workload::WorkloadOptions;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub nodes: usize,
    pub time_limit: Duration,
    pub workload: String,
    pub nemesis: Vec<NemesisKind>,
    /// The `--nemesis` text, for the results.
    pub nemesis_names: Vec<String>,
    pub concurrency: usize,
    /// Operations per second in all; 0 is unlimited.
    pub rate: f64,
    /// Runs go to `<store>/<run id>/`.
    pub store: PathBuf,
    pub seed: u64,
    pub start_after: Duration,
    pub fault_for: Duration,
    pub quiet_for: Duration,
    /// `RSP_INJECT_BUGS` for every node.
    pub inject_bugs: Option<String>,
    /// Extra `rsp serve` arguments.
    pub node_args: Vec<String>,
    /// One client request.
    pub op_timeout: Duration,
    /// Budget of the checker.
    pub check_time: Duration,
    pub fast_raft: bool,
    pub workload_opts: WorkloadOptions,
    /// What is tested: `rsp` (default) or etcd (the sanity check).
    pub target: Target,
    /// Drive the existing cluster this file describes instead of starting
    /// one (see `external`).
    pub nodes_file: Option<PathBuf>,
    /// The `rsp` the cluster starts with (`rsp_chaos::binary::rsp_binary`
    /// when `None`).
    pub binary: Option<PathBuf>,
    /// The `rsp` the `upgrade` nemesis moves nodes to.
    pub upgrade_to: Option<PathBuf>,
}

/// The system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Rsp,
    /// A local etcd cluster (see `etcd`): `register` only, nemesis `kill`
    /// or none.
    Etcd,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            nodes: 5,
            time_limit: Duration::from_secs(60),
            workload: "register".to_string(),
            nemesis: Vec::new(),
            nemesis_names: Vec::new(),
            concurrency: 10,
            rate: 200.0,
            store: PathBuf::from("store"),
            seed: 0,
            start_after: Duration::from_secs(3),
            fault_for: Duration::from_secs(6),
            quiet_for: Duration::from_secs(4),
            inject_bugs: None,
            node_args: Vec::new(),
            op_timeout: Duration::from_secs(6),
            check_time: Duration::from_secs(120),
            fast_raft: true,
            workload_opts: WorkloadOptions::default(),
            target: Target::Rsp,
            nodes_file: None,
            binary: None,
            upgrade_to: None,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub results: Results,
}

impl RunOutcome {
    pub fn exit_code(&self) -> i32 {
        self.results.exit_code
    }
}

/// Error of a run that could not start, with its exit code (2).
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}
