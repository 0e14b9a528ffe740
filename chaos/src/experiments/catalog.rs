//! The named experiments: what each does and what it promises.
//!
//! Every experiment is a fault (or a short script of faults) applied for
//! the fault window, plus its steady-state [`Hypothesis`]. Thresholds are
//! per experiment: a fault that the cluster must ride through (a follower
//! dies) promises a high success rate *during* the window too; a fault that
//! takes the quorum away (a majority dies) promises nothing during the
//! window, only recovery and no lost acknowledged write.

use std::time::Duration;

use super::faults::{PartitionShape, Targets};
use crate::proxy::LinkFaults;

/// The steady state an experiment must keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hypothesis {
    /// Least request success rate before the fault.
    pub before: f64,
    /// Least success rate while the fault lasts; `None`: no promise.
    pub during: Option<f64>,
    /// Least success rate after recovery.
    pub after: f64,
    /// Least request rate during the fault, as a share of the rate before;
    /// `None` where the fault itself slows every request (the load is
    /// closed-loop: each worker waits for its answer).
    pub min_throughput: Option<f64>,
    /// Time from healing until every node is ready under one leader.
    pub recover_within: Duration,
}

impl Hypothesis {
    const fn new(during: Option<f64>) -> Self {
        Self {
            before: 0.95,
            during,
            after: 0.95,
            min_throughput: if during.is_some() { Some(0.10) } else { None },
            recover_within: Duration::from_secs(10),
        }
    }

    /// In words, for the report.
    pub fn describe(&self) -> String {
        let during = match (self.during, self.min_throughput) {
            (Some(d), Some(t)) => format!(
                "≥ {:.0}% during the fault at ≥ {:.0}% of the request rate before",
                d * 100.0,
                t * 100.0
            ),
            (Some(d), None) => format!("≥ {:.0}% during the fault", d * 100.0),
            (None, _) => "no availability promise during the fault".to_string(),
        };
        format!(
            "requests succeed at ≥ {:.0}% before, {during}, ≥ {:.0}% after; every node is ready under one leader within {} s of healing; no acknowledged write is lost and no linearizable read is stale",
            self.before * 100.0,
            self.after * 100.0,
            self.recover_within.as_secs()
        )
    }
}

/// What an experiment does during its fault window.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Kill(Targets),
    /// Kill -9 and lose every write not yet synced (power-cut shim).
    PowerCut(Targets),
    Pause(Targets),
    Partition(PartitionShape),
    /// Latency ± jitter and loss on every peer link.
    Links {
        latency: Duration,
        jitter: Duration,
        loss: f64,
    },
    /// The leader's outgoing links get these faults.
    LeaderOutgoing(LinkFaults),
    /// Kill every node of a zone.
    ZoneOutage(&'static str),
    /// Each node in turn: SIGTERM, restart, wait until ready.
    RollingRestart,
    /// The leader's links to one follower go down and up every `period`.
    FlappingLink {
        period: Duration,
    },
    /// Kill the leader every `every`, restarting the previous victim.
    RepeatedLeaderKills {
        every: Duration,
    },
    /// Add a voter, then remove another node, under load.
    MembershipChange,
    /// Isolate a follower until the leader has purged its log past it,
    /// heal, and check it caught up from a snapshot.
    SnapshotCatchUp,
    /// Move the leader's wall clock (libfaketime).
    ClockSkew {
        offset: Duration,
        ahead: bool,
    },
}

/// A named experiment.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: &'static str,
    pub description: &'static str,
    pub action: Action,
    pub hypothesis: Hypothesis,
    /// Fewest nodes it makes sense with.
    pub min_nodes: usize,
    /// Extra `rsp serve` arguments (Raft timers given here replace the
    /// short test timers).
    pub args: &'static [&'static str],
    /// Slow links make every request slower: the load's per-attempt
    /// timeout and per-request deadline for this experiment.
    pub slow_requests: Option<(Duration, Duration)>,
}

const fn exp(
    name: &'static str,
    description: &'static str,
    action: Action,
    during: Option<f64>,
) -> Experiment {
    Experiment {
        name,
        description,
        action,
        hypothesis: Hypothesis::new(during),
        min_nodes: 3,
        args: &[],
        slow_requests: None,
    }
}

#[allow(non_snake_case)]
const fn MS(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// No throughput floor: the fault slows every request by itself.
fn closed_loop_slow(mut e: Experiment) -> Experiment {
    e.hypothesis.min_throughput = None;
    e
}

/// A floor of its own (a share of the request rate before the fault).
fn with_throughput(mut e: Experiment, least: f64) -> Experiment {
    e.hypothesis.min_throughput = Some(least);
    e
}

/// Every experiment, in the order `rsp-chaos list` shows them.
pub fn all() -> Vec<Experiment> {
    vec![
        exp(
            "kill-leader",
            "kill -9 the leader; restart it after the window",
            Action::Kill(Targets::Leader),
            Some(0.80),
        ),
        exp(
            "kill-follower",
            "kill -9 one follower; restart it after the window",
            Action::Kill(Targets::Follower),
            Some(0.95),
        ),
        exp(
            "kill-minority",
            "kill -9 a random minority of nodes",
            Action::Kill(Targets::Minority),
            Some(0.80),
        ),
        exp(
            "kill-majority-then-restart",
            "kill -9 a majority (no quorum), then restart it",
            Action::Kill(Targets::Majority),
            None,
        ),
        exp(
            "kill-all-then-restart",
            "kill -9 every node at once, then restart them all: durability of acknowledged writes",
            Action::Kill(Targets::All),
            None,
        ),
        exp(
            "power-cut-all",
            "every node loses power at once: kill -9 and every write not fsynced is lost; restart",
            Action::PowerCut(Targets::All),
            None,
        ),
        exp(
            "power-cut-leader",
            "the leader loses power (unsynced writes lost), restart it after the window",
            Action::PowerCut(Targets::Leader),
            Some(0.80),
        ),
        exp(
            "pause-leader",
            "SIGSTOP the leader for the window, then SIGCONT",
            Action::Pause(Targets::Leader),
            Some(0.80),
        ),
        exp(
            "pause-follower",
            "SIGSTOP one follower for the window",
            Action::Pause(Targets::Follower),
            Some(0.95),
        ),
        exp(
            "pause-majority",
            "SIGSTOP a majority (no quorum) for the window",
            Action::Pause(Targets::Majority),
            None,
        ),
        exp(
            "isolate-leader",
            "cut every peer link of the leader",
            Action::Partition(PartitionShape::IsolateLeader),
            Some(0.80),
        ),
        exp(
            "isolate-follower",
            "cut every peer link of one follower",
            Action::Partition(PartitionShape::IsolateOne),
            Some(0.80),
        ),
        exp(
            "minority-partition",
            "random minority and majority sides",
            Action::Partition(PartitionShape::Halves),
            Some(0.80),
        ),
        exp(
            "majority-partition",
            "the leader and a few followers in the minority; the majority must take over",
            Action::Partition(PartitionShape::LeaderInMinority),
            Some(0.80),
        ),
        exp(
            "bridge",
            "two sides that meet only through one node",
            Action::Partition(PartitionShape::Bridge),
            Some(0.80),
        ),
        exp(
            "zone-outage-a",
            "kill -9 every node of zone a (zones a/b/c round robin)",
            Action::ZoneOutage("a"),
            Some(0.80),
        ),
        exp(
            "zone-partition-b",
            "cut zone b off from the other zones",
            Action::Partition(PartitionShape::Zone("b".to_string())),
            Some(0.80),
        ),
        exp(
            "rolling-restart",
            "SIGTERM and restart each node in turn, waiting until it is ready",
            Action::RollingRestart,
            Some(0.90),
        ),
        exp(
            "flapping-link",
            "the leader's links to one follower go down and up every 500 ms",
            Action::FlappingLink { period: MS(500) },
            Some(0.90),
        ),
        // openraft times an AppendEntries out after one heartbeat interval:
        // on links slower than that, the heartbeat must be raised (WAN
        // settings), which these two use. `slow-leader-links` keeps the
        // short timers on purpose: its leader never hears a reply, and
        // check-quorum must hand leadership over (docs/reliability.md).
        Experiment {
            args: &["--heartbeat-ms", "600", "--election-timeout-ms", "2500"],
            slow_requests: Some((MS(3000), MS(6000))),
            ..closed_loop_slow(exp(
                "latency-200ms",
                "200 ms on every peer link (each way), with WAN Raft timers (heartbeat 600 ms, election 2.5 s)",
                Action::Links {
                    latency: MS(200),
                    jitter: Duration::ZERO,
                    loss: 0.0,
                },
                Some(0.90),
            ))
        },
        Experiment {
            args: &["--heartbeat-ms", "300", "--election-timeout-ms", "1500"],
            slow_requests: Some((MS(2000), MS(4000))),
            ..closed_loop_slow(exp(
                "jitter",
                "50 ms ± 50 ms on every peer link, with Raft timers above the worst round trip (heartbeat 300 ms)",
                Action::Links {
                    latency: MS(50),
                    jitter: MS(50),
                    loss: 0.0,
                },
                Some(0.95),
            ))
        },
        closed_loop_slow(exp(
            "loss-10pct",
            "10% emulated packet loss (200 ms retransmission stalls) on every peer link",
            Action::Links {
                latency: Duration::ZERO,
                jitter: Duration::ZERO,
                loss: 0.10,
            },
            Some(0.90),
        )),
        with_throughput(
            exp(
                "slow-leader-links",
                "500 ms on the leader's outgoing links only (asymmetric), short Raft timers",
                Action::LeaderOutgoing(LinkFaults::delayed(MS(500), Duration::ZERO)),
                Some(0.80),
            ),
            0.03,
        ),
        exp(
            "one-way-leader",
            "the leader cannot open connections to followers, they can still reach it (asymmetric partition)",
            Action::LeaderOutgoing(LinkFaults::down()),
            Some(0.70),
        ),
        exp(
            "repeated-leader-kills",
            "kill -9 the leader every 2 s, restarting the previous one",
            Action::RepeatedLeaderKills { every: MS(2000) },
            Some(0.60),
        ),
        exp(
            "membership-change",
            "add a voter, then remove another node, under load",
            Action::MembershipChange,
            Some(0.90),
        ),
        Experiment {
            args: &["--snapshot-threshold", "50"],
            ..exp(
                "snapshot-catch-up",
                "isolate a follower until the leader purged its log past it, heal: it catches up from a snapshot",
                Action::SnapshotCatchUp,
                Some(0.80),
            )
        },
        exp(
            "clock-skew-leader",
            "move the leader's wall clock 30 s ahead (libfaketime; refused when it is not installed)",
            Action::ClockSkew {
                offset: Duration::from_secs(30),
                ahead: true,
            },
            Some(0.95),
        ),
        exp(
            "clock-skew-behind",
            "move the leader's wall clock 30 s back (libfaketime; refused when it is not installed)",
            Action::ClockSkew {
                offset: Duration::from_secs(30),
                ahead: false,
            },
            Some(0.95),
        ),
    ]
}

/// The experiment called `name`.
pub fn find(name: &str) -> Option<Experiment> {
    all().into_iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn there_are_at_least_twenty_uniquely_named_experiments() {
        let all = all();
        assert!(all.len() >= 20, "{}", all.len());
        let names: BTreeSet<&str> = all.iter().map(|e| e.name).collect();
        assert_eq!(names.len(), all.len(), "names are unique");
        assert!(find("kill-leader").is_some());
        assert!(find("no-such-thing").is_none());
    }

    #[test]
    fn hypotheses_read_as_sentences() {
        let h = find("kill-majority-then-restart")
            .expect("exists")
            .hypothesis;
        assert!(
            h.describe().contains("no availability promise"),
            "{}",
            h.describe()
        );
        let h = find("kill-follower").expect("exists").hypothesis;
        assert!(h.describe().contains("≥ 95% during"), "{}", h.describe());
        assert_eq!(
            find("latency-200ms")
                .expect("exists")
                .hypothesis
                .min_throughput,
            None
        );
    }
}
