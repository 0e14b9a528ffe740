//! Backup and restore figures at the storage layer, where their cost is:
//! the streamed copy of the state (written to the file a chunk at a time
//! while a writer keeps applying commands), checking the file, and
//! restoring it into a new store (records in batches, one sync).
//!
//! `cargo bench -p rsp-storage --bench backup`. Two data sets by default,
//! each filled through the engine's apply: 1,000,000 sessions (300-byte
//! values) and 100,000 users (1,500-byte values). `RSP_BENCH_SETS`
//! overrides them (`name:records:value_bytes,...`); `RSP_BENCH_DIR` is
//! where the data goes (default: cargo's target tmp dir);
//! `RSP_BENCH_CACHE_MB` the sled page cache (default: the node's, 256);
//! `RSP_BENCH_WRITES_PER_SEC` the writer's rate (default 500 commands/s,
//! each overwriting one random record).
//!
//! Printed per set: the backup's time and MiB/s, the writer's apply
//! latency before and during the backup (p50, p99, max), the process's
//! resident memory before the backup and its high-water mark during it
//! (reset first through `/proc/self/clear_refs`), and verify and restore
//! times.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rsp_storage::backup::{self, Encoder, Header};
use rsp_storage::kv::{Command, Key, Op, Txn, TxnOp};
use rsp_storage::{KvEngine, Store, StoreConfig};

struct Set {
    name: String,
    records: u64,
    value_bytes: usize,
}

fn sets() -> Vec<Set> {
    let spec = std::env::var("RSP_BENCH_SETS")
        .unwrap_or_else(|_| "sessions:1000000:300,users:100000:1500".into());
    spec.split(',')
        .filter_map(|s| {
            let mut parts = s.split(':');
            Some(Set {
                name: parts.next()?.to_string(),
                records: parts.next()?.parse().ok()?,
                value_bytes: parts.next()?.parse().ok()?,
            })
        })
        .collect()
}

fn key(set: &Set, i: u64) -> Key {
    Key::new(set.name.as_str(), format!("tenant-0001/{i:016}"))
}

fn put(set: &Set, i: u64, fill: u8) -> TxnOp {
    TxnOp::Put {
        key: key(set, i),
        value: vec![fill; set.value_bytes],
        ttl_ms: None,
    }
}

/// `VmRSS` or `VmHWM` of this process, in MiB.
fn memory_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentiles(mut v: Vec<u64>) -> String {
    if v.is_empty() {
        return "no applies".into();
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    format!(
        "{} applies, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        v.len(),
        at(0.5),
        at(0.99),
        v[v.len() - 1] as f64 / 1000.0
    )
}

/// Applies one-record overwrites at `rate`/s until `stop`, returning each
/// apply's time in microseconds with the instant it started.
fn writer(
    engine: KvEngine,
    set: Arc<Set>,
    rate: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(Instant, u64)>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let every = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
        let mut next = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            // A cheap spread over the records (a multiplicative hash).
            let i = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) % set.records;
            n += 1;
            let cmd = Command::new(n, Op::Txn(Txn::ops(vec![put(&set, i, n as u8)])));
            let started = Instant::now();
            engine.apply(&cmd, &[]).expect("apply");
            out.push((started, started.elapsed().as_micros() as u64));
            next += every;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        out
    })
}

fn run(set: Set, base: &Path) {
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let mut config = StoreConfig::new(dir.path().join("source"));
    if let Some(mb) = std::env::var("RSP_BENCH_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        config.cache_bytes = mb << 20;
    }
    let cache_mb = config.cache_bytes >> 20;
    let store = Store::open(&config).expect("store");
    let engine = KvEngine::new(store.tree(0, "sm").expect("tree")).expect("engine");
    let filled = Instant::now();
    // A transaction writes at most 1 MiB: fill in commands of about 512 KiB.
    let per_command = (512 * 1024 / (set.value_bytes + 40)).clamp(1, 1000) as u64;
    for start in (0..set.records).step_by(per_command as usize) {
        let ops = (start..(start + per_command).min(set.records))
            .map(|i| put(&set, i, 0x5a))
            .collect();
        engine
            .apply(&Command::new(1, Op::Txn(Txn::ops(ops))), &[])
            .expect("fill");
    }
    store.sync().expect("sync");
    let fill = filled.elapsed();

    let set = Arc::new(set);
    let rate: u64 = std::env::var("RSP_BENCH_WRITES_PER_SEC")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(engine.clone(), set.clone(), rate, stop.clone());
    std::thread::sleep(Duration::from_secs(5));

    let rss_before = memory_mb("VmRSS:");
    // Writing 5 resets the high-water mark to the current RSS.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let file = dir.path().join("bench.backup");
    let started = Instant::now();
    let (copy, index, term, revision) = backup::start_copy(&engine).expect("copy");
    let header = Header {
        format: backup::FORMAT,
        log_index: index,
        log_term: term,
        kv_revision: revision,
        created_ms: 0,
        node: 1,
        group: 0,
        entries: 0,
    };
    let mut out = BufWriter::new(std::fs::File::create(&file).expect("file"));
    let mut encoder = Encoder::new(header, copy);
    for chunk in encoder.by_ref() {
        out.write_all(&chunk.expect("chunk")).expect("write");
    }
    let f = out.into_inner().expect("flush");
    f.sync_all().expect("sync");
    let backup_done = Instant::now();
    let backup_time = started.elapsed();
    let hwm = memory_mb("VmHWM:");
    let count = encoder.entries_written();
    drop(encoder);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let applies = writing.join().expect("writer");
    let before_start = started - Duration::from_secs(5);
    let (mut quiet, mut during) = (Vec::new(), Vec::new());
    for (at, took) in applies {
        if at >= started && at < backup_done {
            during.push(took);
        } else if at >= before_start && at < started {
            quiet.push(took);
        }
    }
    let bytes = std::fs::metadata(&file).expect("size").len();

    let started = Instant::now();
    backup::verify(&file).expect("verify");
    let verify = started.elapsed();
    let rss_before_restore = memory_mb("VmRSS:");
    std::fs::write("/proc/self/clear_refs", "5").ok();
    let started = Instant::now();
    backup::restore(&file, &dir.path().join("restored"), 0).expect("restore");
    let restore = started.elapsed();
    let restore_hwm = memory_mb("VmHWM:");

    let mb = bytes as f64 / 1_048_576.0;
    let rate_of = |d: Duration| mb / d.as_secs_f64().max(1e-9);
    let per_million = |d: Duration| d.as_secs_f64() * 1_000_000.0 / count.max(1) as f64;
    println!(
        "\n{}: {count} records of {} B ({mb:.1} MiB file), sled cache {cache_mb} MiB, filled in {:.1} s",
        set.name,
        set.value_bytes,
        fill.as_secs_f64()
    );
    println!("| step | time | MiB/s | per million records |");
    println!("|---|---|---|---|");
    for (step, d) in [
        (
            "backup: streamed copy, encoded and written, synced",
            backup_time,
        ),
        ("verify (read and checksum)", verify),
        (
            "restore into a new store, synced (verify included)",
            restore,
        ),
    ] {
        println!(
            "| {step} | {:.2} s | {:.0} | {:.2} s |",
            d.as_secs_f64(),
            rate_of(d),
            per_million(d)
        );
    }
    println!(
        "writer at {rate}/s, 5 s before the backup: {}",
        percentiles(quiet)
    );
    println!("writer during the backup: {}", percentiles(during));
    println!(
        "memory: {rss_before:.0} MiB resident before the backup, high-water mark during it {} (state: {:.0} MiB)",
        if reset {
            format!("{hwm:.0} MiB")
        } else {
            "unknown (clear_refs refused)".into()
        },
        store.size_on_disk().unwrap_or(0) as f64 / 1_048_576.0
    );
    println!(
        "restore: {rss_before_restore:.0} MiB resident before, high-water mark during it {restore_hwm:.0} MiB"
    );
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: stay quick there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("backup benchmark: run it with `cargo bench -p rsp-storage --bench backup`");
        return;
    }
    let base = std::env::var_os("RSP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    for set in sets() {
        run(set, &base);
    }
}
