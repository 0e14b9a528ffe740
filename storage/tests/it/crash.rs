//! Crash test in the style of sled's `test_crash_recovery`: the test re-runs
//! its own binary as a child that applies commands to a state machine on sled
//! as fast as it can and prints a sequence number each time the group-commit
//! thread reports a sync that covers it. The parent kills the child with
//! SIGKILL at a random moment, reopens the database and checks that
//!
//! - every acknowledged command is there (nothing acknowledged is lost);
//! - the state is exactly the effect of commands `1..=applied` (a prefix): the
//!   revision equals the applied index, and each command's several writes are
//!   all present or all absent (no torn command).
//!
//! A process kill only loses what sled had not yet written, so this proves the
//! sync covers everything written before it; a power cut (the page cache lost
//! too) is what the `fdatasync` in `Store::sync` is for and is not simulated.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::storage::RaftStateMachine;
use openraft::{Entry, EntryPayload};
use rand::Rng;
use rsp_storage::kv::{Command, Key, Op, Response, Txn, TxnOp};
use rsp_storage::{StateMachineStore, Store, StoreConfig, SyncThread};

openraft::declare_raft_types!(
    pub TestConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TestConfig>,
        SnapshotData = rsp_storage::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

type TestSm = StateMachineStore<TestConfig>;

/// This test's name as the harness knows it (its module path inside the
/// `it` test binary); the child re-runs exactly this test.
const TEST_NAME: &str = "crash::acknowledged_writes_survive_sigkill_and_no_command_is_torn";
const CHILD_ENV: &str = "RSP_STORAGE_CRASH_CHILD_DIR";
const ROUNDS: usize = 6;
/// The child stops writing after this long if nobody kills it.
const CHILD_MAX_RUN: Duration = Duration::from_secs(30);
/// How far the child may run ahead of the last acknowledged command.
const MAX_UNACKED: u64 = 64;

fn key(space: &str, n: u64) -> Key {
    Key::new(space, format!("{n:012}"))
}

/// Every 7th command writes a larger value, so that sled's writes span more
/// than one buffer now and then.
fn value(n: u64) -> Vec<u8> {
    let len = if n.is_multiple_of(7) { 20_000 } else { 100 };
    let mut v = n.to_be_bytes().to_vec();
    v.resize(len, (n % 251) as u8);
    v
}

/// Command `n`: put `a/n` and `b/n`, set `c/last` to `n`; every 10th command
/// also deletes the pair written five commands earlier. Every command changes
/// something, so command `n` makes revision `n`.
fn command(n: u64) -> Command {
    let mut ops = vec![
        TxnOp::Put {
            key: key("a", n),
            value: value(n),
            ttl_ms: None,
        },
        TxnOp::Put {
            key: key("b", n),
            value: value(n),
            ttl_ms: None,
        },
        TxnOp::Put {
            key: Key::new("c", "last"),
            value: n.to_be_bytes().to_vec(),
            ttl_ms: None,
        },
    ];
    if n.is_multiple_of(10) {
        ops.push(TxnOp::Delete {
            key: key("a", n - 5),
        });
        ops.push(TxnOp::Delete {
            key: key("b", n - 5),
        });
    }
    Command::new(1_000 + n, Op::Txn(Txn::ops(ops)))
}

/// Whether pair `j` exists after commands `1..=applied`.
fn pair_present(j: u64, applied: u64) -> bool {
    j <= applied && !(j % 10 == 5 && j + 5 <= applied)
}

fn open_store(path: &Path) -> Store {
    // The previous owner's sync thread may still be letting go of sled's lock.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(&StoreConfig::new(path)) {
            Ok(store) => return store,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("cannot open the store: {e}"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// The child: resume after whatever is applied, then write until killed.
fn child(dir: &Path) {
    runtime().block_on(async {
        let store = open_store(dir);
        let sync = SyncThread::start(store.clone()).unwrap();
        let mut sm = TestSm::open(&store, 0, sync.clone()).unwrap();
        let (applied, _) = sm.applied_state().await.unwrap();
        let mut next = applied.map_or(0, |id| id.index) + 1;
        let acked = Arc::new(AtomicU64::new(next - 1));
        say(&format!("READY {}", next - 1));
        let started = Instant::now();
        while started.elapsed() < CHILD_MAX_RUN {
            let entry = Entry::<TestConfig> {
                log_id: openraft::testing::log_id(1, 1, next),
                payload: EntryPayload::Normal(command(next)),
            };
            sm.apply([entry]).await.unwrap();
            let (n, acked_by_sync) = (next, acked.clone());
            sync.request(move |r| {
                r.expect("sync failed");
                acked_by_sync.store(n, Ordering::SeqCst);
                say(&format!("ACK {n}"));
            })
            .unwrap();
            while next - acked.load(Ordering::SeqCst) > MAX_UNACKED {
                std::thread::sleep(Duration::from_micros(50));
            }
            next += 1;
        }
    });
}

/// Reopens the database and checks it holds exactly commands `1..=applied`;
/// returns `applied`.
fn verify(dir: &Path) -> u64 {
    runtime().block_on(async {
        let store = open_store(dir);
        let sync = SyncThread::start(store.clone()).unwrap();
        let mut sm = TestSm::open(&store, 0, sync).unwrap();
        let (applied, _) = sm.applied_state().await.unwrap();
        let applied = applied.map_or(0, |id| id.index);
        let engine = sm.engine();
        assert_eq!(
            engine.revision().unwrap(),
            applied,
            "one revision per command"
        );
        let want: Vec<u64> = (1..=applied)
            .filter(|&j| pair_present(j, applied))
            .collect();
        for space in ["a", "b"] {
            let kvs = engine.range(space, b"", usize::MAX).unwrap();
            let got: Vec<u64> = kvs
                .iter()
                .map(|kv| String::from_utf8_lossy(&kv.key.key).parse().unwrap())
                .collect();
            assert_eq!(got, want, "keyspace {space} after {applied} commands");
            for (kv, j) in kvs.iter().zip(&want) {
                assert_eq!(kv.value, value(*j), "{space}/{j}");
                assert_eq!((kv.mod_revision, kv.version), (*j, 1), "{space}/{j}");
            }
        }
        let last = engine.get(&Key::new("c", "last")).unwrap();
        match last {
            None => assert_eq!(applied, 0),
            Some(kv) => {
                assert_eq!(kv.value, applied.to_be_bytes().to_vec());
                assert_eq!(kv.version, applied);
            }
        }
        applied
    })
}

/// The child process; killed with SIGKILL when dropped, so a failing parent
/// leaves nothing behind.
struct Child(std::process::Child);

impl Child {
    fn kill_now(&mut self) {
        // `Child::kill` sends SIGKILL on Unix.
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

enum Heard {
    Ready(u64),
    Ack(u64),
}

#[test]
fn acknowledged_writes_survive_sigkill_and_no_command_is_torn() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut applied = 0;
    for round in 0..ROUNDS {
        let mut proc = Child(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, dir.path())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stdout = proc.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may have printed "test <name> ... " on the same line.
                let heard = if let Some((_, n)) = line.split_once("ACK ") {
                    Heard::Ack(n.trim().parse().unwrap())
                } else if let Some((_, n)) = line.split_once("READY ") {
                    Heard::Ready(n.trim().parse().unwrap())
                } else {
                    continue;
                };
                if tx.send(heard).is_err() {
                    break;
                }
            }
        });

        let first_ack = |rx: &std::sync::mpsc::Receiver<Heard>| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(Heard::Ready(n)) => assert_eq!(n, applied, "child resumed elsewhere"),
                    Ok(Heard::Ack(n)) => return Some(n),
                    Err(_) => return None,
                }
            }
            None
        };
        // Kill at a random moment once the child is acknowledging writes.
        let Some(first) = first_ack(&rx) else {
            panic!("round {round}: the child acknowledged nothing");
        };
        std::thread::sleep(Duration::from_millis(rng.random_range(100..500)));
        proc.kill_now();
        reader.join().unwrap();
        let acked = rx
            .try_iter()
            .filter_map(|h| match h {
                Heard::Ack(n) => Some(n),
                Heard::Ready(_) => None,
            })
            .fold(first, u64::max);

        let recovered = verify(dir.path());
        assert!(
            recovered >= acked,
            "round {round}: acknowledged {acked} but only {recovered} survived"
        );
        println!("round {round}: acknowledged {acked}, recovered {recovered}");
        applied = recovered;
    }
}
