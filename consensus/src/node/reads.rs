//! The two read paths: linearizable (a read index confirmed by a quorum,
//! asked of the leader when this node does not lead) and local, and the
//! [`ReadInfo`] that says what a read was based on.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use openraft::error::RaftError as RE;
use rsp_storage::kv::{Key, KeyValue};

use super::Consensus;
use crate::error::ConsensusError;
use crate::rpc::{PeerBody, PeerError, PeerResponse};
use crate::transport::TransportError;
use crate::types::{Member, NodeId};

/// Which read path a caller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read started, on any
    /// node (read index confirmed by a quorum, then a local read once this
    /// node has applied up to it). Fails when no quorum can be reached.
    Linearizable,
    /// This node's applied state, possibly behind the leader; [`ReadInfo`]
    /// says how far.
    Local,
}

/// What a read was based on, so callers can see its staleness.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadInfo {
    pub consistency: &'static str,
    pub node_id: NodeId,
    pub applied_index: u64,
    pub revision: u64,
    pub leader: Option<NodeId>,
    /// For local reads on a follower: milliseconds since this node last heard
    /// from the leader (None when it never did or is the leader).
    pub leader_silence_ms: Option<u64>,
    /// For local reads on a follower: how long this node has been applying
    /// behind the commit index the leader announced (None when caught up).
    pub behind_since_ms: Option<u64>,
}

impl Consensus {
    /// The leader's read index, confirmed by a quorum (leader side).
    pub(crate) async fn read_index_here(
        &self,
        timeout: Duration,
    ) -> Result<Result<u64, Option<(NodeId, Member)>>, ConsensusError> {
        match tokio::time::timeout(timeout, self.inner.raft.ensure_linearizable()).await {
            Err(_) => Err(ConsensusError::Unavailable(
                "leadership could not be confirmed by a quorum in time".into(),
            )),
            Ok(Ok(log_id)) => Ok(Ok(log_id.map_or(0, |l| l.index))),
            Ok(Err(RE::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f)))) => {
                Ok(Err(f.leader_id.zip(f.leader_node)))
            }
            Ok(Err(RE::APIError(openraft::error::CheckIsLeaderError::QuorumNotEnough(e)))) => {
                // One heartbeat round without a quorum's answer: the caller
                // retries until its deadline before giving up.
                tracing::debug!(error = %e, "read index round without a quorum");
                Ok(Err(None))
            }
            Ok(Err(RE::Fatal(_))) => Err(ConsensusError::ShuttingDown),
        }
    }

    /// Wait until this node has applied everything committed before now, as
    /// confirmed by the leader. After it returns, a local read is
    /// linearizable.
    pub async fn linearizable_barrier(&self) -> Result<u64, ConsensusError> {
        let deadline = Instant::now() + self.inner.config.read_timeout;
        let index = loop {
            let timeout = Self::remaining(deadline).ok_or_else(|| {
                ConsensusError::Unavailable("no leader confirmed the read in time".into())
            })?;
            match self.read_index_here(timeout).await? {
                Ok(index) => break index,
                Err(Some((leader, member))) => {
                    let addr = self.inner.transport.route(leader, &member.peer_addr);
                    match self
                        .inner
                        .transport
                        .call(&addr, self.inner.group, PeerBody::ReadIndex, timeout)
                        .await
                    {
                        Ok(PeerResponse::ReadIndex(Ok(index))) => break index,
                        Ok(PeerResponse::ReadIndex(Err(
                            PeerError::NotLeader(_) | PeerError::NoLeader,
                        ))) => {}
                        Ok(PeerResponse::ReadIndex(Err(e))) => {
                            return Err(ConsensusError::Unavailable(e.to_string()));
                        }
                        Ok(_) => {
                            return Err(ConsensusError::Internal(
                                "unexpected answer to read index".into(),
                            ));
                        }
                        // A read index changes nothing: when the leader
                        // it was asked of went away (a graceful hand-off
                        // closes its connections), ask again, of the leader
                        // known then, until the deadline.
                        Err(
                            TransportError::Connect { .. }
                            | TransportError::Unreachable { .. }
                            | TransportError::Timeout { .. },
                        ) => {}
                        Err(e) => return Err(ConsensusError::Unavailable(e.to_string())),
                    }
                }
                Err(None) => {}
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let timeout = Self::remaining(deadline)
            .ok_or_else(|| ConsensusError::Unavailable("read index not applied in time".into()))?;
        self.inner
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map_err(|_| {
                ConsensusError::Unavailable("this node did not catch up in time".into())
            })?;
        Ok(index)
    }

    /// What a read at this moment is based on.
    pub fn read_info(&self, consistency: Consistency) -> Result<ReadInfo, ConsensusError> {
        // Two fields of the metrics, read under the watch's lock: cloning
        // the whole `RaftMetrics` (membership, replication map) on every
        // local read cost more than the read itself.
        let (current_leader, last_applied) = {
            let metrics = self.inner.raft.metrics();
            let m = metrics.borrow();
            (m.current_leader, m.last_applied.map_or(0, |l| l.index))
        };
        let silence = if current_leader == Some(self.inner.id) {
            None
        } else {
            self.inner
                .last_leader_contact
                .lock()
                .ok()
                .and_then(|t| *t)
                .map(|t| t.elapsed().as_millis() as u64)
        };
        Ok(ReadInfo {
            consistency: match consistency {
                Consistency::Linearizable => "linearizable",
                Consistency::Local => "local",
            },
            node_id: self.inner.id,
            applied_index: last_applied,
            revision: self.inner.engine.revision()?,
            leader: current_leader,
            leader_silence_ms: silence,
            behind_since_ms: self.behind_since_ms(last_applied),
        })
    }

    async fn before_read(&self, consistency: Consistency) -> Result<(), ConsensusError> {
        if consistency == Consistency::Linearizable && !self.inner.config.bugs.stale_reads() {
            self.linearizable_barrier().await?;
        }
        Ok(())
    }

    /// Read one key.
    pub async fn get(
        &self,
        key: &Key,
        consistency: Consistency,
    ) -> Result<(Option<KeyValue>, ReadInfo), ConsensusError> {
        self.before_read(consistency).await?;
        let info = self.read_info(consistency)?;
        Ok((self.inner.engine.get(key)?, info))
    }

    /// Read keys of a keyspace by prefix, in key order.
    pub async fn range(
        &self,
        keyspace: &str,
        prefix: &[u8],
        limit: usize,
        consistency: Consistency,
    ) -> Result<(Vec<KeyValue>, ReadInfo), ConsensusError> {
        self.before_read(consistency).await?;
        let info = self.read_info(consistency)?;
        Ok((self.inner.engine.range(keyspace, prefix, limit)?, info))
    }

    /// One page of keys under `prefix`, in key order, after the whole key
    /// `after` (see [`rsp_storage::KvEngine::range_after`]).
    pub async fn range_after(
        &self,
        keyspace: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        consistency: Consistency,
    ) -> Result<(Vec<KeyValue>, ReadInfo), ConsensusError> {
        self.before_read(consistency).await?;
        let info = self.read_info(consistency)?;
        Ok((
            self.inner
                .engine
                .range_after(keyspace, prefix, after, limit)?,
            info,
        ))
    }

    /// Ready to serve: a leader is known and this node has applied what the
    /// leader says is committed.
    pub async fn ready(&self) -> Result<ReadInfo, ConsensusError> {
        if self.inner.stopping.load(Ordering::Relaxed) {
            return Err(ConsensusError::ShuttingDown);
        }
        self.linearizable_barrier().await?;
        self.read_info(Consistency::Linearizable)
    }
}
