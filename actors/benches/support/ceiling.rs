//! What one replica's state machine spends on a durable session creation,
//! in CPU seconds, and so the most three replicas sharing this machine's
//! cores could create: the same figure the OAuth benchmark gives for RSA
//! signing. Measured on the state machine the cluster uses (`KvEngine`)
//! and on bare sled with no rsp code, as a floor for any design on sled.

use std::time::{Duration, Instant};

use rsp_storage::kv::{Command, Compare, CompareTarget, Key, Op, Txn, TxnOp};
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

/// A random 22-character session handle (128 bits, base64url), as the
/// session manager makes.
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

/// `KvEngine::apply` of session creations exactly as the session manager
/// writes them: one transaction per entry with, for each session, "record
/// absent" and two puts with a TTL (the record and the user's index key).
pub fn engine_sessions(run: Duration) -> Ceiling {
    let (_dir, store) = open();
    let engine = KvEngine::new(store.tree(0, "sm").expect("tree")).expect("engine");
    let (started, cpu0) = (Instant::now(), cpu_secs());
    let mut sessions = 0;
    let mut now = 1_000_000;
    while started.elapsed() < run {
        let mut txn = Txn::default();
        for _ in 0..SESSIONS_PER_ENTRY {
            let h = handle();
            let key = Key::new("t.bench", format!("session/{h}"));
            txn.compares.push(Compare {
                key: key.clone(),
                target: CompareTarget::Exists(false),
            });
            txn.success.push(TxnOp::Put {
                key,
                value: vec![5; 58],
                ttl_ms: Some(1_800_000),
            });
            txn.success.push(TxnOp::Put {
                key: Key::new(
                    "t.bench",
                    format!("user_session/u-{:018}/{h}", sessions % 1000),
                ),
                value: Vec::new(),
                ttl_ms: Some(1_800_000),
            });
            sessions += 1;
        }
        now += 1;
        engine
            .apply(&Command::new(now, Op::Txn(txn)), &[])
            .expect("apply");
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

/// The least sled work for one session with a TTL, no rsp code: the record
/// and the user's index key, each with an expiry-index key (4 inserts), in
/// one `apply_batch` per entry; `expiry: false` writes only the two keys, a
/// floor for any design on sled.
pub fn raw_sled_sessions(run: Duration, expiry: bool) -> Ceiling {
    let (_dir, store) = open();
    let tree = store.tree(0, "raw").expect("tree");
    let (started, cpu0) = (Instant::now(), cpu_secs());
    let mut sessions: u64 = 0;
    while started.elapsed() < run {
        let mut batch = sled::Batch::default();
        for _ in 0..SESSIONS_PER_ENTRY {
            let h = handle();
            let record = format!("t.bench/session/{h}");
            let index = format!("t.bench/user_session/u-{:018}/{h}", sessions % 1000);
            batch.insert(record.as_bytes(), vec![5u8; 58 + 24]);
            batch.insert(index.as_bytes(), vec![0u8; 24]);
            if expiry {
                let at = (1_800_000_000 + sessions).to_be_bytes();
                batch.insert([&[0xfe][..], &at, record.as_bytes()].concat(), vec![]);
                batch.insert([&[0xfe][..], &at, index.as_bytes()].concat(), vec![]);
            }
            sessions += 1;
        }
        tree.apply_batch(batch).expect("batch");
    }
    Ceiling {
        workload: if expiry {
            "raw sled, 4 inserts per session"
        } else {
            "raw sled, 2 inserts per session"
        },
        sessions,
        cpu_s: cpu_secs() - cpu0,
        wall_s: started.elapsed().as_secs_f64(),
        reopen: None,
    }
}
