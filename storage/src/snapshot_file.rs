//! Raft snapshots as files: written from a [`CopySession`] a chunk at a
//! time, sent and received by openraft in chunks, read back a chunk at a
//! time. No step holds the whole state in memory.
//!
//! The bytes are those of the earlier in-memory snapshot body (bincode 2,
//! standard configuration, of `(format: u16, entries: Vec<(Vec<u8>,
//! Vec<u8>)>)`), so nodes of the previous release install snapshots of
//! this one and the other way round. The entry count, unknown until the
//! copy ends, is written first as a placeholder of bincode's widest
//! integer form (`253` and eight bytes) and filled in at the end.
//!
//! Files live in `<store>/raft-snapshots/`, one per snapshot, written as
//! `*.part`, synced and renamed.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use crate::error::StorageError;
use crate::kv_engine::{CopySession, RawEntries};

/// The snapshot format this build writes; it reads this one and older.
pub const SNAPSHOT_FORMAT: u16 = 1;
/// bincode's marker of a varint that follows as eight little-endian bytes.
const U64_MARK: u8 = 253;
/// The most one key or value of a snapshot may claim, in bytes.
const MAX_FIELD: u64 = 64 << 20;
/// Entries per chunk when reading a snapshot back.
const READ_CHUNK: usize = 1024;
/// A snapshot being written is synced every this many bytes, and the
/// writer then rests as long as the sync took: the disk never holds more
/// than this much of it unwritten, so a log sync queued behind it waits
/// for at most this much, and half the disk's time stays free for the
/// log.
const SYNC_EVERY: u64 = 4 << 20;

/// The folder of a store's snapshot files.
pub fn folder(store_dir: &Path) -> PathBuf {
    store_dir.join("raft-snapshots")
}

/// A snapshot file open for openraft (it reads chunks to send, or writes
/// the chunks it receives), with its path.
#[derive(Debug)]
pub struct SnapshotFile {
    file: tokio::fs::File,
    path: PathBuf,
}

impl SnapshotFile {
    pub async fn open(path: PathBuf) -> std::io::Result<SnapshotFile> {
        let file = tokio::fs::File::open(&path).await?;
        Ok(SnapshotFile { file, path })
    }

    /// A new, empty file to receive a snapshot into.
    pub async fn create(path: PathBuf) -> std::io::Result<SnapshotFile> {
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await?;
        Ok(SnapshotFile { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes out what was received and syncs it.
    pub async fn sync(&mut self) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await?;
        self.file.sync_all().await
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.file).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> std::io::Result<()> {
        Pin::new(&mut self.file).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        Pin::new(&mut self.file).poll_complete(cx)
    }
}

fn put_varint(out: &mut impl Write, n: u64) -> std::io::Result<()> {
    match n {
        0..=250 => out.write_all(&[n as u8]),
        251..=0xffff => {
            out.write_all(&[251])?;
            out.write_all(&(n as u16).to_le_bytes())
        }
        0x1_0000..=0xffff_ffff => {
            out.write_all(&[252])?;
            out.write_all(&(n as u32).to_le_bytes())
        }
        _ => {
            out.write_all(&[U64_MARK])?;
            out.write_all(&n.to_le_bytes())
        }
    }
}

fn get_varint(input: &mut impl Read) -> std::io::Result<u64> {
    let mut tag = [0u8; 1];
    input.read_exact(&mut tag)?;
    Ok(match tag[0] {
        n @ 0..=250 => n as u64,
        251 => {
            let mut b = [0u8; 2];
            input.read_exact(&mut b)?;
            u16::from_le_bytes(b) as u64
        }
        252 => {
            let mut b = [0u8; 4];
            input.read_exact(&mut b)?;
            u32::from_le_bytes(b) as u64
        }
        U64_MARK => {
            let mut b = [0u8; 8];
            input.read_exact(&mut b)?;
            u64::from_le_bytes(b)
        }
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("integer marker {other}"),
            ));
        }
    })
}

fn put_bytes(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    put_varint(out, bytes.len() as u64)?;
    out.write_all(bytes)
}

fn get_bytes(input: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let len = get_varint(input)?;
    if len > MAX_FIELD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a field claims {len} bytes"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf)?;
    Ok(buf)
}

/// Write the copy `session` to `path` (through `path.part`, synced, then
/// renamed, the folder synced); `extra` entries follow the copy's. Returns
/// the number of entries. Blocking.
pub fn write(
    path: &Path,
    session: &mut CopySession,
    extra: &[(Vec<u8>, Vec<u8>)],
) -> Result<u64, StorageError> {
    let part = path.with_extension("part");
    let io = |e| StorageError::io(&part, e);
    let file = File::create(&part).map_err(io)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    put_varint(&mut out, SNAPSHOT_FORMAT as u64).map_err(io)?;
    let count_at = 1;
    out.write_all(&[U64_MARK]).map_err(io)?;
    out.write_all(&0u64.to_le_bytes()).map_err(io)?;
    let mut count = 0u64;
    let mut unsynced = 0u64;
    let mut put = |out: &mut BufWriter<File>, k: &[u8], v: &[u8]| -> std::io::Result<()> {
        put_bytes(out, k)?;
        put_bytes(out, v)?;
        count += 1;
        unsynced += (k.len() + v.len()) as u64 + 2;
        if unsynced >= SYNC_EVERY {
            unsynced = 0;
            out.flush()?;
            let started = std::time::Instant::now();
            out.get_ref().sync_data()?;
            std::thread::sleep(started.elapsed());
        }
        Ok(())
    };
    while let Some(chunk) = session.next_chunk()? {
        for (k, v) in &chunk {
            put(&mut out, k, v).map_err(io)?;
        }
    }
    for (k, v) in extra {
        put(&mut out, k, v).map_err(io)?;
    }
    let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.seek(SeekFrom::Start(count_at + 1)).map_err(io)?;
    file.write_all(&count.to_le_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&part, path).map_err(|e| StorageError::io(path, e))?;
    sync_folder(path)?;
    Ok(count)
}

/// How much lower than the node's other threads a background copy runs
/// (a nice value): on a busy machine the copy yields the CPU to applies,
/// appends and requests instead of stalling them.
const BACKGROUND_NICE: i32 = 10;

/// Run `work` on a thread of its own at a lower CPU priority (snapshot
/// builds and backups: long, and never in a hurry); the answer comes back
/// through the returned receiver.
pub fn spawn_background<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<T>, StorageError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // Only this thread: on Linux a thread id names one thread.
            // Failing to lower it changes nothing else.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE);
            }
            let _ = tx.send(work());
        })
        .map_err(|e| StorageError::io(Path::new(name), e))?;
    Ok(rx)
}

/// Sync the folder that holds `path`, so a rename into it is durable.
pub fn sync_folder(path: &Path) -> Result<(), StorageError> {
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StorageError::io(dir, e))?;
    }
    Ok(())
}

/// Reads a snapshot file back a chunk of entries at a time.
pub struct Reader {
    input: BufReader<File>,
    path: PathBuf,
    left: u64,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, StorageError> {
        let corrupt = |e: std::io::Error| StorageError::corrupt("snapshot file", e);
        let file = OpenOptions::new()
            .read(true)
            .open(path)
            .map_err(|e| StorageError::io(path, e))?;
        let mut input = BufReader::with_capacity(1 << 20, file);
        let format = get_varint(&mut input).map_err(corrupt)?;
        if format > SNAPSHOT_FORMAT as u64 {
            return Err(StorageError::corrupt(
                "snapshot",
                format!("format {format} is newer than this build understands"),
            ));
        }
        let left = get_varint(&mut input).map_err(corrupt)?;
        Ok(Reader {
            input,
            path: path.to_path_buf(),
            left,
        })
    }

    /// How many entries are left to read.
    pub fn remaining(&self) -> u64 {
        self.left
    }

    /// The next entries; `None` after the last. The file must end there.
    pub fn next_chunk(&mut self) -> Result<Option<RawEntries>, StorageError> {
        let corrupt = |e: std::io::Error| {
            StorageError::corrupt("snapshot file", format!("{}: {e}", self.path.display()))
        };
        if self.left == 0 {
            let mut extra = [0u8; 1];
            return match self.input.read(&mut extra) {
                Ok(0) => Ok(None),
                Ok(_) => Err(StorageError::corrupt(
                    "snapshot file",
                    "bytes follow the last entry",
                )),
                Err(e) => Err(corrupt(e)),
            };
        }
        let n = self.left.min(READ_CHUNK as u64);
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let k = get_bytes(&mut self.input).map_err(corrupt)?;
            let v = get_bytes(&mut self.input).map_err(corrupt)?;
            out.push((k, v));
        }
        self.left -= n;
        Ok(Some(out))
    }
}

impl Iterator for Reader {
    type Item = Result<RawEntries, StorageError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{decode, encode};
    use serde::{Deserialize, Serialize};

    /// The previous release's in-memory snapshot body.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Body {
        format: u16,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    }

    fn entries() -> RawEntries {
        (0..3000u32)
            .map(|i| {
                let len = [0usize, 1, 250, 251, 300, 70_000][i as usize % 6];
                (format!("k{i:06}").into_bytes(), vec![i as u8; len])
            })
            .collect()
    }

    #[test]
    fn the_previous_release_reads_what_this_one_writes_and_the_other_way_round() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&crate::StoreConfig::new(dir.path().join("db"))).unwrap();
        let engine = crate::KvEngine::new(store.tree(0, "sm").unwrap()).unwrap();
        engine.import(&entries()).unwrap();
        let path = dir.path().join("one.snap");
        let (mut session, ()) = engine.start_copy(|_| Ok(())).unwrap();
        let extra = vec![(b"mapplied".to_vec(), vec![1, 2, 3])];
        assert_eq!(write(&path, &mut session, &extra).unwrap(), 3001);
        let mut want = entries();
        want.extend(extra);
        // Decoded whole, as the previous release does.
        let body: Body = decode("snapshot", &std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(body.format, SNAPSHOT_FORMAT);
        assert_eq!(body.entries, want);
        // And the previous release's bytes, read a chunk at a time.
        let old = dir.path().join("old.snap");
        std::fs::write(
            &old,
            encode(&Body {
                format: 1,
                entries: want.clone(),
            }),
        )
        .unwrap();
        let read: Vec<_> = Reader::open(&old).unwrap().map(|c| c.unwrap()).collect();
        assert!(read.iter().all(|c| c.len() <= READ_CHUNK));
        assert_eq!(read.concat(), want);
    }

    #[test]
    fn truncated_newer_and_padded_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let bytes = encode(&Body {
            format: 1,
            entries: entries(),
        });
        let read_all = |bytes: &[u8]| -> Result<usize, StorageError> {
            std::fs::write(&path, bytes).unwrap();
            let mut n = 0;
            for chunk in Reader::open(&path)? {
                n += chunk?.len();
            }
            Ok(n)
        };
        assert_eq!(read_all(&bytes).unwrap(), 3000);
        assert!(read_all(&bytes[..bytes.len() - 1]).is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(read_all(&padded).is_err());
        let newer = encode(&Body {
            format: SNAPSHOT_FORMAT + 1,
            entries: vec![],
        });
        let err = read_all(&newer).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
