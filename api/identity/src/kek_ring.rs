//! Online rotation of the key-encryption key (KEK).
//!
//! The replicated KEK record (`kek` in the system keyspace) names the
//! current KEK by id ([`KekId`]), the previous ones still accepted, and
//! holds the hash root sealed under the current KEK. The KEKs themselves
//! never enter the log: a node that lacks one asks the members for it over
//! the authenticated peer link (secret `kek/<id>`).
//!
//! A rotation ([`KekRing::begin_rotation`], then [`crate::IdentityServices::reseal_pass`]):
//! 1. the coordinating node adds the new KEK to its ring, offers it to the
//!    members and hands it to its [`KekStore`] (the kek file's `.next`);
//! 2. commits the record (new current, old one previous, hash root sealed
//!    under the new KEK) with the guard key `kek/current`, a
//!    compare-and-set on the old current, so two rotations cannot both
//!    win;
//! 3. every node, on reading the record ([`KekRing::sync`]), fetches the new
//!    KEK and seals under it from then on;
//! 4. once every member holds the new KEK, every sealed record still under
//!    an old one is re-sealed ([`crate::IdentityServices::reseal_pass`]),
//!    each write a compare-and-set on the record's revision;
//! 5. a pass that finds nothing left ends the rotation: the record drops
//!    the previous KEKs and every node forgets them.
//!
//! Nothing sealed under an old KEK can land after that: every write of a
//! sealed value carries [`guard`], which fails once the KEK it was sealed
//! under is no longer the current one (the writer syncs and seals again).
//! The keyed hashes are keyed by the hash root, the cluster's first KEK,
//! which no rotation changes: client secrets, refresh tokens and recovery
//! codes stored before a rotation still verify after it.

use std::sync::Arc;
use std::time::Duration;

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, Txn, TxnOp};
use rsp_consensus::{Consensus, ConsensusError, Consistency, NodeId};
use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoError, Kek, KekCell, KekId, RecordView, b64url, b64url_decode};
use crate::tenants::SYSTEM_KEYSPACE;

/// The KEK record.
const RECORD: &[u8] = b"kek";
/// The guard key: the current KEK's id, compared by every write of a
/// sealed value.
const CURRENT: &[u8] = b"kek/current";
/// What the hash root is sealed with (AAD).
const HASH_ROOT_AAD: &[u8] = b"rsp/kek/hash-root";
/// The secret under which members offer the current KEK to joining nodes.
pub const CURRENT_SECRET: &str = "kek";

fn record_key() -> Key {
    Key::new(SYSTEM_KEYSPACE, RECORD)
}

fn current_key() -> Key {
    Key::new(SYSTEM_KEYSPACE, CURRENT)
}

fn secret_name(id: KekId) -> String {
    format!("kek/{id}")
}

/// The replicated KEK record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KekRecord {
    /// How many rotations the cluster has had.
    pub generation: u64,
    /// The id of the KEK that seals.
    pub current: String,
    /// Ids of KEKs still accepted while sealed records are re-sealed.
    pub previous: Vec<String>,
    /// The hash root sealed under the current KEK, base64url.
    pub hash_root: String,
    /// The node that made the current KEK (asked first for it).
    pub made_by: NodeId,
    pub rotated_at_ms: u64,
    /// When the last rotation's re-sealing finished.
    pub resealed_at_ms: Option<u64>,
}

impl KekRecord {
    fn current_id(&self) -> Result<KekId, RingError> {
        KekId::parse(&self.current).ok_or_else(|| RingError::Corrupt("current KEK id".into()))
    }

    fn previous_ids(&self) -> Result<Vec<KekId>, RingError> {
        self.previous
            .iter()
            .map(|p| KekId::parse(p).ok_or_else(|| RingError::Corrupt("previous KEK id".into())))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the KEK record is unreadable: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Invalid(String),
    #[error("no member could hand over the key-encryption key {0}")]
    Missing(KekId),
    #[error("{0}")]
    Store(String),
}

/// The compare that lets a write of a value sealed when the node knew
/// `view` land only while that KEK is still the current one.
pub fn guard(view: RecordView) -> Result<Compare, CryptoError> {
    let target = match view {
        RecordView::Unknown => return Err(CryptoError::NoKek),
        RecordView::Absent => CompareTarget::Exists(false),
        RecordView::Current(id) => CompareTarget::Value(CmpOp::Eq, id.to_string().into_bytes()),
    };
    Ok(Compare {
        key: current_key(),
        target,
    })
}

/// Where a node keeps the KEKs it is handed, so a restart finds them
/// (the node's kek file; nothing when the KEK comes from `RSP_KEK` or
/// `kek-command`).
pub trait KekStore: Send + Sync {
    /// A KEK about to become current (kept beside the current one).
    fn keep_next(&self, kek: &Kek) -> std::io::Result<()>;
    /// The KEK that is now current.
    fn keep_current(&self, kek: &Kek) -> std::io::Result<()>;
}

/// What `GET /admin/v1/cluster/kek` shows.
#[derive(Debug, Clone, Serialize)]
pub struct KekStatus {
    pub generation: u64,
    pub current: String,
    pub previous: Vec<String>,
    /// Whether re-sealing is still going on (previous KEKs accepted).
    pub rotating: bool,
    pub rotated_at_ms: Option<u64>,
    pub resealed_at_ms: Option<u64>,
    /// Members that do not hold the current KEK yet (re-sealing waits).
    pub waiting_for: Vec<NodeId>,
    /// Records re-sealed by this call.
    pub resealed: usize,
}

/// A node's view of the KEK record, and the means to follow it.
#[derive(Clone)]
pub struct KekRing {
    consensus: Consensus,
    cell: Arc<KekCell>,
    store: Option<Arc<dyn KekStore>>,
    /// Held by every sync and by a rotation's start, so a sync that read
    /// the record before a rotation on this node cannot drop the new KEK
    /// the rotation just added.
    serial: Arc<tokio::sync::Mutex<()>>,
    /// The revision of the record last installed: an older one (a local
    /// read that lags) is not installed over it.
    installed: Arc<std::sync::Mutex<u64>>,
}

impl KekRing {
    pub fn new(consensus: Consensus, cell: Arc<KekCell>) -> Self {
        KekRing {
            consensus,
            cell,
            store: None,
            serial: Arc::default(),
            installed: Arc::default(),
        }
    }

    pub fn with_store(mut self, store: Arc<dyn KekStore>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn cell(&self) -> &Arc<KekCell> {
        &self.cell
    }

    async fn record(
        &self,
        consistency: Consistency,
    ) -> Result<Option<(KekRecord, u64)>, RingError> {
        let (kv, _) = self.consensus.get(&record_key(), consistency).await?;
        kv.map(|kv| {
            serde_json::from_slice(&kv.value)
                .map(|r| (r, kv.mod_revision))
                .map_err(|e| RingError::Corrupt(e.to_string()))
        })
        .transpose()
    }

    /// Bring the ring in line with the KEK record: fetch the KEKs it names
    /// that this node lacks, make its current KEK the sealing one, forget
    /// the KEKs it no longer accepts, and learn the hash root. A `Local`
    /// read that finds no record leaves the ring as it is (only a
    /// linearizable one proves the KEK was never rotated). Whether the ring
    /// is ready afterwards.
    pub async fn sync(&self, consistency: Consistency) -> Result<bool, RingError> {
        let _serial = self.serial.lock().await;
        self.sync_serial(consistency).await
    }

    /// [`Self::sync`], with `serial` held.
    async fn sync_serial(&self, consistency: Consistency) -> Result<bool, RingError> {
        let Some((record, revision)) = self.record(consistency).await? else {
            if consistency == Consistency::Linearizable {
                // Never rotated: the node's own KEK is the first one.
                let kek = self.cell.get()?;
                self.cell.install_root(kek, RecordView::Absent);
                self.offer(&[]);
            }
            return Ok(self.cell.is_ready());
        };
        if revision < *self.installed.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(self.cell.is_ready());
        }
        let current = record.current_id()?;
        let previous = record.previous_ids()?;
        let was_current = self.cell.current_id();
        if self.cell.key(current).is_none() {
            self.fetch(current, record.made_by).await?;
        }
        for id in &previous {
            if self.cell.key(*id).is_none()
                && let Err(e) = self.fetch(*id, record.made_by).await
            {
                // Values still sealed under it cannot be opened here
                // until a member hands it over; sealing goes on.
                tracing::warn!(kek = %id, error = %e, "a previous key-encryption key is missing");
            }
        }
        let sealed_root = b64url_decode(&record.hash_root)
            .ok_or_else(|| RingError::Corrupt("hash root is not base64url".into()))?;
        let root = self.cell.open(HASH_ROOT_AAD, &sealed_root)?;
        let root = Kek::parse(&String::from_utf8_lossy(&root))
            .map_err(|_| RingError::Corrupt("hash root".into()))?;
        let before = self.cell.ids();
        self.cell.install(current, &previous)?;
        self.cell.install_root(root, RecordView::Current(current));
        *self.installed.lock().unwrap_or_else(|p| p.into_inner()) = revision;
        let after = self.cell.ids();
        let dropped: Vec<KekId> = before
            .into_iter()
            .filter(|id| !after.contains(id))
            .collect();
        self.offer(&dropped);
        if was_current != Some(current) {
            let kek = self.cell.get()?;
            if let Some(store) = &self.store {
                store
                    .keep_current(&kek)
                    .map_err(|e| RingError::Store(e.to_string()))?;
            }
            match &self.store {
                Some(_) => tracing::info!(kek = %current, generation = record.generation,
                    "the key-encryption key in force changed; the kek file holds it"),
                None => tracing::warn!(kek = %current, generation = record.generation,
                    "the key-encryption key in force changed; this node's KEK comes from RSP_KEK or kek-command: give it the new key before it restarts"),
            }
        }
        Ok(self.cell.is_ready())
    }

    /// Offer every KEK of the ring to the members (by id), and the current
    /// one to joining nodes; stop offering the ones in `dropped`.
    fn offer(&self, dropped: &[KekId]) {
        if let Ok(current) = self.cell.get() {
            self.consensus
                .set_secret(CURRENT_SECRET, current.encode().as_bytes());
        }
        for id in self.cell.ids() {
            if let Some(kek) = self.cell.key(id) {
                self.consensus
                    .set_secret(&secret_name(id), kek.encode().as_bytes());
            }
        }
        for id in dropped {
            self.consensus.remove_secret(&secret_name(*id));
        }
    }

    /// Ask the members (the one that made it first) for KEK `id`.
    async fn fetch(&self, id: KekId, made_by: NodeId) -> Result<(), RingError> {
        let status = self.consensus.status();
        let mut members: Vec<_> = status
            .members
            .iter()
            .filter(|m| m.id != status.this_node)
            .collect();
        members.sort_by_key(|m| m.id != made_by);
        for member in members {
            let addr = self
                .consensus
                .transport()
                .route(member.id, &member.peer_addr);
            match self.consensus.fetch_secret(&addr, &secret_name(id)).await {
                Ok(Some(bytes)) => {
                    let text =
                        zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
                    let kek = Kek::parse(&text)?;
                    if kek.id() != id {
                        tracing::warn!(
                            member = member.id,
                            "a member handed over the wrong key-encryption key"
                        );
                        continue;
                    }
                    self.cell.add(kek);
                    return Ok(());
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(member = member.id, error = %e, "asking for a key-encryption key")
                }
            }
        }
        Err(RingError::Missing(id))
    }

    /// Members that do not hold KEK `id` (asked over the peer link).
    async fn members_without(&self, id: KekId) -> Vec<NodeId> {
        let status = self.consensus.status();
        let checks = status.members.iter().map(|member| async move {
            if member.id == status.this_node {
                return (member.id, self.cell.key(id).is_some());
            }
            let addr = self
                .consensus
                .transport()
                .route(member.id, &member.peer_addr);
            let held = matches!(
                self.consensus.fetch_secret(&addr, &secret_name(id)).await,
                Ok(Some(_))
            );
            (member.id, held)
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .filter(|(_, held)| !held)
            .map(|(id, _)| id)
            .collect()
    }

    /// Seal with the current KEK for a write that must carry the returned
    /// guard ([`guard`]).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<(Vec<u8>, Compare), CryptoError> {
        let (sealed, view) = self.cell.seal_guarded(aad, plaintext)?;
        Ok((sealed, guard(view)?))
    }

    /// After a guarded write failed: read the record again, so the next try
    /// seals under the KEK in force.
    pub async fn refresh(&self) {
        if let Err(e) = self.sync(Consistency::Linearizable).await {
            tracing::warn!(error = %e, "reading the KEK record failed");
        }
    }

    /// Start a rotation to `new` (a fresh KEK when `None`): steps 1 and 2
    /// of the module's list. Refused while an earlier rotation is still
    /// re-sealing.
    pub async fn begin_rotation(&self, new: Option<Kek>, now_ms: u64) -> Result<KekId, RingError> {
        let _serial = self.serial.lock().await;
        if !self.sync_serial(Consistency::Linearizable).await? {
            return Err(CryptoError::NoKek.into());
        }
        let existing = self.record(Consistency::Linearizable).await?;
        if let Some((record, _)) = &existing
            && !record.previous.is_empty()
        {
            return Err(RingError::Busy(
                "the previous rotation is still re-sealing; wait until GET /admin/v1/cluster/kek says rotating: false".into(),
            ));
        }
        let old = self.cell.current_id().ok_or(CryptoError::NoKek)?;
        let new = new.unwrap_or_else(Kek::generate);
        let id = new.id();
        if id == old {
            return Err(RingError::Invalid(
                "the new key-encryption key is the current one".into(),
            ));
        }
        let root = self.cell.root().ok_or(CryptoError::NoKek)?;
        if let Some(store) = &self.store {
            store
                .keep_next(&new)
                .map_err(|e| RingError::Store(e.to_string()))?;
        }
        self.cell.add(new.clone());
        self.consensus
            .set_secret(&secret_name(id), new.encode().as_bytes());
        let sealed_root = self
            .cell
            .seal_under(id, HASH_ROOT_AAD, root.encode().as_bytes())?;
        let record = KekRecord {
            generation: existing.as_ref().map_or(0, |(r, _)| r.generation) + 1,
            current: id.to_string(),
            previous: vec![old.to_string()],
            hash_root: b64url(&sealed_root),
            made_by: self.consensus.id(),
            rotated_at_ms: now_ms,
            resealed_at_ms: None,
        };
        let value = serde_json::to_vec(&record).map_err(|e| RingError::Corrupt(e.to_string()))?;
        let txn = Txn {
            compares: vec![guard(self.cell.record_view())?],
            success: vec![
                TxnOp::Put {
                    key: record_key(),
                    value,
                    ttl_ms: None,
                },
                TxnOp::Put {
                    key: current_key(),
                    value: id.to_string().into_bytes(),
                    ttl_ms: None,
                },
            ],
            failure: vec![],
        };
        if !self.consensus.txn(txn).await?.succeeded {
            return Err(RingError::Busy(
                "another rotation changed the key-encryption key first".into(),
            ));
        }
        self.sync_serial(Consistency::Linearizable).await?;
        Ok(id)
    }

    /// Whether this node's copy of the record says a rotation is
    /// re-sealing (a local read: the cheap check before
    /// [`crate::IdentityServices::reseal_pass`]).
    pub async fn rotating_locally(&self) -> Result<bool, RingError> {
        Ok(self
            .record(Consistency::Local)
            .await?
            .is_some_and(|(r, _)| !r.previous.is_empty()))
    }

    /// The rotation's state, and the members that still lack the current
    /// KEK when one is under way.
    pub async fn status(&self) -> Result<KekStatus, RingError> {
        let record = self.record(Consistency::Linearizable).await?;
        let Some((record, _)) = record else {
            let current = self.cell.current_id().ok_or(CryptoError::NoKek)?;
            return Ok(KekStatus {
                generation: 0,
                current: current.to_string(),
                previous: Vec::new(),
                rotating: false,
                rotated_at_ms: None,
                resealed_at_ms: None,
                waiting_for: Vec::new(),
                resealed: 0,
            });
        };
        let waiting_for = if record.previous.is_empty() {
            Vec::new()
        } else {
            self.members_without(record.current_id()?).await
        };
        Ok(KekStatus {
            generation: record.generation,
            current: record.current.clone(),
            rotating: !record.previous.is_empty(),
            previous: record.previous,
            rotated_at_ms: Some(record.rotated_at_ms),
            resealed_at_ms: record.resealed_at_ms,
            waiting_for,
            resealed: 0,
        })
    }

    /// The record when a rotation is re-sealing and every member holds its
    /// KEK; `Err(status)` otherwise (nothing to do, or members to wait
    /// for).
    pub(crate) async fn ready_to_reseal(
        &self,
    ) -> Result<Result<(KekRecord, u64), KekStatus>, RingError> {
        self.sync(Consistency::Linearizable).await?;
        match self.record(Consistency::Linearizable).await? {
            Some((record, revision)) if !record.previous.is_empty() => {
                let waiting = self.members_without(record.current_id()?).await;
                if waiting.is_empty() {
                    Ok(Ok((record, revision)))
                } else {
                    let mut status = self.status().await?;
                    status.waiting_for = waiting;
                    Ok(Err(status))
                }
            }
            _ => Ok(Err(self.status().await?)),
        }
    }

    /// End the rotation of `record` (read at `revision`): drop the previous
    /// KEKs from the record, then from this node's ring.
    pub(crate) async fn finish(
        &self,
        record: KekRecord,
        revision: u64,
        now_ms: u64,
    ) -> Result<bool, RingError> {
        let done = KekRecord {
            previous: Vec::new(),
            resealed_at_ms: Some(now_ms),
            ..record
        };
        let value = serde_json::to_vec(&done).map_err(|e| RingError::Corrupt(e.to_string()))?;
        let txn = Txn {
            compares: vec![Compare {
                key: record_key(),
                target: CompareTarget::ModRevision(CmpOp::Eq, revision),
            }],
            success: vec![TxnOp::Put {
                key: record_key(),
                value,
                ttl_ms: None,
            }],
            failure: vec![],
        };
        let finished = self.consensus.txn(txn).await?.succeeded;
        self.sync(Consistency::Linearizable).await?;
        Ok(finished)
    }
}

/// How long a rotation request waits for re-sealing, unless it says
/// otherwise, before it answers that the rotation goes on in the
/// background; and the most it may ask for.
pub const RESEAL_WAIT: Duration = Duration::from_secs(60);
pub const MAX_RESEAL_WAIT: Duration = Duration::from_secs(600);

/// Whether a value sealed as `sealed` needs re-sealing under `current`.
pub fn is_stale(sealed: &[u8], current: KekId) -> bool {
    crate::crypto::sealed_with(sealed) != Some(current)
}

/// What a re-sealing pass over one kind of record did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Resealed {
    /// Records rewritten under the current KEK.
    pub rewritten: usize,
    /// Records that changed under the pass (tried again next pass).
    pub conflicts: usize,
}

impl Resealed {
    pub fn add(&mut self, other: Resealed) {
        self.rewritten += other.rewritten;
        self.conflicts += other.conflicts;
    }
}

/// Re-seal, under the current KEK, every record of `keyspace` under
/// `prefix` whose sealed field (`field`, base64url, opened with the AAD
/// `aad` gives) is under another one. Each write is a compare-and-set on
/// the record's revision plus [`guard`]; a record that changed meanwhile
/// counts as a conflict for the next pass. Records with an expiry are
/// not expected here (none of the sealed kinds has one).
pub(crate) async fn reseal_records<T>(
    ring: &KekRing,
    keyspace: &str,
    prefix: &[u8],
    current: KekId,
    field: impl Fn(&mut T) -> &mut String,
    aad: impl Fn(&[u8], &T) -> Vec<u8>,
) -> Result<Resealed, RingError>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    let (kvs, _) = ring
        .consensus
        .range(keyspace, prefix, usize::MAX, Consistency::Linearizable)
        .await?;
    let mut done = Resealed::default();
    for kv in kvs {
        let mut record: T =
            serde_json::from_slice(&kv.value).map_err(|e| RingError::Corrupt(e.to_string()))?;
        let sealed = b64url_decode(field(&mut record))
            .ok_or_else(|| RingError::Corrupt("a sealed field is not base64url".into()))?;
        if !is_stale(&sealed, current) {
            continue;
        }
        let aad = aad(&kv.key.key, &record);
        let plain = ring.cell.open(&aad, &sealed)?;
        let (resealed, guard) = ring.seal(&aad, &plain)?;
        *field(&mut record) = b64url(&resealed);
        let value = serde_json::to_vec(&record).map_err(|e| RingError::Corrupt(e.to_string()))?;
        let txn = Txn {
            compares: vec![
                Compare {
                    key: kv.key.clone(),
                    target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                },
                guard,
            ],
            success: vec![TxnOp::Put {
                key: kv.key,
                value,
                ttl_ms: None,
            }],
            failure: vec![],
        };
        if ring.consensus.txn(txn).await?.succeeded {
            done.rewritten += 1;
        } else {
            done.conflicts += 1;
        }
    }
    Ok(done)
}
