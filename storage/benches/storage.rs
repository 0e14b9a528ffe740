//! Storage figures: Raft-log-sized appends with group commit at several
//! concurrencies (each appender waits for its own durability), raw syncs per
//! second, and key-value applies per second.
//!
//! `cargo bench -p rsp-storage --bench storage`; data goes to cargo's target
//! tmp dir unless `RSP_BENCH_DIR` names another (put it on the disk you care
//! about: tmpfs makes every sync free). `RSP_BENCH_SECS` sets the time per row.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rsp_storage::kv::{CmpOp, Command, Compare, CompareTarget, Key, Op, Txn, TxnOp};
use rsp_storage::{Durability, KvEngine, Store, StoreConfig, SyncThread};

/// About the size of a small replicated command in the log.
const ENTRY_BYTES: usize = 256;

struct Row {
    workload: String,
    ops_per_s: f64,
    syncs_per_s: Option<f64>,
    p50_us: Option<u64>,
    p99_us: Option<u64>,
}

fn open(base: &Path, durability: Durability) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let mut config = StoreConfig::new(dir.path());
    config.durability = durability;
    let store = Store::open(&config).expect("open store");
    (dir, store)
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[i])
}

/// `writers` tasks each loop: write one entry, wait until it is durable.
fn appends(base: &Path, durability: Durability, writers: u64, run: Duration) -> Row {
    let (_dir, store) = open(base, durability);
    let sync = SyncThread::start(store.clone()).expect("sync thread");
    let tree = store.tree(0, "log").expect("tree");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let mut latencies: Vec<u64> = rt.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let (tree, sync) = (tree.clone(), sync.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i: u64 = 0;
                    while started.elapsed() < run {
                        let t = Instant::now();
                        tree.insert((w << 40 | i).to_be_bytes(), vec![w as u8; ENTRY_BYTES])
                            .expect("insert");
                        sync.sync().await.expect("sync");
                        lat.push(t.elapsed().as_micros() as u64);
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("appender"));
        }
        all
    });
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let syncs = sync.stats().syncs.load(Ordering::Relaxed);
    let mode = match durability {
        Durability::Fsync => "fsync",
        Durability::FlushOnly => "flush only",
    };
    Row {
        workload: format!("append+sync, c={writers}, {mode}"),
        ops_per_s: latencies.len() as f64 / secs,
        syncs_per_s: Some(syncs as f64 / secs),
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
    }
}

/// One writer calling `Store::sync` after every small write, no group commit.
fn syncs(base: &Path, run: Duration) -> Row {
    let (_dir, store) = open(base, Durability::Fsync);
    let tree = store.tree(0, "log").expect("tree");
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut i: u64 = 0;
    while started.elapsed() < run {
        let t = Instant::now();
        tree.insert(i.to_be_bytes(), vec![1; 64]).expect("insert");
        store.sync().expect("sync");
        latencies.push(t.elapsed().as_micros() as u64);
        i += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Row {
        workload: "write+Store::sync, c=1, no group commit".into(),
        ops_per_s: latencies.len() as f64 / secs,
        syncs_per_s: Some(latencies.len() as f64 / secs),
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
    }
}

/// `KvEngine::apply` of commands built by `make`, without syncing (the log,
/// not the state machine, is what is synced per write).
fn applies(base: &Path, name: &str, run: Duration, make: impl Fn(u64) -> Command) -> Row {
    let (_dir, store) = open(base, Durability::Fsync);
    let engine = KvEngine::new(store.tree(0, "sm").expect("tree")).expect("engine");
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut i: u64 = 0;
    while started.elapsed() < run {
        let cmd = make(i);
        let t = Instant::now();
        engine.apply(&cmd, &[]).expect("apply");
        latencies.push(t.elapsed().as_micros() as u64);
        i += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Row {
        workload: name.into(),
        ops_per_s: latencies.len() as f64 / secs,
        syncs_per_s: None,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
    }
}

fn put(i: u64) -> Command {
    Command::new(
        1_000_000 + i,
        Op::Txn(Txn::ops(vec![TxnOp::Put {
            key: Key::new("tenant-1", format!("user/{:05}", i % 10_000)),
            value: vec![7; 128],
            ttl_ms: None,
        }])),
    )
}

/// A compare-and-set with a read, and a TTL so that expiry runs too.
fn cas(i: u64) -> Command {
    let key = Key::new("tenant-1", format!("session/{:05}", i % 10_000));
    Command::new(
        1_000_000 + i,
        Op::Txn(Txn {
            compares: vec![Compare {
                key: key.clone(),
                target: CompareTarget::Version(CmpOp::Lt, u64::MAX),
            }],
            success: vec![
                TxnOp::Get { key: key.clone() },
                TxnOp::Put {
                    key,
                    value: vec![9; 128],
                    ttl_ms: Some(5_000),
                },
            ],
            failure: vec![],
        }),
    )
}

fn show(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn main() {
    let base = std::env::var_os("RSP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).expect("bench dir");
    let secs: u64 = std::env::var("RSP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let run = Duration::from_secs(secs);
    println!(
        "rsp-storage bench: data in {}, {secs} s per row",
        base.display()
    );

    let mut rows = Vec::new();
    for writers in [1, 16, 64] {
        rows.push(appends(&base, Durability::Fsync, writers, run));
    }
    rows.push(appends(&base, Durability::FlushOnly, 64, run));
    rows.push(syncs(&base, run));
    rows.push(applies(&base, "KvEngine::apply, put 128 B", run, put));
    rows.push(applies(
        &base,
        "KvEngine::apply, cas+get+put with TTL",
        run,
        cas,
    ));

    println!();
    println!(
        "{:<40} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "workload", "ops/s", "syncs/s", "ops/sync", "p50 us", "p99 us"
    );
    for r in rows {
        let per_sync = r
            .syncs_per_s
            .map_or("-".into(), |s| format!("{:.1}", r.ops_per_s / s));
        println!(
            "{:<40} {:>11.0} {:>9} {:>9} {:>9} {:>9}",
            r.workload,
            r.ops_per_s,
            r.syncs_per_s.map_or("-".into(), |s| format!("{s:.0}")),
            per_sync,
            show(r.p50_us),
            show(r.p99_us),
        );
    }
}
