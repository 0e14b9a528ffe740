//! The nemesis: faults on a seeded schedule, each healed before the next
//! and all healed at the end.
//!
//! Names (`--nemesis kill,partition:leader`), each with an optional target:
//! - `kill[:one|leader|follower|minority|majority|all]`: `kill -9`, restart
//!   after the fault window;
//! - `power-cut[:...]` (same targets): `kill -9` and every write the node
//!   had not fsynced is lost (an `LD_PRELOAD` undo-log shim, built with the
//!   system C compiler; refused without one), restart after the window;
//! - `pause[:...]` (same targets): SIGSTOP, then SIGCONT;
//! - `partition[:halves|leader|leader-minority|one|bridge|zone-<z>]`;
//! - `latency`: 100 ms ± 50 ms on every peer link;
//! - `loss`: 10% emulated loss on every peer link;
//! - `clock`: wall-clock skew of up to ±30 s on a minority, through
//!   libfaketime; refused when it is not installed;
//! - `replace[:one|leader|follower]`, `move[:...]` and `upgrade`: the
//!   operator sequences of docs/operations.md, done while the clients run
//!   (module `operations`): a node lost for good and replaced by a new one,
//!   a node moved to a new address, one node of a rolling upgrade. They
//!   change the cluster for good, so nothing is healed after them.
//!
//! Without a target each fault picks one at random. Every choice comes from
//! the run's seed (which nodes are leaders is up to the cluster).

mod operations;

pub use operations::{ORIGINAL_LEADS, UPGRADED_LEADS};

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rsp_chaos::Cluster;
use rsp_chaos::experiments::faults::{self, Fault, PartitionShape, Targets};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use crate::history::{EventType, Process, Record, Recorder};
use crate::roster::Roster;

/// One kind of fault the nemesis may choose.
#[derive(Debug, Clone, PartialEq)]
pub enum NemesisKind {
    Kill(Option<Targets>),
    PowerCut(Option<Targets>),
    Pause(Option<Targets>),
    Partition(Option<PartitionShape>),
    Latency,
    Loss,
    Clock,
    /// A node lost for good, replaced by a new one (`one` when `None`).
    Replace(Option<Targets>),
    /// A node moved to a new address under a new id.
    Move(Option<Targets>),
    /// The next step of a rolling upgrade to [`NemesisOptions::upgrade_to`].
    Upgrade,
}

impl NemesisKind {
    pub fn parse(spec: &str) -> Result<Self> {
        let (name, target) = match spec.split_once(':') {
            Some((n, t)) => (n, Some(t)),
            None => (spec, None),
        };
        Ok(match name {
            "kill" => NemesisKind::Kill(target.map(Targets::parse).transpose()?),
            "power-cut" => NemesisKind::PowerCut(target.map(Targets::parse).transpose()?),
            "pause" => NemesisKind::Pause(target.map(Targets::parse).transpose()?),
            "partition" => NemesisKind::Partition(target.map(PartitionShape::parse).transpose()?),
            "replace" | "move" => {
                let target = match target {
                    None => None,
                    Some(t @ ("one" | "leader" | "follower")) => Some(Targets::parse(t)?),
                    Some(other) => bail!(
                        "nemesis `{name}` takes one node: `one`, `leader` or `follower`, not `{other}`"
                    ),
                };
                match name {
                    "replace" => NemesisKind::Replace(target),
                    _ => NemesisKind::Move(target),
                }
            }
            "latency" | "loss" | "clock" | "upgrade" if target.is_some() => {
                bail!("nemesis `{name}` takes no target")
            }
            "latency" => NemesisKind::Latency,
            "loss" => NemesisKind::Loss,
            "clock" | "clock-skew" => NemesisKind::Clock,
            "upgrade" => NemesisKind::Upgrade,
            other => bail!(
                "unknown nemesis `{other}` (kill, power-cut, pause, partition, latency, loss, clock, replace, move, upgrade; `none` for no faults)"
            ),
        })
    }

    /// `kill,partition:leader` (`none` or empty: no faults).
    pub fn parse_list(s: &str) -> Result<Vec<Self>> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "none")
            .map(Self::parse)
            .collect()
    }

    /// Whether this kind changes the membership (`replace`, `move`).
    pub fn changes_membership(&self) -> bool {
        matches!(self, NemesisKind::Replace(_) | NemesisKind::Move(_))
    }

    async fn resolve(&self, cluster: &Cluster, rng: &mut StdRng) -> Result<Fault> {
        Ok(match self {
            NemesisKind::Replace(_) | NemesisKind::Move(_) | NemesisKind::Upgrade => {
                bail!("{self:?} is an operator sequence, not a fault")
            }
            NemesisKind::Kill(t) | NemesisKind::PowerCut(t) | NemesisKind::Pause(t) => {
                let targets = match t {
                    Some(t) => t.clone(),
                    None => Targets::random_kinds()
                        .choose(rng)
                        .cloned()
                        .unwrap_or(Targets::One),
                };
                let nodes = targets.resolve(cluster, rng).await?;
                match self {
                    NemesisKind::Kill(_) => Fault::Kill(nodes),
                    NemesisKind::PowerCut(_) => Fault::PowerCut(nodes),
                    _ => Fault::Pause(nodes),
                }
            }
            NemesisKind::Partition(shape) => {
                let shape = match shape {
                    Some(s) => s.clone(),
                    None => PartitionShape::random_kinds()
                        .choose(rng)
                        .cloned()
                        .unwrap_or(PartitionShape::Halves),
                };
                shape.resolve(cluster, rng).await?
            }
            NemesisKind::Latency => Fault::Links {
                latency: Duration::from_millis(100),
                jitter: Duration::from_millis(50),
                loss: 0.0,
            },
            NemesisKind::Loss => Fault::Links {
                latency: Duration::ZERO,
                jitter: Duration::ZERO,
                loss: 0.10,
            },
            NemesisKind::Clock => {
                let nodes = Targets::Minority.resolve(cluster, rng).await?;
                let secs: i64 = rng.random_range(1..=30);
                let sign = if rng.random_bool(0.5) { 1 } else { -1 };
                Fault::ClockSkew {
                    nodes,
                    offset_ms: sign * secs * 1000,
                }
            }
        })
    }
}

/// When faults happen.
#[derive(Debug, Clone)]
pub struct NemesisOptions {
    pub kinds: Vec<NemesisKind>,
    /// Quiet time before the first fault.
    pub start_after: Duration,
    /// How long a fault lasts (± 25%).
    pub fault_for: Duration,
    /// Quiet time between faults (± 25%).
    pub quiet_for: Duration,
    pub seed: u64,
    /// The binary `upgrade` moves nodes to.
    pub upgrade_to: Option<PathBuf>,
}

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FaultWindow {
    pub kind: String,
    pub description: String,
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    /// What an operator sequence did (ids, addresses, versions).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// What the nemesis did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NemesisLog {
    pub faults: Vec<FaultWindow>,
    pub errors: Vec<String>,
}

fn around(d: Duration, rng: &mut StdRng) -> Duration {
    d.mul_f64(rng.random_range(0.75..=1.25))
}

/// Sleeps `d` unless `stop` turns true first; true when stopped.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

/// Runs the schedule until `stop`; the fault active then is healed (an
/// operator sequence under way is finished). Clients follow `roster`.
pub async fn run(
    cluster: &Cluster,
    recorder: &Recorder,
    roster: &Roster,
    opts: &NemesisOptions,
    mut stop: watch::Receiver<bool>,
) -> NemesisLog {
    let mut log = NemesisLog::default();
    if opts.kinds.is_empty() {
        return log;
    }
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x6e656d65);
    if sleep_or_stop(opts.start_after, &mut stop).await {
        return log;
    }
    let mut order: Vec<usize> = Vec::new();
    let mut upgrades = operations::Upgrades::default();
    loop {
        if order.is_empty() {
            order = (0..opts.kinds.len()).collect();
            rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        }
        let kind = &opts.kinds[order.pop().unwrap_or(0)];
        if let Some(op) = operations::Operation::of(kind) {
            let ctx = operations::Ctx {
                cluster,
                recorder,
                roster,
                upgrade_to: opts.upgrade_to.as_deref(),
                faketime: needs_faketime(&opts.kinds),
            };
            match operations::act(&ctx, op, &mut rng, &mut upgrades).await {
                Ok(Some(window)) => log.faults.push(window),
                Ok(None) => {}
                Err(e) => log.errors.push(format!("{kind:?}: {e:#}")),
            }
            if sleep_or_stop(around(opts.quiet_for, &mut rng), &mut stop).await {
                return log;
            }
            continue;
        }
        let fault = match kind.resolve(cluster, &mut rng).await {
            Ok(f) => f,
            Err(e) => {
                log.errors.push(format!("choosing a {kind:?} fault: {e:#}"));
                if sleep_or_stop(opts.quiet_for, &mut stop).await {
                    return log;
                }
                continue;
            }
        };
        let start = recorder.record(
            Record::new(Process::nemesis(), EventType::Info, "start").value(json!({
                "fault": fault.kind(),
                "description": fault.describe(),
                "nodes": fault.nodes(),
            })),
        );
        let note = match fault.inject(cluster).await {
            Ok(note) => note,
            Err(e) => {
                log.errors
                    .push(format!("injecting {}: {e:#}", fault.describe()));
                None
            }
        };
        let stopped = sleep_or_stop(around(opts.fault_for, &mut rng), &mut stop).await;
        let healed = fault.heal(cluster).await;
        if let Err(e) = &healed {
            log.errors
                .push(format!("healing {}: {e:#}", fault.describe()));
        }
        let end = recorder.record(
            Record::new(Process::nemesis(), EventType::Info, "stop").value(json!({
                "fault": fault.kind(),
                "healed": healed.is_ok(),
                "note": note,
            })),
        );
        log.faults.push(FaultWindow {
            kind: fault.kind().to_string(),
            description: match &note {
                Some(n) => format!("{} ({n})", fault.describe()),
                None => fault.describe(),
            },
            start_ns: start.time_ns,
            end_ns: Some(end.time_ns),
            details: serde_json::Value::Null,
        });
        if stopped || sleep_or_stop(around(opts.quiet_for, &mut rng), &mut stop).await {
            return log;
        }
    }
}

/// Whether a list of kinds needs libfaketime.
pub fn needs_faketime(kinds: &[NemesisKind]) -> bool {
    kinds.contains(&NemesisKind::Clock)
}

/// Whether a list of kinds needs the power-cut shim.
pub fn needs_powercut(kinds: &[NemesisKind]) -> bool {
    kinds.iter().any(|k| matches!(k, NemesisKind::PowerCut(_)))
}

/// Whatever happened, everything back to normal (links, paused and dead
/// nodes, clocks).
pub async fn heal_all(cluster: &Cluster) -> Result<()> {
    faults::heal_everything(cluster).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_lists_parse() {
        let kinds = NemesisKind::parse_list("kill, partition:leader,latency").expect("parses");
        assert_eq!(
            kinds,
            vec![
                NemesisKind::Kill(None),
                NemesisKind::Partition(Some(PartitionShape::IsolateLeader)),
                NemesisKind::Latency
            ]
        );
        assert_eq!(
            NemesisKind::parse("kill:all").expect("parses"),
            NemesisKind::Kill(Some(Targets::All))
        );
        assert!(NemesisKind::parse_list("none").expect("parses").is_empty());
        assert!(NemesisKind::parse("flood").is_err());
        assert!(NemesisKind::parse("latency:all").is_err());
        assert!(NemesisKind::parse("kill:everyone").is_err());
        assert_eq!(
            NemesisKind::parse_list("replace,move:leader,upgrade").expect("parses"),
            vec![
                NemesisKind::Replace(None),
                NemesisKind::Move(Some(Targets::Leader)),
                NemesisKind::Upgrade
            ]
        );
        assert!(NemesisKind::parse("replace:majority").is_err());
        assert!(NemesisKind::parse("upgrade:all").is_err());
        assert!(NemesisKind::Move(None).changes_membership());
        assert!(!NemesisKind::Upgrade.changes_membership());
        assert!(needs_faketime(
            &NemesisKind::parse_list("clock").expect("parses")
        ));
        assert!(needs_powercut(
            &NemesisKind::parse_list("kill,power-cut:all").expect("parses")
        ));
    }
}
