//! The node's sled database and how it is made durable.
//!
//! sled 0.34's `flush()` writes its buffers with `sync_file_range`, which pushes
//! pages to the device but does not flush the device's write cache nor the
//! file's metadata: an acknowledged write can be lost when the *machine* loses
//! power. [`Store::sync`] therefore follows every `flush()` with an
//! `fdatasync` of sled's data file (Linux flushes an inode's data whatever
//! descriptor wrote it). Values large enough to become sled "blobs" live in
//! separate files that sled never syncs, so the segment size is raised until the
//! blob threshold (a quarter of a segment) is above [`crate::kv::MAX_VALUE_LEN`]
//! plus Raft's framing; the consensus layer refuses larger commands.
//!
//! Every Raft group gets its own trees, named `g<group>.<part>`, so a node can
//! host several groups in one database.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::StorageError;

/// sled segment size: 8 MiB, so only values above ~2 MiB become blobs.
const SEGMENT_SIZE: usize = 8 << 20;

/// Identifies a Raft group (the meta group is 0; data groups follow).
pub type GroupId = u64;

/// Whether a sync reaches the platter or only the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `flush()` then `fdatasync` (the default).
    Fsync,
    /// `flush()` only: survives a process crash, not a machine crash. For
    /// benchmarks that want to show the cost of the real thing.
    FlushOnly,
}

/// Settings for opening a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub durability: Durability,
    /// sled page cache size in bytes.
    pub cache_bytes: u64,
}

impl StoreConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreConfig {
            path: path.into(),
            durability: Durability::Fsync,
            cache_bytes: 256 << 20,
        }
    }
}

struct Inner {
    db: sled::Db,
    data_file: Option<File>,
    durability: Durability,
    path: PathBuf,
}

/// A handle to the node's database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Store {
    pub fn open(config: &StoreConfig) -> Result<Store, StorageError> {
        std::fs::create_dir_all(&config.path).map_err(|e| StorageError::io(&config.path, e))?;
        let open = || {
            sled::Config::new()
                .path(&config.path)
                .segment_size(SEGMENT_SIZE)
                .cache_capacity(config.cache_bytes)
                .mode(sled::Mode::HighThroughput)
                // We decide when to flush; sled's background flusher would
                // only add unsynced writes.
                .flush_every_ms(None)
                .open()
        };
        // A previous handle on the same directory in this process (a restart
        // in a test, a reopen after shutdown) can hold sled's file lock for a
        // moment while its background threads finish: retry briefly.
        let mut attempts = 0;
        let db = loop {
            match open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && attempts < 50 =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let data_path = config.path.join("db");
        let data_file = match config.durability {
            Durability::Fsync => Some(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&data_path)
                    .map_err(|e| StorageError::io(&data_path, e))?,
            ),
            Durability::FlushOnly => None,
        };
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                data_file,
                durability: config.durability,
                path: config.path.clone(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// A tree of a group, e.g. `tree(0, "log")` is `g0.log`.
    pub fn tree(&self, group: GroupId, part: &str) -> Result<sled::Tree, StorageError> {
        Ok(self.inner.db.open_tree(format!("g{group}.{part}"))?)
    }

    /// The node-wide tree (node identity and such), outside any group.
    pub fn node_tree(&self) -> Result<sled::Tree, StorageError> {
        Ok(self.inner.db.open_tree("node")?)
    }

    /// Make every write issued before this call durable. Blocking: call it from
    /// a blocking thread.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.inner.db.flush()?;
        if let Some(file) = &self.inner.data_file {
            file.sync_data()
                .map_err(|e| StorageError::io(&self.inner.path, e))?;
        }
        Ok(())
    }

    /// Bytes the store's files take on disk (sled's own figure: its data
    /// and blob files).
    pub fn size_on_disk(&self) -> Result<u64, StorageError> {
        Ok(self.inner.db.size_on_disk()?)
    }

    /// Read a node-wide value.
    pub fn node_get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.node_tree()?.get(name)?.map(|v| v.to_vec()))
    }

    /// Write a node-wide value and make it durable.
    pub fn node_put(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.node_tree()?.insert(name, value)?;
        self.sync()
    }
}
