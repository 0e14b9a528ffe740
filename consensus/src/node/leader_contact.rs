//! When this node last heard from a leader and how far its applied index is
//! behind the commit index a leader announced: the staleness that
//! [`ReadInfo`](super::ReadInfo) reports for local reads.

use std::time::Instant;

use super::Consensus;

impl Consensus {
    /// Record an accepted append from the leader and the commit index it
    /// announced (for staleness reporting).
    pub(crate) fn note_leader_contact(&self, leader_commit: Option<u64>) {
        if let Ok(mut t) = self.inner.last_leader_contact.lock() {
            *t = Some(Instant::now());
        }
        if let (Some(commit), Ok(mut seen)) = (leader_commit, self.inner.commit_seen.lock()) {
            if commit > seen.0 {
                seen.0 = commit;
            }
            let applied = self
                .inner
                .raft
                .metrics()
                .borrow()
                .last_applied
                .map_or(0, |l| l.index);
            if applied < seen.0 && seen.1.is_none() {
                seen.1 = Some(Instant::now());
            }
        }
    }

    /// How long this node's applied index has been below the highest commit
    /// index a leader announced to it; `None` when it is caught up.
    pub(super) fn behind_since_ms(&self, applied: u64) -> Option<u64> {
        let mut seen = self.inner.commit_seen.lock().ok()?;
        if applied >= seen.0 {
            seen.1 = None;
            return None;
        }
        seen.1.map(|t| t.elapsed().as_millis() as u64)
    }
}
