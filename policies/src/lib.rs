//! rsp-policies: Cedar authorization for rsp's tenants.
//!
//! Parts:
//! - [`records`]: what a tenant's policy store keeps in its keyspace
//!   (`policy/head`, `policy/v/<n>`, `policy/link/<id>`, `policy/entities`).
//! - [`store`]: [`PolicyStore`], replicated writes (validated, versioned,
//!   restorable, template links, entities) and reads, through consensus.
//! - [`compile`]: parsing, strict schema validation, links and entities
//!   into a [`Compiled`] state; [`diagnostics`]: Cedar's errors as data;
//!   [`depth`]: the bound on how deep policy text nests, checked before
//!   Cedar parses it.
//! - [`index`]: slicing policies by principal/resource scope so a request
//!   only evaluates what can apply.
//! - [`evaluate`]: [`Snapshot`] (one tenant's compiled state) and
//!   [`DecisionRequest`].
//! - [`source`]: [`SnapshotSource`], loading a tenant's snapshot from the
//!   node's applied state, and the freshness gate.
//! - [`service`]: [`PolicyService`], per-node snapshots swapped after each
//!   applied change, for a node without tenant actors (with them, each
//!   tenant's evaluator actor in `rsp-actors` holds its snapshot).
//! - [`admin`]: the built-in policy set that authorizes the admin API.
//! - [`config`]: [`PolicyConfig`], the timing and evaluation settings.
//!
//! See docs/authorization.md for the guarantees.
//!
//! Not for: HTTP (the API maps [`PolicyError`] at its edge), token
//! verification (the API turns verified claims into request entities), or
//! actor supervision (`rsp-actors` hosts snapshots in its evaluator
//! actors, built with a [`SnapshotSource`]).

pub mod admin;
pub mod compile;
pub mod config;
pub mod depth;
pub mod diagnostics;
pub mod error;
pub mod evaluate;
pub mod index;
pub mod records;
pub mod service;
pub mod source;
pub mod store;

pub use admin::{AdminAction, AdminAuthorizer, AdminPrincipal, AdminResource};
pub use cedar_policy;
pub use compile::Compiled;
pub use config::PolicyConfig;
pub use diagnostics::Diagnostic;
pub use error::PolicyError;
pub use evaluate::{DecisionRequest, Snapshot, parse_uid};
pub use index::{EvalError, Outcome, PolicyIndex};
pub use service::PolicyService;
pub use source::SnapshotSource;
pub use store::{PolicyStore, Receipt, StoredState, VersionSummary};
