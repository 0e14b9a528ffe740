//! One incarnation of a tenant on one node (`TenantShared`): the state
//! its actors, services and handles share, its children (`Children`,
//! [`ChildKind`]), its lifecycle (`Phase`) and admission to it (bounded
//! in-flight calls and the requests-per-second quota, `Permit`).
//!
//! An incarnation lives from the node supervisor starting the tenant until
//! it stops (idle, degraded, shutdown); the next use starts a new one.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsp_consensus::Consensus;
use rsp_consensus::kv::tenant_keyspace;

use crate::actor_slot::ActorSlot;
use crate::bucket::{ClusterShare, TokenBucket};
use crate::config::{RateRule, RuntimeConfig, TenantLimits};
use crate::error::{ActorError, Quota};
use crate::features::ClusterFeatures;
use crate::metrics::TenantMetrics;
use crate::policy_evaluator::{PolicyCell, PolicyMsg};
use crate::rate_limiter::LimiterMsg;
use crate::session_manager::SessionMsg;

/// The actors a tenant supervisor owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    Sessions,
    RateLimiter,
    Policy,
}

impl ChildKind {
    pub const ALL: [ChildKind; 3] = [
        ChildKind::Sessions,
        ChildKind::RateLimiter,
        ChildKind::Policy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChildKind::Sessions => "sessions",
            ChildKind::RateLimiter => "rate_limiter",
            ChildKind::Policy => "policy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Starting = 0,
    Running = 1,
    Stopping = 2,
    Stopped = 3,
    Degraded = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Starting,
            1 => Phase::Running,
            2 => Phase::Stopping,
            3 => Phase::Stopped,
            _ => Phase::Degraded,
        }
    }
}

/// Current references to the tenant's actors; each child publishes itself
/// in its slot when it starts (also after a restart).
#[derive(Default)]
pub(crate) struct Children {
    pub sessions: Arc<ActorSlot<SessionMsg>>,
    pub limiter: Arc<ActorSlot<LimiterMsg>>,
    pub policy: Arc<ActorSlot<PolicyMsg>>,
}

impl Children {
    /// Forget the child of `kind` (it stopped or failed).
    pub fn clear(&self, kind: ChildKind) {
        match kind {
            ChildKind::Sessions => self.sessions.clear(),
            ChildKind::RateLimiter => self.limiter.clear(),
            ChildKind::Policy => self.policy.clear(),
        }
    }

    /// Stop every child still published.
    pub fn stop_all(&self) {
        self.sessions.get().iter().for_each(|a| a.stop(None));
        self.limiter.get().iter().for_each(|a| a.stop(None));
        self.policy.get().iter().for_each(|a| a.stop(None));
    }
}

/// One incarnation of a tenant on this node, shared by its actors,
/// services and handles.
pub(crate) struct TenantShared {
    pub tenant: String,
    pub keyspace: String,
    pub consensus: Consensus,
    pub config: Arc<RuntimeConfig>,
    pub limits: TenantLimits,
    pub metrics: TenantMetrics,
    pub share: Arc<ClusterShare>,
    pub features: Arc<ClusterFeatures>,
    pub policy_source: rsp_policies::SnapshotSource,
    /// The policy evaluator's published snapshot.
    pub snapshot: Arc<PolicyCell>,
    pub children: Children,
    pub restarts: AtomicU64,
    /// Touch requests cast to the session manager and not yet taken.
    pub pending_touches: Arc<AtomicUsize>,
    phase: AtomicU8,
    in_flight: AtomicUsize,
    born: Instant,
    last_used_ms: AtomicU64,
    degraded: Mutex<Option<(Instant, String)>>,
    requests: Mutex<(TokenBucket, usize)>,
}

/// Whether an admitted call takes a token of the tenant's
/// requests-per-second quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metered {
    Yes,
    /// Bounded by in-flight calls only (authorization decisions: a policy
    /// decision point's traffic is of another order than logins, and a
    /// decision is a read of published state).
    No,
}

/// An admitted call; dropping it frees the slot.
pub(crate) struct Permit {
    pub shared: Arc<TenantShared>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let left = self.shared.in_flight.fetch_sub(1, SeqCst).saturating_sub(1);
        self.shared.metrics.in_flight.set(left as i64);
    }
}

impl TenantShared {
    pub fn new(
        tenant: &str,
        consensus: Consensus,
        config: Arc<RuntimeConfig>,
        metrics: TenantMetrics,
        share: Arc<ClusterShare>,
        features: Arc<ClusterFeatures>,
        policy_source: rsp_policies::SnapshotSource,
    ) -> TenantShared {
        let limits = config.limits_for(tenant);
        let now = Instant::now();
        let members = share.members();
        let bucket = TokenBucket::share(request_rule(&limits), members, now);
        TenantShared {
            tenant: tenant.to_string(),
            keyspace: tenant_keyspace(tenant),
            consensus,
            config,
            limits,
            metrics,
            share,
            features,
            policy_source,
            snapshot: Arc::default(),
            children: Children::default(),
            restarts: AtomicU64::new(0),
            pending_touches: Arc::default(),
            phase: AtomicU8::new(Phase::Starting as u8),
            in_flight: AtomicUsize::new(0),
            born: now,
            last_used_ms: AtomicU64::new(0),
            degraded: Mutex::new(None),
            requests: Mutex::new((bucket, members)),
        }
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(SeqCst))
    }

    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, SeqCst);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(SeqCst)
    }

    pub fn idle_for(&self) -> Duration {
        let used = Duration::from_millis(self.last_used_ms.load(SeqCst));
        self.born.elapsed().saturating_sub(used)
    }

    /// Admit a call. `Ok(None)`: this incarnation of the tenant is not
    /// running (stopping or stopped); the caller asks the runtime again.
    /// `metered`: the call also takes a token of the tenant's
    /// requests-per-second quota.
    pub fn admit(self: &Arc<Self>, metered: Metered) -> Result<Option<Permit>, ActorError> {
        match self.phase() {
            Phase::Running => {}
            Phase::Degraded => return Err(self.degraded_error()),
            _ => return Ok(None),
        }
        let before = self.in_flight.fetch_add(1, SeqCst);
        let permit = Permit {
            shared: self.clone(),
        };
        if before >= self.limits.max_in_flight {
            self.metrics.overloaded.inc();
            return Err(ActorError::Overloaded {
                tenant: self.tenant.clone(),
                retry_after: self.config.overload_retry_after,
            });
        }
        // Checked after counting ourselves in: the idle sweep sets Stopping
        // before it looks at the count, so one of the two sees the other.
        if self.phase() != Phase::Running {
            return Ok(None);
        }
        if metered == Metered::Yes && self.limits.requests_per_sec > 0.0 {
            self.take_request_token()?;
        }
        self.last_used_ms
            .store(self.born.elapsed().as_millis() as u64, SeqCst);
        self.metrics.in_flight.set((before + 1) as i64);
        Ok(Some(permit))
    }

    fn take_request_token(&self) -> Result<(), ActorError> {
        let members = self.share.members();
        let now = Instant::now();
        let mut guard = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let (bucket, seen) = &mut *guard;
        if *seen != members {
            bucket.rescale(request_rule(&self.limits), members, now);
            *seen = members;
        }
        bucket.try_take(1.0, now).map_err(|wait| {
            self.metrics.quota_rejected(Quota::RequestsPerSecond);
            ActorError::QuotaExceeded {
                quota: Quota::RequestsPerSecond,
                limit: self.limits.requests_per_sec as u64,
                retry_after: Some(wait),
            }
        })
    }

    /// Running -> Stopping if idle and nothing is in flight.
    pub fn try_begin_idle_stop(&self, idle: Duration) -> bool {
        if self.idle_for() < idle || self.in_flight() > 0 {
            return false;
        }
        let running = Phase::Running as u8;
        if self
            .phase
            .compare_exchange(running, Phase::Stopping as u8, SeqCst, SeqCst)
            .is_err()
        {
            return false;
        }
        if self.in_flight() > 0 {
            self.set_phase(Phase::Running);
            return false;
        }
        true
    }

    pub fn mark_degraded(&self, reason: String) {
        tracing::error!(tenant = %self.tenant, %reason, "tenant degraded");
        *self.degraded.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), reason));
        self.set_phase(Phase::Degraded);
        self.metrics.degraded.set(1);
    }

    /// Since when and why the tenant is degraded.
    pub fn degraded_info(&self) -> Option<(Instant, String)> {
        self.degraded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Time left before a degraded tenant may start again.
    pub fn cooldown_left(&self) -> Duration {
        self.degraded_info().map_or(Duration::ZERO, |(since, _)| {
            self.config
                .degraded_cooldown
                .saturating_sub(since.elapsed())
        })
    }

    pub fn degraded_error(&self) -> ActorError {
        ActorError::Degraded {
            tenant: self.tenant.clone(),
            retry_after: self.cooldown_left().max(Duration::from_secs(1)),
        }
    }
}

fn request_rule(limits: &TenantLimits) -> RateRule {
    RateRule {
        per_sec: limits.requests_per_sec,
        burst: limits.request_burst,
    }
}
