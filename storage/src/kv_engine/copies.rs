//! Whole-tree copies of the engine, for Raft snapshots and backups, and
//! replacing the whole tree with a snapshot's.
//!
//! A copy is the state at one point between two applies, read in chunks
//! while applies go on (copy-on-write): a [`CopySession`] walks the tree in
//! key order, a chunk at a time under the apply gate, and every batch
//! written meanwhile first saves, under the same gate, the values it
//! overwrites at keys the copy has not reached yet. A chunk is the tree's
//! entries of its key range with those saved values put back, so the copy
//! never sees a write made after it started, and applies wait at most for
//! one chunk's read. What a copy holds in memory is one chunk and the
//! saved values of keys written ahead of its cursor: bounded by the writes
//! made while it runs, never by the size of the state.

use std::ops::Bound;

use super::*;

/// Entries per batch when replacing the tree.
pub const CHUNK_ENTRIES: usize = 1024;
/// Entries read per chunk of a copy: applies wait for at most one chunk's
/// read (about a millisecond), so it is kept small.
const COPY_CHUNK: usize = 256;
/// Bytes written between two sled flushes when replacing the tree (and
/// when restoring a backup).
pub const FLUSH_BYTES: usize = 32 << 20;

/// Where a copy stands; shared with the engine, which saves into `saved`.
#[derive(Default)]
pub(crate) struct CopyState {
    /// The last key copied; `None` before the first chunk.
    cursor: Option<Vec<u8>>,
    done: bool,
    /// The tree was replaced (a snapshot installed) under the copy.
    aborted: bool,
    /// A Raft snapshot's copy: replacing the tree waits for it instead of
    /// failing it (openraft takes a failed build for a storage fault).
    waited: bool,
    /// Keys written ahead of the cursor since the copy started, with what
    /// they held when it started (`None`: absent).
    saved: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl CopyState {
    fn reached(&self, key: &[u8]) -> bool {
        self.done || self.cursor.as_deref().is_some_and(|c| key <= c)
    }
}

/// A copy of the tree as it was when [`KvEngine::start_copy`] was called,
/// read with [`CopySession::next_chunk`]. Dropping it ends the copy.
pub struct CopySession {
    engine: KvEngine,
    state: Arc<Mutex<CopyState>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl KvEngine {
    /// Start a copy of the tree as it is now, between two applies; `at_start`
    /// reads what the caller needs of that same point (applied log id,
    /// revision) under the gate.
    pub fn start_copy<R>(
        &self,
        at_start: impl FnOnce(&sled::Tree) -> Result<R, StorageError>,
    ) -> Result<(CopySession, R), StorageError> {
        self.start(false, at_start)
    }

    /// [`KvEngine::start_copy`] for a Raft snapshot: a snapshot install
    /// waits for it to end (both are run by the state machine, so an
    /// install never waits for a copy it started itself).
    pub fn start_snapshot_copy<R>(
        &self,
        at_start: impl FnOnce(&sled::Tree) -> Result<R, StorageError>,
    ) -> Result<(CopySession, R), StorageError> {
        self.start(true, at_start)
    }

    fn start<R>(
        &self,
        waited: bool,
        at_start: impl FnOnce(&sled::Tree) -> Result<R, StorageError>,
    ) -> Result<(CopySession, R), StorageError> {
        // Not while a snapshot replaces the tree (that aborts copies
        // already under way).
        let _reading = self.reading();
        let _gate = self.gate();
        let read = at_start(&self.tree)?;
        let state = Arc::new(Mutex::new(CopyState {
            waited,
            ..CopyState::default()
        }));
        lock(&self.copies).push(state.clone());
        Ok((
            CopySession {
                engine: self.clone(),
                state,
            },
            read,
        ))
    }

    /// Called under the gate before a batch writes `keys`: each copy under
    /// way keeps what the tree holds at those it has not reached yet.
    pub(super) fn save_for_copies<'k>(
        &self,
        keys: impl Iterator<Item = &'k Vec<u8>>,
    ) -> Result<(), StorageError> {
        let copies = lock(&self.copies);
        if copies.is_empty() {
            return Ok(());
        }
        for key in keys {
            let mut old = None;
            for copy in copies.iter() {
                let mut copy = lock(copy);
                if copy.reached(key) || copy.saved.contains_key(key) {
                    continue;
                }
                if old.is_none() {
                    old = Some(self.tree.get(key)?.map(|v| v.to_vec()));
                }
                copy.saved.insert(key.clone(), old.clone().flatten());
            }
        }
        Ok(())
    }

    /// Every entry of the tree (the expiry index is never on disk), read
    /// through a copy: for tests and small trees.
    pub fn export(&self) -> Result<RawEntries, StorageError> {
        let (mut copy, ()) = self.start_copy(|_| Ok(()))?;
        let mut out = Vec::new();
        while let Some(chunk) = copy.next_chunk()? {
            out.extend(chunk);
        }
        Ok(out)
    }

    /// Whether `key` is of the expiry index's old on-disk layout (never in
    /// a copy, and skipped when replacing).
    pub fn is_index_key(key: &[u8]) -> bool {
        key.first() == Some(&EXPIRY)
    }

    /// Replace the whole tree with a snapshot's entries, in one call.
    pub fn import(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        let chunks = entries
            .chunks(CHUNK_ENTRIES)
            .map(|c| Ok::<_, StorageError>(c.to_vec()));
        self.replace_all(chunks, &[])
    }

    /// Replace the whole tree with `chunks` and then `last` (the caller's
    /// metadata, written once everything else is in). Readers wait until
    /// it is done; copies under way fail. Not atomic on disk: a caller
    /// that can crash midway keeps the source and replaces again on
    /// restart. The expiry index is rebuilt from the records.
    pub fn replace_all(
        &self,
        chunks: impl Iterator<Item = Result<RawEntries, StorageError>>,
        last: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), StorageError> {
        while lock(&self.copies).iter().any(|c| lock(c).waited) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _replacing = self.replacing.write().unwrap_or_else(|p| p.into_inner());
        for copy in lock(&self.copies).iter() {
            lock(copy).aborted = true;
        }
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        let flush = |batch: &mut sled::Batch, n: &mut usize| -> Result<(), StorageError> {
            let _gate = self.gate();
            self.tree.apply_batch(std::mem::take(batch))?;
            *n = 0;
            Ok(())
        };
        for item in self.tree.iter().keys() {
            batch.remove(item?);
            in_batch += 1;
            if in_batch == CHUNK_ENTRIES {
                flush(&mut batch, &mut in_batch)?;
            }
        }
        flush(&mut batch, &mut in_batch)?;
        let mut unflushed = 0;
        for chunk in chunks {
            for (k, v) in chunk? {
                if Self::is_index_key(&k) {
                    continue;
                }
                unflushed += k.len() + v.len();
                batch.insert(k, v);
                in_batch += 1;
            }
            if in_batch >= CHUNK_ENTRIES {
                flush(&mut batch, &mut in_batch)?;
            }
            // sled keeps written pages in memory until they are flushed:
            // flush as it goes, so memory does not grow with the snapshot.
            if unflushed >= FLUSH_BYTES {
                self.tree.flush()?;
                unflushed = 0;
            }
        }
        for (k, v) in last {
            batch.insert(k.as_slice(), v.as_slice());
        }
        flush(&mut batch, &mut in_batch)?;
        self.rebuild_expiry()
    }
}

impl CopySession {
    /// The next entries of the copy in key order (possibly none, when
    /// every key of a stretch was written after the copy started); `None`
    /// once the whole tree is copied.
    pub fn next_chunk(&mut self) -> Result<Option<RawEntries>, StorageError> {
        let engine = &self.engine;
        let _gate = engine.gate();
        let mut state = lock(&self.state);
        if state.aborted {
            return Err(StorageError::corrupt(
                "state copy",
                "a snapshot replaced the state while it was being copied; start again",
            ));
        }
        if state.done {
            return Ok(None);
        }
        let lower = match &state.cursor {
            Some(c) => Bound::Excluded(c.clone()),
            None => Bound::Unbounded,
        };
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut upper = None;
        let mut exhausted = true;
        for item in engine
            .tree
            .range::<Vec<u8>, _>((lower.clone(), Bound::Unbounded))
        {
            if merged.len() == COPY_CHUNK {
                exhausted = false;
                break;
            }
            let (k, v) = item?;
            upper = Some(k.to_vec());
            merged.insert(k.to_vec(), Some(v.to_vec()));
        }
        let upper = match (exhausted, upper) {
            (false, Some(upper)) => Bound::Included(upper),
            _ => Bound::Unbounded,
        };
        let saved: Vec<Vec<u8>> = state
            .saved
            .range::<Vec<u8>, _>((lower, upper.clone()))
            .map(|(k, _)| k.clone())
            .collect();
        for k in saved {
            if let Some(old) = state.saved.remove(&k) {
                merged.insert(k, old);
            }
        }
        match upper {
            Bound::Included(upper) => state.cursor = Some(upper),
            _ => state.done = true,
        }
        Ok(Some(
            merged
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .filter(|(k, _)| !KvEngine::is_index_key(k))
                .collect(),
        ))
    }
}

impl Drop for CopySession {
    fn drop(&mut self) {
        lock(&self.engine.copies).retain(|c| !Arc::ptr_eq(c, &self.state));
    }
}

impl Iterator for CopySession {
    type Item = Result<RawEntries, StorageError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}
