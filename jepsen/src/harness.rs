//! The steps every kind of run shares (an `rsp` cluster started through
//! `rsp-chaos`, a local etcd cluster, an existing cluster): the paced
//! clients ([`spawn_workers`], [`join_workers`]), the `kill` nemesis over
//! [`Members`] the harness did not start through `rsp-chaos`, and checking
//! the history into the results ([`conclude`]).
//!
//! Clients: worker `w` talks to node `ids[w % n]` (as Jepsen binds a
//! client to a node) as process `w`, and moves to another node only when
//! its node leaves the [`Roster`]; after an indeterminate operation it
//! continues as process `w + concurrency`, and so on. Operations are paced
//! to `rate` per second in all (0: as fast as the cluster answers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::checker::Validity;
use crate::checker::register::RegisterLimits;
use crate::history::{EventType, Process, Recorder};
use crate::nemesis;
use crate::options::RunOptions;
use crate::report::{self, Results};
use crate::roster::Roster;
use crate::workload::{self, OpCtx};

/// The clients: worker `w` talks to the roster's node for it as process
/// `w` (then `w + concurrency`, ... after each indeterminate operation),
/// paced to `rate` operations per second in all, until `stop` turns true.
pub(crate) fn spawn_workers(
    opts: &RunOptions,
    workload: &Arc<workload::Workload>,
    roster: &Arc<Roster>,
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
        let (workload, roster) = (workload.clone(), roster.clone());
        let (recorder, stop) = (recorder.clone(), stop_rx.clone());
        let concurrency = opts.concurrency as u64;
        let mut rng =
            StdRng::seed_from_u64(opts.seed.wrapping_mul(1_000_003).wrapping_add(w as u64));
        workers.spawn(async move {
            let mut process = w as u64;
            let mut client = None;
            // Spread the workers' first operations over one interval.
            let mut next = Instant::now() + interval.mul_f64(w as f64 / concurrency as f64);
            while !*stop.borrow() {
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
                let now = Instant::now();
                next = next.max(now.checked_sub(interval).unwrap_or(now)) + interval;
                client = roster.client_for(w, client.as_ref());
                let Some(client) = &client else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let ctx = OpCtx {
                    recorder: &recorder,
                    client,
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
        members: Vec::new(),
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
                details: serde_json::Value::Null,
            });
            if stopped {
                return log;
            }
            pause = quiet_for;
        }
    })
}
