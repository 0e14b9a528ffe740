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
//! extra burst share. Durable, exact limits (failed logins) are in
//! [`crate::lockout`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::bucket::TokenBucket;
use crate::error::{ActorError, RESTART_RETRY, call};
use crate::tenant::{TenantHandle, TenantShared};

pub(crate) struct RateLimiter;

pub(crate) struct RateLimiterState {
    shared: Arc<TenantShared>,
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
    Fault(crate::tenant::Fault),
}

impl Actor for RateLimiter {
    type Msg = LimiterMsg;
    type State = RateLimiterState;
    type Arguments = Arc<TenantShared>;

    async fn pre_start(
        &self,
        myself: ActorRef<LimiterMsg>,
        shared: Arc<TenantShared>,
    ) -> Result<RateLimiterState, ActorProcessingErr> {
        shared
            .children
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .limiter = Some(myself);
        let members = shared.share.members();
        Ok(RateLimiterState {
            shared,
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
            LimiterMsg::Fault(f) => crate::runtime::apply_fault(f).await,
        }
        Ok(())
    }
}

impl RateLimiterState {
    fn check(&mut self, kind: String, key: String, cost: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let limits = &self.shared.config.rate_limits;
        let members = self.shared.share.members();
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

/// Rate limits of one tenant on this node.
#[derive(Clone)]
pub struct RateLimitService {
    pub(crate) h: TenantHandle,
}

impl RateLimitService {
    /// Take one token from the bucket (`kind`, `key`), or fail with
    /// [`ActorError::RateLimited`] and how long to wait.
    pub async fn check(&self, kind: &str, key: &str) -> Result<(), ActorError> {
        self.check_cost(kind, key, 1.0).await
    }

    /// Take `cost` tokens at once.
    pub async fn check_cost(&self, kind: &str, key: &str, cost: f64) -> Result<(), ActorError> {
        let p = self.h.enter().await?;
        if p.shared.config.rate_limits.unlimited.contains(kind) {
            return Ok(());
        }
        let actor = p
            .shared
            .children
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .limiter
            .clone()
            .ok_or(ActorError::Restarting {
                retry_after: RESTART_RETRY,
            })?;
        let (kind, key) = (kind.to_string(), key.to_string());
        let result = call(
            &actor,
            |reply| LimiterMsg::Check {
                kind: kind.clone(),
                key,
                cost,
                reply,
            },
            p.shared.config.call_timeout,
        )
        .await?;
        result.map_err(|retry_after| {
            p.shared.metrics.rate_limited(&kind);
            ActorError::RateLimited { kind, retry_after }
        })
    }
}
