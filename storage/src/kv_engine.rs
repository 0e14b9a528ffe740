//! The key-value state machine on a sled tree: deterministic apply of
//! [`Command`]s, reads, and whole-state copies (`copies`: snapshot export
//! and import, the backup copy).
//!
//! Layout of the tree (all integers big-endian so that byte order is numeric
//! order):
//! - `d | len(keyspace) | keyspace | key` -> `Record`
//! - `m | name` -> metadata owned by the caller (applied log id, membership) and
//!   by the engine (`m rev`, `m now`).
//!
//! Each command is applied as one sled batch, so a crash leaves either all of a
//! command or none of it, together with the applied log id the caller writes
//! into the same batch.
//!
//! The expiry index (which keys expire when) is kept in memory, ordered by
//! `(expires_at_ms, data key)`, and rebuilt from the records' `expires_at_ms`
//! when the engine opens and when a snapshot is installed: on disk it would
//! cost two more sled inserts for every key written with a TTL (a session is
//! two such keys), and sled's inserts are most of what a replica spends on a
//! write. Keys of the earlier on-disk layout of the index (`x |
//! expires_at_ms | len(keyspace) | keyspace | key` -> empty) found on disk
//! or in a snapshot are dropped and the index rebuilt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{StorageError, decode, encode};

mod copies;
use crate::kv::{
    COMMAND_FORMAT, Command, CompareTarget, EventKind, Key, KeyValue, MAX_KEYSPACE_LEN,
    MAX_VALUE_LEN, Op, OpResult, Response, Txn, TxnOp, TxnResponse, WatchEvent,
};
pub use copies::{CopySession, FLUSH_BYTES};

const DATA: u8 = b'd';
const EXPIRY: u8 = b'x';
pub(crate) const META_REV: &[u8] = b"mrev";
const META_NOW: &[u8] = b"mnow";

/// Raw `(key, value)` pairs of a tree, as carried in snapshots.
pub type RawEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// How many events a slow watcher may fall behind before it is told it lagged.
const WATCH_BUFFER: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
    create_revision: u64,
    mod_revision: u64,
    version: u64,
    expires_at_ms: Option<u64>,
}

fn data_key(key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + key.keyspace.len() + key.key.len());
    out.push(DATA);
    push_keyspace(&mut out, &key.keyspace);
    out.extend_from_slice(&key.key);
    out
}

fn push_keyspace(out: &mut Vec<u8>, keyspace: &str) {
    // Keyspace names are validated to be at most MAX_KEYSPACE_LEN (< 256) bytes.
    out.push(keyspace.len().min(u8::MAX as usize) as u8);
    out.extend_from_slice(keyspace.as_bytes());
}

fn prefix_key(keyspace: &str, prefix: &[u8]) -> Vec<u8> {
    let mut out = vec![DATA];
    push_keyspace(&mut out, keyspace);
    out.extend_from_slice(prefix);
    out
}

fn parse_data_key(raw: &[u8]) -> Option<Key> {
    let (&len, rest) = raw.get(1..)?.split_first()?;
    let len = len as usize;
    let keyspace = std::str::from_utf8(rest.get(..len)?).ok()?.to_string();
    Some(Key {
        keyspace,
        key: rest.get(len..)?.to_vec(),
    })
}

fn to_kv(key: Key, r: Record) -> KeyValue {
    KeyValue {
        key,
        value: r.value,
        create_revision: r.create_revision,
        mod_revision: r.mod_revision,
        version: r.version,
        expires_at_ms: r.expires_at_ms,
    }
}

/// Checks a command before it is proposed, so a bad one is refused up front
/// with a reason instead of being carried through the log.
pub fn validate(cmd: &Command) -> Result<(), String> {
    match &cmd.op {
        Op::Batch(ops) => {
            if ops.iter().any(|op| matches!(op, Op::Batch(_))) {
                return Err("batches do not nest".into());
            }
            ops.iter().try_for_each(validate_op)
        }
        op => validate_op(op),
    }
}

/// Checks one operation (not a batch).
pub fn validate_op(op: &Op) -> Result<(), String> {
    match op {
        Op::Txn(txn) => validate_txn(txn),
        Op::Tick => Ok(()),
        Op::Batch(_) => Err("batches do not nest".into()),
    }
}

fn validate_txn(txn: &Txn) -> Result<(), String> {
    let keyspaces = txn.compares.iter().map(|c| &c.key.keyspace).chain(
        txn.success.iter().chain(&txn.failure).map(|op| match op {
            TxnOp::Put { key, .. } | TxnOp::Delete { key } | TxnOp::Get { key } => &key.keyspace,
            TxnOp::DeletePrefix { keyspace, .. } | TxnOp::Range { keyspace, .. } => keyspace,
        }),
    );
    for keyspace in keyspaces {
        if keyspace.is_empty() || keyspace.len() > MAX_KEYSPACE_LEN {
            return Err(format!(
                "keyspace names are 1 to {MAX_KEYSPACE_LEN} bytes long"
            ));
        }
    }
    let total: usize = txn
        .success
        .iter()
        .chain(&txn.failure)
        .map(|op| match op {
            TxnOp::Put { value, key, .. } => value.len() + key.key.len(),
            _ => 0,
        })
        .sum();
    if total > MAX_VALUE_LEN {
        return Err(format!(
            "a transaction writes at most {MAX_VALUE_LEN} bytes"
        ));
    }
    Ok(())
}

/// `(expires_at_ms, data key)` of every record with a TTL, in order.
type ExpiryIndex = BTreeSet<(u64, Vec<u8>)>;

/// The key-value engine of one Raft group.
#[derive(Clone)]
pub struct KvEngine {
    tree: sled::Tree,
    events: broadcast::Sender<WatchEvent>,
    /// `(expires_at_ms, data key)` of every record with a TTL; shared by
    /// clones, changed only after the batch that changes the records.
    expiry: Arc<Mutex<ExpiryIndex>>,
    /// Held while a command's batch is written and while a chunk of a
    /// [`CopySession`] is read, so a copy taken outside the state
    /// machine's task still sees the tree between two applies.
    gate: Arc<Mutex<()>>,
    /// The copies under way: a batch saves what it overwrites ahead of
    /// each copy's cursor first (see `copies`).
    copies: Arc<Mutex<Vec<Arc<Mutex<copies::CopyState>>>>>,
    /// Held for writing while a snapshot replaces the whole tree, for
    /// reading by every read: nobody reads a half-installed state.
    replacing: Arc<RwLock<()>>,
}

/// A change to the expiry index, made once its command's batch is written.
enum ExpiryChange {
    Add(u64, Vec<u8>),
    Remove(u64, Vec<u8>),
}

/// Reads and writes of one command before they are committed as a batch.
struct Overlay<'a> {
    tree: &'a sled::Tree,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    events: Vec<WatchEvent>,
    /// In order: a key may gain and lose a TTL within one command.
    expiry: Vec<ExpiryChange>,
    /// What the tree held for keys read so far (a transaction's compare
    /// and its put read the same key).
    reads: HashMap<Vec<u8>, Option<sled::IVec>>,
}

impl<'a> Overlay<'a> {
    fn get(&mut self, key: &Key) -> Result<Option<Record>, StorageError> {
        self.get_data(&data_key(key))
    }

    /// The record under data key `k`, as this command sees it.
    fn get_data(&mut self, k: &[u8]) -> Result<Option<Record>, StorageError> {
        if let Some(v) = self.writes.get(k) {
            return v.as_deref().map(|v| decode("kv record", v)).transpose();
        }
        let v = match self.reads.get(k) {
            Some(v) => v.clone(),
            None => {
                let v = self.tree.get(k)?;
                self.reads.insert(k.to_vec(), v.clone());
                v
            }
        };
        v.as_deref().map(|v| decode("kv record", v)).transpose()
    }

    fn put_raw(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.writes.insert(k, Some(v));
    }

    fn del_raw(&mut self, k: Vec<u8>) {
        self.writes.insert(k, None);
    }

    /// Keys under a data prefix as seen through this overlay.
    fn scan(&self, start: &[u8], limit: usize) -> Result<Vec<(Key, Record)>, StorageError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.tree.scan_prefix(start) {
            let (k, v) = item?;
            merged.insert(k.to_vec(), v.to_vec());
        }
        for (k, v) in self.writes.range(start.to_vec()..) {
            if !k.starts_with(start) {
                break;
            }
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        let mut out = Vec::new();
        for (k, v) in merged.into_iter().take(limit) {
            let key =
                parse_data_key(&k).ok_or_else(|| StorageError::corrupt("kv key", "bad layout"))?;
            out.push((key, decode("kv record", &v)?));
        }
        Ok(out)
    }

    fn remove_key(&mut self, key: &Key, rec: &Record, revision: u64, kind: EventKind) {
        let raw = data_key(key);
        if let Some(at) = rec.expires_at_ms {
            self.expiry.push(ExpiryChange::Remove(at, raw.clone()));
        }
        self.del_raw(raw);
        self.events.push(WatchEvent {
            revision,
            key: key.clone(),
            kind,
            value: None,
        });
    }
}

impl KvEngine {
    /// The engine over `tree`, with its expiry index built from the
    /// records (an expiry index left on disk by an earlier layout is
    /// removed).
    pub fn new(tree: sled::Tree) -> Result<Self, StorageError> {
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        let engine = KvEngine {
            tree,
            events,
            expiry: Arc::default(),
            gate: Arc::default(),
            copies: Arc::default(),
            replacing: Arc::default(),
        };
        let mut legacy = sled::Batch::default();
        let mut found = false;
        for item in engine.tree.scan_prefix([EXPIRY]) {
            legacy.remove(item?.0);
            found = true;
        }
        if found {
            engine.tree.apply_batch(legacy)?;
        }
        engine.rebuild_expiry()?;
        Ok(engine)
    }

    /// Rebuild the expiry index from the records.
    fn rebuild_expiry(&self) -> Result<(), StorageError> {
        let records = self
            .tree
            .scan_prefix([DATA])
            .map(|item| item.map_err(StorageError::from));
        *self.expiry_index() = expiry_index_of(records)?;
        Ok(())
    }

    /// Held while a batch is written and while a copy reads a chunk.
    fn gate(&self) -> std::sync::MutexGuard<'_, ()> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Held by every read: waits while a snapshot replaces the tree.
    fn reading(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.replacing.read().unwrap_or_else(|p| p.into_inner())
    }

    fn expiry_index(&self) -> std::sync::MutexGuard<'_, ExpiryIndex> {
        // Changes to the set are single inserts and removes: a panic
        // elsewhere cannot leave it half-changed.
        self.expiry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn overlay(&self) -> Overlay<'_> {
        Overlay {
            tree: &self.tree,
            writes: BTreeMap::new(),
            events: Vec::new(),
            expiry: Vec::new(),
            reads: Default::default(),
        }
    }

    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Subscribe to changes applied on this node from now on.
    pub fn watch(&self) -> broadcast::Receiver<WatchEvent> {
        self.events.subscribe()
    }

    fn meta_u64(&self, name: &[u8]) -> Result<u64, StorageError> {
        let _reading = self.reading();
        match self.tree.get(name)? {
            Some(v) => {
                Ok(u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                    StorageError::corrupt("kv meta", "not 8 bytes")
                })?))
            }
            None => Ok(0),
        }
    }

    /// The store's current revision.
    pub fn revision(&self) -> Result<u64, StorageError> {
        self.meta_u64(META_REV)
    }

    /// The leader time of the last applied command.
    pub fn last_now_ms(&self) -> Result<u64, StorageError> {
        self.meta_u64(META_NOW)
    }

    pub fn get(&self, key: &Key) -> Result<Option<KeyValue>, StorageError> {
        let _reading = self.reading();
        match self.tree.get(data_key(key))? {
            Some(v) => Ok(Some(to_kv(key.clone(), decode("kv record", &v)?))),
            None => Ok(None),
        }
    }

    pub fn range(
        &self,
        keyspace: &str,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageError> {
        self.range_after(keyspace, prefix, None, limit)
    }

    /// Keys of `keyspace` under `prefix` in key order, starting after the
    /// key `after` (a whole key, not a suffix) when given: one page of a
    /// listing. Reads at most `limit` records, whatever the keyspace holds.
    pub fn range_after(
        &self,
        keyspace: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageError> {
        use std::ops::Bound;
        let start = prefix_key(keyspace, prefix);
        let lower = match after {
            // A key equal to the prefix is in the listing: `>=`, so a page
            // that ended on it does not start on it again.
            Some(after) if after >= prefix => Bound::Excluded(prefix_key(keyspace, after)),
            _ => Bound::Included(start.clone()),
        };
        let mut out = Vec::new();
        let _reading = self.reading();
        for item in self
            .tree
            .range::<Vec<u8>, _>((lower, Bound::Unbounded))
            .take_while(|item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&start)))
            .take(limit)
        {
            let (k, v) = item?;
            let key =
                parse_data_key(&k).ok_or_else(|| StorageError::corrupt("kv key", "bad layout"))?;
            out.push(to_kv(key, decode("kv record", &v)?));
        }
        Ok(out)
    }

    /// The earliest pending expiry, if any key has a TTL.
    pub fn next_expiry_ms(&self) -> Result<Option<u64>, StorageError> {
        Ok(self.expiry_index().first().map(|(at, _)| *at))
    }

    /// Apply one command. `extra` lets the caller add its own metadata writes
    /// (the applied log id) to the same atomic batch.
    pub fn apply(
        &self,
        cmd: &Command,
        extra: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Response, StorageError> {
        let mut ov = self.overlay();
        // A refused single command changes nothing, not even the clock; in a
        // batch each operation is checked on its own (in `apply_op`).
        let refused = match &cmd.op {
            Op::Batch(ops) if ops.iter().any(|o| matches!(o, Op::Batch(_))) => {
                Some("batches do not nest".to_string())
            }
            Op::Batch(_) => None,
            op => validate_op(op).err(),
        };
        let response = if cmd.format > COMMAND_FORMAT {
            Response::Unsupported { format: cmd.format }
        } else if let Some(reason) = refused {
            Response::Rejected(reason)
        } else {
            let mut revision = self.revision()?;
            // Leader clocks can step back across a leader change: never let
            // the store's notion of time go backwards.
            let now = cmd.now_ms.max(self.last_now_ms()?);
            ov.put_raw(META_NOW.to_vec(), now.to_be_bytes().to_vec());
            self.expire(&mut ov, now, &mut revision)?;
            let response = match &cmd.op {
                Op::Batch(ops) => Response::Batch(
                    ops.iter()
                        .map(|op| Self::apply_op(&mut ov, op, now, &mut revision))
                        .collect::<Result<_, _>>()?,
                ),
                op => Self::apply_op(&mut ov, op, now, &mut revision)?,
            };
            ov.put_raw(META_REV.to_vec(), revision.to_be_bytes().to_vec());
            response
        };
        self.commit(ov, extra)?;
        Ok(response)
    }

    /// One operation of a command (never a batch), validated on its own so a
    /// bad operation in a batch fails alone.
    fn apply_op(
        ov: &mut Overlay<'_>,
        op: &Op,
        now: u64,
        revision: &mut u64,
    ) -> Result<Response, StorageError> {
        if let Err(reason) = validate_op(op) {
            return Ok(Response::Rejected(reason));
        }
        Ok(match op {
            Op::Tick | Op::Batch(_) => Response::Tick {
                revision: *revision,
            },
            Op::Txn(txn) => Response::Txn(Self::txn(ov, txn, now, revision)?),
        })
    }

    /// Write only caller metadata (for blank and membership log entries).
    pub fn apply_meta(&self, extra: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        self.commit(self.overlay(), extra)
    }

    fn commit(&self, ov: Overlay<'_>, extra: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        let gate = self.gate();
        // Under the gate, so a copy's cursor does not move meanwhile.
        self.save_for_copies(ov.writes.keys().chain(extra.iter().map(|(k, _)| k)))?;
        let mut batch = sled::Batch::default();
        for (k, v) in ov.writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        for (k, v) in extra {
            batch.insert(k.as_slice(), v.as_slice());
        }
        self.tree.apply_batch(batch)?;
        drop(gate);
        if !ov.expiry.is_empty() {
            let mut index = self.expiry_index();
            for change in ov.expiry {
                match change {
                    ExpiryChange::Add(at, k) => index.insert((at, k)),
                    ExpiryChange::Remove(at, k) => index.remove(&(at, k)),
                };
            }
        }
        for event in ov.events {
            // No subscribers is fine.
            let _ = self.events.send(event);
        }
        Ok(())
    }

    fn expire(
        &self,
        ov: &mut Overlay<'_>,
        now: u64,
        revision: &mut u64,
    ) -> Result<(), StorageError> {
        let due: Vec<(u64, Vec<u8>)> = self
            .expiry_index()
            .iter()
            .take_while(|(at, _)| *at <= now)
            .cloned()
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        *revision += 1;
        for (at, raw) in due {
            let key = indexed_key(&raw)?;
            match ov.get(&key)? {
                Some(rec) if rec.expires_at_ms == Some(at) => {
                    ov.remove_key(&key, &rec, *revision, EventKind::Expire);
                }
                // Not a record with this expiry (cannot happen while the
                // index follows the records): drop the entry alone.
                _ => ov.expiry.push(ExpiryChange::Remove(at, raw)),
            }
        }
        Ok(())
    }

    fn compare_holds(ov: &mut Overlay<'_>, txn: &Txn) -> Result<bool, StorageError> {
        for c in &txn.compares {
            let rec = ov.get(&c.key)?;
            let ok = match (&c.target, &rec) {
                (CompareTarget::Exists(want), rec) => rec.is_some() == *want,
                (CompareTarget::Value(_, _), None) => false,
                (CompareTarget::Value(op, v), Some(r)) => op.holds(&r.value, v),
                (CompareTarget::Version(op, v), r) => {
                    op.holds(&r.as_ref().map_or(0, |r| r.version), v)
                }
                (CompareTarget::ModRevision(op, v), r) => {
                    op.holds(&r.as_ref().map_or(0, |r| r.mod_revision), v)
                }
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn txn(
        ov: &mut Overlay<'_>,
        txn: &Txn,
        now: u64,
        revision: &mut u64,
    ) -> Result<TxnResponse, StorageError> {
        let succeeded = Self::compare_holds(ov, txn)?;
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let writes = ops
            .iter()
            .any(|op| !matches!(op, TxnOp::Get { .. } | TxnOp::Range { .. }));
        let new_rev = *revision + 1;
        let mut changed = false;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let result = match op {
                TxnOp::Put { key, value, ttl_ms } => {
                    let raw = data_key(key);
                    let prev = ov.get_data(&raw)?;
                    if let Some(at) = prev.as_ref().and_then(|p| p.expires_at_ms) {
                        ov.expiry.push(ExpiryChange::Remove(at, raw.clone()));
                    }
                    let expires_at_ms = ttl_ms.map(|t| now.saturating_add(t));
                    let rec = Record {
                        value: value.clone(),
                        create_revision: prev.as_ref().map_or(new_rev, |p| p.create_revision),
                        mod_revision: new_rev,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        expires_at_ms,
                    };
                    if let Some(at) = expires_at_ms {
                        ov.expiry.push(ExpiryChange::Add(at, raw.clone()));
                    }
                    ov.put_raw(raw, encode(&rec));
                    ov.events.push(WatchEvent {
                        revision: new_rev,
                        key: key.clone(),
                        kind: EventKind::Put,
                        value: Some(value.clone()),
                    });
                    changed = true;
                    OpResult::Put {
                        prev: prev.map(|p| to_kv(key.clone(), p)),
                    }
                }
                TxnOp::Delete { key } => match ov.get(key)? {
                    Some(rec) => {
                        ov.remove_key(key, &rec, new_rev, EventKind::Delete);
                        changed = true;
                        OpResult::Delete { deleted: 1 }
                    }
                    None => OpResult::Delete { deleted: 0 },
                },
                TxnOp::DeletePrefix { keyspace, prefix } => {
                    let found = ov.scan(&prefix_key(keyspace, prefix), usize::MAX)?;
                    let deleted = found.len() as u64;
                    for (key, rec) in found {
                        ov.remove_key(&key, &rec, new_rev, EventKind::Delete);
                        changed = true;
                    }
                    OpResult::Delete { deleted }
                }
                TxnOp::Get { key } => OpResult::Get {
                    kv: ov.get(key)?.map(|r| to_kv(key.clone(), r)),
                },
                TxnOp::Range {
                    keyspace,
                    prefix,
                    limit,
                } => OpResult::Range {
                    kvs: ov
                        .scan(&prefix_key(keyspace, prefix), *limit as usize)?
                        .into_iter()
                        .map(|(k, r)| to_kv(k, r))
                        .collect(),
                },
            };
            results.push(result);
        }
        if writes && changed {
            *revision = new_rev;
        }
        Ok(TxnResponse {
            succeeded,
            revision: *revision,
            results,
        })
    }
}

/// The key of a data key held in the expiry index.
fn indexed_key(raw: &[u8]) -> Result<Key, StorageError> {
    parse_data_key(raw).ok_or_else(|| StorageError::corrupt("expiry index", "bad key layout"))
}

/// The expiry index of data records `(data key, encoded record)`.
fn expiry_index_of<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    records: impl Iterator<Item = Result<(K, V), StorageError>>,
) -> Result<ExpiryIndex, StorageError> {
    let mut index = ExpiryIndex::new();
    for item in records {
        let (k, v) = item?;
        let rec: Record = decode("kv record", v.as_ref())?;
        if let Some(at) = rec.expires_at_ms {
            index.insert((at, k.as_ref().to_vec()));
        }
    }
    Ok(index)
}
