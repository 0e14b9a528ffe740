//! Chaos experiments: named faults against a live cluster under load, each
//! judged against a steady-state hypothesis before, during and after the
//! fault.
//!
//! Parts:
//! - [`catalog`]: the named experiments and their [`Hypothesis`];
//! - [`faults`]: the fault vocabulary (targets, partition shapes, inject and
//!   heal), shared with the Jepsen nemesis;
//! - [`faketime`]: honest clock skew through libfaketime, or a refusal;
//! - [`powercut`]: power cuts (kill -9 plus the loss of unsynced writes)
//!   through an undo-logging `LD_PRELOAD` shim;
//! - [`load`]: the background load (writers of unique keys, readers of
//!   acknowledged keys) and success rates per window;
//! - `actions`: what each experiment does during its fault window;
//! - [`report`]: the judged checks and the report;
//! - this file: [`run`], which starts a cluster, drives one experiment
//!   through its phases and returns an [`ExperimentReport`].
//!
//! Phases: warm-up (first acknowledged writes), *before* (steady state),
//! *during* (the fault, healed at its end), recovery (until every node is
//! ready under one leader), *after* (steady state again). Then every
//! acknowledged write is read back.
//!
//! Not for: proving linearizability of histories (that is `rsp-jepsen`'s
//! checker); the load here only catches blunt violations (a lost write, a
//! read of an acknowledged key that misses it).

mod actions;
pub mod catalog;
pub mod faketime;
pub mod faults;
pub mod load;
pub mod powercut;
pub mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use rand::SeedableRng;
use rand::rngs::StdRng;

pub use catalog::{Action, Experiment, Hypothesis};
use faults::Fault;
use load::{Load, LoadOptions, Window};
pub use report::{Check, ExperimentReport, FaultEvent};

use crate::{Cluster, ClusterSpec};

/// How to run an experiment.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub nodes: usize,
    /// Length of the fault window.
    pub duration: Duration,
    /// Steady state measured before the fault.
    pub before: Duration,
    /// Steady state measured after recovery.
    pub after: Duration,
    pub seed: u64,
    /// Where node dirs go (a temp dir otherwise).
    pub base_dir: Option<PathBuf>,
    /// Keep node dirs and logs afterwards.
    pub keep_dir: bool,
    /// Short Raft timers (heartbeat 50 ms, election 300 ms).
    pub fast_raft: bool,
    pub load: LoadOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            nodes: 5,
            duration: Duration::from_secs(10),
            before: Duration::from_secs(5),
            after: Duration::from_secs(5),
            seed: 1,
            base_dir: None,
            keep_dir: false,
            fast_raft: true,
            load: LoadOptions::default(),
        }
    }
}

/// What the fault window left behind.
#[derive(Default)]
pub(crate) struct Acted {
    events: Vec<FaultEvent>,
    checks: Vec<Check>,
}

pub(crate) struct Ctx<'a> {
    cluster: &'a Cluster,
    t0: Instant,
    rng: StdRng,
    acted: Acted,
}

impl Ctx<'_> {
    fn event(&mut self, what: impl Into<String>) {
        let what = what.into();
        let at_s = self.t0.elapsed().as_secs_f64();
        self.acted.events.push(FaultEvent { at_s, what });
    }

    async fn hold(&mut self, fault: Fault, duration: Duration) -> Result<()> {
        let note = fault.inject(self.cluster).await?;
        self.event(match note {
            Some(note) => format!("inject: {} ({note})", fault.describe()),
            None => format!("inject: {}", fault.describe()),
        });
        tokio::time::sleep(duration).await;
        fault.heal(self.cluster).await?;
        self.event(format!("heal: {}", fault.kind()));
        Ok(())
    }
}

pub(crate) const CONVERGE: Duration = Duration::from_secs(30);

/// Runs one experiment on a fresh cluster.
pub async fn run(exp: &Experiment, opts: &RunOptions) -> Result<ExperimentReport> {
    ensure!(
        opts.nodes >= exp.min_nodes,
        "experiment {} needs at least {} nodes",
        exp.name,
        exp.min_nodes
    );
    if matches!(exp.action, Action::ClockSkew { .. }) {
        faketime::require().with_context(|| format!("experiment {} refused", exp.name))?;
    }
    // A base dir of our own (absolute, as the power-cut shim needs).
    let (temp, base) = match &opts.base_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (None, dir.canonicalize()?)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix(&format!("rsp-chaos-{}-", exp.name))
                .tempdir()
                .context("creating a temp dir")?;
            let path = t.path().to_path_buf();
            (Some(t), path)
        }
    };
    let mut spec = ClusterSpec::new(opts.nodes)
        .zones(["a", "b", "c"])
        .base_dir(&base)
        .args(exp.args.iter().copied());
    let own_timers = exp
        .args
        .iter()
        .any(|a| *a == "--heartbeat-ms" || *a == "--election-timeout-ms");
    if opts.fast_raft && !own_timers {
        spec = spec.fast_raft();
    }
    if matches!(exp.action, Action::PowerCut(_)) {
        spec = powercut::instrument(spec)
            .with_context(|| format!("experiment {} refused", exp.name))?;
    }
    spec.keep_dir = opts.keep_dir;
    let report = run_on(exp, opts, spec).await;
    let keep = opts.keep_dir || !report.as_ref().is_ok_and(|r| r.passed);
    match (temp, keep) {
        (Some(t), true) => {
            let _ = t.keep();
        }
        (Some(t), false) => drop(t),
        (None, _) => {}
    }
    report.map_err(|e| e.context(format!("node dirs and logs kept in {}", base.display())))
}

async fn run_on(
    exp: &Experiment,
    opts: &RunOptions,
    spec: ClusterSpec,
) -> Result<ExperimentReport> {
    let cluster = Arc::new(Cluster::start(spec).await?);
    if matches!(exp.action, Action::ClockSkew { .. }) {
        faketime::prepare(&cluster, CONVERGE).await?;
    }
    cluster.wait_for_leader(CONVERGE).await?;

    let mut load_opts = opts.load.clone();
    load_opts.prefix = format!("chaos/{}/{}", exp.name, opts.seed);
    if let Some((attempt, deadline)) = exp.slow_requests {
        load_opts.attempt_timeout = attempt;
        load_opts.request_deadline = deadline;
    }
    let load = Load::start(cluster.clone(), load_opts);
    let t0 = load.t0();
    load.wait_acked(10, CONVERGE).await?;
    let t_before = t0.elapsed();
    tokio::time::sleep(opts.before).await;

    let t_inject = t0.elapsed();
    let mut ctx = Ctx {
        cluster: &cluster,
        t0,
        rng: StdRng::seed_from_u64(opts.seed),
        acted: Acted::default(),
    };
    let acted = actions::act(&mut ctx, &exp.action, opts.duration).await;
    let mut acted_out = std::mem::take(&mut ctx.acted);
    if let Err(e) = acted {
        // Leave the cluster whole before reporting the harness error.
        let _ = faults::heal_everything(&cluster).await;
        let _ = load.stop().await;
        return Err(e);
    }
    let t_heal = t0.elapsed();
    faults::heal_everything(&cluster).await?;
    let h = exp.hypothesis;
    let recovered = async {
        cluster.wait_for_leader(h.recover_within + CONVERGE).await?;
        cluster.wait_all_ready(h.recover_within + CONVERGE).await
    }
    .await;
    let t_recovered = t0.elapsed();
    let recovery = t_recovered.saturating_sub(t_heal);
    tokio::time::sleep(opts.after).await;
    let t_end = t0.elapsed();
    let log = load.stop().await?;
    let lost = load::lost_writes(&cluster, &log.acked, CONVERGE).await?;

    let before = Window::of(&log.samples, t_before, t_inject);
    let during = Window::of(&log.samples, t_inject, t_heal);
    let after = Window::of(&log.samples, t_recovered, t_end);
    let mut checks = vec![Check::rate("before", &before, h.before)];
    if let Some(least) = h.during {
        checks.push(Check::rate("during", &during, least));
    }
    if let Some(least) = h.min_throughput {
        checks.push(Check::throughput(&before, &during, least));
    }
    checks.push(Check::new(
        "recovery",
        format!("≤ {} ms", h.recover_within.as_millis()),
        match &recovered {
            Ok(()) => format!("{} ms", recovery.as_millis()),
            Err(e) => format!("not recovered: {e:#}"),
        },
        recovered.is_ok() && recovery <= h.recover_within,
    ));
    checks.push(Check::rate("after", &after, h.after));
    checks.push(Check::new(
        "acknowledged writes kept",
        "0 lost",
        format!("{} lost of {}", lost.len(), log.acked.len()),
        lost.is_empty(),
    ));
    checks.push(Check::new(
        "linearizable reads",
        "0 stale or wrong",
        format!("{}", log.samples.iter().filter(|s| s.violation).count()),
        log.violations.is_empty(),
    ));
    checks.append(&mut acted_out.checks);
    let passed = checks.iter().all(|c| c.passed);
    let dir = (!passed || opts.keep_dir).then(|| cluster.base_dir().display().to_string());
    Ok(ExperimentReport {
        name: exp.name.to_string(),
        description: exp.description.to_string(),
        hypothesis: h.describe(),
        nodes: opts.nodes,
        seed: opts.seed,
        before,
        during,
        after,
        recovery_ms: recovery.as_millis() as u64,
        acknowledged_writes: log.acked.len(),
        lost_writes: lost,
        read_violations: log.violations,
        events: acted_out.events,
        checks,
        passed,
        dir,
    })
}
