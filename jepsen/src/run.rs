//! One Jepsen run: start a cluster (through `rsp-chaos`), run concurrent
//! clients and the nemesis for the time limit, heal, let the workload do
//! its final reads, check the history, write the results. [`run`] also
//! sends a run against etcd or an existing cluster to `etcd` or
//! `external`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use rsp_chaos::experiments::{faketime, powercut};
use rsp_chaos::{Cluster, ClusterSpec};
use tokio::sync::watch;

use crate::checker::Validity;
use crate::harness::{conclude, join_workers, spawn_workers};
use crate::history::Recorder;
use crate::nemesis::{self, NemesisKind, NemesisOptions};
use crate::options::{Refused, RunOptions, RunOutcome, Target};
use crate::report;
use crate::roster::Roster;
use crate::workload;

/// The environment variable of `rsp` that turns on injected bugs.
pub const INJECT_BUGS_ENV: &str = "RSP_INJECT_BUGS";

/// A run's id, and the name of its directory: time, workload, seed, process.
fn run_id(opts: &RunOptions) -> String {
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

/// Proxied ids beyond the first nodes in runs that replace or move nodes.
const SPARE_NODES: usize = 8;

/// Refuses operator sequences a run cannot do: `replace` and `move` with a
/// workload that addresses the nodes it was prepared with (the OIDC ones),
/// `upgrade` without a binary to upgrade to.
fn refuse_unfit_operations(opts: &RunOptions) -> Result<(), Refused> {
    let membership = opts.nemesis.iter().any(NemesisKind::changes_membership);
    if membership && !matches!(opts.workload.as_str(), "register" | "set") {
        return Err(Refused(format!(
            "nemesis replace and move run with the register and set workloads; {} keeps using the nodes it was prepared with",
            opts.workload
        )));
    }
    if opts.nemesis.contains(&NemesisKind::Upgrade) && opts.upgrade_to.is_none() {
        return Err(Refused(
            "nemesis upgrade needs the binary to upgrade to (--upgrade-to)".into(),
        ));
    }
    Ok(())
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
    refuse_unfit_operations(&opts)?;
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
    if opts.nemesis.iter().any(NemesisKind::changes_membership) {
        // Links into the first replacements go through proxies too.
        spec = spec.spare_nodes(SPARE_NODES);
    }
    spec.binary = opts.binary.clone();
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
    let roster = Arc::new(Roster::of_cluster(cluster.clone(), opts.op_timeout));

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
    let workers = spawn_workers(&opts, &workload, &roster, &recorder, &stop_rx);
    let nemesis_task = {
        let (cluster, recorder, roster) = (cluster.clone(), recorder.clone(), roster.clone());
        let nopts = NemesisOptions {
            kinds: opts.nemesis.clone(),
            start_after: opts.start_after,
            fault_for: opts.fault_for,
            quiet_for: opts.quiet_for,
            seed: opts.seed,
            upgrade_to: opts.upgrade_to.clone(),
        };
        let stop = stop_rx.clone();
        tokio::spawn(async move { nemesis::run(&cluster, &recorder, &roster, &nopts, stop).await })
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
    workload
        .finish(&recorder, &roster.members(), converge)
        .await;
    recorder.flush()?;
    let members = match cluster.leader_view().await {
        Ok(view) => view.members,
        Err(e) => {
            harness_errors.push(format!("reading the membership at the end: {e:#}"));
            Vec::new()
        }
    };

    let (mut results, events) =
        conclude(id, &opts, &workload, &recorder, nemesis_log, harness_errors).await?;
    results.members = members;
    report::write(&dir, &results, &events)?;
    if results.valid != Validity::Valid {
        cluster.keep_dir();
    } else {
        // The history and logs stay; the nodes' data dirs go.
        for id in cluster.ids().into_iter().chain(cluster.retired_ids()) {
            if let Ok(node) = cluster.node(id) {
                let _ = node.process.kill().await;
                let _ = std::fs::remove_dir_all(node.process.data_dir());
            }
        }
    }
    Ok(RunOutcome { dir, results })
}
