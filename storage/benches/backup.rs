//! Backup and restore figures at the storage layer, where their cost is:
//! the consistent copy of the state tree (applies wait meanwhile), writing
//! the backup file, checking it, and restoring it into a new store (records
//! in batches, one sync).
//!
//! `cargo bench -p rsp-storage --bench backup`. `RSP_BENCH_RECORDS` sets
//! the number of records (default 1,000,000, each a 40-byte key and a
//! 300-byte value, about a browser session's size); `RSP_BENCH_DIR` where
//! the data goes (default: cargo's target tmp dir); `RSP_BENCH_CACHE_MB`
//! the sled page cache (default: the node's, 256).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rsp_storage::backup::{self, Encoder, Header};
use rsp_storage::{KvEngine, Store, StoreConfig};

const VALUE_BYTES: usize = 300;

fn main() {
    let records: u64 = std::env::var("RSP_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::var_os("RSP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let dir = tempfile::tempdir_in(&base).expect("bench dir");

    // A state tree of `records` session-sized records (raw keys outside the
    // engine's data prefix: the figures are the copy's, not the decoder's).
    let mut config = StoreConfig::new(dir.path().join("source"));
    if let Some(mb) = std::env::var("RSP_BENCH_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        config.cache_bytes = mb << 20;
    }
    let cache_mb = config.cache_bytes >> 20;
    let store = Store::open(&config).expect("store");
    let tree = store.tree(0, "sm").expect("tree");
    let value = vec![0x5au8; VALUE_BYTES];
    let mut batch = sled::Batch::default();
    for i in 0..records {
        batch.insert(
            format!("s/tenant-0001/sessions/{i:016}").as_bytes(),
            value.as_slice(),
        );
        if i % 10_000 == 9_999 {
            tree.apply_batch(std::mem::take(&mut batch)).expect("fill");
        }
    }
    tree.apply_batch(batch).expect("fill");
    store.sync().expect("sync");
    let engine = KvEngine::new(tree).expect("engine");

    let started = Instant::now();
    let (entries, index, term, revision) = backup::copy_state(&engine).expect("copy");
    let copy = started.elapsed();
    let count = entries.len() as u64;

    let file = dir.path().join("bench.backup");
    let started = Instant::now();
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
    for chunk in Encoder::new(header, entries) {
        out.write_all(&chunk).expect("write");
    }
    let f = out.into_inner().expect("flush");
    f.sync_all().expect("sync");
    let write = started.elapsed();
    let bytes = std::fs::metadata(&file).expect("size").len();

    let started = Instant::now();
    backup::verify(&file).expect("verify");
    let verify = started.elapsed();

    let started = Instant::now();
    backup::restore(&file, &dir.path().join("restored"), 0).expect("restore");
    let restore = started.elapsed();

    let mb = bytes as f64 / 1_048_576.0;
    let rate = |d: Duration| mb / d.as_secs_f64().max(1e-9);
    let per_million = |d: Duration| d.as_secs_f64() * 1_000_000.0 / count.max(1) as f64;
    println!("backup and restore of {count} records ({mb:.1} MiB file), sled cache {cache_mb} MiB");
    println!("| step | time | MiB/s | per million records |");
    println!("|---|---|---|---|");
    for (step, d) in [
        ("consistent copy (applies wait)", copy),
        ("encode and write the file, synced", write),
        ("verify (read and checksum)", verify),
        (
            "restore into a new store, synced (verify included)",
            restore,
        ),
    ] {
        println!(
            "| {step} | {:.2} s | {:.0} | {:.2} s |",
            d.as_secs_f64(),
            rate(d),
            per_million(d)
        );
    }
}
