//! openraft's `RaftStateMachine` over the [`KvEngine`], with snapshots.
//!
//! The state machine is persistent: each entry is applied as one sled batch
//! that also records the applied log id, so after a restart the machine resumes
//! from what it had applied and openraft replays the rest of the log. A
//! snapshot is a copy of the whole state tree taken between two applies (so it
//! is consistent), stored in `g<group>.snap` and synced before it is reported,
//! because openraft purges the log behind it.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, RaftTypeConfig, Snapshot,
    SnapshotMeta, StorageError as RaftStorageError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use crate::db::{GroupId, Store};
use crate::error::{StorageError, decode, encode};
use crate::kv::{Command, Response};
use crate::kv_engine::{KvEngine, RawEntries};
use crate::sync_thread::SyncThread;

pub(crate) const APPLIED: &[u8] = b"mapplied";
pub(crate) const MEMBERSHIP: &[u8] = b"mmembership";
const SNAP_META: &[u8] = b"meta";
const SNAP_DATA: &[u8] = b"data";
const SNAPSHOT_FORMAT: u16 = 1;

#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    format: u16,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The state as it was between two applies.
struct StateCopy<C: RaftTypeConfig> {
    entries: RawEntries,
    applied: Option<LogId<C::NodeId>>,
    membership: StoredMembership<C::NodeId, C::Node>,
}

/// Called with the time each normal entry took to apply.
pub type ApplyObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// What happened to a snapshot, for [`SnapshotObserver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotEvent {
    /// This node built a snapshot of its state (and synced it).
    Built,
    /// This node installed a snapshot the leader sent.
    Installed,
}

impl SnapshotEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotEvent::Built => "build",
            SnapshotEvent::Installed => "install",
        }
    }
}

/// Called with each snapshot built or installed and the time it took.
pub type SnapshotObserver = Arc<dyn Fn(SnapshotEvent, Duration) + Send + Sync>;

/// The state machine of one Raft group.
pub struct StateMachineStore<C: RaftTypeConfig> {
    engine: KvEngine,
    snap: sled::Tree,
    sync: SyncThread,
    snapshot_seq: Arc<AtomicU64>,
    observer: Option<ApplyObserver>,
    snapshot_observer: Option<SnapshotObserver>,
    _c: std::marker::PhantomData<fn() -> C>,
}

/// Builds a snapshot from a copy taken between two applies.
pub struct SnapshotBuilder<C: RaftTypeConfig> {
    copy: Option<Result<StateCopy<C>, StorageError>>,
    snap: sled::Tree,
    sync: SyncThread,
    seq: u64,
    observer: Option<SnapshotObserver>,
}

fn state_read_failed<NID: openraft::NodeId>(e: StorageError) -> RaftStorageError<NID> {
    openraft::StorageIOError::read_state_machine(&e).into()
}

fn state_write_failed<NID: openraft::NodeId>(e: StorageError) -> RaftStorageError<NID> {
    openraft::StorageIOError::write_state_machine(&e).into()
}

impl<C> StateMachineStore<C>
where
    C: RaftTypeConfig<D = Command, R = Response, Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
{
    pub fn open(store: &Store, group: GroupId, sync: SyncThread) -> Result<Self, StorageError> {
        Ok(StateMachineStore {
            engine: KvEngine::new(store.tree(group, "sm")?)?,
            snap: store.tree(group, "snap")?,
            sync,
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            observer: None,
            snapshot_observer: None,
            _c: std::marker::PhantomData,
        })
    }

    pub fn with_apply_observer(mut self, observer: ApplyObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn with_snapshot_observer(mut self, observer: SnapshotObserver) -> Self {
        self.snapshot_observer = Some(observer);
        self
    }

    /// The engine, for local reads and watches. Clones share the tree.
    pub fn engine(&self) -> KvEngine {
        self.engine.clone()
    }

    fn applied(&self) -> Result<Option<LogId<C::NodeId>>, StorageError> {
        Ok(self
            .engine
            .tree()
            .get(APPLIED)?
            .map(|v| decode::<Option<LogId<C::NodeId>>>("applied log id", &v))
            .transpose()?
            .flatten())
    }

    fn membership(&self) -> Result<StoredMembership<C::NodeId, C::Node>, StorageError> {
        Ok(self
            .engine
            .tree()
            .get(MEMBERSHIP)?
            .map(|v| decode("membership", &v))
            .transpose()?
            .unwrap_or_default())
    }
}

impl<C> RaftSnapshotBuilder<C> for SnapshotBuilder<C>
where
    C: RaftTypeConfig<D = Command, R = Response, Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, RaftStorageError<C::NodeId>> {
        let started = Instant::now();
        let copy = self
            .copy
            .take()
            .unwrap_or_else(|| Err(StorageError::corrupt("snapshot", "builder used twice")))
            .map_err(state_read_failed)?;
        let body = encode(&SnapshotBody {
            format: SNAPSHOT_FORMAT,
            entries: copy.entries,
        });
        let snapshot_id = match &copy.applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, self.seq),
            None => format!("0-0-{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: copy.applied,
            last_membership: copy.membership,
            snapshot_id,
        };
        save_snapshot(&self.snap, &meta, &body).map_err(state_write_failed)?;
        self.sync.sync().await.map_err(state_write_failed)?;
        if let Some(observe) = &self.observer {
            observe(SnapshotEvent::Built, started.elapsed());
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(body)),
        })
    }
}

fn save_snapshot<NID: openraft::NodeId, N: openraft::Node>(
    snap: &sled::Tree,
    meta: &SnapshotMeta<NID, N>,
    body: &[u8],
) -> Result<(), StorageError> {
    let mut batch = sled::Batch::default();
    batch.insert(SNAP_META, encode(meta));
    batch.insert(SNAP_DATA, body);
    snap.apply_batch(batch)?;
    Ok(())
}

impl<C> RaftStateMachine<C> for StateMachineStore<C>
where
    C: RaftTypeConfig<D = Command, R = Response, Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
{
    type SnapshotBuilder = SnapshotBuilder<C>;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<C::NodeId>>,
            StoredMembership<C::NodeId, C::Node>,
        ),
        RaftStorageError<C::NodeId>,
    > {
        Ok((
            self.applied().map_err(state_read_failed)?,
            self.membership().map_err(state_read_failed)?,
        ))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, RaftStorageError<C::NodeId>>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        for entry in entries {
            let applied = (APPLIED.to_vec(), encode(&Some(entry.log_id.clone())));
            match entry.payload {
                EntryPayload::Blank => {
                    self.engine
                        .apply_meta(&[applied])
                        .map_err(state_write_failed)?;
                    out.push(Response::None);
                }
                EntryPayload::Normal(cmd) => {
                    let start = Instant::now();
                    let response = self
                        .engine
                        .apply(&cmd, &[applied])
                        .map_err(state_write_failed)?;
                    if let Some(observe) = &self.observer {
                        observe(start.elapsed());
                    }
                    out.push(response);
                }
                EntryPayload::Membership(m) => {
                    let stored = StoredMembership::new(Some(entry.log_id), m);
                    self.engine
                        .apply_meta(&[applied, (MEMBERSHIP.to_vec(), encode(&stored))])
                        .map_err(state_write_failed)?;
                    out.push(Response::None);
                }
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Copy now, between two applies, so the snapshot is consistent; a
        // read error surfaces from build_snapshot.
        let copy = (|| {
            Ok(StateCopy {
                entries: self.engine.export()?,
                applied: self.applied()?,
                membership: self.membership()?,
            })
        })();
        SnapshotBuilder {
            copy: Some(copy),
            snap: self.snap.clone(),
            sync: self.sync.clone(),
            seq: self.snapshot_seq.fetch_add(1, Ordering::Relaxed),
            observer: self.snapshot_observer.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, RaftStorageError<C::NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<C::NodeId, C::Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), RaftStorageError<C::NodeId>> {
        let started = Instant::now();
        let bytes = snapshot.into_inner();
        let body: SnapshotBody = decode("snapshot", &bytes).map_err(state_write_failed)?;
        if body.format > SNAPSHOT_FORMAT {
            return Err(state_write_failed(StorageError::corrupt(
                "snapshot",
                format!(
                    "format {} is newer than this build understands",
                    body.format
                ),
            )));
        }
        let mut entries = body.entries;
        entries.retain(|(k, _)| k != APPLIED && k != MEMBERSHIP);
        entries.push((APPLIED.to_vec(), encode(&meta.last_log_id)));
        entries.push((MEMBERSHIP.to_vec(), encode(&meta.last_membership)));
        self.engine.import(&entries).map_err(state_write_failed)?;
        save_snapshot(&self.snap, meta, &bytes).map_err(state_write_failed)?;
        self.sync.sync().await.map_err(state_write_failed)?;
        if let Some(observe) = &self.snapshot_observer {
            observe(SnapshotEvent::Installed, started.elapsed());
        }
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<C>>, RaftStorageError<C::NodeId>> {
        let meta = self
            .snap
            .get(SNAP_META)
            .map_err(|e| state_read_failed(e.into()))?;
        let data = self
            .snap
            .get(SNAP_DATA)
            .map_err(|e| state_read_failed(e.into()))?;
        match (meta, data) {
            (Some(meta), Some(data)) => Ok(Some(Snapshot {
                meta: decode("snapshot meta", &meta).map_err(state_read_failed)?,
                snapshot: Box::new(Cursor::new(data.to_vec())),
            })),
            _ => Ok(None),
        }
    }
}
