//! One Jepsen run: start a cluster (through `rsp-chaos`), run concurrent
//! clients and the nemesis for the time limit, heal, let the workload do
//! its final reads, check the history, write the results.
//!
//! Clients: worker `w` talks to node `ids[w % n]` (as Jepsen binds a
//! client to a node) as process `w`; after an indeterminate operation it
//! continues as process `w + concurrency`, and so on. Operations are paced
//! to `rate` per second in all (0: as fast as the cluster answers).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rsp_chaos::experiments::{faketime, powercut};
use rsp_chaos::{Cluster, ClusterSpec};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::checker::Validity;
use crate::checker::register::RegisterLimits;
use crate::client::KvClient;
use crate::history::{EventType, Process, Recorder};
use crate::nemesis::{self, NemesisKind, NemesisOptions};
use crate::report::{self, Results};
use crate::workload::{self, OpCtx, WorkloadOptions};

/// The environment variable of `rsp` that turns on injected bugs.
pub const INJECT_BUGS_ENV: &str = "RSP_INJECT_BUGS";

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
    /// one ([`crate::external`]).
    pub nodes_file: Option<PathBuf>,
}

/// The system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Rsp,
    /// A local etcd cluster ([`crate::etcd`]): `register` only, nemesis
    /// `kill` or none.
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

pub(crate) fn run_id(opts: &RunOptions) -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{secs}-{}-s{}-{}",
        opts.workload,
        opts.seed,
        std::process::id()
    )
}

/// Runs, checks and reports. An `Err` is a harness error (exit code 2);
/// a [`Refused`] error means the run could not start as asked.
pub async fn run(opts: RunOptions) -> Result<RunOutcome> {
    let id = run_id(&opts);
    let mut wopts = opts.workload_opts.clone();
    wopts.prefix = format!("jepsen/{id}");
    let workload =
        Arc::new(workload::build(&opts.workload, &wopts).map_err(|e| Refused(e.to_string()))?);
    if opts.target == Target::Etcd {
        return crate::etcd::run(opts, id, workload).await;
    }
    if let Some(file) = opts.nodes_file.clone() {
        return crate::external::run(opts, id, workload, &file).await;
    }
    if nemesis::needs_faketime(&opts.nemesis) {
        faketime::require().map_err(|e| Refused(format!("nemesis clock: {e:#}")))?;
    }
    if nemesis::needs_powercut(&opts.nemesis) {
        powercut::require().map_err(|e| Refused(format!("nemesis power-cut: {e:#}")))?;
    }
    anyhow::ensure!(
        opts.nodes >= 1 && opts.concurrency >= 1,
        "nodes and concurrency must be ≥ 1"
    );

    let dir = opts.store.join(&id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let mut spec = ClusterSpec::new(opts.nodes)
        .zones(["a", "b", "c"])
        .base_dir(dir.join("nodes"))
        .args(opts.node_args.iter().cloned());
    if opts.fast_raft {
        spec = spec.fast_raft();
    }
    if let Some(bugs) = &opts.inject_bugs {
        spec = spec.env(INJECT_BUGS_ENV, bugs.clone());
    }
    if nemesis::needs_powercut(&opts.nemesis) {
        spec = powercut::instrument(spec)?;
    }
    let cluster = Arc::new(Cluster::start(spec).await.context("starting the cluster")?);
    let converge = Duration::from_secs(60);
    if nemesis::needs_faketime(&opts.nemesis) {
        faketime::prepare(&cluster, converge).await?;
    }
    cluster.wait_for_leader(converge).await?;

    let recorder = Arc::new(Recorder::to_file(&dir.join("history.jsonl"))?);
    let ids = cluster.ids();
    let clients: Vec<KvClient> = ids
        .iter()
        .map(|id| Ok(KvClient::new(*id, cluster.client(*id)?, opts.op_timeout)))
        .collect::<Result<_>>()?;

    let nodes = workload::oidc::Nodes {
        ids: ids.clone(),
        http: ids
            .iter()
            .map(|id| cluster.http(*id))
            .collect::<Result<_>>()?,
        admin: ids
            .iter()
            .map(|id| Ok(cluster.client(*id)?.with_timeout(opts.op_timeout)))
            .collect::<Result<_>>()?,
    };
    workload
        .prepare(nodes, opts.concurrency, opts.op_timeout)
        .await
        .context("preparing the workload")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = spawn_workers(&opts, &workload, &clients, &recorder, &stop_rx);
    let nemesis_task = {
        let (cluster, recorder) = (cluster.clone(), recorder.clone());
        let nopts = NemesisOptions {
            kinds: opts.nemesis.clone(),
            start_after: opts.start_after,
            fault_for: opts.fault_for,
            quiet_for: opts.quiet_for,
            seed: opts.seed,
        };
        let stop = stop_rx.clone();
        tokio::spawn(async move { nemesis::run(&cluster, &recorder, &nopts, stop).await })
    };

    tokio::time::sleep(opts.time_limit).await;
    let _ = stop_tx.send(true);
    let mut harness_errors = Vec::new();
    join_workers(workers, opts.op_timeout, &mut harness_errors).await;
    let nemesis_log = match nemesis_task.await {
        Ok(log) => log,
        Err(e) => {
            harness_errors.push(format!("nemesis task failed: {e}"));
            Default::default()
        }
    };
    if let Err(e) = nemesis::heal_all(&cluster).await {
        harness_errors.push(format!("healing at the end: {e:#}"));
    }
    let recovered = async {
        cluster.wait_for_leader(converge).await?;
        cluster.wait_all_ready(converge).await
    }
    .await;
    if let Err(e) = &recovered {
        harness_errors.push(format!("cluster did not recover after healing: {e:#}"));
    }
    workload.finish(&recorder, &clients, converge).await;
    recorder.flush()?;

    let (results, events) =
        conclude(id, &opts, &workload, &recorder, nemesis_log, harness_errors).await?;
    report::write(&dir, &results, &events)?;
    if results.valid != Validity::Valid {
        cluster.keep_dir();
    } else {
        // The history and logs stay; the nodes' data dirs go.
        for id in cluster.ids() {
            if let Ok(node) = cluster.node(id) {
                let _ = node.process.kill().await;
                let _ = std::fs::remove_dir_all(node.process.data_dir());
            }
        }
    }
    Ok(RunOutcome { dir, results })
}

/// The clients: worker `w` talks to `clients[w % n]` as process `w` (then
/// `w + concurrency`, ... after each indeterminate operation), paced to
/// `rate` operations per second in all, until `stop` turns true.
pub(crate) fn spawn_workers(
    opts: &RunOptions,
    workload: &Arc<workload::Workload>,
    clients: &[KvClient],
    recorder: &Arc<Recorder>,
    stop_rx: &watch::Receiver<bool>,
) -> JoinSet<()> {
    let mut workers = JoinSet::new();
    let interval = if opts.rate > 0.0 {
        Duration::from_secs_f64(opts.concurrency as f64 / opts.rate)
    } else {
        Duration::ZERO
    };
    for w in 0..opts.concurrency {
        let client = clients[w % clients.len()].clone();
        let (workload, recorder, stop) = (workload.clone(), recorder.clone(), stop_rx.clone());
        let concurrency = opts.concurrency as u64;
        let mut rng =
            StdRng::seed_from_u64(opts.seed.wrapping_mul(1_000_003).wrapping_add(w as u64));
        workers.spawn(async move {
            let mut process = w as u64;
            // Spread the workers' first operations over one interval.
            let mut next = Instant::now() + interval.mul_f64(w as f64 / concurrency as f64);
            while !*stop.borrow() {
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
                let now = Instant::now();
                next = next.max(now.checked_sub(interval).unwrap_or(now)) + interval;
                let ctx = OpCtx {
                    recorder: &recorder,
                    client: &client,
                    process: Process::Client(process),
                    worker: w,
                };
                match workload.step(&ctx, &mut rng).await {
                    EventType::Info => process += concurrency,
                    // Pace retries against a dead or leaderless node.
                    EventType::Fail => tokio::time::sleep(Duration::from_millis(20)).await,
                    _ => {}
                }
            }
        });
    }
    workers
}

/// Waits for the clients to stop (each may finish its operation).
pub(crate) async fn join_workers(
    mut workers: JoinSet<()>,
    op_timeout: Duration,
    harness_errors: &mut Vec<String>,
) {
    let joined = tokio::time::timeout(op_timeout * 3, async {
        while let Some(r) = workers.join_next().await {
            if let Err(e) = r {
                return Err(anyhow!("client task failed: {e}"));
            }
        }
        Ok(())
    })
    .await;
    match joined {
        Ok(Ok(())) => {}
        Ok(Err(e)) => harness_errors.push(format!("{e:#}")),
        Err(_) => {
            workers.abort_all();
            harness_errors.push("clients did not stop in time".to_string());
        }
    }
}

/// Checks the history and assembles the results.
pub(crate) async fn conclude(
    id: String,
    opts: &RunOptions,
    workload: &Arc<workload::Workload>,
    recorder: &Recorder,
    nemesis_log: nemesis::NemesisLog,
    mut harness_errors: Vec<String>,
) -> Result<(Results, Vec<crate::history::Event>)> {
    let events = recorder.events();
    let limits = RegisterLimits {
        time: opts.check_time,
        ..RegisterLimits::default()
    };
    let (checker, events) = {
        let workload = workload.clone();
        tokio::task::spawn_blocking(move || (workload.check(&events, limits), events))
            .await
            .context("checker task failed")?
    };
    let mut valid = checker.valid;
    if valid == Validity::Valid && !(harness_errors.is_empty() && nemesis_log.errors.is_empty()) {
        valid = Validity::Unknown;
    }
    if valid == Validity::Valid && !events.iter().any(|e| e.kind == EventType::Ok) {
        harness_errors.push("no operation succeeded".to_string());
        valid = Validity::Unknown;
    }
    let results = Results {
        run: id,
        workload: opts.workload.clone(),
        nemesis: opts.nemesis_names.clone(),
        nodes: opts.nodes,
        concurrency: opts.concurrency,
        rate: opts.rate,
        time_limit_s: opts.time_limit.as_secs_f64(),
        seed: opts.seed,
        inject_bugs: opts.inject_bugs.clone(),
        valid,
        exit_code: valid.exit_code(),
        checker,
        stats: report::stats(&events),
        nemesis_log,
        harness_errors,
    };
    Ok((results, events))
}

/// Members of a cluster the harness did not start through `rsp-chaos`
/// (etcd, or an existing cluster): the `kill` nemesis stops and restarts
/// them.
pub(crate) trait Members: Send + 'static {
    fn kill(&mut self, i: usize) -> impl std::future::Future<Output = Result<()>> + Send;
    fn restart(&mut self, i: usize) -> impl std::future::Future<Output = Result<()>> + Send;
    fn describe(&self, i: usize) -> String;
}

/// The `kill` nemesis over [`Members`]: after `start_after`, kill a random
/// member, restart it `fault_for` later, wait `quiet_for`, again, until
/// `stop`. Recorded like the `rsp-chaos` nemesis.
pub(crate) fn spawn_kill_nemesis<M: Members>(
    members: Arc<tokio::sync::Mutex<M>>,
    n: usize,
    recorder: &Arc<Recorder>,
    opts: &RunOptions,
    stop: &watch::Receiver<bool>,
) -> tokio::task::JoinHandle<nemesis::NemesisLog> {
    use crate::history::Record;
    use rand::Rng;
    use serde_json::json;
    let (recorder, mut stop) = (recorder.clone(), stop.clone());
    let (kinds, seed, start_after, fault_for, quiet_for) = (
        opts.nemesis.len(),
        opts.seed,
        opts.start_after,
        opts.fault_for,
        opts.quiet_for,
    );
    tokio::spawn(async move {
        let mut log = nemesis::NemesisLog::default();
        if kinds == 0 || n == 0 {
            return log;
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pause = start_after;
        loop {
            if tokio::time::timeout(pause, stop.changed()).await.is_ok() {
                return log;
            }
            let victim = rng.random_range(0..n);
            let description = members.lock().await.describe(victim);
            let start = recorder.record(
                Record::new(Process::nemesis(), EventType::Info, "start").value(json!({
                    "fault": "kill",
                    "description": description,
                    "nodes": [victim + 1],
                })),
            );
            if let Err(e) = members.lock().await.kill(victim).await {
                log.errors.push(format!("kill: {e:#}"));
            }
            let stopped = tokio::time::timeout(fault_for, stop.changed())
                .await
                .is_ok();
            if let Err(e) = members.lock().await.restart(victim).await {
                log.errors.push(format!("restart: {e:#}"));
            }
            let end = recorder.record(
                Record::new(Process::nemesis(), EventType::Info, "stop")
                    .value(json!({"fault": "kill"})),
            );
            log.faults.push(nemesis::FaultWindow {
                kind: "kill".into(),
                description,
                start_ns: start.time_ns,
                end_ns: Some(end.time_ns),
            });
            if stopped {
                return log;
            }
            pause = quiet_for;
        }
    })
}
