//! The nemesis's operator sequences, done by `rsp-chaos` exactly as
//! docs/operations.md's "Membership" table says, while the clients run:
//!
//! - `replace`: a node is lost for good (`kill -9`, data dir wiped),
//!   removed with `rsp admin cluster remove-node`, and a new node with a
//!   new id, an empty data dir and the same zone joins as a voter;
//! - `move`: a new node at a new address joins as a voter, then the old id
//!   is removed and its process stopped;
//! - `upgrade`: one step of a rolling upgrade. The node is drained from
//!   the clients' rotation (as a load balancer does), SIGTERM'd, started on
//!   the same data dir with the new binary, and put back once `/readyz`
//!   answers 200. Followers go first, the leader last. When the last node
//!   on the old binary leads and no upgraded node has yet led an old one,
//!   that node is first restarted on its old binary: its SIGTERM hands
//!   leadership to an upgraded node, and it rejoins as an old follower. So
//!   every full upgrade passes through both mixed states (an old leader
//!   replicating to upgraded followers, and the reverse), each recorded in
//!   the step's details.
//!
//! Each sequence is one window in the history (`start` / `stop` of the
//! nemesis process) and in the nemesis log, with what it did in
//! `details`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rand::rngs::StdRng;
use rsp_chaos::Cluster;
use rsp_chaos::experiments::faketime;
use rsp_chaos::experiments::faults::Targets;
use serde_json::{Value, json};

use super::{FaultWindow, NemesisKind};
use crate::history::{EventType, Process, Record, Recorder};
use crate::roster::Roster;

/// How long the cluster may take to agree on a leader after a step.
const CONVERGE: Duration = Duration::from_secs(60);

/// An operator sequence the nemesis can run.
pub(super) enum Operation {
    Replace(Targets),
    Move(Targets),
    Upgrade,
}

impl Operation {
    /// The sequence `kind` names; `None` for a fault.
    pub(super) fn of(kind: &NemesisKind) -> Option<Self> {
        match kind {
            NemesisKind::Replace(t) => Some(Self::Replace(t.clone().unwrap_or(Targets::One))),
            NemesisKind::Move(t) => Some(Self::Move(t.clone().unwrap_or(Targets::One))),
            NemesisKind::Upgrade => Some(Self::Upgrade),
            _ => None,
        }
    }
}

/// What the sequences need besides the choice of node.
pub(super) struct Ctx<'a> {
    pub cluster: &'a Cluster,
    pub recorder: &'a Recorder,
    pub roster: &'a Roster,
    pub upgrade_to: Option<&'a Path>,
    /// New nodes must run under libfaketime (the `clock` nemesis is on).
    pub faketime: bool,
}

/// The mixed states the upgrade steps have seen so far.
#[derive(Debug, Default)]
pub(super) struct Upgrades {
    upgraded_led_original: bool,
}

/// One step, chosen before it is recorded.
enum Step {
    Replace(u64),
    Move(u64),
    /// Restart on `binary` (the upgrade's target, or the node's own for the
    /// restart that lets an upgraded node lead).
    Upgrade {
        node: u64,
        upgrade: bool,
    },
}

impl Step {
    fn kind(&self) -> &'static str {
        match self {
            Step::Replace(_) => "replace",
            Step::Move(_) => "move",
            Step::Upgrade { upgrade: true, .. } => "upgrade",
            Step::Upgrade { upgrade: false, .. } => "restart",
        }
    }

    fn node(&self) -> u64 {
        match self {
            Step::Replace(n) | Step::Move(n) | Step::Upgrade { node: n, .. } => *n,
        }
    }

    fn describe(&self) -> String {
        match self {
            Step::Replace(n) => format!("replace node {n} (lost for good) by a new node"),
            Step::Move(n) => format!("move node {n} to a new address under a new id"),
            Step::Upgrade {
                node,
                upgrade: true,
            } => format!("upgrade node {node}"),
            Step::Upgrade { node, .. } => {
                format!("restart node {node}, the leader, on its old binary")
            }
        }
    }
}

/// Chooses, records and performs one sequence; `None` when there is
/// nothing to do (every node already upgraded).
pub(super) async fn act(
    ctx: &Ctx<'_>,
    op: Operation,
    rng: &mut StdRng,
    upgrades: &mut Upgrades,
) -> Result<Option<FaultWindow>> {
    let step = match op {
        Operation::Replace(t) => Step::Replace(one(ctx.cluster, &t, rng).await?),
        Operation::Move(t) => Step::Move(one(ctx.cluster, &t, rng).await?),
        Operation::Upgrade => {
            let to = ctx
                .upgrade_to
                .ok_or_else(|| anyhow!("nemesis upgrade needs the binary to upgrade to"))?;
            match next_upgrade(ctx.cluster, to, upgrades).await? {
                Some(step) => step,
                None => return Ok(None),
            }
        }
    };
    let (kind, description) = (step.kind(), step.describe());
    let start = ctx.recorder.record(
        Record::new(Process::nemesis(), EventType::Info, "start").value(json!({
            "fault": kind,
            "description": description,
            "nodes": [step.node()],
        })),
    );
    let done = perform(ctx, &step, upgrades).await;
    let end = ctx.recorder.record(
        Record::new(Process::nemesis(), EventType::Info, "stop").value(json!({
            "fault": kind,
            "healed": done.is_ok(),
            "details": done.as_ref().ok(),
        })),
    );
    let details = done.with_context(|| description.clone())?;
    Ok(Some(FaultWindow {
        kind: kind.to_string(),
        description,
        start_ns: start.time_ns,
        end_ns: Some(end.time_ns),
        details,
    }))
}

async fn perform(ctx: &Ctx<'_>, step: &Step, upgrades: &mut Upgrades) -> Result<Value> {
    let cluster = ctx.cluster;
    match step {
        Step::Replace(node) | Step::Move(node) => {
            let done = match step {
                Step::Replace(_) => cluster.replace_node(*node).await?,
                _ => cluster.move_node(*node).await?,
            };
            if ctx.faketime {
                faketime::prepare(cluster, CONVERGE).await?;
            }
            Ok(serde_json::to_value(done)?)
        }
        Step::Upgrade { node, upgrade } => {
            let binary = match (upgrade, ctx.upgrade_to) {
                (true, Some(to)) => to.to_path_buf(),
                _ => cluster.binary_of(*node)?,
            };
            ctx.roster.drain(*node);
            let upgraded = cluster.upgrade_node(*node, &binary).await;
            ctx.roster.restore(*node);
            upgraded?;
            let to = ctx.upgrade_to.unwrap_or(binary.as_path());
            let leader = cluster.wait_for_leader(CONVERGE).await?;
            let binaries = binaries(cluster, to)?;
            let mixed = mixed_state(leader, &binaries);
            if mixed == Some(UPGRADED_LEADS) {
                upgrades.upgraded_led_original = true;
            }
            Ok(json!({
                "node": node,
                "binary": binary,
                "leader": leader,
                "binaries": binaries,
                "mixed": mixed,
            }))
        }
    }
}

/// `mixed` when an upgraded leader replicates to an original follower.
pub const UPGRADED_LEADS: &str = "upgraded-leads-original";
/// `mixed` when an original leader replicates to an upgraded follower.
pub const ORIGINAL_LEADS: &str = "original-leads-upgraded";

/// Per member: `upgraded` when it runs `to`, else `original`.
fn binaries(cluster: &Cluster, to: &Path) -> Result<BTreeMap<u64, &'static str>> {
    cluster
        .ids()
        .into_iter()
        .map(|id| {
            let label = if cluster.binary_of(id)? == to {
                "upgraded"
            } else {
                "original"
            };
            Ok((id, label))
        })
        .collect()
}

/// Which mixed state the cluster is in, if any.
fn mixed_state(leader: u64, binaries: &BTreeMap<u64, &'static str>) -> Option<&'static str> {
    let led_by = *binaries.get(&leader)?;
    let other = binaries.iter().any(|(id, b)| *id != leader && *b != led_by);
    match (other, led_by) {
        (false, _) => None,
        (true, "upgraded") => Some(UPGRADED_LEADS),
        (true, _) => Some(ORIGINAL_LEADS),
    }
}

/// The next upgrade step (see the module docs), `None` when done.
async fn next_upgrade(cluster: &Cluster, to: &Path, upgrades: &Upgrades) -> Result<Option<Step>> {
    let binaries = binaries(cluster, to)?;
    let original: Vec<u64> = binaries
        .iter()
        .filter(|(_, b)| **b == "original")
        .map(|(id, _)| *id)
        .collect();
    if original.is_empty() {
        return Ok(None);
    }
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    if let Some(follower) = original.iter().copied().find(|id| *id != leader) {
        return Ok(Some(Step::Upgrade {
            node: follower,
            upgrade: true,
        }));
    }
    // Only the leader is left on the original binary.
    let restart_first = !upgrades.upgraded_led_original && binaries.len() > 1;
    Ok(Some(Step::Upgrade {
        node: leader,
        upgrade: !restart_first,
    }))
}

/// The one node `targets` picks.
async fn one(cluster: &Cluster, targets: &Targets, rng: &mut StdRng) -> Result<u64> {
    targets
        .resolve(cluster, rng)
        .await?
        .first()
        .copied()
        .ok_or_else(|| anyhow!("no node to pick"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_states_are_named_by_the_leaders_binary() {
        let b = |v: &[(u64, &'static str)]| v.iter().copied().collect::<BTreeMap<_, _>>();
        let all_old = b(&[(1, "original"), (2, "original"), (3, "original")]);
        assert_eq!(mixed_state(1, &all_old), None);
        let one_new = b(&[(1, "original"), (2, "upgraded"), (3, "original")]);
        assert_eq!(mixed_state(1, &one_new), Some(ORIGINAL_LEADS));
        assert_eq!(mixed_state(2, &one_new), Some(UPGRADED_LEADS));
        assert_eq!(mixed_state(4, &one_new), None, "unknown leader");
    }
}
