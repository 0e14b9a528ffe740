//! Power cuts: `kill -9` plus the loss of every write a node had not made
//! durable with `fsync`/`fdatasync`.
//!
//! A killed process loses nothing the kernel already holds (its writes sit
//! in the page cache), so `kill -9` alone cannot show a missing sync. Nodes
//! started with [`instrument`] run under a small `LD_PRELOAD` shim
//! (`powercut_shim.c`, built with the system C compiler on first use) that
//! keeps an undo log of every write to the storage engine's files and drops
//! the records a successful sync made durable. [`cut`] kills the nodes and
//! replays their undo logs backwards, leaving each file as it was at its last
//! sync: what a power cut with a volatile disk cache leaves behind.
//!
//! Limits (see the shim's header): only `<data-dir>/store` is tracked (the
//! small files written once at first start, node id and key-encryption key,
//! are taken as written back); directory operations count as durable at
//! once; only fsync, fdatasync, sync and syncfs make data durable. Without a
//! C compiler every entry point fails with a clear error, there is no
//! pretend power cut.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::{Cluster, ClusterSpec};

const SHIM_SOURCE: &str = include_str!("powercut_shim.c");

/// Overrides the C compiler used to build the shim.
pub const CC_ENV: &str = "CC";

/// What a node's storage lives under, relative to its node dir.
const TRACKED: &str = "/data/store/";

/// Builds the shim once per source version; returns the shared object.
pub fn require() -> Result<PathBuf> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    SHIM_SOURCE.hash(&mut hasher);
    let dir = std::env::temp_dir().join("rsp-chaos");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lib = dir.join(format!("libpowercut-{:016x}.so", hasher.finish()));
    if lib.is_file() {
        return Ok(lib);
    }
    let src = dir.join(format!("powercut-{}.c", std::process::id()));
    std::fs::write(&src, SHIM_SOURCE).with_context(|| format!("writing {}", src.display()))?;
    let tmp = dir.join(format!("libpowercut-{}.so.tmp", std::process::id()));
    let cc = std::env::var(CC_ENV).unwrap_or_else(|_| "cc".to_string());
    let out = std::process::Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(["-ldl", "-lpthread"])
        .output();
    let _ = std::fs::remove_file(&src);
    let out = out.map_err(|e| {
        anyhow!("power cuts need a C compiler (`{cc}`, or set ${CC_ENV}) to build their LD_PRELOAD shim: {e}")
    })?;
    if !out.status.success() {
        bail!(
            "building the power-cut shim with `{cc}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::rename(&tmp, &lib).with_context(|| format!("installing {}", lib.display()))?;
    Ok(lib)
}

/// Adds `lib` to an `LD_PRELOAD` entry of `env` (created when missing).
pub fn add_preload(env: &mut Vec<(String, String)>, lib: &Path) {
    let lib = lib.display().to_string();
    match env.iter_mut().find(|(k, _)| k == "LD_PRELOAD") {
        Some((_, v)) if !v.split(':').any(|p| p == lib) => *v = format!("{v}:{lib}"),
        Some(_) => {}
        None => env.push(("LD_PRELOAD".to_string(), lib)),
    }
}

fn undo_dir(base: &Path) -> PathBuf {
    base.join("powercut-undo")
}

/// Makes every node of `spec` run under the shim. `spec` must have an
/// absolute `base_dir` (the shim tracks files below it).
pub fn instrument(mut spec: ClusterSpec) -> Result<ClusterSpec> {
    let lib = require()?;
    let base = spec
        .base_dir
        .clone()
        .ok_or_else(|| anyhow!("power cuts need a cluster with a fixed base dir"))?;
    ensure!(
        base.is_absolute(),
        "the base dir {} must be absolute",
        base.display()
    );
    let undo = undo_dir(&base);
    std::fs::create_dir_all(&undo).with_context(|| format!("creating {}", undo.display()))?;
    add_preload(&mut spec.env, &lib);
    spec.env.extend([
        ("POWERCUT_ROOT".to_string(), base.display().to_string()),
        ("POWERCUT_MATCH".to_string(), TRACKED.to_string()),
        ("POWERCUT_UNDO".to_string(), undo.display().to_string()),
    ]);
    Ok(spec)
}

/// True when the cluster's nodes run under the shim.
pub fn is_instrumented(cluster: &Cluster) -> bool {
    cluster.spec().env.iter().any(|(k, _)| k == "POWERCUT_UNDO")
}

/// What a cut rolled back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutStats {
    pub files: usize,
    pub writes_undone: usize,
    pub bytes_restored: u64,
}

/// Power-cuts `nodes`: SIGKILL all of them at once, then roll their storage
/// back to its last sync. Restart them afterwards (e.g. `Fault::heal`).
pub async fn cut(cluster: &Cluster, nodes: &[u64]) -> Result<CutStats> {
    ensure!(
        is_instrumented(cluster),
        "this cluster's nodes do not run under the power-cut shim (see powercut::instrument)"
    );
    for id in nodes {
        cluster.node(*id)?.process.signal(libc::SIGKILL).ok();
    }
    let mut dirs = Vec::new();
    for id in nodes {
        cluster.kill(*id).await?;
        dirs.push(cluster.node(*id)?.process.spec().dir);
    }
    let undo = undo_dir(&cluster.base_dir());
    let mut stats = CutStats::default();
    let entries =
        std::fs::read_dir(&undo).with_context(|| format!("reading {}", undo.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(target) = name.strip_suffix(".undo") else {
            continue;
        };
        let target = PathBuf::from(target.replace('%', "/"));
        if !dirs.iter().any(|d| target.starts_with(d)) {
            continue;
        }
        let (writes, bytes) = roll_back(&path, &target)?;
        if writes > 0 {
            stats.files += 1;
            stats.writes_undone += writes;
            stats.bytes_restored += bytes;
        }
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(stats)
}

/// One undo record: the file's size before a write, and the bytes it
/// replaced at `offset`.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    offset: u64,
    size_before: u64,
    old: Vec<u8>,
}

/// Parses an undo log; a torn last record (the kill came while it was
/// written, so its write never happened) is ignored.
fn parse(log: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
    while at + 24 <= log.len() {
        let offset = word(&log[at..at + 8]);
        let size_before = word(&log[at + 8..at + 16]);
        let n = word(&log[at + 16..at + 24]) as usize;
        let Some(end) = (at + 24).checked_add(n).filter(|e| *e <= log.len()) else {
            break;
        };
        out.push(Record {
            offset,
            size_before,
            old: log[at + 24..end].to_vec(),
        });
        at = end;
    }
    out
}

/// Undoes every record of `log` on `target`, newest first.
fn roll_back(log: &Path, target: &Path) -> Result<(usize, u64)> {
    let bytes = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
    let records = parse(&bytes);
    if records.is_empty() || !target.is_file() {
        return Ok((0, 0));
    }
    let file = OpenOptions::new()
        .write(true)
        .open(target)
        .with_context(|| format!("opening {}", target.display()))?;
    let mut restored = 0u64;
    for r in records.iter().rev() {
        if !r.old.is_empty() {
            file.write_all_at(&r.old, r.offset)?;
            restored += r.old.len() as u64;
        }
        file.set_len(r.size_before)?;
    }
    Ok((records.len(), restored))
}

/// Undo log sizes per node dir, for reports (how much is not yet durable).
pub fn pending(cluster: &Cluster) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(undo_dir(&cluster.base_dir())) {
        for e in entries.flatten() {
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.insert(e.file_name().to_string_lossy().into_owned(), len);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: u64, size_before: u64, old: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(offset.to_ne_bytes());
        v.extend(size_before.to_ne_bytes());
        v.extend((old.len() as u64).to_ne_bytes());
        v.extend(old);
        v
    }

    #[test]
    fn undo_logs_roll_a_file_back_and_ignore_a_torn_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("f");
        let log = dir.path().join("f.undo");
        // Synced state "abc"; then "abXY" (write "XY" at 2), then "ZbXY".
        std::fs::write(&target, b"ZbXY").expect("write");
        let mut undo = record(2, 3, b"c");
        undo.extend(record(0, 4, b"a"));
        let torn = record(1, 4, b"b");
        undo.extend(&torn[..torn.len() - 1]);
        std::fs::write(&log, &undo).expect("write");
        assert_eq!(parse(&undo).len(), 2);
        let (writes, bytes) = roll_back(&log, &target).expect("roll back");
        assert_eq!((writes, bytes), (2, 2));
        assert_eq!(std::fs::read(&target).expect("read"), b"abc");
    }

    #[test]
    fn preload_lists_are_merged() {
        let mut env = vec![("LD_PRELOAD".to_string(), "/a.so".to_string())];
        add_preload(&mut env, Path::new("/b.so"));
        add_preload(&mut env, Path::new("/b.so"));
        assert_eq!(
            env,
            vec![("LD_PRELOAD".to_string(), "/a.so:/b.so".to_string())]
        );
    }

    /// The shim against a real process: writes after the last fsync are
    /// rolled back, writes before it stay.
    #[test]
    fn the_shim_rolls_back_exactly_the_unsynced_writes() {
        let lib = match require() {
            Ok(lib) => lib,
            Err(e) => panic!("the shim must build here: {e:#}"),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical");
        let store = base.join("n1/data/store");
        std::fs::create_dir_all(&store).expect("mkdir");
        let undo = undo_dir(&base);
        std::fs::create_dir_all(&undo).expect("mkdir");
        let file = store.join("db");
        // A shell writes "durable", syncs it (via `sync` on the file), then
        // appends "-lost" without a sync.
        let script = format!(
            "printf durable > {f} && sync {f} && printf -- -lost >> {f}",
            f = file.display()
        );
        let status = std::process::Command::new("sh")
            .args(["-c", &script])
            .env("LD_PRELOAD", &lib)
            .env("POWERCUT_ROOT", &base)
            .env("POWERCUT_MATCH", TRACKED)
            .env("POWERCUT_UNDO", &undo)
            .status()
            .expect("sh runs");
        assert!(status.success());
        assert_eq!(std::fs::read(&file).expect("read"), b"durable-lost");
        let log = std::fs::read_dir(&undo)
            .expect("undo dir")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("%db.undo"))
            .expect("an undo log for the file");
        roll_back(&log, &file).expect("roll back");
        assert_eq!(std::fs::read(&file).expect("read"), b"durable");
    }
}
