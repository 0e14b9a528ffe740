//! Prometheus metrics of the consensus layer, registered in a registry the
//! caller owns (no global registry, so several nodes share a process in tests).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use rsp_storage::SnapshotEvent;

use crate::types::{NodeId, RaftMetrics};

#[derive(Clone)]
pub struct ConsensusMetrics {
    pub term: IntGauge,
    pub leader: IntGauge,
    pub is_leader: IntGauge,
    pub last_log_index: IntGauge,
    pub applied_index: IntGauge,
    pub snapshot_index: IntGauge,
    pub purged_index: IntGauge,
    pub members: IntGauge,
    pub apply_seconds: Histogram,
    pub write_seconds: Histogram,
    pub forwarded_writes: IntCounter,
    pub check_quorum_silences: IntCounter,
    pub log_syncs: IntGauge,
    pub log_sync_requests: IntGauge,
    pub leader_changes: IntCounter,
    pub replication_lag: IntGaugeVec,
    pub snapshots: IntCounterVec,
    pub snapshot_seconds: HistogramVec,
    pub log_sync_seconds: Histogram,
    pub storage_bytes: IntGauge,
    /// The last (leader, term) [`ConsensusMetrics::observe`] saw, to count
    /// changes.
    last_leader: Arc<Mutex<Option<(NodeId, u64)>>>,
    /// Followers with a replication-lag series.
    lag_followers: Arc<Mutex<BTreeSet<NodeId>>>,
}

fn gauge(reg: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

impl ConsensusMetrics {
    pub fn register(reg: &Registry) -> prometheus::Result<Self> {
        let apply_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "rsp_raft_apply_duration_seconds",
                "Time to apply one log entry to the state machine",
            )
            .buckets(prometheus::exponential_buckets(0.00001, 4.0, 10)?),
        )?;
        reg.register(Box::new(apply_seconds.clone()))?;
        let write_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "rsp_raft_write_duration_seconds",
                "Time from proposing a write on this node to its applied answer",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 3.0, 12)?),
        )?;
        reg.register(Box::new(write_seconds.clone()))?;
        let forwarded_writes = IntCounter::new(
            "rsp_raft_forwarded_writes_total",
            "Writes this node forwarded to the leader",
        )?;
        reg.register(Box::new(forwarded_writes.clone()))?;
        let check_quorum_silences = IntCounter::new(
            "rsp_raft_check_quorum_silences_total",
            "Times this node, as leader, heard from fewer than a quorum of voters and went silent to let another node lead",
        )?;
        reg.register(Box::new(check_quorum_silences.clone()))?;
        let leader_changes = IntCounter::new(
            "rsp_raft_leader_changes_total",
            "Leaders this node came to know: a new leader id or a new term with a leader",
        )?;
        reg.register(Box::new(leader_changes.clone()))?;
        let replication_lag = IntGaugeVec::new(
            Opts::new(
                "rsp_raft_replication_lag_entries",
                "On the leader: log entries each follower's matched index is behind the leader's last log index",
            ),
            &["follower"],
        )?;
        reg.register(Box::new(replication_lag.clone()))?;
        let snapshots = IntCounterVec::new(
            Opts::new(
                "rsp_raft_snapshots_total",
                "Snapshots this node built of its state or installed from the leader",
            ),
            &["kind"],
        )?;
        reg.register(Box::new(snapshots.clone()))?;
        let snapshot_seconds = HistogramVec::new(
            HistogramOpts::new(
                "rsp_raft_snapshot_duration_seconds",
                "Time to build (copy, encode, store, sync) or install a snapshot",
            )
            .buckets(prometheus::exponential_buckets(0.001, 4.0, 10)?),
            &["kind"],
        )?;
        reg.register(Box::new(snapshot_seconds.clone()))?;
        // Both kinds exist from the start, at zero.
        for kind in [SnapshotEvent::Built, SnapshotEvent::Installed] {
            snapshots.with_label_values(&[kind.as_str()]);
            snapshot_seconds.with_label_values(&[kind.as_str()]);
        }
        let log_sync_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "rsp_storage_log_sync_duration_seconds",
                "Time of one group-commit sync (flush and fdatasync) of the Raft log",
            )
            .buckets(prometheus::exponential_buckets(0.00005, 2.5, 12)?),
        )?;
        reg.register(Box::new(log_sync_seconds.clone()))?;
        Ok(ConsensusMetrics {
            leader_changes,
            replication_lag,
            snapshots,
            snapshot_seconds,
            log_sync_seconds,
            storage_bytes: gauge(
                reg,
                "rsp_storage_size_bytes",
                "Bytes the node's store takes on disk (sled's data and blob files)",
            )?,
            last_leader: Arc::default(),
            lag_followers: Arc::default(),
            term: gauge(reg, "rsp_raft_term", "Current Raft term")?,
            leader: gauge(
                reg,
                "rsp_raft_leader_id",
                "Id of the known leader, 0 if none",
            )?,
            is_leader: gauge(reg, "rsp_raft_is_leader", "1 if this node leads")?,
            last_log_index: gauge(
                reg,
                "rsp_raft_last_log_index",
                "Index of the last log entry",
            )?,
            applied_index: gauge(
                reg,
                "rsp_raft_applied_index",
                "Index of the last applied entry",
            )?,
            snapshot_index: gauge(
                reg,
                "rsp_raft_snapshot_index",
                "Index the last snapshot covers",
            )?,
            purged_index: gauge(
                reg,
                "rsp_raft_purged_index",
                "Index up to which the log was purged",
            )?,
            members: gauge(
                reg,
                "rsp_raft_members",
                "Voters and learners in the membership",
            )?,
            apply_seconds,
            write_seconds,
            forwarded_writes,
            check_quorum_silences,
            log_syncs: gauge(
                reg,
                "rsp_storage_log_syncs",
                "fdatasync calls made for the Raft log",
            )?,
            log_sync_requests: gauge(
                reg,
                "rsp_storage_log_sync_requests",
                "Appends and votes those syncs covered (group commit)",
            )?,
        })
    }

    /// A snapshot built or installed in `seconds`.
    pub fn snapshot(&self, event: SnapshotEvent, seconds: f64) {
        self.snapshots.with_label_values(&[event.as_str()]).inc();
        self.snapshot_seconds
            .with_label_values(&[event.as_str()])
            .observe(seconds);
    }

    pub fn observe(&self, m: &RaftMetrics) {
        let idx = |v: Option<u64>| v.map_or(-1, |i| i as i64);
        self.term.set(m.current_term as i64);
        self.leader.set(m.current_leader.map_or(0, |l| l as i64));
        self.is_leader.set((m.current_leader == Some(m.id)) as i64);
        self.last_log_index.set(idx(m.last_log_index));
        self.applied_index.set(idx(m.last_applied.map(|l| l.index)));
        self.snapshot_index.set(idx(m.snapshot.map(|l| l.index)));
        self.purged_index.set(idx(m.purged.map(|l| l.index)));
        self.members
            .set(m.membership_config.membership().nodes().count() as i64);
        if let Some(leader) = m.current_leader {
            let mut last = self.last_leader.lock().unwrap_or_else(|p| p.into_inner());
            if *last != Some((leader, m.current_term)) {
                *last = Some((leader, m.current_term));
                self.leader_changes.inc();
            }
        }
        self.observe_replication(m);
    }

    /// Lag of each follower, on the leader; no series elsewhere. Series of
    /// followers no longer replicated to are removed (the others are set in
    /// place, so a scrape never sees them missing).
    fn observe_replication(&self, m: &RaftMetrics) {
        let mut shown = self.lag_followers.lock().unwrap_or_else(|p| p.into_inner());
        let now: BTreeSet<NodeId> = m
            .replication
            .iter()
            .flat_map(|r| r.keys().copied())
            .filter(|f| *f != m.id)
            .collect();
        for gone in shown.difference(&now) {
            let _ = self
                .replication_lag
                .remove_label_values(&[&gone.to_string()]);
        }
        *shown = now;
        let Some(replication) = &m.replication else {
            return;
        };
        let last = m.last_log_index.map_or(-1, |i| i as i64);
        for (follower, matched) in replication.iter() {
            if *follower == m.id {
                continue;
            }
            let matched = matched.as_ref().map_or(-1, |l| l.index as i64);
            self.replication_lag
                .with_label_values(&[&follower.to_string()])
                .set((last - matched).max(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::{CommittedLeaderId, LogId};
    use prometheus::core::Collector;

    use super::*;

    fn metrics() -> (Registry, ConsensusMetrics) {
        let registry = Registry::new();
        let m = ConsensusMetrics::register(&registry).expect("registers");
        (registry, m)
    }

    fn log_id(index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    #[test]
    fn leader_changes_count_each_new_leader_or_term() {
        let (_r, m) = metrics();
        let mut raft = RaftMetrics::new_initial(1);
        m.observe(&raft);
        assert_eq!(m.leader_changes.get(), 0, "no leader yet");
        raft.current_term = 3;
        raft.current_leader = Some(2);
        m.observe(&raft);
        m.observe(&raft);
        assert_eq!(m.leader_changes.get(), 1, "the same leader seen twice");
        raft.current_leader = None;
        m.observe(&raft);
        raft.current_leader = Some(2);
        m.observe(&raft);
        assert_eq!(
            m.leader_changes.get(),
            1,
            "the leader came back in its term"
        );
        raft.current_term = 4;
        m.observe(&raft);
        assert_eq!(m.leader_changes.get(), 2, "re-elected in a new term");
        raft.current_leader = Some(3);
        m.observe(&raft);
        assert_eq!(m.leader_changes.get(), 3);
    }

    #[test]
    fn replication_lag_is_per_follower_and_only_on_the_leader() {
        let (_r, m) = metrics();
        let mut raft = RaftMetrics::new_initial(1);
        raft.last_log_index = Some(10);
        raft.replication = Some(BTreeMap::from([
            (1, Some(log_id(10))),
            (2, Some(log_id(7))),
            (3, None),
        ]));
        m.observe(&raft);
        let lag = |f: &str| {
            m.replication_lag
                .get_metric_with_label_values(&[f])
                .map(|g| g.get())
        };
        assert_eq!(lag("2").expect("follower 2"), 3);
        assert_eq!(lag("3").expect("follower 3"), 11, "nothing matched yet");
        assert_eq!(
            m.replication_lag.collect()[0].get_metric().len(),
            2,
            "no series for the leader itself"
        );
        raft.replication = Some(BTreeMap::from([
            (1, Some(log_id(10))),
            (2, Some(log_id(9))),
        ]));
        m.observe(&raft);
        assert_eq!(lag("2").expect("follower 2"), 1);
        assert_eq!(
            m.replication_lag.collect()[0].get_metric().len(),
            1,
            "a removed follower's series is gone"
        );
        raft.replication = None;
        m.observe(&raft);
        assert!(
            m.replication_lag.collect()[0].get_metric().is_empty(),
            "a follower has no lag series"
        );
    }

    #[test]
    fn snapshots_count_and_time_by_kind_from_zero() {
        let (registry, m) = metrics();
        let count = |kind: &str| m.snapshots.with_label_values(&[kind]).get();
        assert_eq!(count("build"), 0);
        let scrape = registry.gather();
        assert!(
            scrape
                .iter()
                .any(|f| f.name() == "rsp_raft_snapshots_total")
        );
        m.snapshot(SnapshotEvent::Installed, 0.25);
        assert_eq!(count("install"), 1);
        assert_eq!(count("build"), 0);
        let timed = m.snapshot_seconds.with_label_values(&["install"]);
        assert_eq!(timed.get_sample_count(), 1);
        assert!((timed.get_sample_sum() - 0.25).abs() < 1e-9);
    }
}
