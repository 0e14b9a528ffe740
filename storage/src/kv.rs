//! The replicated key-value data model: commands that go through the Raft log
//! and the answers the state machine gives for them.
//!
//! The model follows etcd's: keys live in named keyspaces (one per tenant, plus
//! system keyspaces), every key carries a version and the revision at which it
//! was created and last modified, and the whole store has one global revision
//! that grows by one for every transaction that changes something. A
//! transaction is `if all(compares) { on_success } else { on_failure }`.
//!
//! Expiry is part of the log, not of any node's clock: every command carries the
//! leader's wall clock (`Command::now_ms`) and applying a command first removes
//! every key whose `expires_at_ms` is not after that time. All nodes therefore
//! expire the same keys at the same revision.

use serde::{Deserialize, Serialize};

/// Newest command format this build understands. A node refuses (with
/// [`Response::Unsupported`], never a panic) a command newer than this, so nodes
/// one release apart can apply each other's log during a rolling upgrade.
pub const COMMAND_FORMAT: u16 = 1;

/// Largest value accepted in a single put, in bytes.
pub const MAX_VALUE_LEN: usize = 1 << 20;

/// Keyspace names are short printable identifiers.
pub const MAX_KEYSPACE_LEN: usize = 64;

/// The cluster's own records (tenants, what each node's release
/// understands), beside the tenants' `t.<id>` keyspaces.
pub const SYSTEM_KEYSPACE: &str = "sys";

/// The keyspace holding one tenant's records: `t.<tenant>`.
pub fn tenant_keyspace(tenant: &str) -> String {
    format!("{TENANT_KEYSPACE_PREFIX}{tenant}")
}

/// The tenant whose records a keyspace holds, or `None` for any other
/// keyspace (the inverse of [`tenant_keyspace`]).
pub fn keyspace_tenant(keyspace: &str) -> Option<&str> {
    keyspace.strip_prefix(TENANT_KEYSPACE_PREFIX)
}

const TENANT_KEYSPACE_PREFIX: &str = "t.";

/// A key in a keyspace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    pub keyspace: String,
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
}

impl Key {
    pub fn new(keyspace: impl Into<String>, key: impl Into<Vec<u8>>) -> Self {
        Key {
            keyspace: keyspace.into(),
            key: key.into(),
        }
    }
}

/// One entry in the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Format version of this command (see [`COMMAND_FORMAT`]).
    pub format: u16,
    /// The proposing leader's wall clock, milliseconds since the Unix epoch.
    pub now_ms: u64,
    pub op: Op,
}

impl Command {
    pub fn new(now_ms: u64, op: Op) -> Self {
        Command {
            format: COMMAND_FORMAT,
            now_ms,
            op,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Txn(Txn),
    /// Carries only the leader's clock, so that due keys expire when nothing
    /// else is being written.
    Tick,
    /// Independent operations proposed together: one log entry and one sync
    /// for many clients' writes. Each is applied in order exactly as if it
    /// were a command of its own with the batch's time, and answered
    /// separately ([`Response::Batch`]). Batches do not nest, and a
    /// nested one is refused as it is decoded (`flat`).
    Batch(#[serde(deserialize_with = "flat::ops")] Vec<Op>),
}

/// `if compares all hold { success } else { failure }`, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

impl Txn {
    /// A transaction with no condition.
    pub fn ops(ops: Vec<TxnOp>) -> Self {
        Txn {
            compares: Vec::new(),
            success: ops,
            failure: Vec::new(),
        }
    }

    /// Write `key` only if it does not exist (`succeeded` says whether it
    /// was written): single use of a code, ticket or assertion id, or the
    /// creation of a record that must not be overwritten.
    pub fn put_if_absent(key: Key, value: Vec<u8>, ttl_ms: Option<u64>) -> Self {
        Txn {
            compares: vec![Compare {
                key: key.clone(),
                target: CompareTarget::Exists(false),
            }],
            success: vec![TxnOp::Put { key, value, ttl_ms }],
            failure: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
}

impl CmpOp {
    pub fn holds<T: Ord>(self, left: &T, right: &T) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
            CmpOp::Lt => left < right,
            CmpOp::Gt => left > right,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// Compare the value; an absent key never matches (not even `Ne`).
    Value(CmpOp, #[serde(with = "serde_bytes")] Vec<u8>),
    /// Compare the version; an absent key has version 0.
    Version(CmpOp, u64),
    /// Compare the modification revision; an absent key has 0.
    ModRevision(CmpOp, u64),
    /// The key exists (`true`) or does not (`false`).
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub key: Key,
    pub target: CompareTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Write a value. With `ttl_ms`, the key expires `ttl_ms` after the
    /// store's time at this command (the larger of the command's leader time
    /// and the last command's, so time never runs backwards); without, it
    /// never expires.
    Put {
        key: Key,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    Delete {
        key: Key,
    },
    /// Delete every key in `keyspace` that starts with `prefix`.
    DeletePrefix {
        keyspace: String,
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
    },
    Get {
        key: Key,
    },
    Range {
        keyspace: String,
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
        limit: u32,
    },
}

/// A stored key with its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Key,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    Put { prev: Option<KeyValue> },
    Delete { deleted: u64 },
    Get { kv: Option<KeyValue> },
    Range { kvs: Vec<KeyValue> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    pub succeeded: bool,
    /// The store's revision after this transaction.
    pub revision: u64,
    pub results: Vec<OpResult>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Membership changes and blank entries answer nothing.
    #[default]
    None,
    Txn(TxnResponse),
    Tick {
        revision: u64,
    },
    /// The command was refused as a whole and changed nothing.
    Rejected(String),
    /// The command's format is newer than this node understands.
    Unsupported {
        format: u16,
    },
    /// One answer per operation of an [`Op::Batch`], in order (never a
    /// batch itself).
    Batch(#[serde(deserialize_with = "flat::responses")] Vec<Response>),
}

/// Decoding of batch items, which cannot be batches: an item that is one
/// is an error at once, before any recursion. Without this, a message of a
/// few kilobytes nesting batches in batches exhausts the stack of whoever
/// decodes it (found by the `peer_frame` fuzz target). The item enums
/// mirror [`Op`] and [`Response`] variant for variant, so the encoding is
/// the same.
mod flat {
    use serde::Deserialize;
    use serde::de::{Deserializer, Error};

    use super::{Op, Response, Txn, TxnResponse};

    /// Stands where a nested batch would: never decodes.
    enum Nested {}

    impl<'de> Deserialize<'de> for Nested {
        fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            Err(D::Error::custom("batches do not nest"))
        }
    }

    #[derive(Deserialize)]
    enum FlatOp {
        Txn(Txn),
        Tick,
        #[allow(dead_code)]
        Batch(Nested),
    }

    #[derive(Deserialize)]
    enum FlatResponse {
        None,
        Txn(TxnResponse),
        Tick {
            revision: u64,
        },
        Rejected(String),
        Unsupported {
            format: u16,
        },
        #[allow(dead_code)]
        Batch(Nested),
    }

    pub(super) fn ops<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Op>, D::Error> {
        let items = Vec::<FlatOp>::deserialize(d)?;
        Ok(items
            .into_iter()
            .map(|item| match item {
                FlatOp::Txn(t) => Op::Txn(t),
                FlatOp::Tick => Op::Tick,
                FlatOp::Batch(n) => match n {},
            })
            .collect())
    }

    pub(super) fn responses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Response>, D::Error> {
        let items = Vec::<FlatResponse>::deserialize(d)?;
        Ok(items
            .into_iter()
            .map(|item| match item {
                FlatResponse::None => Response::None,
                FlatResponse::Txn(t) => Response::Txn(t),
                FlatResponse::Tick { revision } => Response::Tick { revision },
                FlatResponse::Rejected(m) => Response::Rejected(m),
                FlatResponse::Unsupported { format } => Response::Unsupported { format },
                FlatResponse::Batch(n) => match n {},
            })
            .collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
    Expire,
}

/// A change, published to local watchers after it is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    pub revision: u64,
    pub key: Key,
    pub kind: EventKind,
    /// The new value for `Put`.
    pub value: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{decode, encode};

    /// A flat batch decodes as it always did; a batch inside a batch is
    /// refused as it is decoded, so thousands of nested levels (a few
    /// kilobytes) cannot exhaust the decoder's stack.
    #[test]
    fn a_batch_decodes_and_a_nested_one_is_refused_without_recursing() {
        let flat = Op::Batch(vec![Op::Tick, Op::Txn(Txn::default())]);
        assert_eq!(decode::<Op>("op", &encode(&flat)).expect("flat"), flat);
        let answers = Response::Batch(vec![Response::None, Response::Tick { revision: 3 }]);
        assert_eq!(
            decode::<Response>("response", &encode(&answers)).expect("flat"),
            answers
        );

        let mut deep = Op::Tick;
        for _ in 0..100_000 {
            deep = Op::Batch(vec![deep]);
        }
        // Encoding recurses too: do it on a thread with room for it.
        let bytes = std::thread::Builder::new()
            .stack_size(512 << 20)
            .spawn(move || {
                let bytes = encode(&deep);
                std::mem::forget(deep);
                bytes
            })
            .expect("thread")
            .join()
            .expect("encoded");
        let err = decode::<Op>("op", &bytes).expect_err("nested batches decode");
        assert!(err.to_string().contains("batches do not nest"), "{err}");
        let nested = Response::Batch(vec![Response::Batch(vec![])]);
        assert!(decode::<Response>("response", &encode(&nested)).is_err());
    }

    /// The byte fields are written with `serde_bytes` (decoded in one copy,
    /// not byte by byte); bincode gives the same bytes as a plain `Vec<u8>`,
    /// so logs and stores written before the change still read.
    #[test]
    fn byte_fields_encode_as_they_did_before_serde_bytes() {
        #[derive(Serialize)]
        struct PlainKey {
            keyspace: String,
            key: Vec<u8>,
        }
        #[derive(Serialize)]
        enum PlainOp {
            Put {
                key: PlainKey,
                value: Vec<u8>,
                ttl_ms: Option<u64>,
            },
        }
        let bytes: Vec<u8> = (0..=255u8).chain(0..40).collect();
        let key = Key::new("t.acme", bytes.clone());
        let plain = PlainKey {
            keyspace: "t.acme".into(),
            key: bytes.clone(),
        };
        assert_eq!(encode(&key), encode(&plain));
        let put = TxnOp::Put {
            key,
            value: bytes.clone(),
            ttl_ms: Some(5),
        };
        let plain_put = PlainOp::Put {
            key: plain,
            value: bytes,
            ttl_ms: Some(5),
        };
        assert_eq!(encode(&put), encode(&plain_put));
    }
}
