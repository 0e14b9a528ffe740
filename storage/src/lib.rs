//! Durable storage for rsp: the Raft log and the replicated key-value state
//! machine, both on one embedded `sled` database per node.
//!
//! Parts:
//! - [`db`]: opening the database, per-group trees (`g<group>.<part>`), and
//!   fsync-grade [`db::Store::sync`] (sled's own flush is not an fsync).
//! - [`sync_thread`]: group commit, one sync for many appends.
//! - [`log_store`]: openraft's `RaftLogStorage` (log entries and vote).
//! - [`kv`]: the data model carried in the log (transactions, compares, TTLs,
//!   watch events) and [`kv_engine`], its deterministic apply on sled.
//! - [`state_machine`]: openraft's `RaftStateMachine` over the engine, with
//!   snapshot build and install; [`snapshot_file`], snapshots as files,
//!   written and read a chunk at a time.
//!
//! Not for: deciding anything about Raft (who leads, what is committed, when to
//! snapshot) or about the network; that is `rsp-consensus`. Nothing above
//! `rsp-consensus` uses this crate directly.

pub mod backup;
pub mod db;
pub mod error;
pub mod kv;
pub mod kv_engine;
pub mod log_store;
pub mod snapshot_file;
pub mod state_machine;
pub mod sync_thread;

pub use db::{Durability, GroupId, Store, StoreConfig};
pub use error::StorageError;
pub use kv_engine::KvEngine;
pub use log_store::LogStore;
pub use snapshot_file::SnapshotFile;
pub use state_machine::{ApplyObserver, SnapshotEvent, SnapshotObserver, StateMachineStore};
pub use sync_thread::{SyncObserver, SyncThread};
