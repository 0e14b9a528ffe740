//! Backups: a copy of this group's state at a point every write
//! acknowledged before the request is part of, taken on any node.

use rsp_storage::backup::{self, Encoder, Header};

use super::Consensus;
use crate::error::ConsensusError;

impl Consensus {
    /// A backup of the state, ready to stream: confirmed by the leader
    /// first (a linearizable barrier), so everything acknowledged before
    /// this call is in it; copied between two applies, so it is the state
    /// at exactly one log index. The copy is held in memory while it is
    /// streamed (as a Raft snapshot is).
    pub async fn backup(&self) -> Result<Encoder, ConsensusError> {
        let barrier = self.linearizable_barrier().await?;
        let engine = self.inner.engine.clone();
        let (entries, log_index, log_term, kv_revision) =
            tokio::task::spawn_blocking(move || backup::copy_state(&engine))
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
        Ok(Encoder::new(header, entries))
    }
}
