//! `rsp-chaos`: run named chaos experiments against a fresh local cluster.
//!
//! ```text
//! rsp-chaos list
//! rsp-chaos run kill-leader --nodes 5 --duration 10
//! rsp-chaos run all --duration 5 --json > report.json
//! ```
//!
//! Exit code: 0 every hypothesis held, 1 one did not, 2 harness error.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rsp_chaos::experiments::{self, ExperimentReport, RunOptions, catalog};

#[derive(Parser)]
#[command(
    name = "rsp-chaos",
    about = "Chaos experiments against a local rsp cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the experiments with their hypotheses.
    List,
    /// Run one experiment (or `all`) on a fresh cluster.
    Run {
        /// Experiment name, or `all`.
        name: String,
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Seconds the fault lasts.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds of steady state measured before the fault and after recovery.
        #[arg(long, default_value_t = 5)]
        steady: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also write the JSON report here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keep node dirs and logs.
        #[arg(long)]
        keep: bool,
        /// Production Raft timers instead of the short test ones.
        #[arg(long)]
        default_raft_timers: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::List => {
            for e in catalog::all() {
                println!("{:<28} {}", e.name, e.description);
                println!("{:<28} hypothesis: {}", "", e.hypothesis.describe());
            }
            0
        }
        Command::Run {
            name,
            nodes,
            duration,
            steady,
            seed,
            json,
            out,
            keep,
            default_raft_timers,
        } => {
            let selected = if name == "all" {
                catalog::all()
            } else {
                match catalog::find(&name) {
                    Some(e) => vec![e],
                    None => {
                        eprintln!("rsp-chaos: no experiment `{name}`; see `rsp-chaos list`");
                        std::process::exit(2);
                    }
                }
            };
            let opts = RunOptions {
                nodes,
                duration: Duration::from_secs(duration),
                before: Duration::from_secs(steady),
                after: Duration::from_secs(steady),
                seed,
                keep_dir: keep,
                fast_raft: !default_raft_timers,
                ..RunOptions::default()
            };
            run_all(&selected, &opts, json, out.as_deref())
        }
    };
    std::process::exit(code);
}

fn run_all(
    selected: &[catalog::Experiment],
    opts: &RunOptions,
    json: bool,
    out: Option<&std::path::Path>,
) -> i32 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rsp-chaos: {e}");
            return 2;
        }
    };
    let mut reports: Vec<ExperimentReport> = Vec::new();
    let mut code = 0;
    for exp in selected {
        match runtime.block_on(experiments::run(exp, opts)) {
            Ok(report) => {
                if !report.passed {
                    code = code.max(1);
                }
                if !json {
                    print!("{}", report.to_text());
                }
                reports.push(report);
            }
            Err(e) => {
                eprintln!("rsp-chaos: experiment {} could not run: {e:#}", exp.name);
                code = 2;
            }
        }
    }
    let body = if reports.len() == 1 {
        serde_json::to_string_pretty(&reports[0])
    } else {
        serde_json::to_string_pretty(&reports)
    };
    match body {
        Ok(body) => {
            if json {
                println!("{body}");
            }
            if let Some(path) = out
                && let Err(e) = std::fs::write(path, body)
            {
                eprintln!("rsp-chaos: writing {}: {e}", path.display());
                code = 2;
            }
        }
        Err(e) => {
            eprintln!("rsp-chaos: {e}");
            code = 2;
        }
    }
    code
}
