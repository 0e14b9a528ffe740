//! rsp-actors: each tenant's live machinery on a node, as supervised
//! `ractor` actors over the replicated store of `rsp-consensus`.
//!
//! Parts:
//! - [`runtime`]: [`TenantRuntime`], the node-level handle, and the node
//!   supervisor that starts a tenant on first use and stops it when idle.
//! - `supervisor`: the tenant supervisor; it spawn-links the tenant's
//!   actors, restarts failed ones (state reloads from storage) within a
//!   budget, and marks the tenant degraded beyond it.
//! - [`tenant`]: [`TenantHandle`] and admission (bounded in-flight calls →
//!   [`ActorError::Overloaded`], requests-per-second quota).
//! - [`session`], `session_manager`, `session_writes`, [`session_service`]:
//!   sessions stored through Raft with TTLs (creations batched), validated
//!   by a local read, revoked everywhere before revoke returns.
//! - [`ratelimit`], [`bucket`]: per-node shares of cluster-wide token buckets.
//! - [`lockout`]: exact, durable failed-login lockout (CAS through Raft).
//! - [`policy`]: the evaluator actor: the tenant's Cedar snapshot, loaded
//!   from storage, reloaded on `policy/head` changes, published for direct
//!   reads by decisions.
//! - `read`: the local-read rule revocations rely on; `dispatch`: watch
//!   events to tenant actors; [`metrics`], [`health`], [`config`], [`error`].
//!
//! State that must survive a node lives in the replicated key-value store
//! (keyspace `t.<tenant>`); actors hold only what can be rebuilt from it.
//! See docs/actors.md for the guarantees and their bounds.
//!
//! Not for: HTTP (the API layer maps [`ActorError`] once, at its edge),
//! password hashing or token formats, and anything needing cross-node
//! actor messaging: actors stay node-local, nodes talk only through Raft.

pub(crate) mod base64url;
pub mod bucket;
pub(crate) mod codec;
pub mod config;
pub(crate) mod dispatch;
pub mod error;
pub mod features;
pub mod health;
pub(crate) mod keys;
pub mod lockout;
pub mod metrics;
pub mod policy;
pub mod ratelimit;
pub(crate) mod read;
pub mod runtime;
pub mod session;
pub(crate) mod session_manager;
pub mod session_service;
pub(crate) mod session_writes;
pub(crate) mod supervisor;
pub mod tenant;

pub use config::{
    KIND_LOGIN, KIND_TOKEN, LockoutPolicy, RateLimits, RateRule, RestartPolicy, RuntimeConfig,
    SessionPolicy, TenantLimits,
};
pub use error::{ActorError, Quota};
pub use health::{RuntimeHealth, TenantHealth, TenantStatus};
pub use lockout::{AttemptGuard, LockoutService, LockoutStatus};
pub use metrics::ActorMetrics;
pub use policy::PolicyService;
pub use ratelimit::RateLimitService;
pub use runtime::TenantRuntime;
pub use session::{Revocation, Session, SessionHandle, SessionId, SessionInfo};
pub use session_service::SessionService;
#[cfg(feature = "testing")]
pub use session_writes::legacy_session_txn;
#[cfg(feature = "testing")]
pub use tenant::Fault;
pub use tenant::{ChildKind, TenantHandle};
