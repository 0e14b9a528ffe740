//! The Raft log and vote on sled, implementing openraft's `RaftLogStorage`.
//!
//! Entries live in tree `g<group>.log` keyed by big-endian index; the vote,
//! the committed log id and the last purged log id live in `g<group>.raft`.
//! An append is visible to readers at once and reported persisted by the
//! group-commit thread ([`crate::sync_thread`]) after a real sync; a vote is
//! synced before `save_vote` returns.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    LogId, OptionalSend, RaftLogReader, RaftTypeConfig, StorageError as RaftStorageError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::{GroupId, Store};
use crate::error::{StorageError, decode, encode};
use crate::sync_thread::SyncThread;

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"purged";

/// The log store of one Raft group. Clones share the same trees.
pub struct LogStore<C: RaftTypeConfig> {
    log: sled::Tree,
    meta: sled::Tree,
    sync: SyncThread,
    _c: std::marker::PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            log: self.log.clone(),
            meta: self.meta.clone(),
            sync: self.sync.clone(),
            _c: std::marker::PhantomData,
        }
    }
}

fn to_raft<NID: openraft::NodeId>(e: StorageError) -> RaftStorageError<NID> {
    openraft::StorageIOError::read(&e).into()
}

fn write_err<NID: openraft::NodeId>(e: impl std::error::Error + 'static) -> RaftStorageError<NID> {
    openraft::StorageIOError::write(&e).into()
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    pub fn open(store: &Store, group: GroupId, sync: SyncThread) -> Result<Self, StorageError> {
        Ok(LogStore {
            log: store.tree(group, "log")?,
            meta: store.tree(group, "raft")?,
            sync,
            _c: std::marker::PhantomData,
        })
    }

    fn get_meta<T: DeserializeOwned>(
        &self,
        name: &'static [u8],
    ) -> Result<Option<T>, StorageError> {
        self.meta
            .get(name)?
            .map(|v| decode("raft meta", &v))
            .transpose()
    }

    fn last_entry(&self) -> Result<Option<C::Entry>, StorageError> {
        match self.log.last()? {
            Some((_, v)) => Ok(Some(decode("log entry", &v)?)),
            None => Ok(None),
        }
    }

    /// The last log id: of the last entry, else of the last purged one.
    pub fn last_log_id(&self) -> Result<Option<LogId<C::NodeId>>, StorageError> {
        match self.last_entry()? {
            Some(e) => Ok(Some(openraft::RaftLogId::get_log_id(&e).clone())),
            None => Ok(self.get_meta::<Option<LogId<C::NodeId>>>(PURGED)?.flatten()),
        }
    }

    /// The stored vote, as stored.
    pub fn stored_vote(&self) -> Result<Option<Vote<C::NodeId>>, StorageError> {
        self.get_meta(VOTE)
    }

    /// `--force-new-cluster`, before Raft starts: append `entry` (the
    /// caller's membership entry naming this node alone, after the last
    /// log id) and store `vote` (of the entry's term), both synced. The
    /// node then starts as the only voter of the membership its log ends
    /// with, and commits its whole log, the new entry last.
    pub fn force_append(
        &self,
        store: &Store,
        entry: C::Entry,
        vote: Vote<C::NodeId>,
    ) -> Result<(), StorageError> {
        let index = openraft::RaftLogId::get_log_id(&entry).index;
        self.log.insert(index.to_be_bytes(), encode(&entry))?;
        self.meta.insert(VOTE, encode(&vote))?;
        store.sync()
    }

    /// Number of entries present (for tests and metrics).
    pub fn len(&self) -> usize {
        self.log.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }
}

fn range_to_keys<RB: RangeBounds<u64>>(range: &RB) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
    let map = |b: Bound<&u64>| match b {
        Bound::Included(i) => Bound::Included(i.to_be_bytes()),
        Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (map(range.start_bound()), map(range.end_bound()))
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, RaftStorageError<C::NodeId>> {
        let mut out = Vec::new();
        for item in self.log.range(range_to_keys(&range)) {
            let (_, v) = item.map_err(|e| to_raft(e.into()))?;
            out.push(decode("log entry", &v).map_err(to_raft)?);
        }
        Ok(out)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, RaftStorageError<C::NodeId>> {
        let last_purged: Option<LogId<C::NodeId>> = self.get_meta(PURGED).map_err(to_raft)?;
        let last = self.last_entry().map_err(to_raft)?;
        let last_log_id = match last {
            Some(e) => Some(openraft::RaftLogId::get_log_id(&e).clone()),
            None => last_purged.clone(),
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(
        &mut self,
        vote: &Vote<C::NodeId>,
    ) -> Result<(), RaftStorageError<C::NodeId>> {
        self.meta.insert(VOTE, encode(vote)).map_err(write_err)?;
        self.sync.sync().await.map_err(write_err)?;
        Ok(())
    }

    /// The stored vote, always reported as not committed.
    ///
    /// openraft reads the vote only at start-up, and a node that finds its
    /// own committed vote there resumes leadership in the same term, with
    /// no new blank entry. Its read index is then its stored committed
    /// index, which is not synced (see `save_committed`) and after a power
    /// cut can be older than writes the cluster acknowledged: a
    /// linearizable read would miss them. Its own log tail can also be
    /// shorter than what followers committed for it. Reported uncommitted,
    /// the vote still stops this node from voting twice in its term, but
    /// leadership must be won again in a new term, whose blank entry is
    /// behind every write acknowledged before the restart. A follower's
    /// vote becomes committed again with its leader's first message.
    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, RaftStorageError<C::NodeId>> {
        Ok(self
            .get_meta::<Vote<C::NodeId>>(VOTE)
            .map_err(to_raft)?
            .map(|vote| Vote {
                committed: false,
                ..vote
            }))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), RaftStorageError<C::NodeId>> {
        // Not synced: after a crash a lower committed index is safe, because
        // no node resumes leadership across a restart (see `read_vote`).
        self.meta
            .insert(COMMITTED, encode(&committed))
            .map_err(write_err)?;
        Ok(())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, RaftStorageError<C::NodeId>> {
        Ok(self
            .get_meta::<Option<LogId<C::NodeId>>>(COMMITTED)
            .map_err(to_raft)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), RaftStorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let index = openraft::RaftLogId::get_log_id(&entry).index;
            batch.insert(&index.to_be_bytes(), encode(&entry));
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        self.sync
            .request(move |r| callback.log_io_completed(r))
            .map_err(write_err)?;
        Ok(())
    }

    async fn truncate(
        &mut self,
        log_id: LogId<C::NodeId>,
    ) -> Result<(), RaftStorageError<C::NodeId>> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(log_id.index.to_be_bytes()..) {
            let (k, _) = item.map_err(write_err)?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), RaftStorageError<C::NodeId>> {
        // Record the purge point first, so a crash midway never leaves a hole
        // that get_log_state would not report.
        self.meta
            .insert(PURGED, encode(&log_id))
            .map_err(write_err)?;
        let mut batch = sled::Batch::default();
        for item in self.log.range(..=log_id.index.to_be_bytes()) {
            let (k, _) = item.map_err(write_err)?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        Ok(())
    }
}
