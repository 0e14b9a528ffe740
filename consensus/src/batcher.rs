//! Proposal batching: writes that arrive while earlier ones are being
//! replicated are proposed together as one [`Op::Batch`] log entry, so one
//! log sync on each node covers many clients' writes.
//!
//! openraft 0.9 syncs the leader's log once per proposal before it moves on,
//! so without batching the leader's sync rate caps the write rate whatever
//! the number of clients. Here each write is queued with a reply channel; a
//! task takes the first queued write and everything queued behind it (up to
//! [`MAX_BATCH_OPS`] operations or [`MAX_BATCH_BYTES`]), proposes them as one
//! entry, and answers each caller with its own response. One batch is in
//! flight at a time ([`MAX_IN_FLIGHT`]: more only made smaller batches).
//! Before a batch is cut the task yields a few times while writes keep
//! arriving, so the writers the previous batch just answered can join it.
//! The queue is bounded, and a full queue refuses at once rather than grow.
//!
//! Each batch is the span `raft.propose` (from proposing to the answer,
//! i.e. commit and apply on this node), a child of the first traced write's
//! span and following from the others' (`rsp.ops` writes, at
//! `rsp.log_index`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError as CWE, RaftError as RE};
use rsp_storage::kv::{Command, Op, Response, TxnOp};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{Instrument as _, Span};

use crate::clock::Clock;
use crate::error::ConsensusError;
use crate::types::Raft;
use crate::types::{Member, NodeId};

/// Most operations in one log entry.
pub const MAX_BATCH_OPS: usize = 256;
/// Most value bytes in one log entry (each op is at most 1 MiB on its own).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Batches proposed but not yet answered.
///
/// One: openraft 0.9's core waits for each append's flush before it takes
/// the next proposal, so a second proposal in flight only splits what one
/// sync could have covered. Measured on the sessions bench (3 in-process
/// nodes, 64 callers, 2-key txns/s on the leader, quiet machine): 1 in
/// flight 5 068/s, 2: 4 104/s, 4: 4 400/s, 16: 3 258/s; with the gathering
/// yields below, 1: 10 000/s and 2: 9 346/s (every batch already holds all
/// 64 writers).
pub const MAX_IN_FLIGHT: usize = 1;
/// Yields to the scheduler before a batch is cut while writes keep arriving
/// (at least the minimum, at most the maximum): a few microseconds each.
const MIN_GATHER_YIELDS: usize = 2;
const MAX_GATHER_YIELDS: usize = 32;
/// Writes waiting for a batch.
pub const QUEUE: usize = 16_384;

/// What a write attempt on this node came to: applied (the answer and its
/// log index), or to be sent to the leader this node knows of.
pub(crate) enum Attempt {
    Done(Response, u64),
    Forward(Option<(NodeId, Member)>),
}

type Reply = oneshot::Sender<Result<Attempt, ConsensusError>>;

struct Pending {
    op: Op,
    reply: Reply,
    /// The span the write was submitted from.
    span: Span,
}

/// Counts of proposals made by the batcher, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Log entries proposed.
    pub proposals: AtomicU64,
    /// Writes those entries carried.
    pub ops: AtomicU64,
    /// Time from proposing an entry to its answer (applied on this node),
    /// summed over proposals, in nanoseconds.
    pub nanos: AtomicU64,
}

/// Handle to the batching task; the task ends when every handle is gone.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Pending>,
    stats: Arc<BatchStats>,
}

fn weight(op: &Op) -> usize {
    match op {
        Op::Txn(txn) => txn
            .success
            .iter()
            .chain(&txn.failure)
            .map(|o| match o {
                TxnOp::Put { key, value, .. } => key.key.len() + value.len(),
                _ => 16,
            })
            .sum::<usize>()
            .max(16),
        _ => 16,
    }
}

impl Batcher {
    /// `timeout`: how long a proposal may stay unanswered before its
    /// writes are answered [`ConsensusError::Timeout`] and the next batch
    /// goes (see [`propose`]).
    pub(crate) fn spawn(raft: Raft, clock: Clock, timeout: Duration) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(BatchStats::default());
        tokio::spawn(run(raft, clock, timeout, rx, stats.clone()));
        Batcher { tx, stats }
    }

    pub(crate) fn stats(&self) -> &BatchStats {
        &self.stats
    }

    /// Queue `op`; the receiver answers once its batch is applied (or
    /// refused as a whole, e.g. because this node does not lead).
    pub(crate) fn submit(
        &self,
        op: Op,
    ) -> Result<oneshot::Receiver<Result<Attempt, ConsensusError>>, ConsensusError> {
        let (reply, rx) = oneshot::channel();
        let span = Span::current();
        match self.tx.try_send(Pending { op, reply, span }) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => Err(ConsensusError::Unavailable(
                "too many writes are waiting on this node; retry shortly".into(),
            )),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(ConsensusError::ShuttingDown),
        }
    }
}

async fn run(
    raft: Raft,
    clock: Clock,
    timeout: Duration,
    mut rx: mpsc::Receiver<Pending>,
    stats: Arc<BatchStats>,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Wait for a slot first: writes that queue meanwhile join this batch.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        gather(&rx).await;
        let mut bytes = weight(&first.op);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_OPS && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += weight(&p.op);
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        let clock = clock.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let (started, ops) = (Instant::now(), batch.len() as u64);
            propose(&raft, &clock, timeout, batch).await;
            drop(permit);
            let took = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            stats.proposals.fetch_add(1, Relaxed);
            stats.ops.fetch_add(ops, Relaxed);
            stats.nanos.fetch_add(took, Relaxed);
        });
    }
}

/// Before a batch is cut: yield to the scheduler while writes keep arriving.
/// The writers the previous batch just answered are usually on their way
/// back with their next write; this lets them join the batch rather than
/// wait a whole round (without it, 64 writers settle into two alternating
/// batches of 32).
pub(crate) async fn gather<T>(rx: &mpsc::Receiver<T>) {
    let mut queued = rx.len();
    for i in 0..MAX_GATHER_YIELDS {
        tokio::task::yield_now().await;
        let now = rx.len();
        if now == queued && i >= MIN_GATHER_YIELDS {
            break;
        }
        queued = now;
    }
}

/// The span of one proposal: a child of the first traced write's span,
/// following from the other traced writes'; none when no write is traced.
fn propose_span(batch: &[Pending]) -> Span {
    let mut traced = batch.iter().filter(|p| !p.span.is_none());
    let Some(first) = traced.next() else {
        return Span::none();
    };
    let span = tracing::info_span!(
        parent: &first.span,
        "raft.propose",
        rsp.ops = batch.len(),
        rsp.log_index = tracing::field::Empty,
    );
    for p in traced {
        span.follows_from(&p.span);
    }
    span
}

/// Propose `batch` as one entry and answer its writes.
///
/// The wait is bounded: openraft answers an entry a leader appended only
/// when this node applies it or the entry is truncated, and a leader that
/// removed itself from the membership does neither (the next leader
/// commits the entry; this node hears of it no more). Unbounded, that
/// proposal would hold the only slot and stop every later write here; so
/// it ends at `timeout`, or as soon as this node is out of the membership.
async fn propose(raft: &Raft, clock: &Clock, timeout: Duration, mut batch: Vec<Pending>) {
    let single = batch.len() == 1;
    let span = propose_span(&batch);
    let (ops, replies): (Vec<Op>, Vec<Reply>) = batch.drain(..).map(|p| (p.op, p.reply)).unzip();
    let op = if single {
        ops.into_iter().next().unwrap_or(Op::Tick)
    } else {
        Op::Batch(ops)
    };
    let write = raft
        .client_write(Command::new(clock.now_ms(), op))
        .instrument(span.clone());
    // A node that is not the leader refuses the proposal at once; one that
    // leads and then leaves the membership never answers it.
    let leads = raft.metrics().borrow().state == openraft::ServerState::Leader;
    let wait = raft.wait(Some(timeout));
    let removed = async {
        if !leads {
            return std::future::pending().await;
        }
        wait.metrics(
            |m| {
                m.state != openraft::ServerState::Leader
                    && m.membership_config.membership().get_node(&m.id).is_none()
            },
            "removed from the membership",
        )
        .await
    };
    let result = tokio::select! {
        biased;
        r = tokio::time::timeout(timeout, write) => r.ok(),
        // No answer will come: answer now rather than at the deadline.
        Ok(_) = removed => None,
    };
    let Some(result) = result else {
        tracing::warn!(
            writes = replies.len(),
            "a proposal was not answered; its outcome is unknown"
        );
        for reply in replies {
            let _ = reply.send(Err(ConsensusError::Timeout));
        }
        return;
    };
    match result {
        Ok(resp) => {
            let index = resp.log_id.index;
            span.record("rsp.log_index", index);
            match (single, resp.data) {
                (false, Response::Batch(answers)) if answers.len() == replies.len() => {
                    for (reply, answer) in replies.into_iter().zip(answers) {
                        let _ = reply.send(Ok(Attempt::Done(answer, index)));
                    }
                }
                (true, answer) => {
                    for reply in replies {
                        let _ = reply.send(Ok(Attempt::Done(answer.clone(), index)));
                    }
                }
                (false, other) => {
                    // A whole-batch refusal (e.g. an unsupported format).
                    for reply in replies {
                        let _ = reply.send(Ok(Attempt::Done(other.clone(), index)));
                    }
                }
            }
        }
        Err(RE::APIError(CWE::ForwardToLeader(f))) => {
            let leader = f.leader_id.zip(f.leader_node);
            for reply in replies {
                let _ = reply.send(Ok(Attempt::Forward(leader.clone())));
            }
        }
        Err(RE::APIError(CWE::ChangeMembershipError(e))) => {
            for reply in replies {
                let _ = reply.send(Err(ConsensusError::Internal(e.to_string())));
            }
        }
        // Raft stopped (a shutdown) with the entry proposed: the next
        // leader may still commit it, so its outcome is unknown. Never
        // "shutting down", which callers may take for "not written" and
        // send again (a compare-and-set applied twice).
        Err(RE::Fatal(_)) => {
            for reply in replies {
                let _ = reply.send(Err(ConsensusError::Timeout));
            }
        }
    }
}
