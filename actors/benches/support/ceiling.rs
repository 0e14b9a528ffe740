//! What one replica's state machine spends on a durable session creation,
//! in CPU seconds, and so the most three replicas sharing this machine's
//! cores could create: the same figure the OAuth benchmark gives for RSA
//! signing. Measured on the state machine the cluster uses (`KvEngine`)
//! and on bare sled with no rsp code, as a floor for any design on sled.

use std::time::{Duration, Instant};

use rsp_storage::kv::{Command, Compare, CompareTarget, Key, Op, Txn, TxnOp, tenant_keyspace};
use rsp_storage::{KvEngine, Store, StoreConfig};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("bench dir");
    let store = Store::open(&StoreConfig::new(dir.path())).expect("open store");
    (dir, store)
}

/// CPU seconds this process has used so far (every thread: sled's IO
/// threads count too).
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// Sessions per entry, as the session manager batches them under load.
pub const SESSIONS_PER_ENTRY: u64 = 64;

/// A session handle as the session manager makes them: the tag of one of
/// 1,000 users (11 characters), then 22 random ones.
fn tagged_handle(n: u64) -> String {
    format!("u{:010}{}", n % 1000, handle())
}

/// 22 random base64url characters (128 bits).
fn handle() -> String {
    use rand::Rng;
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..22)
        .map(|_| ABC[rng.random_range(0..64)] as char)
        .collect()
}

/// How much CPU one durable session creation costs a replica's state
/// machine, per CPU second of this process (sled's threads included), and
/// what that allows for three replicas sharing this machine's cores. Every
/// replica applies every creation, so `cores / 3` CPU-seconds per second is
/// the most the three together can spend on one replica's share; the Raft
/// log, the network and the batching come on top.
pub struct Ceiling {
    pub workload: &'static str,
    pub sessions: u64,
    pub cpu_s: f64,
    pub wall_s: f64,
    /// Opening an engine over what was written (it rebuilds the in-memory
    /// expiry index from every record).
    pub reopen: Option<Duration>,
}

impl Ceiling {
    /// Sessions per CPU second.
    pub fn per_cpu_sec(&self) -> f64 {
        self.sessions as f64 / self.cpu_s
    }

    /// The most three replicas could create per second on `cores` cores.
    pub fn three_replicas(&self, cores: usize) -> f64 {
        self.per_cpu_sec() * cores as f64 / 3.0
    }
}

/// An entry of `SESSIONS_PER_ENTRY` creations as the cluster proposes them
/// under load: a batch of transactions, one per session, each "record
/// absent" and one put with a TTL, under a handle that starts with its
/// user's tag; sessions are numbered from `first`.
fn creation_entry(first: u64) -> Op {
    let txns = (first..first + SESSIONS_PER_ENTRY)
        .map(|n| {
            let key = Key::new(
                tenant_keyspace("bench"),
                format!("session/{}", tagged_handle(n)),
            );
            let mut txn = Txn::default();
            txn.compares.push(Compare {
                key: key.clone(),
                target: CompareTarget::Exists(false),
            });
            txn.success.push(TxnOp::Put {
                key,
                value: vec![5; 58],
                ttl_ms: Some(1_800_000),
            });
            Op::Txn(txn)
        })
        .collect();
    Op::Batch(txns)
}

/// `KvEngine::apply` of entries of session creations ([`creation_entry`]).
pub fn engine_sessions(run: Duration) -> Ceiling {
    let (_dir, store) = open();
    let engine = KvEngine::new(store.tree(0, "sm").expect("tree")).expect("engine");
    let (started, cpu0) = (Instant::now(), cpu_secs());
    let mut sessions = 0;
    let mut now = 1_000_000;
    while started.elapsed() < run {
        let entry = creation_entry(sessions);
        sessions += SESSIONS_PER_ENTRY;
        now += 1;
        engine.apply(&Command::new(now, entry), &[]).expect("apply");
    }
    let (cpu_s, wall_s) = (cpu_secs() - cpu0, started.elapsed().as_secs_f64());
    let t = Instant::now();
    KvEngine::new(store.tree(0, "sm").expect("tree")).expect("reopen");
    Ceiling {
        workload: "KvEngine::apply, session creations",
        sessions,
        cpu_s,
        wall_s,
        reopen: Some(t.elapsed()),
    }
}

/// Bare sled, no rsp code: `inserts` keys per session (1: the record, as
/// stored now; 2: the record and a user index key, as stored before the
/// user tag), in one `apply_batch` per entry.
pub fn raw_sled_sessions(run: Duration, inserts: usize) -> Ceiling {
    let (_dir, store) = open();
    let tree = store.tree(0, "raw").expect("tree");
    let ks = tenant_keyspace("bench");
    let (started, cpu0) = (Instant::now(), cpu_secs());
    let mut sessions: u64 = 0;
    while started.elapsed() < run {
        let mut batch = sled::Batch::default();
        for _ in 0..SESSIONS_PER_ENTRY {
            let h = tagged_handle(sessions);
            batch.insert(format!("{ks}/session/{h}").as_bytes(), vec![5u8; 58 + 24]);
            if inserts > 1 {
                let index = format!("{ks}/user_session/u-{:018}/{h}", sessions % 1000);
                batch.insert(index.as_bytes(), vec![0u8; 24]);
            }
            sessions += 1;
        }
        tree.apply_batch(batch).expect("batch");
    }
    Ceiling {
        workload: if inserts > 1 {
            "raw sled, 2 inserts per session"
        } else {
            "raw sled, 1 insert per session"
        },
        sessions,
        cpu_s: cpu_secs() - cpu0,
        wall_s: started.elapsed().as_secs_f64(),
        reopen: None,
    }
}

/// One replica's share of the least work a three-replica design on sled
/// must do per durable creation, with no Raft, network or actors: append
/// the entry (the bytes of a real entry of `SESSIONS_PER_ENTRY` creations)
/// to a log tree and sync it to disk, then store each session under one key
/// (a record listable by user; no index, no expiry bookkeeping) in one
/// batch. Three such replicas run at once on their own stores, as the
/// three nodes of the cluster do. Returns the sessions the slowest replica
/// stored per second of wall-clock time (the sync waits overlap the other
/// replicas' work), and per CPU second of all three, as a bound with
/// every core busy.
pub fn replicated_floor(run: Duration) -> (f64, f64) {
    let entry = real_entry_bytes();
    let (started, cpu0) = (Instant::now(), cpu_secs());
    let replicas: Vec<_> = (0..3)
        .map(|r| {
            let entry = entry.clone();
            std::thread::spawn(move || {
                let ks = tenant_keyspace("bench");
                let (_dir, store) = open();
                let (log, state) = (
                    store.tree(0, "log").expect("log"),
                    store.tree(0, "sm").expect("sm"),
                );
                let mut sessions: u64 = 0;
                let mut index: u64 = 0;
                while started.elapsed() < run {
                    index += 1;
                    log.insert(index.to_be_bytes(), entry.as_slice())
                        .expect("append");
                    store.sync().expect("sync");
                    let mut batch = sled::Batch::default();
                    for _ in 0..SESSIONS_PER_ENTRY {
                        let h = tagged_handle(sessions + r);
                        let key = format!("{ks}/session/{h}");
                        batch.insert(key.as_bytes(), vec![5u8; 58 + 24]);
                        sessions += 1;
                    }
                    state.apply_batch(batch).expect("batch");
                }
                sessions
            })
        })
        .collect();
    let done: Vec<u64> = replicas
        .into_iter()
        .map(|t| t.join().expect("replica"))
        .collect();
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    let slowest = done.iter().copied().min().unwrap_or(0) as f64;
    (slowest / wall, done.iter().sum::<u64>() as f64 / 3.0 / cpu)
}

/// The bytes of an entry of creations ([`creation_entry`]) in the log.
fn real_entry_bytes() -> Vec<u8> {
    let command = Command::new(1_000_000, creation_entry(0));
    bincode::serde::encode_to_vec(&command, bincode::config::standard()).expect("encode")
}
