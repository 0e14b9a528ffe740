//! rsp-actors: each tenant's live machinery on a node, as supervised
//! `ractor` actors over the replicated store of `rsp-consensus`.
//!
//! Parts, from the API down:
//! - [`runtime`]: [`TenantRuntime`], the node-level handle; it starts the
//!   node's tenant machinery and hands out tenant handles.
//! - [`handle`]: [`TenantHandle`], one tenant's services; it owns the
//!   tenant's `admission` (bounded in-flight calls → [`ActorError::Overloaded`],
//!   the requests-per-second quota, restart after an idle stop) and gives
//!   each service a copy.
//! - The services the API calls: [`session_service`] (sessions stored
//!   through Raft with TTLs, validated by a local read under the rule in
//!   `read`, revoked everywhere before revoke returns), [`rate_limit_service`],
//!   [`lockout`] (exact, durable failed-login lockout, CAS through Raft) and
//!   [`policy_service`] (decisions on the tenant's published Cedar snapshot).
//! - The tenant's actors, each given what it needs by its supervisor and
//!   publishing itself in an `actor_slot`: `session_manager` (live set,
//!   quota, batched creations and touches, written by `session_writes`),
//!   `rate_limiter` (per-node shares of cluster-wide token buckets, see
//!   [`bucket`]) and `policy_evaluator` (loads, reloads on `policy/head`
//!   changes, publishes the snapshot).
//! - `supervisor`: the tenant supervisor; it spawn-links the tenant's
//!   actors, restarts failed ones (state reloads from storage) within a
//!   budget, and marks the tenant degraded beyond it.
//! - [`tenant`]: one incarnation of a tenant on the node, the state its
//!   actors and services share, and its [`ChildKind`]s.
//! - `host`: the node's tenant machinery owned as one (`node_supervisor`,
//!   which starts tenants on first use and stops idle ones; the `directory`
//!   of known tenants; `dispatch`, which turns watch events into casts to
//!   tenant actors; the [`features`] task); the runtime and every handle
//!   share it.
//! - [`session`]: session ids, handles and records; `keys`: the key layout
//!   of a tenant's keyspace; `codec`, `base64url`: how records and ids are
//!   encoded.
//! - [`metrics`], [`health`], [`config`], [`error`]; with the `testing`
//!   feature, `fault` (faults injected into tenant actors).
//!
//! State that must survive a node lives in the replicated key-value store
//! (the tenant's keyspace, `rsp_consensus::kv::tenant_keyspace`); actors hold
//! only what can be rebuilt from it. Times come from the node's clock,
//! `rsp_consensus::Consensus::clock`. See docs/actors.md for the guarantees
//! and their bounds.
//!
//! Not for: HTTP (the API layer maps [`ActorError`] once, at its edge),
//! password hashing or token formats, and anything needing cross-node
//! actor messaging: actors stay node-local, nodes talk only through Raft.

pub(crate) mod actor_slot;
pub(crate) mod admission;
pub(crate) mod base64url;
pub mod bucket;
pub(crate) mod codec;
pub mod config;
pub(crate) mod directory;
pub(crate) mod dispatch;
pub mod error;
#[cfg(feature = "testing")]
pub mod fault;
pub mod features;
pub mod handle;
pub mod health;
pub(crate) mod host;
pub(crate) mod keys;
pub mod lockout;
pub mod metrics;
pub(crate) mod node_supervisor;
pub(crate) mod policy_evaluator;
pub mod policy_service;
pub mod rate_limit_service;
pub(crate) mod rate_limiter;
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
#[cfg(feature = "testing")]
pub use fault::Fault;
pub use handle::TenantHandle;
pub use health::{RuntimeHealth, TenantHealth, TenantStatus};
pub use lockout::{AttemptGuard, LockoutService, LockoutStatus};
pub use metrics::ActorMetrics;
pub use policy_service::PolicyService;
pub use rate_limit_service::RateLimitService;
pub use runtime::TenantRuntime;
pub use session::{Revocation, Session, SessionHandle, SessionId, SessionInfo};
pub use session_service::SessionService;
#[cfg(feature = "testing")]
pub use session_writes::legacy_session_txn;
pub use tenant::ChildKind;
