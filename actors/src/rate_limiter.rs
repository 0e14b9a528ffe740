//! The rate limiter actor of one tenant: token buckets keyed by
//! (kind, key), e.g. ("token", client id), ("login", IP address), in memory
//! on this node.
//!
//! Cluster-wide semantics: every node enforces its share of each rule
//! (`rate / members`, burst `max(burst / members, 1)`), with the member
//! count re-read from the Raft membership at most once a second and the
//! buckets rescaled when it changes. With traffic spread evenly over the
//! nodes the cluster admits the configured rate; traffic concentrated on
//! one node gets only that node's share (stricter, never looser). Buckets
//! start full, so a restart of this actor or of a node can let through one
//! extra burst share. Durable, exact limits (failed logins) are the
//! lockout service's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::actor_slot::ActorSlot;
use crate::bucket::{ClusterShare, TokenBucket};
use crate::config::RuntimeConfig;

pub(crate) struct RateLimiter;

/// What a rate limiter is given by its tenant supervisor.
pub(crate) struct RateLimiterArgs {
    /// Its rules are `config.rate_limits`.
    pub config: Arc<RuntimeConfig>,
    pub share: Arc<ClusterShare>,
    /// Where the actor publishes itself as it starts.
    pub slot: Arc<ActorSlot<LimiterMsg>>,
}

pub(crate) struct RateLimiterState {
    config: Arc<RuntimeConfig>,
    share: Arc<ClusterShare>,
    buckets: HashMap<(String, String), TokenBucket>,
    members: usize,
}

pub(crate) enum LimiterMsg {
    Check {
        kind: String,
        key: String,
        cost: f64,
        /// `Err(retry_after)` when refused.
        reply: RpcReplyPort<Result<(), Duration>>,
    },
    #[cfg(feature = "testing")]
    Fault(crate::fault::Fault),
}

impl Actor for RateLimiter {
    type Msg = LimiterMsg;
    type State = RateLimiterState;
    type Arguments = RateLimiterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<LimiterMsg>,
        args: RateLimiterArgs,
    ) -> Result<RateLimiterState, ActorProcessingErr> {
        args.slot.publish(myself);
        let members = args.share.members();
        Ok(RateLimiterState {
            config: args.config,
            share: args.share,
            buckets: HashMap::new(),
            members,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<LimiterMsg>,
        msg: LimiterMsg,
        state: &mut RateLimiterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LimiterMsg::Check {
                kind,
                key,
                cost,
                reply,
            } => {
                let result = state.check(kind, key, cost);
                let _ = reply.send(result);
            }
            #[cfg(feature = "testing")]
            LimiterMsg::Fault(f) => crate::fault::apply_fault(f).await,
        }
        Ok(())
    }
}

impl RateLimiterState {
    fn check(&mut self, kind: String, key: String, cost: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let limits = &self.config.rate_limits;
        let members = self.share.members();
        if members != self.members {
            self.members = members;
            for ((kind, _), bucket) in self.buckets.iter_mut() {
                bucket.rescale(limits.rule(kind), members, now);
            }
        }
        if self.buckets.len() >= limits.max_keys {
            // Full buckets carry no information: forget them.
            self.buckets.retain(|_, b| !b.is_full(now));
        }
        let rule = limits.rule(&kind);
        let bucket = self
            .buckets
            .entry((kind, key))
            .or_insert_with(|| TokenBucket::share(rule, members, now));
        bucket.try_take(cost, now)
    }
}
