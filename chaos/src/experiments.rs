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

pub mod catalog;
pub mod faketime;
pub mod faults;
pub mod load;
pub mod powercut;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

pub use catalog::{Action, Experiment, Hypothesis};
use faults::{Fault, Targets};
use load::{Load, LoadOptions, Window};

use crate::{Cluster, ClusterSpec, NodeJoin};

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

/// One judged part of the hypothesis.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub expected: String,
    pub observed: String,
    pub passed: bool,
}

impl Check {
    fn new(
        name: impl Into<String>,
        expected: impl Into<String>,
        observed: impl Into<String>,
        passed: bool,
    ) -> Self {
        Self {
            name: name.into(),
            expected: expected.into(),
            observed: observed.into(),
            passed,
        }
    }

    fn rate(name: &str, window: &Window, least: f64) -> Self {
        Self::new(
            format!("success {name}"),
            format!("≥ {:.1}%", least * 100.0),
            format!(
                "{:.1}% of {} requests (p99 {} ms)",
                window.success() * 100.0,
                window.requests,
                window.p99_ms
            ),
            window.success() >= least,
        )
    }
}

/// A fault event during the experiment.
#[derive(Debug, Clone, Serialize)]
pub struct FaultEvent {
    /// Seconds since the load started.
    pub at_s: f64,
    pub what: String,
}

/// The result of one experiment.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    pub name: String,
    pub description: String,
    pub hypothesis: String,
    pub nodes: usize,
    pub seed: u64,
    pub before: Window,
    pub during: Window,
    pub after: Window,
    pub recovery_ms: u64,
    pub acknowledged_writes: usize,
    pub lost_writes: Vec<String>,
    pub read_violations: Vec<String>,
    pub events: Vec<FaultEvent>,
    pub checks: Vec<Check>,
    pub passed: bool,
    pub dir: Option<String>,
}

impl ExperimentReport {
    /// A few lines for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "experiment {} ({} nodes, seed {}): {}\n  {}\n  hypothesis: {}\n",
            self.name,
            self.nodes,
            self.seed,
            if self.passed { "PASSED" } else { "FAILED" },
            self.description,
            self.hypothesis
        );
        for e in &self.events {
            out.push_str(&format!("  {:>7.2}s  {}\n", e.at_s, e.what));
        }
        for c in &self.checks {
            out.push_str(&format!(
                "  [{}] {}: expected {}, observed {}\n",
                if c.passed { "ok" } else { "FAIL" },
                c.name,
                c.expected,
                c.observed
            ));
        }
        out.push_str(&format!(
            "  {} writes acknowledged; recovery {} ms\n",
            self.acknowledged_writes, self.recovery_ms
        ));
        for l in self.lost_writes.iter().take(5) {
            out.push_str(&format!("  lost: {l}\n"));
        }
        for v in self.read_violations.iter().take(5) {
            out.push_str(&format!("  bad read: {v}\n"));
        }
        if let Some(dir) = &self.dir {
            out.push_str(&format!("  node dirs and logs: {dir}\n"));
        }
        out
    }
}

/// What the fault window left behind.
#[derive(Default)]
struct Acted {
    events: Vec<FaultEvent>,
    /// Nodes that left the cluster on purpose (not to be restarted).
    retired: Vec<u64>,
    checks: Vec<Check>,
}

struct Ctx<'a> {
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

const CONVERGE: Duration = Duration::from_secs(30);

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
    let acted = act(&mut ctx, &exp.action, opts.duration).await;
    let mut acted_out = std::mem::take(&mut ctx.acted);
    if let Err(e) = acted {
        // Leave the cluster whole before reporting the harness error.
        let _ = faults::heal_everything(&cluster, &acted_out.retired).await;
        let _ = load.stop().await;
        return Err(e);
    }
    let t_heal = t0.elapsed();
    faults::heal_everything(&cluster, &acted_out.retired).await?;
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

/// Applies the action for `duration`; it is healed when this returns.
async fn act(ctx: &mut Ctx<'_>, action: &Action, duration: Duration) -> Result<()> {
    let cluster = ctx.cluster;
    match action {
        Action::Kill(targets) => {
            let nodes = targets.resolve(cluster, &mut ctx.rng).await?;
            ctx.hold(Fault::Kill(nodes), duration).await
        }
        Action::PowerCut(targets) => {
            let nodes = targets.resolve(cluster, &mut ctx.rng).await?;
            ctx.hold(Fault::PowerCut(nodes), duration).await
        }
        Action::Pause(targets) => {
            let nodes = targets.resolve(cluster, &mut ctx.rng).await?;
            ctx.hold(Fault::Pause(nodes), duration).await
        }
        Action::Partition(shape) => {
            let fault = shape.resolve(cluster, &mut ctx.rng).await?;
            ctx.hold(fault, duration).await
        }
        Action::Links {
            latency,
            jitter,
            loss,
        } => {
            let fault = Fault::Links {
                latency: *latency,
                jitter: *jitter,
                loss: *loss,
            };
            ctx.hold(fault, duration).await
        }
        Action::LeaderOutgoing(link_faults) => {
            let leader = cluster.wait_for_leader(CONVERGE).await?;
            let links = cluster
                .ids()
                .into_iter()
                .filter(|id| *id != leader)
                .map(|id| (leader, id))
                .collect();
            let fault = Fault::SomeLinks {
                links,
                faults: link_faults.clone(),
            };
            ctx.hold(fault, duration).await
        }
        Action::ZoneOutage(zone) => {
            let nodes = cluster.nodes_in_zone(zone);
            ensure!(!nodes.is_empty(), "no node in zone {zone}");
            ctx.hold(Fault::Kill(nodes), duration).await
        }
        Action::RollingRestart => {
            for id in cluster.ids() {
                cluster
                    .terminate(id, Duration::from_secs(15))
                    .await
                    .with_context(|| format!("stopping node {id}"))?;
                ctx.event(format!("SIGTERM node {id}"));
                cluster.restart(id).await?;
                cluster.wait_all_ready(CONVERGE).await?;
                ctx.event(format!("node {id} restarted and ready"));
            }
            Ok(())
        }
        Action::FlappingLink { period } => {
            let leader = cluster.wait_for_leader(CONVERGE).await?;
            let other = Targets::Follower.resolve(cluster, &mut ctx.rng).await?;
            let follower = other.first().copied().unwrap_or(leader);
            // Only the leader-follower pair flaps.
            let pair = Fault::SomeLinks {
                links: vec![(leader, follower), (follower, leader)],
                faults: crate::LinkFaults::down(),
            };
            ctx.event(format!(
                "flapping links {leader} <-> {follower} every {} ms",
                period.as_millis()
            ));
            let until = Instant::now() + duration;
            let mut flaps = 0u32;
            while Instant::now() < until {
                pair.inject(cluster).await?;
                tokio::time::sleep(*period).await;
                pair.heal(cluster).await?;
                tokio::time::sleep(*period).await;
                flaps += 1;
            }
            ctx.event(format!("{flaps} flaps; links up"));
            Ok(())
        }
        Action::RepeatedLeaderKills { every } => {
            let until = Instant::now() + duration;
            while Instant::now() < until {
                let victim = Targets::Leader.resolve(cluster, &mut ctx.rng).await?;
                let fault = Fault::Kill(victim);
                ctx.hold(fault, *every).await?;
                // Let the restarted node rejoin before the next kill.
                cluster.wait_for_leader(CONVERGE).await?;
            }
            Ok(())
        }
        Action::MembershipChange => membership_change(ctx, duration).await,
        Action::SnapshotCatchUp => snapshot_catch_up(ctx, duration).await,
        Action::ClockSkew { offset, ahead } => {
            let leader = cluster.wait_for_leader(CONVERGE).await?;
            let ms = offset.as_millis() as i64;
            let fault = Fault::ClockSkew {
                nodes: vec![leader],
                offset_ms: if *ahead { ms } else { -ms },
            };
            ctx.hold(fault, duration).await
        }
    }
}

async fn membership_change(ctx: &mut Ctx<'_>, duration: Duration) -> Result<()> {
    let cluster = ctx.cluster;
    let started = Instant::now();
    let new = cluster.add_node(NodeJoin::voter()).await?;
    ctx.event(format!("node {new} joined"));
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    let client = cluster.client(leader)?;
    let voter = cluster
        .wait_until(CONVERGE, "the new node to be a voter", || async {
            let view = client.cluster_info().await?;
            let role = view.member(new).map(|m| m.role.clone());
            ensure!(
                matches!(role.as_deref(), Some("follower" | "leader")),
                "role {role:?}"
            );
            Ok(())
        })
        .await;
    ctx.acted.checks.push(Check::new(
        "new node became a voter",
        "yes",
        format!("{voter:?}"),
        voter.is_ok(),
    ));
    let old = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != new)
        .ok_or_else(|| anyhow::anyhow!("no follower to remove"))?;
    let removed = cluster
        .wait_until(CONVERGE, "the removal to be accepted", || async {
            let leader = cluster.wait_for_leader(CONVERGE).await?;
            let r = cluster.client(leader)?.remove_node(old).await?;
            ensure!(r.status == 200, "HTTP {}: {}", r.status, r.body);
            Ok(())
        })
        .await;
    ctx.event(format!(
        "node {old} removed: {}",
        if removed.is_ok() { "ok" } else { "failed" }
    ));
    ctx.acted.checks.push(Check::new(
        format!("node {old} removed"),
        "200",
        format!("{removed:?}"),
        removed.is_ok(),
    ));
    cluster.kill(old).await?;
    ctx.acted.retired.push(old);
    ctx.event(format!("node {old} stopped"));
    tokio::time::sleep(duration.saturating_sub(started.elapsed())).await;
    Ok(())
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

async fn snapshot_catch_up(ctx: &mut Ctx<'_>, duration: Duration) -> Result<()> {
    let cluster = ctx.cluster;
    let follower = Targets::Follower.resolve(cluster, &mut ctx.rng).await?[0];
    let behind = {
        let m = cluster.client(follower)?.metrics().await?;
        metric(&m, "rsp_raft_applied_index").unwrap_or(0.0)
    };
    let isolate = Fault::Partition(vec![
        cluster
            .ids()
            .into_iter()
            .filter(|id| *id != follower)
            .collect(),
        vec![follower],
    ]);
    isolate.inject(cluster).await?;
    ctx.event(format!("isolate follower {follower} (applied {behind})"));
    // Hold at least the window, and until the leader purged past it.
    let started = Instant::now();
    let purged = cluster
        .wait_until(
            duration.max(Duration::from_secs(5)) + CONVERGE,
            "the leader to purge its log",
            || async {
                let leader = cluster.wait_for_leader(CONVERGE).await?;
                let m = cluster.client(leader)?.metrics().await?;
                let purged = metric(&m, "rsp_raft_purged_index").unwrap_or(0.0);
                ensure!(purged > behind, "purged {purged}, follower at {behind}");
                Ok(purged)
            },
        )
        .await;
    tokio::time::sleep(duration.saturating_sub(started.elapsed())).await;
    isolate.heal(cluster).await?;
    ctx.event(format!("heal; leader purged up to {purged:?}"));
    let purged = purged?;
    let client = cluster.client(follower)?;
    let caught_up = cluster
        .wait_until(
            CONVERGE,
            "the follower to catch up from a snapshot",
            || async {
                ensure!(client.readyz().await? == 200, "not ready");
                let m = client.metrics().await?;
                let snap = metric(&m, "rsp_raft_snapshot_index").unwrap_or(0.0);
                if snap < purged {
                    bail!("snapshot index {snap} < purged {purged}");
                }
                Ok(snap)
            },
        )
        .await;
    ctx.acted.checks.push(Check::new(
        format!("node {follower} caught up from a snapshot"),
        format!("snapshot index ≥ {purged}"),
        match &caught_up {
            Ok(s) => format!("snapshot index {s}"),
            Err(e) => format!("{e:#}"),
        },
        caught_up.is_ok(),
    ));
    Ok(())
}
