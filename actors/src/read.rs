//! Reads that must honour revocations, and the fence a revocation waits on.
//!
//! The rule (docs/actors.md): a node answers a revocation-sensitive read from
//! its local state only while it is in recent contact with the cluster:
//! - as leader, a quorum acknowledged it within `max_local_read_silence`;
//! - as follower, it heard from the leader within that bound.
//!
//! Otherwise it reads linearizably, which fails closed (`Unavailable`) when
//! the node is cut off. A revocation commits, then waits for every member to
//! confirm it applied the deletion; if one does not confirm, it also waits
//! until the silence bound has passed since the commit, so a member that
//! stopped hearing from the leader before receiving the deletion has by then
//! stopped answering from local state.

use std::time::{Duration, Instant};

use rsp_consensus::kv::{Key, KeyValue};
use rsp_consensus::{Consensus, Consistency, NodeId};

use crate::error::ActorError;

/// Whether this node's local state may answer a revocation-sensitive read.
pub(crate) fn local_is_trusted(consensus: &Consensus, max_silence: Duration) -> bool {
    let bound = max_silence.as_millis() as u64;
    let leader_ack = {
        let m = consensus.raft().metrics();
        let m = m.borrow();
        if m.current_leader.is_none() {
            return false;
        }
        (m.current_leader == Some(m.id)).then_some(m.millis_since_quorum_ack)
    };
    match leader_ack {
        Some(ack) => ack.is_some_and(|ms| ms <= bound),
        None => consensus
            .read_info(Consistency::Local)
            .ok()
            .and_then(|i| i.leader_silence_ms)
            .is_some_and(|ms| ms <= bound),
    }
}

/// Read `key` locally when trusted, else linearizably. With `confirm_miss`,
/// a local miss is confirmed linearizably (the key may have been written a
/// moment ago through another node).
pub(crate) async fn guarded_get(
    consensus: &Consensus,
    key: &Key,
    max_silence: Duration,
    confirm_miss: bool,
) -> Result<Option<KeyValue>, ActorError> {
    if local_is_trusted(consensus, max_silence) {
        let (kv, _) = consensus.get(key, Consistency::Local).await?;
        if kv.is_some() || !confirm_miss {
            return Ok(kv);
        }
    }
    let (kv, _) = consensus.get(key, Consistency::Linearizable).await?;
    Ok(kv)
}

/// After a deletion committed at `index` (at about `committed_at`), wait
/// until it is in force everywhere: confirmed by each member, or fenced by
/// the silence bound. Returns (confirmed, fenced).
pub(crate) async fn fence(
    consensus: &Consensus,
    index: u64,
    committed_at: Instant,
    confirm_timeout: Duration,
    max_silence: Duration,
) -> (Vec<NodeId>, Vec<NodeId>) {
    let report = consensus
        .wait_applied_everywhere(index, confirm_timeout)
        .await;
    if !report.missing.is_empty() {
        tracing::warn!(
            index,
            missing = ?report.missing,
            "revocation not confirmed by every member; waiting out the local-read silence bound"
        );
        let until = committed_at + max_silence + Duration::from_millis(50);
        tokio::time::sleep_until(until.into()).await;
    }
    (report.confirmed, report.missing)
}
