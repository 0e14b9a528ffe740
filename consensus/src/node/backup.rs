//! Backups (a copy of this group's state at a point every write
//! acknowledged before the request is part of, taken on any node), the
//! first start on a restored data dir, and `--force-new-cluster`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rsp_storage::Store;
use rsp_storage::backup::{self, Encoder, Header};

use super::Consensus;

/// A backup under way: its header and its file's bytes, chunk by chunk.
pub struct BackupStream {
    pub header: Header,
    pub chunks: tokio::sync::mpsc::Receiver<Result<Vec<u8>, ConsensusError>>,
}
use crate::error::ConsensusError;
use crate::types::*;

impl Consensus {
    /// A backup of the state, streamed: confirmed by the leader first (a
    /// linearizable barrier), so everything acknowledged before this call
    /// is in it; a copy of the state at exactly one log index, read a chunk
    /// at a time while applies go on. The chunks (about 64 KiB each) come
    /// through a small channel from a blocking task, so memory stays
    /// bounded whatever the state's size; dropping the receiver ends the
    /// copy. An error midway is the channel's last item.
    pub async fn backup(&self) -> Result<BackupStream, ConsensusError> {
        let barrier = self.linearizable_barrier().await?;
        let engine = self.inner.engine.clone();
        let (copy, log_index, log_term, kv_revision) =
            tokio::task::spawn_blocking(move || backup::start_copy(&engine))
                .await
                .map_err(|e| ConsensusError::Internal(format!("backup copy: {e}")))??;
        debug_assert!(log_index >= barrier);
        let header = Header {
            format: backup::FORMAT,
            log_index,
            log_term,
            kv_revision,
            created_ms: self.inner.config.clock.now_ms(),
            node: self.inner.id,
            group: self.inner.group,
            entries: 0,
        };
        let (tx, chunks) = tokio::sync::mpsc::channel(4);
        let mut encoder = Encoder::new(header.clone(), copy);
        rsp_storage::snapshot_file::spawn_background("rsp-backup", move || {
            loop {
                let item = match encoder.next_chunk() {
                    Ok(Some(chunk)) => Ok(chunk),
                    Ok(None) => return,
                    Err(e) => Err(ConsensusError::from(e)),
                };
                let failed = item.is_err();
                if tx.blocking_send(item).is_err() || failed {
                    return;
                }
            }
        })?;
        Ok(BackupStream { header, chunks })
    }

    /// After bootstrapping on restored state: snapshot it and purge the
    /// log behind the snapshot, so a node that joins gets the state as a
    /// snapshot (replaying the log alone would give it none of it).
    pub(super) async fn snapshot_restored_state(&self) -> Result<(), ConsensusError> {
        let raft = &self.inner.raft;
        let fatal = |e: openraft::error::Fatal<NodeId>| ConsensusError::Internal(e.to_string());
        let applied = self
            .wait_for(30, "the first entry applied", |m| m.last_applied.is_some())
            .await?
            .last_applied
            .map_or(0, |l| l.index);
        raft.trigger().snapshot().await.map_err(fatal)?;
        self.wait_for(60, "a snapshot of the restored state", |m| {
            m.snapshot.is_some_and(|s| s.index >= applied)
        })
        .await?;
        raft.trigger().purge_log(applied).await.map_err(fatal)?;
        self.wait_for(30, "the log purged behind it", |m| {
            m.purged.is_some_and(|p| p.index >= applied)
        })
        .await?;
        tracing::info!(index = applied, "the restored state is snapshotted");
        Ok(())
    }

    /// Raft's metrics once `done` holds, within `secs`.
    async fn wait_for(
        &self,
        secs: u64,
        what: &'static str,
        done: impl Fn(&RaftMetrics) -> bool + Send,
    ) -> Result<RaftMetrics, ConsensusError> {
        self.inner
            .raft
            .wait(Some(Duration::from_secs(secs)))
            .metrics(done, what)
            .await
            .map_err(|e| ConsensusError::Internal(format!("restored state: {what}: {e}")))
    }
}

/// `--force-new-cluster` on a survivor of a cluster that lost its quorum
/// for good: append a membership entry naming this node alone after its
/// last log entry, in a term above any it has seen, before Raft starts. As
/// the only voter of that membership it elects itself and commits its whole
/// log (entries it held but never saw committed included, as any new leader
/// would). The other members' messages are refused once the caller gives
/// the new cluster a new join token.
pub(super) fn force_new_cluster(
    store: &Store,
    log: &LogStore,
    id: NodeId,
    member: &Member,
) -> Result<(), ConsensusError> {
    let last = log.last_log_id()?.ok_or_else(|| {
        ConsensusError::Config(
            "force-new-cluster: this node holds no Raft log to keep (start it without the flag)"
                .into(),
        )
    })?;
    let vote_term = log.stored_vote()?.map_or(0, |v| v.leader_id.term);
    let term = vote_term.max(last.leader_id.term) + 1;
    let membership = openraft::Membership::new(
        vec![BTreeSet::from([id])],
        BTreeMap::from([(id, member.clone())]),
    );
    let entry = openraft::Entry::<TypeConfig> {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(term, id), last.index + 1),
        payload: openraft::EntryPayload::Membership(membership),
    };
    log.force_append(store, entry, openraft::Vote::new(term, id))?;
    tracing::warn!(
        node_id = id,
        term,
        index = last.index + 1,
        "forced a new one-node cluster from this node's data (force-new-cluster)"
    );
    Ok(())
}
