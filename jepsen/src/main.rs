//! `rsp-jepsen`: run a Jepsen-style test against a local `rsp` cluster, or
//! re-check a stored history.
//!
//! ```text
//! rsp-jepsen run --nodes 5 --time-limit 60 --workload register --nemesis kill,partition
//! rsp-jepsen run --nodes 3 --time-limit 600 --workload codes --nemesis kill,partition
//! rsp-jepsen run --target etcd --nodes 3 --workload register --nemesis kill
//! rsp-jepsen check store/<run>
//! rsp-jepsen workloads
//! ```
//!
//! Exit code: 0 valid, 1 anomalies found, 2 unknown or harness error.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rsp_jepsen::checker::register::RegisterLimits;
use rsp_jepsen::nemesis::NemesisKind;
use rsp_jepsen::workload::{WORKLOADS, WorkloadOptions};
use rsp_jepsen::{Refused, RunOptions, Target, history, workload};

#[derive(Parser)]
#[command(
    name = "rsp-jepsen",
    about = "Jepsen-style consistency tests of an rsp cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a cluster, run clients and faults, check, report.
    Run(Box<RunArgs>),
    /// Check a stored run again (its history.jsonl and results.json).
    Check {
        /// The run's directory (`store/<run>`).
        dir: PathBuf,
        /// Seconds the checker may take.
        #[arg(long, default_value_t = 120)]
        check_time: u64,
    },
    /// List the workloads.
    Workloads,
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Seconds of client operations.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    #[arg(long, default_value = "register")]
    workload: String,
    /// Comma list: kill, power-cut, pause, partition, latency, loss, clock,
    /// replace, move, upgrade, each optionally `:target` (e.g. `kill:all`,
    /// `partition:leader`, `replace:leader`); `none`.
    #[arg(long, default_value = "none")]
    nemesis: String,
    /// Concurrent clients (default: 2 per node).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Operations per second in all (0: unlimited).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Seed of every random choice (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds before the first fault.
    #[arg(long, default_value_t = 3.0)]
    start_after: f64,
    /// Seconds a fault lasts (± 25%).
    #[arg(long, default_value_t = 6.0)]
    fault_for: f64,
    /// Seconds between faults (± 25%).
    #[arg(long, default_value_t = 4.0)]
    quiet_for: f64,
    /// `RSP_INJECT_BUGS` for the nodes (e.g. `stale-reads`).
    #[arg(long)]
    inject_bugs: Option<String>,
    /// Register: keys in use at once.
    #[arg(long, default_value_t = 5)]
    keys: usize,
    /// Register: operations per key before a fresh key replaces it.
    #[arg(long, default_value_t = 150)]
    ops_per_key: usize,
    /// Seconds one client request may take.
    #[arg(long, default_value_t = 6.0)]
    op_timeout: f64,
    /// Seconds the checker may take.
    #[arg(long, default_value_t = 120)]
    check_time: u64,
    /// Production Raft timers instead of the short test ones.
    #[arg(long)]
    default_raft_timers: bool,
    /// Extra `rsp serve` argument (repeatable).
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    node_args: Vec<String>,
    /// The system under test: `rsp`, or `etcd` (a local etcd cluster, the
    /// sanity check of the checker: `register` workload, `kill` nemesis).
    #[arg(long, default_value = "rsp")]
    target: String,
    /// Drive an existing cluster instead of starting one: a JSON file of
    /// node ids, HTTP addresses and stop/start commands (see
    /// docs/reliability.md); nemesis `kill` or none.
    #[arg(long)]
    nodes_file: Option<PathBuf>,
    /// The `rsp` binary the cluster starts with (default: the build's own,
    /// or RSP_BIN).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// The `rsp` binary the `upgrade` nemesis moves nodes to, one at a time.
    #[arg(long)]
    upgrade_to: Option<PathBuf>,
    /// Codes / refresh: nodes presenting the same code or token at once.
    #[arg(long, default_value_t = 3)]
    redeemers: usize,
    /// Lockout: failed attempts the nodes admit per user and window (their
    /// configured `max_failures`; 5 by default).
    #[arg(long, default_value_t = 5)]
    lockout_bound: u32,
    /// Lockout: wrong passwords posted at once per user.
    #[arg(long, default_value_t = 12)]
    lockout_attempts: usize,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Workloads => {
            for w in WORKLOADS {
                match w.needs {
                    None => println!("{:<10} {}", w.name, w.description),
                    Some(needs) => println!(
                        "{:<10} {} (needs {needs}: not in this build yet)",
                        w.name, w.description
                    ),
                }
            }
            0
        }
        Command::Check { dir, check_time } => check(&dir, check_time),
        Command::Run(args) => run(*args),
    };
    std::process::exit(code);
}

fn check(dir: &std::path::Path, check_time: u64) -> i32 {
    let result = (|| -> anyhow::Result<i32> {
        let events = history::load(&dir.join("history.jsonl"))?;
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json"))?)?;
        let name = results
            .get("workload")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("register");
        let limits = RegisterLimits {
            time: Duration::from_secs(check_time),
            ..RegisterLimits::default()
        };
        let r = workload::check_history(name, &events, limits);
        println!("{:?}: {}", r.valid, r.summary);
        println!("{}", serde_json::to_string_pretty(&r.details)?);
        Ok(r.valid.exit_code())
    })();
    result.unwrap_or_else(|e| {
        eprintln!("rsp-jepsen: {e:#}");
        2
    })
}

fn run(args: RunArgs) -> i32 {
    let nemesis = match NemesisKind::parse_list(&args.nemesis) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("rsp-jepsen: {e:#}");
            return 2;
        }
    };
    let target = match args.target.as_str() {
        "rsp" => Target::Rsp,
        "etcd" => Target::Etcd,
        other => {
            eprintln!("rsp-jepsen: unknown target `{other}` (rsp, etcd)");
            return 2;
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let opts = RunOptions {
        nodes: args.nodes,
        time_limit: Duration::from_secs(args.time_limit),
        workload: args.workload,
        nemesis,
        nemesis_names: args
            .nemesis
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        concurrency: args.concurrency.unwrap_or(2 * args.nodes).max(1),
        rate: args.rate,
        store: args.store,
        seed,
        start_after: secs(args.start_after),
        fault_for: secs(args.fault_for),
        quiet_for: secs(args.quiet_for),
        inject_bugs: args.inject_bugs,
        node_args: args.node_args,
        op_timeout: secs(args.op_timeout),
        check_time: Duration::from_secs(args.check_time),
        fast_raft: !args.default_raft_timers,
        workload_opts: WorkloadOptions {
            keys: args.keys,
            ops_per_key: args.ops_per_key,
            redeemers: args.redeemers,
            lockout_bound: args.lockout_bound,
            lockout_attempts: args.lockout_attempts,
            ..WorkloadOptions::default()
        },
        target,
        nodes_file: args.nodes_file,
        binary: args.binary,
        upgrade_to: args.upgrade_to,
    };
    eprintln!(
        "rsp-jepsen: workload {} on {} nodes for {}s, nemesis {:?}, seed {seed}",
        opts.workload,
        opts.nodes,
        opts.time_limit.as_secs(),
        opts.nemesis_names
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rsp-jepsen: {e}");
            return 2;
        }
    };
    match runtime.block_on(rsp_jepsen::run(opts)) {
        Ok(outcome) => {
            let r = &outcome.results;
            println!("{:?}: {}", r.valid, r.checker.summary);
            let a = &r.stats.availability;
            println!(
                "{} operations ({} failed, the longest stretch of failures {:.0} ms), {} faults; results: {}",
                r.stats.operations,
                a.failed,
                a.longest_outage_ms,
                r.stats.faults,
                outcome.dir.join("report.html").display()
            );
            for e in r.harness_errors.iter().chain(&r.nemesis_log.errors) {
                println!("harness: {e}");
            }
            outcome.exit_code()
        }
        Err(e) => {
            match e.downcast_ref::<Refused>() {
                Some(refused) => eprintln!("rsp-jepsen: {refused}"),
                None => eprintln!("rsp-jepsen: harness error: {e:#}"),
            }
            2
        }
    }
}
