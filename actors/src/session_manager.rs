//! The session manager actor of one tenant.
//!
//! State (rebuilt from storage whenever the actor starts, so a restart after
//! a panic loses nothing): the set of live session fingerprints in this
//! node's applied state (for the stored-objects quota and the gauge),
//! creations queued and in flight, and touches in flight (so a hot session
//! is touched once at a time). It stays current through watch events that
//! the node's watch dispatcher casts to it.
//!
//! Writes never block the mailbox: the actor decides, then a task runs the
//! Raft write and answers the callers; the task reports back with a cast.
//! Creations that arrive while `MAX_CREATE_WRITES` transactions are in
//! flight queue up and go out together in the next transaction.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rsp_consensus::Consistency;

use crate::actor_slot::ActorSlot;
use crate::error::{ActorError, Quota};
use crate::features::ClusterFeatures;
use crate::keys::SESSION_PREFIX;
use crate::metrics::TenantMetrics;
use crate::session::{Session, SessionHandle, SessionInfo, fingerprint};
use crate::session_writes::{
    CreateRequest, MAX_BATCH, NewSession, SessionStore, write_batch, write_touch,
};

/// Touches in flight per tenant and node, beyond which touches are skipped.
const MAX_TOUCHING: usize = 10_000;
/// Creation transactions in flight per tenant and node. The consensus layer
/// batches concurrent transactions into one log entry, so this only bounds
/// the work in flight; at 16, 64 callers left the leader's entries a third
/// empty (24 sessions per entry instead of 63; sessions bench).
const MAX_CREATE_WRITES: usize = 64;

pub(crate) struct SessionManager;

/// What a session manager is given by its tenant supervisor.
pub(crate) struct SessionManagerArgs {
    pub store: Arc<SessionStore>,
    /// The tenant's quota of live sessions.
    pub max_sessions: u64,
    pub metrics: TenantMetrics,
    pub features: Arc<ClusterFeatures>,
    /// Touch requests cast to this actor and not yet taken (counted up by
    /// the tenant's session service, which bounds them).
    pub pending_touches: Arc<AtomicUsize>,
    /// Where the actor publishes itself as it starts.
    pub slot: Arc<ActorSlot<SessionMsg>>,
}

pub(crate) struct SessionManagerState {
    store: Arc<SessionStore>,
    max_sessions: u64,
    metrics: TenantMetrics,
    features: Arc<ClusterFeatures>,
    pending_touches: Arc<AtomicUsize>,
    live: HashSet<u64>,
    /// Creations accepted and not yet answered (queued or being written).
    creating: u64,
    queue: VecDeque<NewSession>,
    create_writes: usize,
    touching: HashSet<u64>,
}

pub(crate) enum SessionMsg {
    Create {
        req: CreateRequest,
        reply: RpcReplyPort<Result<Session, ActorError>>,
    },
    /// A creation transaction finished: fingerprints and whether stored.
    Created(Vec<(u64, bool)>),
    /// Slide the idle timeout. Without a reply port it is best effort.
    Touch {
        handle: SessionHandle,
        reply: Option<RpcReplyPort<Result<SessionInfo, ActorError>>>,
    },
    TouchDone {
        fp: u64,
    },
    /// A `session/<handle>` key changed in this node's applied state.
    Changed {
        fp: u64,
        live: bool,
    },
    /// Rebuild the live set from storage (after missed watch events).
    Resync,
    Count(RpcReplyPort<u64>),
    #[cfg(feature = "testing")]
    Fault(crate::fault::Fault),
}

impl Actor for SessionManager {
    type Msg = SessionMsg;
    type State = SessionManagerState;
    type Arguments = SessionManagerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        args: SessionManagerArgs,
    ) -> Result<SessionManagerState, ActorProcessingErr> {
        // Touches queued to a previous incarnation died with it.
        args.pending_touches.store(0, Ordering::Relaxed);
        // Publish before loading: watch events from now on reach this actor
        // and queue behind the load; earlier ones are in what it loads.
        args.slot.publish(myself);
        Ok(SessionManagerState {
            store: args.store,
            max_sessions: args.max_sessions,
            metrics: args.metrics,
            features: args.features,
            pending_touches: args.pending_touches,
            live: HashSet::new(),
            creating: 0,
            queue: VecDeque::new(),
            create_writes: 0,
            touching: HashSet::new(),
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<SessionMsg>,
        state: &mut SessionManagerState,
    ) -> Result<(), ActorProcessingErr> {
        state.reload().await?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionManagerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Create { req, reply } => {
                state.accept(req, reply);
                state.flush(&myself);
            }
            SessionMsg::Created(results) => {
                state.create_writes -= 1;
                state.creating = state.creating.saturating_sub(results.len() as u64);
                state
                    .live
                    .extend(results.iter().filter(|r| r.1).map(|r| r.0));
                state.publish();
                state.flush(&myself);
            }
            SessionMsg::Touch { handle, reply } => {
                if reply.is_none() {
                    state.pending_touches.fetch_sub(1, Ordering::Relaxed);
                }
                state.touch(myself, handle, reply);
            }
            SessionMsg::TouchDone { fp } => {
                state.touching.remove(&fp);
            }
            SessionMsg::Changed { fp, live } => {
                if live {
                    state.live.insert(fp);
                } else {
                    state.live.remove(&fp);
                }
                state.publish();
            }
            SessionMsg::Resync => state.reload().await?,
            SessionMsg::Count(reply) => {
                let _ = reply.send(state.live.len() as u64);
            }
            #[cfg(feature = "testing")]
            SessionMsg::Fault(f) => crate::fault::apply_fault(f).await,
        }
        Ok(())
    }
}

impl SessionManagerState {
    async fn reload(&mut self) -> Result<(), ActorError> {
        let (kvs, _) = self
            .store
            .consensus
            .range(
                &self.store.keyspace,
                SESSION_PREFIX,
                usize::MAX,
                Consistency::Local,
            )
            .await?;
        self.live = kvs
            .iter()
            .map(|kv| fingerprint(&kv.key.key[SESSION_PREFIX.len()..]))
            .collect();
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        self.metrics.active_sessions.set(self.live.len() as i64);
    }

    /// Check the quota and queue the creation.
    fn accept(&mut self, req: CreateRequest, reply: RpcReplyPort<Result<Session, ActorError>>) {
        let limit = self.max_sessions;
        if self.live.len() as u64 + self.creating >= limit {
            self.metrics.quota_rejected(Quota::Sessions);
            let _ = reply.send(Err(ActorError::QuotaExceeded {
                quota: Quota::Sessions,
                limit,
                retry_after: None,
            }));
            return;
        }
        self.creating += 1;
        let tagged = self.features.session_user_tag();
        self.queue.push_back(NewSession::new(req, tagged, reply));
    }

    /// Start creation transactions for queued sessions, up to the limit.
    fn flush(&mut self, myself: &ActorRef<SessionMsg>) {
        while self.create_writes < MAX_CREATE_WRITES && !self.queue.is_empty() {
            let n = self.queue.len().min(MAX_BATCH);
            let batch: Vec<NewSession> = self.queue.drain(..n).collect();
            self.create_writes += 1;
            let (store, myself) = (self.store.clone(), myself.clone());
            tokio::spawn(async move {
                let results = write_batch(&store, batch).await;
                let outcome = results.iter().map(|(s, r)| (s.fingerprint(), r.is_ok()));
                let _ = myself.cast(SessionMsg::Created(outcome.collect()));
                for (s, r) in results {
                    s.answer(r);
                }
            });
        }
    }

    fn touch(
        &mut self,
        myself: ActorRef<SessionMsg>,
        handle: SessionHandle,
        reply: Option<RpcReplyPort<Result<SessionInfo, ActorError>>>,
    ) {
        let fp = handle.fingerprint();
        let busy = self.touching.len() >= MAX_TOUCHING || self.touching.contains(&fp);
        if reply.is_none() && busy {
            return;
        }
        self.touching.insert(fp);
        let store = self.store.clone();
        tokio::spawn(async move {
            let result = write_touch(&store, &handle).await;
            let _ = myself.cast(SessionMsg::TouchDone { fp });
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
        });
    }
}
