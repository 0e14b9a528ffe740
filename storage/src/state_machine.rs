//! openraft's `RaftStateMachine` over the [`KvEngine`], with snapshots.
//!
//! The state machine is persistent: each entry is applied as one sled batch
//! that also records the applied log id, so after a restart the machine resumes
//! from what it had applied and openraft replays the rest of the log.
//!
//! A snapshot is a copy of the whole state tree at one point between two
//! applies, started in the state machine's task and written to a file by
//! openraft's builder task while applies go on (the engine's copy-on-write
//! copies); the file is synced before it is reported, because openraft purges
//! the log behind it. Its metadata and file name are in `g<group>.snap`.
//! Installing one reads the received file a chunk at a time; an install cut
//! short by a crash is redone from the file when the store opens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, RaftTypeConfig, Snapshot,
    SnapshotMeta, StorageError as RaftStorageError, StoredMembership,
};

use crate::db::{GroupId, Store};
use crate::error::{StorageError, decode, encode};
use crate::kv::{Command, Response};
use crate::kv_engine::{CopySession, KvEngine};
use crate::snapshot_file::{self, SnapshotFile};
use crate::sync_thread::SyncThread;

pub(crate) const APPLIED: &[u8] = b"mapplied";
pub(crate) const MEMBERSHIP: &[u8] = b"mmembership";
const SNAP_META: &[u8] = b"meta";
/// The current snapshot's file name, in the snapshot folder.
const SNAP_FILE: &[u8] = b"file";
/// The file name of a snapshot whose install had not finished.
const SNAP_INSTALLING: &[u8] = b"installing";
/// Where the previous release kept the snapshot's bytes (moved to a file
/// on open).
const SNAP_DATA: &[u8] = b"data";

/// A copy started between two applies, and the point it is of.
struct StateCopy<C: RaftTypeConfig> {
    session: CopySession,
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

/// Where a group's snapshots are kept: metadata in a tree, bytes in files.
#[derive(Clone)]
struct Snapshots {
    tree: sled::Tree,
    folder: PathBuf,
    group: GroupId,
    sync: SyncThread,
    /// Taken to compare and set the current snapshot.
    current: Arc<std::sync::Mutex<()>>,
}

/// The state machine of one Raft group.
pub struct StateMachineStore<C: RaftTypeConfig> {
    engine: KvEngine,
    snapshots: Snapshots,
    snapshot_seq: Arc<AtomicU64>,
    observer: Option<ApplyObserver>,
    snapshot_observer: Option<SnapshotObserver>,
    _c: std::marker::PhantomData<fn() -> C>,
}

/// Builds a snapshot from a copy started between two applies.
pub struct SnapshotBuilder<C: RaftTypeConfig> {
    copy: Option<Result<StateCopy<C>, StorageError>>,
    snapshots: Snapshots,
    seq: u64,
    observer: Option<SnapshotObserver>,
}

fn state_read_failed<NID: openraft::NodeId>(e: StorageError) -> RaftStorageError<NID> {
    openraft::StorageIOError::read_state_machine(&e).into()
}

fn state_write_failed<NID: openraft::NodeId>(e: StorageError) -> RaftStorageError<NID> {
    openraft::StorageIOError::write_state_machine(&e).into()
}

fn snapshot_failed<NID: openraft::NodeId>(e: StorageError) -> RaftStorageError<NID> {
    openraft::StorageIOError::write_snapshot(None, &e).into()
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StorageError::corrupt("snapshot task", e)))
}

fn read_applied<NID: openraft::NodeId>(
    tree: &sled::Tree,
) -> Result<Option<LogId<NID>>, StorageError> {
    Ok(tree
        .get(APPLIED)?
        .map(|v| decode::<Option<LogId<NID>>>("applied log id", &v))
        .transpose()?
        .flatten())
}

fn read_membership<NID: openraft::NodeId, N: openraft::Node>(
    tree: &sled::Tree,
) -> Result<StoredMembership<NID, N>, StorageError> {
    Ok(tree
        .get(MEMBERSHIP)?
        .map(|v| decode("membership", &v))
        .transpose()?
        .unwrap_or_default())
}

impl Snapshots {
    fn path(&self, name: &str) -> PathBuf {
        self.folder.join(name)
    }

    /// A new file name of this group's, `.snap` or `.part`.
    fn new_name(&self, seq: u64, ext: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("g{}-{nanos:x}-{seq}.{ext}", self.group)
    }

    fn current_name(&self) -> Result<Option<String>, StorageError> {
        self.tree
            .get(SNAP_FILE)?
            .map(|v| {
                String::from_utf8(v.to_vec())
                    .map_err(|e| StorageError::corrupt("snapshot file name", e))
            })
            .transpose()
    }

    /// Record `name` as the current snapshot (and, with `installing`, as
    /// one whose install is under way), durably, unless the current one is
    /// newer: a build that ran while a newer snapshot was installed is
    /// dropped (answered `false`). Either way, the files no snapshot uses
    /// are then removed.
    async fn set_current<NID: openraft::NodeId, N: openraft::Node>(
        &self,
        meta: &SnapshotMeta<NID, N>,
        name: &str,
        installing: bool,
    ) -> Result<bool, StorageError> {
        let snapshots = self.clone();
        let remove_others = || blocking(move || snapshots.remove_others());
        {
            let _current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(bytes) = self.tree.get(SNAP_META)? {
                let current: SnapshotMeta<NID, N> = decode("snapshot meta", &bytes)?;
                if current.last_log_id > meta.last_log_id {
                    drop(_current);
                    remove_others().await?;
                    return Ok(false);
                }
            }
            let mut batch = sled::Batch::default();
            batch.insert(SNAP_META, encode(meta));
            batch.insert(SNAP_FILE, name.as_bytes());
            if installing {
                batch.insert(SNAP_INSTALLING, name.as_bytes());
            }
            self.tree.apply_batch(batch)?;
        }
        self.sync.sync().await?;
        remove_others().await?;
        Ok(true)
    }

    /// Remove this group's files other than the current snapshot's.
    fn remove_others(&self) -> Result<(), StorageError> {
        let keep = self.current_name()?;
        let prefix = format!("g{}-", self.group);
        let entries = match std::fs::read_dir(&self.folder) {
            Ok(entries) => entries,
            Err(e) => return Err(StorageError::io(&self.folder, e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && Some(&name) != keep.as_ref() {
                // A file still being sent stays readable until closed.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

/// Replace `engine`'s state with the snapshot file at `path`, then the
/// applied log id and membership of `meta`. Blocking.
fn replace_from_file<NID: openraft::NodeId, N: openraft::Node>(
    engine: &KvEngine,
    path: &Path,
    meta: &SnapshotMeta<NID, N>,
) -> Result<(), StorageError> {
    let reader = snapshot_file::Reader::open(path)?;
    let last = [
        (APPLIED.to_vec(), encode(&meta.last_log_id)),
        (MEMBERSHIP.to_vec(), encode(&meta.last_membership)),
    ];
    engine.replace_all(reader, &last)
}

impl<C> StateMachineStore<C>
where
    C: RaftTypeConfig<D = Command, R = Response, Entry = Entry<C>, SnapshotData = SnapshotFile>,
{
    /// Opens the group's state machine: moves a snapshot the previous
    /// release kept in sled into a file, redoes an install a crash cut
    /// short, and removes files no snapshot uses.
    pub fn open(store: &Store, group: GroupId, sync: SyncThread) -> Result<Self, StorageError> {
        let folder = snapshot_file::folder(store.path());
        std::fs::create_dir_all(&folder).map_err(|e| StorageError::io(&folder, e))?;
        let snapshots = Snapshots {
            tree: store.tree(group, "snap")?,
            folder,
            group,
            sync,
            current: Arc::default(),
        };
        let engine = KvEngine::new(store.tree(group, "sm")?)?;
        if let Some(bytes) = snapshots.tree.get(SNAP_DATA)? {
            let name = snapshots.new_name(0, "snap");
            let path = snapshots.path(&name);
            std::fs::write(&path, &bytes)
                .and_then(|()| std::fs::File::open(&path)?.sync_all())
                .map_err(|e| StorageError::io(&path, e))?;
            snapshot_file::sync_folder(&path)?;
            let mut batch = sled::Batch::default();
            batch.insert(SNAP_FILE, name.as_bytes());
            batch.remove(SNAP_DATA);
            snapshots.tree.apply_batch(batch)?;
            store.sync()?;
        }
        if let Some(name) = snapshots.tree.get(SNAP_INSTALLING)? {
            let name = String::from_utf8_lossy(&name).into_owned();
            let meta: SnapshotMeta<C::NodeId, C::Node> = decode(
                "snapshot meta",
                &snapshots
                    .tree
                    .get(SNAP_META)?
                    .ok_or_else(|| StorageError::corrupt("snapshot", "install without meta"))?,
            )?;
            replace_from_file(&engine, &snapshots.path(&name), &meta)?;
            snapshots.tree.remove(SNAP_INSTALLING)?;
            store.sync()?;
        }
        snapshots.remove_others()?;
        Ok(StateMachineStore {
            engine,
            snapshots,
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
}

impl<C> RaftSnapshotBuilder<C> for SnapshotBuilder<C>
where
    C: RaftTypeConfig<D = Command, R = Response, Entry = Entry<C>, SnapshotData = SnapshotFile>,
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, RaftStorageError<C::NodeId>> {
        let started = Instant::now();
        let copy = self
            .copy
            .take()
            .unwrap_or_else(|| Err(StorageError::corrupt("snapshot", "builder used twice")))
            .map_err(state_read_failed)?;
        let snapshot_id = match &copy.applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, self.seq),
            None => format!("0-0-{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: copy.applied,
            last_membership: copy.membership,
            snapshot_id,
        };
        let name = self.snapshots.new_name(self.seq, "snap");
        let path = self.snapshots.path(&name);
        let mut session = copy.session;
        let written = path.clone();
        snapshot_file::spawn_background("rsp-snapshot", move || {
            snapshot_file::write(&written, &mut session, &[])
        })
        .map_err(snapshot_failed)?
        .await
        .unwrap_or_else(|e| Err(StorageError::corrupt("snapshot task", e)))
        .map_err(snapshot_failed)?;
        // Open before it can be removed: openraft gets it either way, and
        // keeps the newer snapshot if one was installed meanwhile.
        let file = SnapshotFile::open(path.clone())
            .await
            .map_err(|e| snapshot_failed(StorageError::io(&path, e)))?;
        self.snapshots
            .set_current(&meta, &name, false)
            .await
            .map_err(snapshot_failed)?;
        if let Some(observe) = &self.observer {
            observe(SnapshotEvent::Built, started.elapsed());
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

impl<C> RaftStateMachine<C> for StateMachineStore<C>
where
    C: RaftTypeConfig<D = Command, R = Response, Entry = Entry<C>, SnapshotData = SnapshotFile>,
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
        let tree = self.engine.tree();
        Ok((
            read_applied(tree).map_err(state_read_failed)?,
            read_membership(tree).map_err(state_read_failed)?,
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
        // Started now, between two applies, so the snapshot is the state at
        // the applied log id read with it; the builder reads it while
        // applies go on. A read error surfaces from build_snapshot.
        let copy = self
            .engine
            .start_snapshot_copy(|tree| Ok((read_applied(tree)?, read_membership(tree)?)))
            .map(|(session, (applied, membership))| StateCopy {
                session,
                applied,
                membership,
            });
        SnapshotBuilder {
            copy: Some(copy),
            snapshots: self.snapshots.clone(),
            seq: self.snapshot_seq.fetch_add(1, Ordering::Relaxed),
            observer: self.snapshot_observer.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<SnapshotFile>, RaftStorageError<C::NodeId>> {
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let path = self.snapshots.path(&self.snapshots.new_name(seq, "part"));
        let file = SnapshotFile::create(path.clone())
            .await
            .map_err(|e| snapshot_failed(StorageError::io(&path, e)))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<C::NodeId, C::Node>,
        mut snapshot: Box<SnapshotFile>,
    ) -> Result<(), RaftStorageError<C::NodeId>> {
        let started = Instant::now();
        let received = snapshot.path().to_path_buf();
        snapshot
            .sync()
            .await
            .map_err(|e| snapshot_failed(StorageError::io(&received, e)))?;
        drop(snapshot);
        // Checked before anything is replaced: a newer format is refused
        // with the state untouched.
        snapshot_file::Reader::open(&received).map_err(state_write_failed)?;
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let name = self.snapshots.new_name(seq, "snap");
        let path = self.snapshots.path(&name);
        std::fs::rename(&received, &path)
            .map_err(|e| snapshot_failed(StorageError::io(&path, e)))?;
        snapshot_file::sync_folder(&path).map_err(snapshot_failed)?;
        self.snapshots
            .set_current(meta, &name, true)
            .await
            .map_err(snapshot_failed)?
            .then_some(())
            .ok_or_else(|| {
                snapshot_failed(StorageError::corrupt(
                    "snapshot",
                    "the snapshot to install is older than this node's own",
                ))
            })?;
        let engine = self.engine.clone();
        let owned = meta.clone();
        blocking(move || replace_from_file(&engine, &path, &owned))
            .await
            .map_err(state_write_failed)?;
        self.snapshots
            .tree
            .remove(SNAP_INSTALLING)
            .map_err(|e| state_write_failed(e.into()))?;
        self.snapshots
            .sync
            .sync()
            .await
            .map_err(state_write_failed)?;
        if let Some(observe) = &self.snapshot_observer {
            observe(SnapshotEvent::Installed, started.elapsed());
        }
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<C>>, RaftStorageError<C::NodeId>> {
        let read = |e: sled::Error| state_read_failed(e.into());
        let meta = self.snapshots.tree.get(SNAP_META).map_err(read)?;
        let name = self.snapshots.current_name().map_err(state_read_failed)?;
        let (Some(meta), Some(name)) = (meta, name) else {
            return Ok(None);
        };
        let path = self.snapshots.path(&name);
        let file = SnapshotFile::open(path.clone())
            .await
            .map_err(|e| state_read_failed(StorageError::io(&path, e)))?;
        Ok(Some(Snapshot {
            meta: decode("snapshot meta", &meta).map_err(state_read_failed)?,
            snapshot: Box::new(file),
        }))
    }
}
