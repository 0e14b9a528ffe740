//! Short Jepsen runs against real clusters (the CI mode): a correct cluster
//! is found valid under partitions, kills and power cuts (`register`,
//! `codes` and `create-use` under kill and partition faults, `set` under
//! kills and power cuts, the other OIDC workloads under partitions) and
//! through the operator sequences (`register` while nodes are replaced,
//! moved, and upgraded from the previous release), each
//! bug the `rsp` binary can inject (`RSP_INJECT_BUGS`) is found by the matching checker,
//! and etcd, a trusted system, passes the `register` checker. A
//! bug-finding test retries a run until the first anomaly or its deadline,
//! so a lucky schedule cannot hide a bug.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rsp_chaos::{Cluster, ClusterSpec};
use rsp_jepsen::nemesis::NemesisKind;
use rsp_jepsen::{RunOptions, RunOutcome, Target, Validity};
use serde_json::json;
use tempfile::TempDir;

/// A short run on 3 nodes: faults start after 2 s and last about 3 s.
fn short(workload: &str, nemesis: &str, store: &std::path::Path, seed: u64) -> RunOptions {
    RunOptions {
        nodes: 3,
        time_limit: Duration::from_secs(10),
        workload: workload.to_string(),
        nemesis: NemesisKind::parse_list(nemesis).expect("nemesis parses"),
        nemesis_names: vec![nemesis.to_string()],
        concurrency: 6,
        rate: 150.0,
        store: store.to_path_buf(),
        seed,
        start_after: Duration::from_secs(2),
        fault_for: Duration::from_secs(3),
        quiet_for: Duration::from_secs(2),
        check_time: Duration::from_secs(60),
        ..RunOptions::default()
    }
}

/// Keeps the store (histories, node logs) when the test fails.
fn kept_on_failure<T>(store: TempDir, result: Result<T>) -> Result<T> {
    if result.is_err() {
        let path = store.keep();
        eprintln!("runs kept in {}", path.display());
    }
    result
}

fn describe(o: &RunOutcome) -> String {
    let r = &o.results;
    format!(
        "{:?}: {} ({} operations, {} faults, harness errors {:?}, nemesis errors {:?}); run kept in {}\n{}",
        r.valid,
        r.checker.summary,
        r.stats.operations,
        r.stats.faults,
        r.harness_errors,
        r.nemesis_log.errors,
        o.dir.display(),
        serde_json::to_string_pretty(&r.checker.details).unwrap_or_default()
    )
}

/// Runs once and demands a valid history with some successful operations.
/// The run checked enough operations to mean something.
fn enough_operations(o: &RunOutcome) -> Result<()> {
    let ops = o.results.checker.details["operations_checked"]
        .as_u64()
        .unwrap_or(0);
    ensure!(ops > 200, "too few operations checked: {}", describe(o));
    Ok(())
}

async fn expect_valid(opts: RunOptions) -> Result<RunOutcome> {
    let outcome = rsp_jepsen::run(opts).await?;
    ensure!(
        outcome.results.valid == Validity::Valid && outcome.exit_code() == 0,
        "expected a valid history: {}",
        describe(&outcome)
    );
    ensure!(
        outcome.results.stats.faults >= 1,
        "no fault was injected: {}",
        describe(&outcome)
    );
    Ok(outcome)
}

/// Runs until a run finds anomalies (exit code 1) or `deadline` passes.
async fn expect_anomalies(
    make: impl Fn(u64) -> RunOptions,
    deadline: Duration,
) -> Result<RunOutcome> {
    let until = Instant::now() + deadline;
    let mut seen = Vec::new();
    for seed in 1.. {
        let outcome = rsp_jepsen::run(make(seed)).await?;
        if outcome.results.valid == Validity::Invalid {
            ensure!(outcome.exit_code() == 1, "invalid run must exit 1");
            return Ok(outcome);
        }
        seen.push(describe(&outcome));
        if Instant::now() >= until {
            break;
        }
    }
    bail!(
        "no anomaly found before the deadline; runs:\n{}",
        seen.join("\n---\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_under_kills_and_partitions_is_linearizable_on_a_correct_cluster() -> Result<()> {
    let store = tempfile::tempdir()?;
    let o = expect_valid(short("register", "kill,partition", store.path(), 11)).await;
    let o = kept_on_failure(store, o)?;
    enough_operations(&o)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_under_kills_and_power_cuts_loses_no_acknowledged_add() -> Result<()> {
    let store = tempfile::tempdir()?;
    let mut opts = short("set", "kill,power-cut:all", store.path(), 12);
    opts.time_limit = Duration::from_secs(12);
    let o = expect_valid(opts).await;
    let o = kept_on_failure(store, o)?;
    let acked = o.results.checker.details["acknowledged"]
        .as_u64()
        .unwrap_or(0);
    ensure!(acked > 200, "too few acknowledged adds: {}", describe(&o));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_reads_bug_is_caught_by_the_linearizability_checker() -> Result<()> {
    let store = tempfile::tempdir()?;
    let o = expect_anomalies(
        |seed| {
            let mut o = short("register", "partition:leader", store.path(), seed);
            o.inject_bugs = Some("stale-reads".to_string());
            o.time_limit = Duration::from_secs(8);
            o
        },
        Duration::from_secs(40),
    )
    .await;
    let o = kept_on_failure(store, o)?;
    let anomalies = o.results.checker.details["anomalies"]
        .as_array()
        .map_or(0, Vec::len);
    ensure!(anomalies >= 1, "{}", describe(&o));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_log_sync_bug_loses_acknowledged_adds_at_a_power_cut() -> Result<()> {
    let store = tempfile::tempdir()?;
    let o = expect_anomalies(
        |seed| {
            let mut o = short("set", "power-cut:all", store.path(), seed);
            o.inject_bugs = Some("skip-log-sync".to_string());
            o.time_limit = Duration::from_secs(8);
            o.fault_for = Duration::from_secs(1);
            o
        },
        Duration::from_secs(40),
    )
    .await;
    let o = kept_on_failure(store, o)?;
    let lost = o.results.checker.details["lost_count"]
        .as_u64()
        .unwrap_or(0);
    ensure!(lost >= 1, "{}", describe(&o));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_before_commit_bug_loses_acknowledged_adds_on_an_isolated_leader() -> Result<()> {
    let store = tempfile::tempdir()?;
    let o = expect_anomalies(
        |seed| {
            let mut o = short("set", "partition:leader", store.path(), seed);
            o.inject_bugs = Some("ack-before-commit".to_string());
            o.time_limit = Duration::from_secs(8);
            o
        },
        Duration::from_secs(40),
    )
    .await;
    let o = kept_on_failure(store, o)?;
    let lost = o.results.checker.details["lost_count"]
        .as_u64()
        .unwrap_or(0);
    ensure!(lost >= 1, "{}", describe(&o));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_under_kills_and_partitions_are_redeemed_at_most_once() -> Result<()> {
    let store = tempfile::tempdir()?;
    let mut opts = short("codes", "kill,partition", store.path(), 13);
    opts.rate = 40.0;
    let o = expect_valid(opts).await;
    let o = kept_on_failure(store, o)?;
    let d = &o.results.checker.details;
    let ok = d["ok"].as_u64().unwrap_or(0);
    ensure!(ok > 30, "too few codes redeemed: {}", describe(&o));
    // Each code was presented on several nodes: the others were refused.
    let refused = d["refusals"]["invalid_grant"].as_u64().unwrap_or(0);
    ensure!(refused >= ok, "too few replays refused: {}", describe(&o));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_redeem_codes_bug_is_caught_by_the_codes_checker() -> Result<()> {
    let store = tempfile::tempdir()?;
    let o = expect_anomalies(
        |seed| {
            let mut o = short("codes", "none", store.path(), seed);
            o.nemesis = Vec::new();
            o.inject_bugs = Some("double-redeem-codes".to_string());
            o.time_limit = Duration::from_secs(4);
            o.rate = 20.0;
            o
        },
        Duration::from_secs(30),
    )
    .await;
    let o = kept_on_failure(store, o)?;
    let double = o.results.checker.details["double_redeemed_count"]
        .as_u64()
        .unwrap_or(0);
    ensure!(double >= 1, "{}", describe(&o));
    Ok(())
}

/// `refresh`, `sessions` and `lockout`, briefly each, under partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_sessions_and_lockout_hold_their_invariants_under_partitions() -> Result<()> {
    let store = tempfile::tempdir()?;
    let mut outcomes = Vec::new();
    for (i, workload) in ["refresh", "sessions", "lockout"].into_iter().enumerate() {
        let mut opts = short(workload, "partition", store.path(), 20 + i as u64);
        // A lockout step needs its attempts answered to count a user at
        // the bound. During a partition the isolated node's attempts time
        // out (`outcome_unknown`, 503), and while the majority elects so do
        // most of the others: measured under a loaded suite, 148 of 216
        // attempts had no answer and no user reached the bound. So the
        // lockout run is longer and heals for longer between faults, so
        // that whole steps fall in healthy windows.
        if workload == "lockout" {
            opts.time_limit = Duration::from_secs(14);
            opts.quiet_for = Duration::from_secs(4);
        } else {
            opts.time_limit = Duration::from_secs(7);
        }
        opts.rate = 20.0;
        match expect_valid(opts).await {
            Ok(o) => outcomes.push(o),
            Err(e) => return kept_on_failure(store, Err(e)),
        }
    }
    let figure = |o: &RunOutcome, path: &[&str]| {
        path.iter()
            .fold(&o.results.checker.details, |v, p| &v[*p])
            .as_u64()
            .unwrap_or(0)
    };
    let (refresh, sessions, lockout) = (&outcomes[0], &outcomes[1], &outcomes[2]);
    let checks = [
        (figure(refresh, &["reuse_detected"]) >= 5, describe(refresh)),
        (
            figure(sessions, &["rejected_after_ack"]) >= 5,
            describe(sessions),
        ),
        (figure(sessions, &["listed"]) >= 5, describe(sessions)),
        (figure(lockout, &["users_at_bound"]) >= 1, describe(lockout)),
    ];
    let exercised = checks.into_iter().try_for_each(|(ok, what)| -> Result<()> {
        ensure!(ok, "too little was exercised: {what}");
        Ok(())
    });
    kept_on_failure(store, exercised)
}

/// `create-use`: tenants, users and clients made through one node and
/// used at once through others, under kills and partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_node_acknowledged_making_the_others_find_at_once() -> Result<()> {
    let store = tempfile::tempdir()?;
    let mut opts = short("create-use", "kill,partition", store.path(), 51);
    // A step is six operations, two of them password hashes, and waits
    // for each answer: more workers, few steps each.
    opts.concurrency = 9;
    opts.rate = 20.0;
    opts.time_limit = Duration::from_secs(12);
    let o = expect_valid(opts).await;
    let o = kept_on_failure(store, o)?;
    let ok = |f: &str| {
        o.results.checker.details["operations"][f]["ok"]
            .as_u64()
            .unwrap_or(0)
    };
    let least = [
        ("authorize", 10),
        ("probe-client", 10),
        ("login", 5),
        ("redeem", 5),
    ];
    for (f, least) in least {
        ensure!(ok(f) >= least, "too few `{f}` succeeded: {}", describe(&o));
    }
    Ok(())
}

/// With linearizable reads answered locally, something made through one
/// node (a tenant, user, client or code) is "not found" on another: the
/// create-use checker says so. Which kind shows depends on timing: an
/// admin creation answers only once its audit record has committed too,
/// by when the other nodes have often applied it, so the stale answer is
/// as often a sign-in's code as a tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_reads_bug_is_caught_by_the_create_use_checker() -> Result<()> {
    let store = tempfile::tempdir()?;
    let o = expect_anomalies(
        |seed| {
            let mut o = short("create-use", "none", store.path(), seed);
            o.nemesis = Vec::new();
            o.inject_bugs = Some("stale-reads".to_string());
            o.time_limit = Duration::from_secs(4);
            o.concurrency = 9;
            o.rate = 20.0;
            o
        },
        Duration::from_secs(30),
    )
    .await;
    let o = kept_on_failure(store, o)?;
    let stale = &o.results.checker.details["not_found_after_ack"];
    let not_found = stale.as_array().is_some_and(|a| {
        a.iter().any(|x| {
            x["answer"]
                .as_str()
                .is_some_and(|answer| answer.ends_with("_not_found"))
        })
    });
    ensure!(not_found, "no stale `*_not_found`: {}", describe(&o));
    Ok(())
}

/// The (old, new) ids of every `kind` sequence of the run; each old id is
/// gone from the membership at the end and each new one (unless a later
/// sequence took it out again) is a voter in it.
fn membership_changes(o: &RunOutcome, kind: &str) -> Result<Vec<(u64, u64)>> {
    let r = &o.results;
    let changes: Vec<(u64, u64)> = r
        .nemesis_log
        .faults
        .iter()
        .filter(|f| f.kind == kind)
        .filter_map(|f| Some((f.details["old"].as_u64()?, f.details["new"].as_u64()?)))
        .collect();
    ensure!(!changes.is_empty(), "no {kind} was done: {}", describe(o));
    let role = |id: u64| {
        r.members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.role.as_str())
    };
    let left: Vec<u64> = changes.iter().map(|(old, _)| *old).collect();
    for (old, new) in &changes {
        ensure!(
            role(*old).is_none(),
            "node {old} is still a member at the end: {:?}",
            r.members
        );
        ensure!(
            left.contains(new) || matches!(role(*new), Some("follower" | "leader")),
            "node {new} is not a voter at the end: {:?}",
            r.members
        );
    }
    ensure!(
        r.members.len() == r.nodes,
        "{} members at the end: {:?}",
        r.members.len(),
        r.members
    );
    Ok(changes)
}

/// docs/operations.md, "replace a dead node": a node is killed for good
/// and wiped, removed with `rsp admin cluster remove-node`, and a new node
/// (new id, empty data dir, same zone) joins, while `register` runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_stays_linearizable_while_dead_nodes_are_replaced() -> Result<()> {
    let store = tempfile::tempdir()?;
    let mut opts = short("register", "replace", store.path(), 61);
    opts.time_limit = Duration::from_secs(14);
    let checked = async {
        let o = expect_valid(opts).await?;
        let changes = membership_changes(&o, "replace")?;
        // Each replacement joined the zone of the node it replaced.
        let mut zones: Vec<_> = o.results.members.iter().map(|m| m.zone.clone()).collect();
        zones.sort();
        let want: Vec<_> = ["a", "b", "c"].map(|z| Some(z.to_string())).into();
        ensure!(zones == want, "zones at the end: {:?}", o.results.members);
        Ok((o, changes))
    };
    let (o, _) = kept_on_failure(store, checked.await)?;
    enough_operations(&o)?;
    Ok(())
}

/// docs/operations.md, "move a node to a new address": a node at a new
/// peer address joins under a new id, becomes a voter, then the old id is
/// removed and its process stopped, while `register` runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_stays_linearizable_while_nodes_move_to_new_addresses() -> Result<()> {
    let store = tempfile::tempdir()?;
    let mut opts = short("register", "move", store.path(), 62);
    opts.time_limit = Duration::from_secs(14);
    let checked = async {
        let o = expect_valid(opts).await?;
        membership_changes(&o, "move")?;
        for f in o
            .results
            .nemesis_log
            .faults
            .iter()
            .filter(|f| f.kind == "move")
        {
            let (from, to) = (&f.details["old_peer_addr"], &f.details["new_peer_addr"]);
            ensure!(
                from.is_string() && from != to,
                "not a new address: {from} -> {to}"
            );
        }
        Ok(o)
    };
    let o = kept_on_failure(store, checked.await)?;
    enough_operations(&o)?;
    Ok(())
}

/// How long a rolling upgrade may keep a client request waiting, or keep
/// requests failing: the leadership hand-off window of docs/operations.md
/// ("rolling restart / upgrade"), with the default Raft timers.
const HAND_OFF_WINDOW: Duration = Duration::from_secs(3);

/// docs/operations.md, "rolling restart / upgrade": a 3-node cluster of the
/// previous release (`deploy/previous-release`, built by
/// `scripts/build-previous-release`) upgraded to this build one node at a
/// time under the `register` workload: no acknowledged write lost
/// (linearizable), requests failed only in the upgrade steps, none waited
/// or kept failing longer than the hand-off window, and both mixed states
/// were passed through (an old leader replicating to upgraded followers,
/// and the reverse).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_from_the_previous_release_loses_nothing_beyond_the_hand_off()
-> Result<()> {
    let previous = rsp_chaos::binary::previous_release_binary()?;
    let current = rsp_chaos::binary::rsp_binary()?;
    let store = tempfile::tempdir()?;
    let mut opts = short("register", "upgrade", store.path(), 71);
    opts.binary = Some(previous);
    opts.upgrade_to = Some(current);
    // The documented window is that of the default timers.
    opts.fast_raft = false;
    // Four steps (three upgrades and the restart that lets an upgraded
    // node lead an old one) of about a second each, a second apart.
    opts.quiet_for = Duration::from_secs(1);
    opts.time_limit = Duration::from_secs(20);
    let checked = async {
        let o = expect_valid(opts).await?;
        let r = &o.results;
        let steps: Vec<&serde_json::Value> = r
            .nemesis_log
            .faults
            .iter()
            .filter(|f| f.kind == "upgrade" || f.kind == "restart")
            .map(|f| &f.details)
            .collect();
        let upgraded: std::collections::BTreeSet<u64> = r
            .nemesis_log
            .faults
            .iter()
            .filter(|f| f.kind == "upgrade")
            .filter_map(|f| f.details["node"].as_u64())
            .collect();
        ensure!(
            upgraded.len() == 3,
            "upgraded {upgraded:?}: {}",
            describe(&o)
        );
        let last = steps.last().context("no upgrade step")?;
        let all_new = last["binaries"]
            .as_object()
            .is_some_and(|b| b.len() == 3 && b.values().all(|v| v == "upgraded"));
        ensure!(all_new, "not every node upgraded at the end: {last}");
        for mixed in [
            rsp_jepsen::nemesis::ORIGINAL_LEADS,
            rsp_jepsen::nemesis::UPGRADED_LEADS,
        ] {
            ensure!(
                steps.iter().any(|d| d["mixed"] == mixed),
                "the upgrade never passed through {mixed}: {steps:?}"
            );
        }
        let a = &r.stats.availability;
        let window_ms = HAND_OFF_WINDOW.as_millis() as f64;
        let longest_wait = r
            .stats
            .latency_ms
            .values()
            .filter_map(|l| l["max"].as_f64())
            .fold(0.0, f64::max);
        ensure!(
            longest_wait <= window_ms,
            "a request waited {longest_wait} ms, more than the {HAND_OFF_WINDOW:?} hand-off window: {}",
            describe(&o)
        );
        ensure!(
            a.longest_outage_ms <= window_ms,
            "requests failed for {} ms in a row (at {} s), more than the {HAND_OFF_WINDOW:?} hand-off window: {}",
            a.longest_outage_ms,
            a.longest_outage_at_s,
            describe(&o)
        );
        ensure!(
            a.failed_outside_faults == 0,
            "{} requests failed outside the upgrade steps: {}",
            a.failed_outside_faults,
            describe(&o)
        );
        eprintln!(
            "rolling upgrade: {} requests failed, longest stretch of failures {:.0} ms at {:.1} s, longest wait {longest_wait:.0} ms",
            a.failed, a.longest_outage_ms, a.longest_outage_at_s
        );
        Ok(o)
    };
    kept_on_failure(store, checked.await)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_against_etcd_under_kills_is_linearizable() -> Result<()> {
    if let Err(e) = rsp_jepsen::etcd::binary() {
        bail!("{e:#} (scripts/test installs etcd-server)");
    }
    let store = tempfile::tempdir()?;
    let mut opts = short("register", "kill", store.path(), 31);
    opts.target = Target::Etcd;
    let o = expect_valid(opts).await;
    let o = kept_on_failure(store, o)?;
    enough_operations(&o)?;
    Ok(())
}

/// `--nodes-file`: a cluster started elsewhere (here by `rsp-chaos`), its
/// "stop" and "start" commands pausing and resuming the node's process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_cluster_is_driven_through_its_nodes_file() -> Result<()> {
    let store = tempfile::tempdir()?;
    let spec = ClusterSpec::new(3)
        .fast_raft()
        .base_dir(store.path().join("cluster"));
    let cluster = Cluster::start(spec).await?;
    cluster.wait_for_leader(Duration::from_secs(60)).await?;
    let mut nodes = Vec::new();
    for id in cluster.ids() {
        let pid = cluster.node(id)?.process.pid().context("node runs")?;
        nodes.push(json!({
            "id": id,
            "http": cluster.http(id)?,
            "stop": format!("kill -STOP {pid}"),
            "start": format!("kill -CONT {pid}"),
        }));
    }
    let file = store.path().join("nodes.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({"admin_token": cluster.admin_token(), "nodes": nodes}))?,
    )?;
    let mut opts = short("register", "kill", store.path(), 41);
    opts.nodes_file = Some(file);
    let o = expect_valid(opts).await;
    let o = kept_on_failure(store, o)?;
    enough_operations(&o)?;
    Ok(())
}

#[test]
fn unknown_workloads_and_targets_exit_2() {
    for args in [
        &["--workload", "nope"][..],
        &["--target", "nope"][..],
        &["--target", "etcd", "--workload", "codes"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rsp-jepsen"))
            .arg("run")
            .args(args)
            .args(["--time-limit", "1", "--store"])
            .arg(std::env::temp_dir())
            .output()
            .expect("rsp-jepsen runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
