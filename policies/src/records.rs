//! What a tenant's policy store keeps, in its keyspace `t.<tenant>`:
//!
//! | key | value (JSON) |
//! |---|---|
//! | `policy/head` | [`Head`]: the current version and change counters; rewritten by every write, so its modification revision names the whole state |
//! | `policy/v/<n, 20 digits>` | [`PolicyVersion`]: policies text, schema, author, time (immutable) |
//! | `policy/link/<id>` | [`StoredLink`]: a template-linked policy |
//! | `policy/entities` | [`StoredEntities`]: the tenant's Cedar entities |
//!
//! Every write changes `policy/head` in the same transaction, guarded by a
//! compare on its modification revision, so concurrent writers serialize and
//! a node knows its compiled set is current by comparing one revision.

use std::collections::BTreeMap;

use rsp_consensus::kv::{Key, tenant_keyspace};
use serde::{Deserialize, Serialize};

/// Every key of the policy store starts with this (the tenant actors watch
/// it too).
pub const PREFIX: &str = "policy/";
pub const HEAD: &str = "policy/head";
pub const VERSION_PREFIX: &str = "policy/v/";
pub const LINK_PREFIX: &str = "policy/link/";
pub const ENTITIES: &str = "policy/entities";

pub fn head_key(tenant: &str) -> Key {
    Key::new(tenant_keyspace(tenant), HEAD)
}

pub fn version_key(tenant: &str, version: u64) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("{VERSION_PREFIX}{version:020}"),
    )
}

pub fn link_key(tenant: &str, id: &str) -> Key {
    Key::new(tenant_keyspace(tenant), format!("{LINK_PREFIX}{id}"))
}

pub fn entities_key(tenant: &str) -> Key {
    Key::new(tenant_keyspace(tenant), ENTITIES)
}

/// The state's summary. Version 0 means "no policies written yet".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub version: u64,
    /// Bumped by every link or unlink.
    #[serde(default)]
    pub links_changes: u64,
    /// Bumped by every entities write.
    #[serde(default)]
    pub entities_changes: u64,
}

/// One accepted policy set. Never changed once written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub version: u64,
    /// Cedar policies and templates, as submitted.
    pub policies: String,
    /// Cedar JSON schema, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    pub author: String,
    pub time_ms: u64,
    /// Set when this version was made by restoring an older one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
}

/// A template-linked policy: `template` with its slots filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLink {
    pub id: String,
    pub template: String,
    /// Slot (`?principal`, `?resource`) to entity uid in Cedar syntax
    /// (`User::"bob"`).
    pub values: BTreeMap<String, String>,
    pub author: String,
    pub time_ms: u64,
}

/// The tenant's entities as Cedar entity JSON, with who wrote them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEntities {
    pub entities: serde_json::Value,
    pub author: String,
    pub time_ms: u64,
}
