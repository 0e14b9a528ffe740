//! A vocabulary of faults, shared by the chaos experiments and the Jepsen
//! nemesis: pick targets ([`Targets`], [`PartitionShape`]), inject a
//! [`Fault`], later heal exactly that fault.
//!
//! Every fault is built from the [`Cluster`]'s own primitives (kill -9,
//! SIGSTOP/SIGCONT, restart, link proxies) plus clock skew through
//! libfaketime (see [`super::faketime`]) and power cuts through
//! an undo-logging shim (see [`super::powercut`]); nothing here
//! is simulated.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use rand::Rng;
use rand::seq::SliceRandom;

use super::{faketime, powercut};
use crate::Cluster;
use crate::proxy::LinkFaults;

/// Which nodes a process fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// One random node.
    One,
    /// The current leader (a random node when none is known).
    Leader,
    /// One random node that is not the leader.
    Follower,
    /// A random minority (at least one node).
    Minority,
    /// A random majority.
    Majority,
    All,
    Nodes(Vec<u64>),
}

impl Targets {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "one" => Targets::One,
            "leader" => Targets::Leader,
            "follower" => Targets::Follower,
            "minority" => Targets::Minority,
            "majority" => Targets::Majority,
            "all" => Targets::All,
            other => {
                bail!("unknown target `{other}` (one, leader, follower, minority, majority, all)")
            }
        })
    }

    /// The random choices, for a nemesis that was given no target.
    pub fn random_kinds() -> [Targets; 5] {
        [
            Targets::One,
            Targets::Leader,
            Targets::Follower,
            Targets::Minority,
            Targets::Majority,
        ]
    }

    /// The node ids these targets name right now.
    pub async fn resolve<R: Rng + Send>(&self, cluster: &Cluster, rng: &mut R) -> Result<Vec<u64>> {
        let mut ids = cluster.ids();
        ensure!(!ids.is_empty(), "the cluster has no nodes");
        let n = ids.len();
        ids.shuffle(rng);
        let mut chosen = match self {
            Targets::One => vec![ids[0]],
            Targets::Leader => match cluster.leader().await.ok().flatten() {
                Some(leader) => vec![leader],
                None => vec![ids[0]],
            },
            Targets::Follower => {
                let leader = cluster.leader().await.ok().flatten();
                vec![
                    ids.iter()
                        .copied()
                        .find(|id| Some(*id) != leader)
                        .unwrap_or(ids[0]),
                ]
            }
            Targets::Minority => ids[..((n - 1) / 2).max(1)].to_vec(),
            Targets::Majority => ids[..n / 2 + 1].to_vec(),
            Targets::All => ids.clone(),
            Targets::Nodes(nodes) => nodes.clone(),
        };
        chosen.sort_unstable();
        Ok(chosen)
    }
}

/// How to split the cluster's links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionShape {
    /// Random majority and minority sides.
    Halves,
    /// The leader alone on one side.
    IsolateLeader,
    /// The leader with one follower on the minority side.
    LeaderInMinority,
    /// One random node alone.
    IsolateOne,
    /// Two sides joined only through one node (Jepsen's bridge); needs 5
    /// or more nodes to differ from halves.
    Bridge,
    /// Every node of one zone cut off from the rest.
    Zone(String),
}

impl PartitionShape {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "halves" | "majority" | "minority" => PartitionShape::Halves,
            "leader" => PartitionShape::IsolateLeader,
            "leader-minority" => PartitionShape::LeaderInMinority,
            "one" => PartitionShape::IsolateOne,
            "bridge" => PartitionShape::Bridge,
            other => match other.strip_prefix("zone-") {
                Some(zone) => PartitionShape::Zone(zone.to_string()),
                None => bail!(
                    "unknown partition `{other}` (halves, leader, leader-minority, one, bridge, zone-<name>)"
                ),
            },
        })
    }

    pub fn random_kinds() -> [PartitionShape; 4] {
        [
            PartitionShape::Halves,
            PartitionShape::IsolateLeader,
            PartitionShape::LeaderInMinority,
            PartitionShape::Bridge,
        ]
    }

    /// The fault that makes this shape right now.
    pub async fn resolve<R: Rng + Send>(&self, cluster: &Cluster, rng: &mut R) -> Result<Fault> {
        let mut ids = cluster.ids();
        ensure!(ids.len() >= 2, "a partition needs at least two nodes");
        ids.shuffle(rng);
        let leader = cluster.leader().await.ok().flatten();
        let rest = |side: &[u64]| -> Vec<u64> {
            let mut r: Vec<u64> = cluster
                .ids()
                .into_iter()
                .filter(|id| !side.contains(id))
                .collect();
            r.sort_unstable();
            r
        };
        let sorted = |mut v: Vec<u64>| {
            v.sort_unstable();
            v
        };
        Ok(match self {
            PartitionShape::Halves => {
                let minority = sorted(ids[..ids.len() / 2].to_vec());
                Fault::Partition(vec![rest(&minority), minority])
            }
            PartitionShape::IsolateLeader | PartitionShape::IsolateOne => {
                let alone = match (self, leader) {
                    (PartitionShape::IsolateLeader, Some(l)) => l,
                    _ => ids[0],
                };
                Fault::Partition(vec![rest(&[alone]), vec![alone]])
            }
            PartitionShape::LeaderInMinority => {
                let l = leader.unwrap_or(ids[0]);
                let mut minority = vec![l];
                minority.extend(
                    ids.iter()
                        .copied()
                        .filter(|id| *id != l)
                        .take(((ids.len() - 1) / 2).max(1) - 1),
                );
                let minority = sorted(minority);
                Fault::Partition(vec![rest(&minority), minority])
            }
            PartitionShape::Bridge => {
                ensure!(ids.len() >= 3, "a bridge needs at least three nodes");
                let bridge = ids[0];
                let others = &ids[1..];
                let half = others.len() / 2;
                Fault::Bridge {
                    a: sorted(others[..half].to_vec()),
                    bridge,
                    b: sorted(others[half..].to_vec()),
                }
            }
            PartitionShape::Zone(zone) => {
                let side = sorted(cluster.nodes_in_zone(zone));
                ensure!(!side.is_empty(), "no node in zone {zone}");
                Fault::Partition(vec![rest(&side), side])
            }
        })
    }
}

/// A fault as injected; [`Fault::heal`] undoes exactly it.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `kill -9`; healing restarts them from their data dirs.
    Kill(Vec<u64>),
    /// `kill -9` and every write not yet synced is lost (the cluster must
    /// run under the power-cut shim); healing restarts them.
    PowerCut(Vec<u64>),
    /// SIGSTOP; healing sends SIGCONT.
    Pause(Vec<u64>),
    /// Links between groups down (a node in no group is cut off).
    Partition(Vec<Vec<u64>>),
    /// `a` and `b` only meet through `bridge`.
    Bridge {
        a: Vec<u64>,
        bridge: u64,
        b: Vec<u64>,
    },
    /// Latency, jitter and loss on every peer link.
    Links {
        latency: Duration,
        jitter: Duration,
        loss: f64,
    },
    /// Faults on chosen directed links only.
    SomeLinks {
        links: Vec<(u64, u64)>,
        faults: LinkFaults,
    },
    /// Wall clocks of these nodes moved by `offset_ms` (monotonic clocks
    /// untouched), through libfaketime.
    ClockSkew { nodes: Vec<u64>, offset_ms: i64 },
}

impl Fault {
    /// A short name: `kill`, `pause`, `partition`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Kill(_) => "kill",
            Fault::PowerCut(_) => "power-cut",
            Fault::Pause(_) => "pause",
            Fault::Partition(_) => "partition",
            Fault::Bridge { .. } => "partition",
            Fault::Links { loss, .. } if *loss > 0.0 => "loss",
            Fault::Links { .. } => "latency",
            Fault::SomeLinks { .. } => "links",
            Fault::ClockSkew { .. } => "clock",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Fault::Kill(n) => format!("kill -9 nodes {n:?}"),
            Fault::PowerCut(n) => {
                format!("power cut (kill -9, unsynced writes lost) on nodes {n:?}")
            }
            Fault::Pause(n) => format!("pause (SIGSTOP) nodes {n:?}"),
            Fault::Partition(groups) => format!("partition {groups:?}"),
            Fault::Bridge { a, bridge, b } => format!("bridge {a:?} <-> {bridge} <-> {b:?}"),
            Fault::Links {
                latency,
                jitter,
                loss,
            } => format!(
                "all peer links: latency {}ms ± {}ms, loss {:.0}%",
                latency.as_millis(),
                jitter.as_millis(),
                loss * 100.0
            ),
            Fault::SomeLinks { links, faults } => {
                format!("links {links:?}: {}", describe_link_faults(faults))
            }
            Fault::ClockSkew { nodes, offset_ms } => {
                format!("wall clock of nodes {nodes:?} moved by {offset_ms:+}ms")
            }
        }
    }

    /// Nodes the fault acts on (empty for cluster-wide link faults).
    pub fn nodes(&self) -> Vec<u64> {
        match self {
            Fault::Kill(n) | Fault::PowerCut(n) | Fault::Pause(n) => n.clone(),
            Fault::ClockSkew { nodes, .. } => nodes.clone(),
            Fault::Partition(groups) => groups.last().cloned().unwrap_or_default(),
            Fault::Bridge { bridge, .. } => vec![*bridge],
            Fault::SomeLinks { links, .. } => {
                let set: BTreeSet<u64> = links.iter().flat_map(|(a, b)| [*a, *b]).collect();
                set.into_iter().collect()
            }
            Fault::Links { .. } => Vec::new(),
        }
    }

    /// Injects the fault; returns a note on what it did when there is more
    /// to say than [`Fault::describe`] (e.g. how many writes a power cut
    /// undid).
    pub async fn inject(&self, cluster: &Cluster) -> Result<Option<String>> {
        let mut note = None;
        match self {
            Fault::Kill(nodes) => {
                // All at once: a "kill all" must not leave time to sync.
                for id in nodes {
                    cluster.node(*id)?.process.signal(libc::SIGKILL).ok();
                }
                for id in nodes {
                    cluster.kill(*id).await?;
                }
            }
            Fault::PowerCut(nodes) => {
                let stats = powercut::cut(cluster, nodes).await?;
                note = Some(format!(
                    "{} unsynced writes ({} bytes) undone in {} files",
                    stats.writes_undone, stats.bytes_restored, stats.files
                ));
            }
            Fault::Pause(nodes) => {
                for id in nodes {
                    cluster.pause(*id)?;
                }
            }
            Fault::Partition(groups) => {
                let groups: Vec<&[u64]> = groups.iter().map(Vec::as_slice).collect();
                cluster.partition(&groups)?;
            }
            Fault::Bridge { a, bridge, b } => cluster.bridge(a, *bridge, b)?,
            Fault::Links {
                latency,
                jitter,
                loss,
            } => {
                cluster.update_links(|_, _, f| {
                    f.latency = *latency;
                    f.jitter = *jitter;
                    f.loss = *loss;
                })?;
            }
            Fault::SomeLinks { links, faults } => {
                for (from, to) in links {
                    cluster.set_link(*from, *to, faults.clone())?;
                }
            }
            Fault::ClockSkew { nodes, offset_ms } => {
                for id in nodes {
                    faketime::set_offset(cluster, *id, *offset_ms)?;
                }
            }
        }
        Ok(note)
    }

    /// Undoes the fault. Killed nodes restart concurrently (after a kill
    /// of all, none can finish starting alone).
    pub async fn heal(&self, cluster: &Cluster) -> Result<()> {
        match self {
            Fault::Kill(nodes) | Fault::PowerCut(nodes) => {
                let restarts = nodes.iter().map(|id| async move {
                    cluster
                        .restart(*id)
                        .await
                        .with_context(|| format!("restarting node {id}"))
                });
                for r in futures::future::join_all(restarts).await {
                    r?;
                }
            }
            Fault::Pause(nodes) => {
                for id in nodes {
                    // A node that died meanwhile has nothing to resume.
                    if cluster.node(*id)?.process.is_running() {
                        cluster.resume(*id)?;
                    }
                }
            }
            Fault::Partition(_) | Fault::Bridge { .. } | Fault::Links { .. } => cluster.heal()?,
            Fault::SomeLinks { links, .. } => {
                for (from, to) in links {
                    cluster.set_link(*from, *to, LinkFaults::healthy())?;
                }
            }
            Fault::ClockSkew { nodes, .. } => {
                for id in nodes {
                    faketime::set_offset(cluster, *id, 0)?;
                }
            }
        }
        Ok(())
    }
}

fn describe_link_faults(f: &LinkFaults) -> String {
    if f.down {
        return "down".to_string();
    }
    let mut parts = Vec::new();
    if !f.latency.is_zero() || !f.jitter.is_zero() {
        parts.push(format!(
            "latency {}ms ± {}ms",
            f.latency.as_millis(),
            f.jitter.as_millis()
        ));
    }
    if f.loss > 0.0 {
        parts.push(format!("loss {:.0}%", f.loss * 100.0));
    }
    if let Some(b) = f.bandwidth {
        parts.push(format!("{b} B/s"));
    }
    if parts.is_empty() {
        "healthy".to_string()
    } else {
        parts.join(", ")
    }
}

/// Everything back to normal: links healed, paused nodes resumed, dead
/// nodes restarted (except retired ones, which left on purpose), clocks
/// reset. For the end of a run, whatever happened.
pub async fn heal_everything(cluster: &Cluster) -> Result<()> {
    if cluster.spec().proxies {
        cluster.heal()?;
    }
    let mut dead = Vec::new();
    for id in cluster.ids() {
        let node = cluster.node(id)?;
        if node.process.is_paused() {
            cluster.resume(id)?;
        }
        if !node.process.is_running() {
            dead.push(id);
        }
        if faketime::is_prepared(cluster, id) {
            faketime::set_offset(cluster, id, 0)?;
        }
    }
    if !dead.is_empty() {
        Fault::Kill(dead).heal(cluster).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(Targets::parse("leader").expect("ok"), Targets::Leader);
        assert!(Targets::parse("nobody").is_err());
        assert_eq!(
            PartitionShape::parse("zone-b").expect("ok"),
            PartitionShape::Zone("b".into())
        );
        assert!(PartitionShape::parse("sideways").is_err());
    }

    #[test]
    fn faults_describe_themselves() {
        assert_eq!(Fault::Kill(vec![1, 2]).kind(), "kill");
        assert_eq!(
            Fault::Links {
                latency: Duration::ZERO,
                jitter: Duration::ZERO,
                loss: 0.1
            }
            .kind(),
            "loss"
        );
        assert!(
            Fault::ClockSkew {
                nodes: vec![2],
                offset_ms: -30_000
            }
            .describe()
            .contains("-30000ms")
        );
    }
}
