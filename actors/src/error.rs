//! The crate's one error type. Each variant has a stable [`ActorError::code`]
//! and, where retrying later helps, a [`ActorError::retry_after`]; the API
//! maps them to HTTP once (429/503 with `Retry-After`, 401, 423, 504...).

use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};
use rsp_consensus::ConsensusError;
use rsp_consensus::clock::{SystemClock, TimeSource};
use rsp_policies::PolicyError;
use tracing::Instrument as _;

/// A per-tenant quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quota {
    /// Requests per second through this tenant's handle (node share).
    RequestsPerSecond,
    /// Live sessions stored for the tenant.
    Sessions,
}

impl Quota {
    pub fn as_str(self) -> &'static str {
        match self {
            Quota::RequestsPerSecond => "requests_per_second",
            Quota::Sessions => "sessions",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ActorError {
    /// The tenant already has its maximum of calls in flight on this node.
    #[error("tenant {tenant} is overloaded on this node")]
    Overloaded {
        tenant: String,
        retry_after: Duration,
    },
    #[error("quota {} exceeded (limit {limit})", quota.as_str())]
    QuotaExceeded {
        quota: Quota,
        limit: u64,
        retry_after: Option<Duration>,
    },
    #[error("rate limit {kind} exceeded")]
    RateLimited { kind: String, retry_after: Duration },
    /// Too many failed logins; the account is locked until `until_ms`
    /// (Unix milliseconds).
    #[error("the account is temporarily locked")]
    Locked { until_ms: u64 },
    /// The tenant's actors failed more often than the restart budget allows.
    #[error("tenant {tenant} is degraded")]
    Degraded {
        tenant: String,
        retry_after: Duration,
    },
    /// The actor that serves this call is being restarted.
    #[error("a tenant actor is restarting")]
    Restarting { retry_after: Duration },
    /// An actor did not answer in time.
    #[error("the tenant actor did not answer in time")]
    Timeout,
    /// Unknown, expired and revoked sessions look the same to callers.
    #[error("session not found, expired or revoked")]
    SessionNotFound,
    #[error("invalid tenant id: {0}")]
    InvalidTenant(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// No quorum could be reached; nothing stale was answered.
    #[error("the cluster is unavailable: {0}")]
    Unavailable(String),
    /// A write was sent but not answered in time: it may have been applied.
    #[error("no answer in time; the outcome of the write is unknown")]
    OutcomeUnknown,
    #[error("too many concurrent updates of {0}; retry")]
    Contention(String),
    #[error("the runtime is shutting down")]
    ShuttingDown,
    #[error("internal: {0}")]
    Internal(String),
}

impl ActorError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ActorError::Overloaded { .. } => "overloaded",
            ActorError::QuotaExceeded { .. } => "quota_exceeded",
            ActorError::RateLimited { .. } => "rate_limited",
            ActorError::Locked { .. } => "account_locked",
            ActorError::Degraded { .. } => "tenant_degraded",
            ActorError::Restarting { .. } => "restarting",
            ActorError::Timeout => "timeout",
            ActorError::SessionNotFound => "session_not_found",
            ActorError::InvalidTenant(_) => "invalid_tenant",
            ActorError::InvalidInput(_) => "invalid_input",
            ActorError::Unavailable(_) => "unavailable",
            ActorError::OutcomeUnknown => "outcome_unknown",
            ActorError::Contention(_) => "contention",
            ActorError::ShuttingDown => "shutting_down",
            ActorError::Internal(_) => "internal",
        }
    }

    /// [`Self::retry_after`] as a `Retry-After` header wants it: whole
    /// seconds, rounded up (a client that waits less is refused again), at
    /// least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after()
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .map(|secs| secs.max(1))
    }

    /// How long a client should wait before retrying, where that helps.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ActorError::Overloaded { retry_after, .. }
            | ActorError::RateLimited { retry_after, .. }
            | ActorError::Degraded { retry_after, .. }
            | ActorError::Restarting { retry_after } => Some(*retry_after),
            ActorError::QuotaExceeded { retry_after, .. } => *retry_after,
            ActorError::Locked { until_ms } => Some(Duration::from_millis(
                until_ms.saturating_sub(SystemClock.now_ms()),
            )),
            ActorError::Unavailable(_) | ActorError::Contention(_) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

impl From<ConsensusError> for ActorError {
    fn from(e: ConsensusError) -> Self {
        match e {
            ConsensusError::Unavailable(m) => ActorError::Unavailable(m),
            ConsensusError::Timeout => ActorError::OutcomeUnknown,
            ConsensusError::BadRequest(m) => ActorError::InvalidInput(m),
            ConsensusError::ShuttingDown => ActorError::ShuttingDown,
            other => ActorError::Internal(other.to_string()),
        }
    }
}

impl From<PolicyError> for ActorError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::Consensus(c) => c.into(),
            PolicyError::Conflict => ActorError::Contention("the policy store".into()),
            other => ActorError::Internal(format!("policies: {other}")),
        }
    }
}

/// How long callers are told to wait while an actor restarts.
pub(crate) const RESTART_RETRY: Duration = Duration::from_millis(200);

/// `actor.call` with a timeout, its failures mapped to [`ActorError`]; the
/// span `actor.call` names the message type (`rsp.message`), never its
/// contents.
pub(crate) async fn call<M, T>(
    actor: &ActorRef<M>,
    build: impl FnOnce(RpcReplyPort<T>) -> M,
    timeout: Duration,
) -> Result<T, ActorError>
where
    M: Message,
    T: Send + 'static,
{
    let message = std::any::type_name::<M>();
    let message = message.rsplit("::").next().unwrap_or(message);
    let span = tracing::info_span!("actor.call", rsp.message = message);
    match actor.call(build, Some(timeout)).instrument(span).await {
        Ok(CallResult::Success(t)) => Ok(t),
        Ok(CallResult::Timeout) => Err(ActorError::Timeout),
        // The actor died with the message in its mailbox, or before it.
        Ok(CallResult::SenderError) | Err(_) => Err(ActorError::Restarting {
            retry_after: RESTART_RETRY,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_secs_rounds_up_to_whole_seconds() {
        let limited = |ms| ActorError::RateLimited {
            kind: "token".into(),
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(limited(2_500).retry_after_secs(), Some(3));
        assert_eq!(limited(3_000).retry_after_secs(), Some(3));
        assert_eq!(limited(200).retry_after_secs(), Some(1));
        assert_eq!(limited(0).retry_after_secs(), Some(1));
        assert_eq!(ActorError::SessionNotFound.retry_after_secs(), None);
    }
}
