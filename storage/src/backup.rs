//! The backup file: one group's state machine as it was between two
//! applies, and writing it into a new data dir.
//!
//! Layout (integers big-endian):
//!
//! | part | bytes |
//! |---|---|
//! | magic | `RSPBACKUP\n` |
//! | header | `u32` length, then the [`Header`] (bincode) |
//! | entries | per entry: `u32` key length (1 or more), key, `u32` value length, value |
//! | end | `u32` 0 |
//! | count | `u64`, the number of entries (format 2; format 1 has it in the header) |
//! | checksum | SHA-256 of every byte before it |
//!
//! The entries are the raw records of the state tree (data, the cluster
//! clock and revision), without the Raft bookkeeping (applied log id,
//! membership) and without the expiry index, which is rebuilt from the
//! records. A restored data dir therefore holds the state and nothing of
//! the old cluster's Raft: the node that starts on it forms a new one-node
//! cluster whose first log entry is applied on top of that state.
//!
//! A reader checks the format before it reads anything else, and the
//! checksum and the entry count before [`restore`] writes anything. The
//! file is written as the copy is read ([`Encoder`] over a
//! [`crate::kv_engine::CopySession`]), which is why format 2 counts the
//! entries at the end: nothing holds the whole state in memory.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::{GroupId, Store, StoreConfig};
use crate::error::{StorageError, decode, encode};
use crate::kv_engine::{CopySession, KvEngine, META_REV, RawEntries};
use crate::state_machine::{APPLIED, MEMBERSHIP};

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 10] = b"RSPBACKUP\n";
/// The newest format this build writes and reads (1: the count in the
/// header; 2: the count after the entries).
pub const FORMAT: u16 = 2;
/// The most a header, key or value may claim to be, in bytes: a corrupt
/// length is reported instead of allocated.
const MAX_FIELD: u32 = 64 << 20;
/// Output chunk size of [`Encoder`].
const CHUNK: usize = 64 << 10;
/// Entries written per sled batch on restore.
const RESTORE_BATCH: usize = 4096;

/// One record of the state tree: key and value.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// What a backup is a copy of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: u16,
    /// The Raft log index the copy was taken at (everything committed up
    /// to it, nothing after).
    pub log_index: u64,
    /// The term of that entry.
    pub log_term: u64,
    /// The key-value revision at that point.
    pub kv_revision: u64,
    /// When the copy was taken, ms since the epoch (the node's clock).
    pub created_ms: u64,
    /// The node that took it, and its group.
    pub node: u64,
    pub group: GroupId,
    /// How many entries follow: written 0 in format 2, which counts them
    /// at the end; [`Reader::finish`] and [`verify`] give the count.
    pub entries: u64,
}

/// Why a backup could not be read or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not an rsp backup (it does not start with the backup header)")]
    NotABackup,
    #[error(
        "the backup is of format {0}, newer than this build reads (format {FORMAT}); restore it with a newer rsp"
    )]
    NewerFormat(u16),
    #[error("the backup is truncated: it ends before {0}")]
    Truncated(&'static str),
    #[error("the backup is corrupt: {0}")]
    Corrupt(String),
    #[error("the data dir {0} already holds data; restore into a new, empty directory")]
    NotEmpty(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Start a backup copy of `engine`'s state as it is now, between two
/// applies: the copy, and the applied log id's `(index, term)` and the
/// key-value revision of that point.
pub fn start_copy(engine: &KvEngine) -> Result<(CopySession, u64, u64, u64), StorageError> {
    let (copy, (applied, revision)) = engine.start_copy(|tree| {
        let applied = tree
            .get(APPLIED)?
            .map(|v| decode::<Option<openraft::LogId<u64>>>("applied log id", &v))
            .transpose()?
            .flatten();
        let revision = tree
            .get(META_REV)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        Ok((applied, revision))
    })?;
    let (index, term) = applied.map_or((0, 0), |id| (id.index, id.leader_id.term));
    Ok((copy, index, term, revision))
}

/// Writes a backup as a sequence of chunks of about 64 KiB, reading its
/// entries a chunk at a time and hashing as it goes. The Raft bookkeeping
/// (applied log id, membership) is left out.
pub struct Encoder<S> {
    source: S,
    pending: std::vec::IntoIter<RawEntry>,
    hasher: Sha256,
    started: bool,
    finished: bool,
    count: u64,
    header: Header,
}

impl<S> Encoder<S>
where
    S: Iterator<Item = Result<RawEntries, StorageError>>,
{
    /// The file of `header` (its `entries` is written as 0: format 2
    /// counts them at the end) and the entries of `source`.
    pub fn new(mut header: Header, source: S) -> Encoder<S> {
        header.entries = 0;
        Encoder {
            source,
            pending: Vec::new().into_iter(),
            hasher: Sha256::new(),
            started: false,
            finished: false,
            count: 0,
            header,
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How many entries were written so far (all of them once the last
    /// chunk is out).
    pub fn entries_written(&self) -> u64 {
        self.count
    }

    fn next_entry(&mut self) -> Result<Option<RawEntry>, StorageError> {
        loop {
            if let Some((k, v)) = self.pending.next() {
                if k == APPLIED || k == MEMBERSHIP || KvEngine::is_index_key(&k) {
                    continue;
                }
                return Ok(Some((k, v)));
            }
            match self.source.next() {
                Some(chunk) => self.pending = chunk?.into_iter(),
                None => return Ok(None),
            }
        }
    }

    /// The next chunk of the file, `None` after the checksum.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StorageError> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(CHUNK + 1024);
        if !self.started {
            self.started = true;
            out.extend_from_slice(MAGIC);
            let header = encode(&self.header);
            out.extend_from_slice(&(header.len() as u32).to_be_bytes());
            out.extend_from_slice(&header);
        }
        while out.len() < CHUNK {
            match self.next_entry()? {
                Some((k, v)) => {
                    self.count += 1;
                    out.extend_from_slice(&(k.len() as u32).to_be_bytes());
                    out.extend_from_slice(&k);
                    out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                    out.extend_from_slice(&v);
                }
                None => {
                    out.extend_from_slice(&0u32.to_be_bytes());
                    out.extend_from_slice(&self.count.to_be_bytes());
                    self.hasher.update(&out);
                    let sum = std::mem::take(&mut self.hasher).finalize();
                    out.extend_from_slice(&sum);
                    self.finished = true;
                    return Ok(Some(out));
                }
            }
        }
        self.hasher.update(&out);
        Ok(Some(out))
    }
}

impl<S> Iterator for Encoder<S>
where
    S: Iterator<Item = Result<RawEntries, StorageError>>,
{
    type Item = Result<Vec<u8>, StorageError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

/// Reads a backup entry by entry, checking as it goes; [`Reader::finish`]
/// checks the end, the count and the checksum.
pub struct Reader<R: Read> {
    input: R,
    hasher: Sha256,
    header: Header,
    read: u64,
    ended: bool,
}

impl<R: Read> Reader<R> {
    pub fn open(mut input: R) -> Result<Reader<R>, BackupError> {
        let mut hasher = Sha256::new();
        let mut magic = [0u8; MAGIC.len()];
        match input.read_exact(&mut magic) {
            Ok(()) if &magic == MAGIC => {}
            Ok(()) => return Err(BackupError::NotABackup),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(BackupError::NotABackup);
            }
            Err(e) => return Err(e.into()),
        }
        hasher.update(magic);
        let len = read_u32(&mut input, &mut hasher, "the header")?;
        let bytes = read_field(&mut input, &mut hasher, len, "the header")?;
        // The format is the header's first field (a u16, bincode varint):
        // read it alone first, so a newer header of another shape is
        // reported as newer, not as corrupt.
        let format: u16 =
            decode("backup format", &bytes).map_err(|e| BackupError::Corrupt(e.to_string()))?;
        if format > FORMAT {
            return Err(BackupError::NewerFormat(format));
        }
        let header: Header =
            decode("backup header", &bytes).map_err(|e| BackupError::Corrupt(e.to_string()))?;
        Ok(Reader {
            input,
            hasher,
            header,
            read: 0,
            ended: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next entry; `None` at the end marker.
    pub fn next_entry(&mut self) -> Result<Option<RawEntry>, BackupError> {
        if self.ended {
            return Ok(None);
        }
        let klen = read_u32(&mut self.input, &mut self.hasher, "the end of the entries")?;
        if klen == 0 {
            self.ended = true;
            return Ok(None);
        }
        let key = read_field(&mut self.input, &mut self.hasher, klen, "an entry's key")?;
        let vlen = read_u32(&mut self.input, &mut self.hasher, "an entry's value")?;
        let value = read_field(&mut self.input, &mut self.hasher, vlen, "an entry's value")?;
        self.read += 1;
        if self.header.format == 1 && self.read > self.header.entries {
            return Err(BackupError::Corrupt(format!(
                "more entries than the {} its header names",
                self.header.entries
            )));
        }
        Ok(Some((key, value)))
    }

    /// After the last entry: the count, the checksum and the end of file.
    /// The header returned names the entries read.
    pub fn finish(mut self) -> Result<Header, BackupError> {
        while self.next_entry()?.is_some() {}
        if self.header.format >= 2 {
            let mut count = [0u8; 8];
            read_exact(&mut self.input, &mut count, "the entry count")?;
            self.hasher.update(count);
            self.header.entries = u64::from_be_bytes(count);
        }
        if self.read != self.header.entries {
            return Err(BackupError::Corrupt(format!(
                "{} entries where its header names {}",
                self.read, self.header.entries
            )));
        }
        let mut sum = [0u8; 32];
        read_exact(&mut self.input, &mut sum, "the checksum")?;
        if self.hasher.finalize().as_slice() != sum {
            return Err(BackupError::Corrupt(
                "the checksum does not match its contents".into(),
            ));
        }
        let mut extra = [0u8; 1];
        if self.input.read(&mut extra)? != 0 {
            return Err(BackupError::Corrupt(
                "bytes follow the checksum".to_string(),
            ));
        }
        Ok(self.header)
    }
}

fn read_exact<R: Read>(
    input: &mut R,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), BackupError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => BackupError::Truncated(what),
        _ => BackupError::Io(e),
    })
}

fn read_u32<R: Read>(
    input: &mut R,
    hasher: &mut Sha256,
    what: &'static str,
) -> Result<u32, BackupError> {
    let mut b = [0u8; 4];
    read_exact(input, &mut b, what)?;
    hasher.update(b);
    Ok(u32::from_be_bytes(b))
}

fn read_field<R: Read>(
    input: &mut R,
    hasher: &mut Sha256,
    len: u32,
    what: &'static str,
) -> Result<Vec<u8>, BackupError> {
    if len > MAX_FIELD {
        return Err(BackupError::Corrupt(format!(
            "{what} claims {len} bytes, more than any entry holds"
        )));
    }
    let mut buf = vec![0u8; len as usize];
    read_exact(input, &mut buf, what)?;
    hasher.update(&buf);
    Ok(buf)
}

/// Read the whole backup at `path` and check it (format, entries, count,
/// checksum) without writing anything.
pub fn verify(path: &Path) -> Result<Header, BackupError> {
    Reader::open(BufReader::new(File::open(path)?))?.finish()
}

/// Write the backup at `path` into a new store at `store_dir` for `group`:
/// checked whole first ([`verify`]), so a bad file writes nothing; the
/// directory must not hold a store already. Synced before it returns.
pub fn restore(path: &Path, store_dir: &Path, group: GroupId) -> Result<Header, BackupError> {
    verify(path)?;
    restore_verified(path, store_dir, group)
}

/// [`restore`] of a file the caller has [`verify`]-ed (it is checked again
/// as it is read; a store half written is removed).
pub fn restore_verified(
    path: &Path,
    store_dir: &Path,
    group: GroupId,
) -> Result<Header, BackupError> {
    if store_dir.exists()
        && std::fs::read_dir(store_dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(BackupError::NotEmpty(store_dir.display().to_string()));
    }
    let result = write_store(path, store_dir, group);
    if result.is_err() {
        // Half a store must not be started: remove what was written.
        let _ = std::fs::remove_dir_all(store_dir);
    }
    result
}

fn write_store(path: &Path, store_dir: &Path, group: GroupId) -> Result<Header, BackupError> {
    let store = Store::open(&StoreConfig::new(store_dir))?;
    let tree = store.tree(group, "sm")?;
    let mut reader = Reader::open(BufReader::new(File::open(path)?))?;
    let mut batch = sled::Batch::default();
    let (mut in_batch, mut unflushed) = (0, 0);
    while let Some((k, v)) = reader.next_entry()? {
        if k == APPLIED || k == MEMBERSHIP || KvEngine::is_index_key(&k) {
            continue;
        }
        unflushed += k.len() + v.len();
        batch.insert(k, v);
        in_batch += 1;
        if in_batch == RESTORE_BATCH {
            tree.apply_batch(std::mem::take(&mut batch))
                .map_err(StorageError::from)?;
            in_batch = 0;
        }
        // sled holds written pages in memory until flushed.
        if unflushed >= crate::kv_engine::FLUSH_BYTES {
            tree.flush().map_err(StorageError::from)?;
            unflushed = 0;
        }
    }
    tree.apply_batch(batch).map_err(StorageError::from)?;
    // Checked again as it was read.
    let header = reader.finish()?;
    store.sync()?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT,
            log_index: 42,
            log_term: 3,
            kv_revision: 40,
            created_ms: 1,
            node: 2,
            group: 0,
            entries: 0,
        }
    }

    fn encode_with(header: Header, entries: RawEntries) -> Vec<u8> {
        Encoder::new(header, entries.chunks(700).map(|c| Ok(c.to_vec())))
            .flat_map(|c| c.expect("chunk"))
            .collect()
    }

    fn encode_all(entries: RawEntries) -> Vec<u8> {
        encode_with(header(), entries)
    }

    fn entries(n: usize) -> RawEntries {
        (0..n)
            .map(|i| (format!("dkey{i:06}").into_bytes(), vec![i as u8; 100]))
            .collect()
    }

    #[test]
    fn a_backup_reads_back_entry_for_entry() {
        let written = entries(5000);
        let bytes = encode_all(written.clone());
        let mut reader = Reader::open(bytes.as_slice()).expect("open");
        let mut read = Vec::new();
        while let Some(e) = reader.next_entry().expect("entry") {
            read.push(e);
        }
        assert_eq!(read, written);
        let header = reader.finish().expect("finish");
        assert_eq!((header.log_index, header.entries), (42, 5000));
    }

    #[test]
    fn a_format_1_backup_still_reads() {
        // Format 1: the count in the header, nothing after the end marker.
        let written = entries(30);
        let mut h = header();
        h.format = 1;
        h.entries = 30;
        let mut bytes = MAGIC.to_vec();
        let enc = encode(&h);
        bytes.extend_from_slice(&(enc.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&enc);
        for (k, v) in &written {
            bytes.extend_from_slice(&(k.len() as u32).to_be_bytes());
            bytes.extend_from_slice(k);
            bytes.extend_from_slice(&(v.len() as u32).to_be_bytes());
            bytes.extend_from_slice(v);
        }
        bytes.extend_from_slice(&0u32.to_be_bytes());
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        let header = Reader::open(bytes.as_slice()).and_then(|r| r.finish());
        assert_eq!(header.expect("format 1").entries, 30);
    }

    #[test]
    fn truncated_corrupted_and_newer_backups_are_refused() {
        let bytes = encode_all(entries(100));
        for cut in [0, 5, 20, bytes.len() / 2, bytes.len() - 1] {
            let err = Reader::open(&bytes[..cut]).and_then(|r| r.finish());
            assert!(
                matches!(
                    err,
                    Err(BackupError::Truncated(_) | BackupError::NotABackup)
                ),
                "cut at {cut}: {err:?}"
            );
        }
        let mut flipped = bytes.clone();
        let at = bytes.len() / 2;
        flipped[at] ^= 0x01;
        let err = Reader::open(flipped.as_slice()).and_then(|r| r.finish());
        assert!(matches!(err, Err(BackupError::Corrupt(_))), "{err:?}");

        let mut longer = bytes.clone();
        longer.push(0);
        let err = Reader::open(longer.as_slice()).and_then(|r| r.finish());
        assert!(matches!(err, Err(BackupError::Corrupt(_))), "{err:?}");

        let mut newer = header();
        newer.format = FORMAT + 1;
        let bytes = encode_with(newer, entries(1));
        let err = Reader::open(bytes.as_slice()).map(|_| ());
        assert!(matches!(err, Err(BackupError::NewerFormat(f)) if f == FORMAT + 1));

        let err = Reader::open(&b"{\"not\": \"a backup\"}"[..]).map(|_| ());
        assert!(matches!(err, Err(BackupError::NotABackup)));
    }

    #[test]
    fn a_bad_file_writes_nothing_and_a_good_one_restores_the_records() {
        let dir = tempfile::tempdir().expect("dir");
        let bad = dir.path().join("bad.bak");
        let mut bytes = encode_all(entries(10));
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&bad, &bytes).expect("write");
        let target = dir.path().join("store");
        assert!(matches!(
            restore(&bad, &target, 0),
            Err(BackupError::Truncated(_))
        ));
        assert!(!target.exists(), "a refused backup created the store");

        let good = dir.path().join("good.bak");
        let mut written = entries(10);
        written.push((APPLIED.to_vec(), vec![1]));
        std::fs::write(&good, encode_all(written)).expect("write");
        let header = restore(&good, &target, 0).expect("restore");
        assert_eq!(header.entries, 10, "the Raft bookkeeping is not written");
        assert!(matches!(
            restore(&good, &target, 0),
            Err(BackupError::NotEmpty(_))
        ));
        let store = Store::open(&StoreConfig::new(&target)).expect("open");
        let tree = store.tree(0, "sm").expect("tree");
        assert_eq!(tree.len(), 10, "the Raft bookkeeping is not restored");
        assert_eq!(
            tree.get(b"dkey000003").expect("get").as_deref(),
            Some(&[3u8; 100][..])
        );
    }
}
