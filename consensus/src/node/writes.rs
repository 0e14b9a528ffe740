//! The write path: propose on this node when it leads (through the
//! batcher), otherwise forward to the leader, retrying until the write
//! deadline; transactions on top.
//!
//! Spans: `raft.write` for the whole write (every attempt), `raft.forward`
//! for each time it is sent to the leader; on the node that proposes it the
//! batcher's `raft.propose` follows (see [`crate::batcher`]). A write made
//! outside any span (a background task's) is not traced.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rsp_storage::kv::{Command, Op, Response, Txn, TxnResponse};
use tracing::Instrument as _;

use super::Consensus;
use crate::batcher::Attempt;
use crate::error::ConsensusError;
use crate::types::{Member, NodeId};

impl Consensus {
    /// Propose `op` on this node, if it leads.
    pub(crate) async fn write_here(
        &self,
        op: Op,
        deadline: Instant,
    ) -> Result<Attempt, ConsensusError> {
        let timeout = Self::remaining(deadline).ok_or(ConsensusError::Timeout)?;
        let start = Instant::now();
        if self.inner.config.bugs.ack_before_commit() {
            return self
                .write_unacknowledged(
                    Command::new(self.inner.config.clock.now_ms(), op),
                    &op_summary_txn(),
                )
                .await;
        }
        if self.inner.contacts.is_silent() {
            return Err(ConsensusError::Unavailable(
                "this node leads but has not heard from a quorum of voters; it is letting another node take over".into(),
            ));
        }
        let rx = self.inner.batcher.submit(op)?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(ConsensusError::Timeout),
            Ok(Err(_)) => Err(ConsensusError::ShuttingDown),
            Ok(Ok(Ok(attempt))) => {
                if matches!(attempt, Attempt::Done(..)) {
                    self.inner
                        .metrics
                        .write_seconds
                        .observe(start.elapsed().as_secs_f64());
                }
                Ok(attempt)
            }
            Ok(Ok(Err(e))) => Err(e),
        }
    }

    /// Replicate `op` through the leader, wherever it is, and return the
    /// state machine's answer. [`ConsensusError::Timeout`] means the outcome
    /// is unknown; other errors mean the write was not applied.
    pub async fn write(&self, op: Op) -> Result<Response, ConsensusError> {
        Ok(self.write_indexed(op).await?.0)
    }

    /// [`Consensus::write`], also returning the log index the write was
    /// applied at (for [`Consensus::wait_applied_everywhere`]).
    pub async fn write_indexed(&self, op: Op) -> Result<(Response, u64), ConsensusError> {
        // Writes of background tasks (no span around them) start no trace.
        if tracing::Span::current().is_none() {
            return self.write_indexed_inner(op).await;
        }
        let span = tracing::info_span!("raft.write", rsp.op = op_kind(&op));
        self.write_indexed_inner(op).instrument(span).await
    }

    async fn write_indexed_inner(&self, op: Op) -> Result<(Response, u64), ConsensusError> {
        if self.inner.stopping.load(Ordering::Relaxed) {
            return Err(ConsensusError::ShuttingDown);
        }
        rsp_storage::kv_engine::validate(&Command::new(0, op.clone()))
            .map_err(ConsensusError::BadRequest)?;
        let deadline = Instant::now() + self.inner.config.write_timeout;
        loop {
            let target = match self.write_here(op.clone(), deadline).await? {
                Attempt::Done(r, index) => return Ok((r, index)),
                Attempt::Forward(Some(leader)) => {
                    self.inner.metrics.forwarded_writes.inc();
                    Some(leader)
                }
                Attempt::Forward(None) => self.leader_outside_the_voters(),
            };
            if let Some((leader, member)) = target {
                match self
                    .forward_write(leader, &member, op.clone(), deadline)
                    .await
                {
                    Ok(Some(r)) => return Ok(r),
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
            }
            // No leader known yet, or it moved: wait a little and try again.
            if Self::remaining(deadline).is_none() {
                return Err(ConsensusError::Unavailable(
                    "no leader could be reached".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where a node that is not a voter and knows no leader sends a write:
    /// the leader a peer last named, else a voter in turn (which names the
    /// leader when it refuses). A node removed from the membership hears
    /// from no leader again, yet serves until it is stopped; a voter waits
    /// for the election it takes part in instead.
    fn leader_outside_the_voters(&self) -> Option<(NodeId, Member)> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let me = self.id();
        if membership.voter_ids().any(|v| v == me) {
            return None;
        }
        if let Some(hint) = self.inner.forwarder.leader_hint().filter(|l| *l != me)
            && let Some(member) = membership.get_node(&hint)
            && membership.voter_ids().any(|v| v == hint)
        {
            return Some((hint, member.clone()));
        }
        let voters: Vec<NodeId> = membership.voter_ids().filter(|v| *v != me).collect();
        if voters.is_empty() {
            return None;
        }
        let turn = self.inner.fallback_turn.fetch_add(1, Ordering::Relaxed) as usize;
        let voter = voters[turn % voters.len()];
        membership.get_node(&voter).map(|n| (voter, n.clone()))
    }

    /// `Ok(None)`: not sent or refused before it was proposed; safe to retry.
    async fn forward_write(
        &self,
        leader: NodeId,
        member: &Member,
        op: Op,
        deadline: Instant,
    ) -> Result<Option<(Response, u64)>, ConsensusError> {
        let timeout = Self::remaining(deadline).ok_or(ConsensusError::Timeout)?;
        let span = tracing::info_span!("raft.forward", rsp.leader = leader);
        match tokio::time::timeout(
            timeout,
            self.inner.forwarder.forward(leader, member.clone(), op),
        )
        .instrument(span)
        .await
        {
            Ok(r) => r,
            Err(_) => Err(ConsensusError::Timeout),
        }
    }

    /// Run a transaction; refusals by the state machine become errors.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, ConsensusError> {
        Ok(self.txn_indexed(txn).await?.0)
    }

    /// [`Consensus::txn`], also returning the log index it was applied at.
    pub async fn txn_indexed(&self, txn: Txn) -> Result<(TxnResponse, u64), ConsensusError> {
        let (resp, index) = self.write_indexed(Op::Txn(txn)).await?;
        match resp {
            Response::Txn(r) => Ok((r, index)),
            Response::Rejected(m) => Err(ConsensusError::BadRequest(m)),
            Response::Unsupported { format } => Err(ConsensusError::Unavailable(format!(
                "the leader proposed command format {format}, newer than this node runs"
            ))),
            other => Err(ConsensusError::Internal(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// `ack-before-commit`: propose and answer at once, without waiting.
    async fn write_unacknowledged(
        &self,
        cmd: Command,
        answer: &Response,
    ) -> Result<Attempt, ConsensusError> {
        match self.inner.raft.client_write_ff(cmd).await {
            Ok(_pending) => Ok(Attempt::Done(answer.clone(), 0)),
            Err(_) => Err(ConsensusError::ShuttingDown),
        }
    }
}

/// What kind of operation a write is (a span field; never keys or values).
fn op_kind(op: &Op) -> &'static str {
    match op {
        Op::Txn(_) => "txn",
        Op::Batch(_) => "batch",
        Op::Tick => "tick",
    }
}

/// The made-up answer of the `ack-before-commit` bug.
fn op_summary_txn() -> Response {
    Response::Txn(TxnResponse {
        succeeded: true,
        revision: 0,
        results: Vec::new(),
    })
}
