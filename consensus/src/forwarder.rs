//! Batching of writes a follower forwards to the leader: writes that queue
//! while a forward RPC is under way travel together in one
//! `PeerBody::WriteBatch`, and the leader proposes them through its own
//! [`crate::batcher`], so a follower's clients cost the leader one RPC per
//! batch rather than one per write.
//!
//! Each write keeps the span it was forwarded from; the batch's RPC is the
//! span `raft.forward_batch` (a child of the first traced write's span,
//! following from the others'), and the writes' `traceparent`s travel with it in a
//! header ([`crate::trace_context`]), so the leader's spans of each write
//! join that write's trace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rsp_storage::kv::{Op, Response};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{Instrument as _, Span};

use crate::error::ConsensusError;
use crate::rpc::{PeerBody, PeerError, PeerResponse};
use crate::transport::{Transport, TransportError};
use crate::types::{GroupId, Member, NodeId};

/// `Ok(None)`: not proposed (not the leader, or unreachable before sending);
/// safe to retry.
pub(crate) type Forwarded = Result<Option<(Response, u64)>, ConsensusError>;

const MAX_BATCH_OPS: usize = 256;
const MAX_IN_FLIGHT: usize = 4;
const QUEUE: usize = 16_384;

struct Pending {
    leader: NodeId,
    member: Member,
    op: Op,
    reply: oneshot::Sender<Forwarded>,
    /// The span the write was forwarded from.
    span: Span,
}

#[derive(Clone)]
pub(crate) struct Forwarder {
    tx: mpsc::Sender<Pending>,
    /// The leader the last peer that refused a forwarded write named
    /// (0: none): how a node the leader no longer talks to (one removed
    /// from the membership) finds it.
    hint: Arc<AtomicU64>,
}

impl Forwarder {
    pub(crate) fn spawn(transport: Transport, group: GroupId, timeout: Duration) -> Forwarder {
        let (tx, rx) = mpsc::channel(QUEUE);
        let hint = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(transport, group, timeout, rx, hint.clone()));
        Forwarder { tx, hint }
    }

    /// The leader a peer last named when it refused a forwarded write.
    pub(crate) fn leader_hint(&self) -> Option<NodeId> {
        Some(self.hint.load(Ordering::Relaxed)).filter(|id| *id != 0)
    }

    pub(crate) async fn forward(&self, leader: NodeId, member: Member, op: Op) -> Forwarded {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Pending {
            leader,
            member,
            op,
            reply,
            span: Span::current(),
        }) {
            Ok(()) => rx.await.unwrap_or(Err(ConsensusError::ShuttingDown)),
            Err(mpsc::error::TrySendError::Full(_)) => Err(ConsensusError::Unavailable(
                "too many writes are waiting to be forwarded; retry shortly".into(),
            )),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(ConsensusError::ShuttingDown),
        }
    }
}

async fn run(
    transport: Transport,
    group: GroupId,
    timeout: Duration,
    mut rx: mpsc::Receiver<Pending>,
    hint: Arc<AtomicU64>,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        crate::batcher::gather(&rx).await;
        let mut queued = vec![first];
        while queued.len() < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(p) => queued.push(p),
                Err(_) => break,
            }
        }
        // Usually one leader; after a leader change, one RPC per leader.
        let mut by_leader: BTreeMap<NodeId, Vec<Pending>> = BTreeMap::new();
        for p in queued {
            by_leader.entry(p.leader).or_default().push(p);
        }
        let transport = transport.clone();
        let hint = hint.clone();
        tokio::spawn(async move {
            let sends = by_leader
                .into_values()
                .map(|batch| send(&transport, group, timeout, batch, &hint));
            futures::future::join_all(sends).await;
            drop(permit);
        });
    }
}

/// Keep the leader a peer named when it refused a write.
fn remember_leader(e: &PeerError, hint: &AtomicU64) {
    if let PeerError::NotLeader(leader) = e {
        hint.store(*leader, Ordering::Relaxed);
    }
}

fn map_one(r: Result<(Response, u64), PeerError>, hint: &AtomicU64, target: NodeId) -> Forwarded {
    if let Err(e) = &r {
        remember_leader(e, hint);
    }
    match r {
        Ok(r) => Ok(Some(r)),
        // A node names itself only when it was shutting down, possibly
        // with the write proposed (the previous release answers so): its
        // outcome is unknown, and sending it again could apply it twice.
        Err(PeerError::NotLeader(id)) if id == target => Err(ConsensusError::Timeout),
        Err(PeerError::NotLeader(_) | PeerError::NoLeader) => Ok(None),
        Err(PeerError::Timeout) => Err(ConsensusError::Timeout),
        Err(PeerError::BadRequest(m)) => Err(ConsensusError::BadRequest(m)),
        Err(e) => Err(ConsensusError::Unavailable(e.to_string())),
    }
}

/// The span of one forward RPC: a child of the first traced write's span,
/// following from the other traced writes'; none when no write is traced
/// (a background task's writes start no trace).
fn batch_span(batch: &[Pending]) -> Span {
    let mut traced = batch.iter().filter(|p| !p.span.is_none());
    let Some(first) = traced.next() else {
        return Span::none();
    };
    let span = tracing::info_span!(
        parent: &first.span,
        "raft.forward_batch",
        rsp.leader = first.leader,
        rsp.ops = batch.len()
    );
    for p in traced {
        span.follows_from(&p.span);
    }
    span
}

async fn send(
    transport: &Transport,
    group: GroupId,
    timeout: Duration,
    batch: Vec<Pending>,
    hint: &AtomicU64,
) {
    let Some(first) = batch.first() else { return };
    let first_leader = first.leader;
    let addr = transport.route(first.leader, &first.member.peer_addr);
    let span = batch_span(&batch);
    let traceparents: Vec<Option<String>> = batch
        .iter()
        .map(|p| crate::trace_context::traceparent(&p.span))
        .collect();
    let traces = crate::trace_context::encode_batch(traceparents.iter().map(Option::as_deref));
    let (ops, replies): (Vec<Op>, Vec<oneshot::Sender<Forwarded>>) =
        batch.into_iter().map(|p| (p.op, p.reply)).unzip();
    let answer = transport
        .call_traced(&addr, group, PeerBody::WriteBatch(ops), timeout, traces)
        .instrument(span)
        .await;
    let target = first_leader;
    match answer {
        Ok(PeerResponse::WriteBatch(results)) if results.len() == replies.len() => {
            for (reply, r) in replies.into_iter().zip(results) {
                let _ = reply.send(map_one(r, hint, target));
            }
        }
        Ok(PeerResponse::Err(PeerError::NotLeader(id))) if id == target => {
            for reply in replies {
                let _ = reply.send(Err(ConsensusError::Timeout));
            }
        }
        Ok(PeerResponse::Err(e @ (PeerError::NotLeader(_) | PeerError::NoLeader))) => {
            remember_leader(&e, hint);
            for reply in replies {
                let _ = reply.send(Ok(None));
            }
        }
        Ok(_) => {
            for reply in replies {
                let _ = reply.send(Err(ConsensusError::Internal(
                    "unexpected answer to forwarded writes".into(),
                )));
            }
        }
        // Nothing was sent: safe to retry.
        Err(TransportError::Connect { .. }) | Err(TransportError::Status { status: 503, .. }) => {
            for reply in replies {
                let _ = reply.send(Ok(None));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "forwarded writes lost");
            for reply in replies {
                let _ = reply.send(Err(ConsensusError::Timeout));
            }
        }
    }
}

#[cfg(test)]
mod shutdown_answers {
    use super::*;

    /// A leader that was shutting down names itself: the write may have
    /// been proposed, so it must not be sent again (it could apply twice);
    /// a refusal naming another node is a plain redirect, safe to resend.
    #[test]
    fn a_node_naming_itself_is_an_unknown_outcome_not_a_redirect() {
        let hint = AtomicU64::new(0);
        let unknown = map_one(Err(PeerError::NotLeader(2)), &hint, 2);
        assert!(
            matches!(unknown, Err(ConsensusError::Timeout)),
            "{unknown:?}"
        );
        let redirect = map_one(Err(PeerError::NotLeader(3)), &hint, 2);
        assert!(matches!(redirect, Ok(None)), "{redirect:?}");
        let none = map_one(Err(PeerError::NoLeader), &hint, 2);
        assert!(matches!(none, Ok(None)), "{none:?}");
    }
}
