//! Replication for rsp: openraft over the sled storage of `rsp-storage`, the
//! network between nodes, and the API every feature above uses to keep state.
//!
//! Parts:
//! - [`types`]: the one `declare_raft_types!` and the [`Member`] description.
//! - [`node`]: [`Consensus`], a node's handle: start-up and shutdown, with
//!   one file per job beside it: writes (forwarded to the leader from any
//!   node), linearizable and local reads ([`Consistency`], [`ReadInfo`]),
//!   follower staleness, node-wide secrets, the start-up settings
//!   ([`ConsensusConfig`]), deliberate bugs for checker tests
//!   ([`InjectedBugs`]) and the status types ([`ClusterStatus`]).
//! - [`membership`]: cluster status, adding and removing nodes, joining.
//! - [`rpc`], [`transport`], [`network`], [`peer_server`]: peer messages
//!   (bincode over HTTP/2, each naming its Raft group), the client with
//!   per-peer address overrides, openraft's network traits, and the listener.
//! - [`peer_auth`]: the cluster's join token and the tags every peer message
//!   carries with it.
//! - [`tls`]: mutual TLS for peer links, reloadable.
//! - [`trace_context`]: W3C trace context of forwarded writes on the peer
//!   link (a header old releases ignore), so the leader's spans of a
//!   forwarded write join the caller's trace.
//! - [`metrics`], `tasks`: Prometheus gauges and background jobs.
//! - [`check_quorum`]: a leader cut off from a quorum lets another lead.
//! - [`clock`]: the node's one wall clock, injectable for tests;
//!   [`encoding`]: the one base64url of ids in keys and tokens.
//!
//! The data model (transactions, compares, TTLs, watch events) is defined in
//! `rsp_storage::kv` and re-exported here as [`kv`]: callers above this crate
//! use it only through [`Consensus`].
//!
//! Not for: HTTP APIs for clients (that is `rsp-api`), or domain rules
//! (tenants, users, tokens): those are built on [`Consensus::txn`].

pub(crate) mod batcher;
pub mod check_quorum;
pub mod clock;
pub mod encoding;
pub mod error;
pub(crate) mod forwarder;
pub mod membership;
pub mod metrics;
pub mod network;
pub mod node;
pub mod peer_auth;
pub mod peer_server;
pub mod rpc;
pub(crate) mod tasks;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod trace_context;
pub mod transport;
pub mod types;

pub use batcher::BatchStats;
pub use clock::{Clock, ManualClock};
pub use error::ConsensusError;
pub use node::{
    BackupStream, ClusterStatus, Consensus, ConsensusConfig, Consistency, InjectedBugs,
    MemberStatus, ReadInfo, Role,
};
pub use peer_server::PeerService;
pub use rsp_storage::Durability;
pub use rsp_storage::backup;
pub use rsp_storage::kv;
pub use rsp_storage::sync_thread::SyncStats;
pub use tls::PeerTls;
pub use types::{GroupId, META_GROUP, Member, NodeId};
