//! The Raft log store against a `BTreeMap` model, openraft's own conformance
//! suite for `LogStore` and `StateMachineStore`, and the group-commit thread.
//!
//! openraft 0.9 keeps `LogFlushed::new` crate-private, so nothing outside
//! openraft can call `RaftLogStorage::append` directly. The real `append` (with
//! its callback) is therefore exercised by `openraft::testing::Suite`, which
//! builds the callback itself; the model test writes entries with
//! [`raw_append`], the same sled batch `append` writes (big-endian index ->
//! bincode entry), and checks everything else: reads, truncate, purge, the
//! log state, vote and committed id, across reopens.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorage;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{Entry, EntryPayload, LogId, Membership, RaftLogReader, Vote};
use proptest::prelude::*;
use rsp_storage::kv::{Command, Op, Response};
use rsp_storage::{LogStore, StateMachineStore, Store, StoreConfig, SyncThread};

openraft::declare_raft_types!(
    /// A small type config for storage tests (the real one is in
    /// rsp-consensus).
    pub TestConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TestConfig>,
        SnapshotData = rsp_storage::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

type TestLog = LogStore<TestConfig>;
type TestSm = StateMachineStore<TestConfig>;
const GROUP: u64 = 3;

/// Opens the store, retrying while threads of the previous handles still hold
/// sled's exclusive file lock: the sync thread stops asynchronously once its
/// last handle is dropped, and so do sled's own I/O threads.
fn open_store(path: &Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(&StoreConfig::new(path)) {
            Ok(store) => return store,
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("cannot reopen the store: {e}"),
        }
    }
}

/// What `LogStore::append` writes, without the completion callback.
fn raw_append(store: &Store, entries: &[Entry<TestConfig>]) {
    let mut batch = sled::Batch::default();
    for e in entries {
        let bytes = bincode::serde::encode_to_vec(e, bincode::config::standard()).unwrap();
        batch.insert(&e.log_id.index.to_be_bytes(), bytes);
    }
    store
        .tree(GROUP, "log")
        .unwrap()
        .apply_batch(batch)
        .unwrap();
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    openraft::testing::log_id(term, 1, index)
}

// ---------------------------------------------------------------- model test

#[derive(Debug, Clone)]
enum LogOp {
    /// Append `kinds.len()` entries after the last one, in a new term if
    /// `new_term`.
    Append {
        new_term: bool,
        kinds: Vec<u8>,
    },
    /// Truncate since the entry at this position among present entries.
    Truncate(prop::sample::Index),
    /// Purge up to the entry at this position among present entries.
    Purge(prop::sample::Index),
    SaveVote {
        term: u64,
        node: u64,
        committed: bool,
    },
    SaveCommitted(Option<prop::sample::Index>),
    Read {
        start: Bound<u64>,
        end: Bound<u64>,
    },
    Reopen,
}

fn bound() -> impl Strategy<Value = Bound<u64>> {
    prop_oneof![
        (0u64..40).prop_map(Bound::Included),
        (0u64..40).prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn log_op() -> impl Strategy<Value = LogOp> {
    prop_oneof![
        6 => (prop::bool::weighted(0.2), prop::collection::vec(0u8..3, 1..5))
            .prop_map(|(new_term, kinds)| LogOp::Append { new_term, kinds }),
        2 => any::<prop::sample::Index>().prop_map(LogOp::Truncate),
        2 => any::<prop::sample::Index>().prop_map(LogOp::Purge),
        1 => (0u64..5, 0u64..3, any::<bool>())
            .prop_map(|(term, node, committed)| LogOp::SaveVote { term, node, committed }),
        1 => prop::option::of(any::<prop::sample::Index>()).prop_map(LogOp::SaveCommitted),
        3 => (bound(), bound()).prop_map(|(start, end)| LogOp::Read { start, end }),
        1 => Just(LogOp::Reopen),
    ]
}

#[derive(Default)]
struct LogModel {
    entries: BTreeMap<u64, Entry<TestConfig>>,
    purged: Option<LogId<u64>>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
    term: u64,
}

impl LogModel {
    fn next_index(&self) -> u64 {
        match (self.entries.last_key_value(), &self.purged) {
            (Some((i, _)), _) => i + 1,
            (None, Some(p)) => p.index + 1,
            (None, None) => 0,
        }
    }

    fn last_log_id(&self) -> Option<LogId<u64>> {
        match self.entries.last_key_value() {
            Some((_, e)) => Some(e.log_id),
            None => self.purged,
        }
    }

    fn pick(&self, at: &prop::sample::Index) -> Option<LogId<u64>> {
        if self.entries.is_empty() {
            return None;
        }
        let i = at.index(self.entries.len());
        self.entries.values().nth(i).map(|e| e.log_id)
    }

    fn read(&self, start: Bound<u64>, end: Bound<u64>) -> Vec<Entry<TestConfig>> {
        let range = (start, end);
        self.entries
            .iter()
            .filter(|(i, _)| std::ops::RangeBounds::contains(&range, *i))
            .map(|(_, e)| e.clone())
            .collect()
    }
}

fn entry(term: u64, index: u64, kind: u8) -> Entry<TestConfig> {
    let payload = match kind {
        0 => EntryPayload::Blank,
        1 => EntryPayload::Normal(Command::new(index * 10, Op::Tick)),
        _ => EntryPayload::Membership(Membership::new(
            vec![[1u64, 2, 3].into_iter().collect()],
            None,
        )),
    };
    Entry {
        log_id: log_id(term, index),
        payload,
    }
}

struct Opened {
    store: Store,
    log: TestLog,
}

fn open_log(path: &Path) -> Opened {
    let store = open_store(path);
    let sync = SyncThread::start(store.clone()).unwrap();
    let log = TestLog::open(&store, GROUP, sync).unwrap();
    Opened { store, log }
}

async fn check(log: &mut TestLog, model: &LogModel, step: usize) {
    let state = log.get_log_state().await.unwrap();
    assert_eq!(
        state.last_purged_log_id, model.purged,
        "purged, step {step}"
    );
    assert_eq!(
        state.last_log_id,
        model.last_log_id(),
        "last log id, step {step}"
    );
    // A vote reads back uncommitted (see `LogStore::read_vote`).
    assert_eq!(
        log.read_vote().await.unwrap(),
        model.vote.map(|v| Vote {
            committed: false,
            ..v
        }),
        "vote, step {step}"
    );
    assert_eq!(
        log.read_committed().await.unwrap(),
        model.committed,
        "committed, step {step}"
    );
    let all = log.try_get_log_entries(..).await.unwrap();
    let want: Vec<_> = model.entries.values().cloned().collect();
    assert_eq!(all, want, "whole log, step {step}");
    assert_eq!(log.len(), model.entries.len(), "len, step {step}");
}

async fn run_log_model(ops: Vec<LogOp>) {
    let dir = tempfile::tempdir().unwrap();
    let mut opened = Some(open_log(dir.path()));
    let mut model = LogModel::default();
    for (step, op) in ops.into_iter().enumerate() {
        let Opened { store, log } = opened.as_mut().unwrap();
        match op {
            LogOp::Append { new_term, kinds } => {
                if new_term || model.term == 0 {
                    model.term += 1;
                }
                let first = model.next_index();
                let entries: Vec<_> = kinds
                    .iter()
                    .enumerate()
                    .map(|(i, k)| entry(model.term, first + i as u64, *k))
                    .collect();
                raw_append(store, &entries);
                for e in entries {
                    model.entries.insert(e.log_id.index, e);
                }
            }
            LogOp::Truncate(at) => {
                if let Some(id) = model.pick(&at) {
                    log.truncate(id).await.unwrap();
                    model.entries.retain(|i, _| *i < id.index);
                }
            }
            LogOp::Purge(at) => {
                if let Some(id) = model.pick(&at) {
                    log.purge(id).await.unwrap();
                    model.entries.retain(|i, _| *i > id.index);
                    model.purged = Some(id);
                }
            }
            LogOp::SaveVote {
                term,
                node,
                committed,
            } => {
                let vote = if committed {
                    Vote::new_committed(term, node)
                } else {
                    Vote::new(term, node)
                };
                log.save_vote(&vote).await.unwrap();
                model.vote = Some(vote);
            }
            LogOp::SaveCommitted(at) => {
                let id = at.and_then(|at| model.pick(&at));
                log.save_committed(id).await.unwrap();
                model.committed = id;
            }
            LogOp::Read { start, end } => {
                let mut reader = log.get_log_reader().await;
                let got = reader.try_get_log_entries((start, end)).await.unwrap();
                assert_eq!(got, model.read(start, end), "read {start:?}..{end:?}");
            }
            LogOp::Reopen => {
                drop(opened.take());
                opened = Some(open_log(dir.path()));
            }
        }
        check(&mut opened.as_mut().unwrap().log, &model, step).await;
    }
    // Whatever the sequence, a final reopen keeps all of it.
    drop(opened.take());
    let mut reopened = open_log(dir.path());
    check(&mut reopened.log, &model, usize::MAX).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_store_matches_the_model(ops in prop::collection::vec(log_op(), 1..50)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_log_model(ops));
    }
}

// ---------------------------------------------------------------- openraft's suite

/// Each suite case gets a fresh database in its own temp dir.
struct Builder;

impl StoreBuilder<TestConfig, TestLog, TestSm, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, TestLog, TestSm), openraft::StorageError<u64>> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        let sync = SyncThread::start(store.clone()).unwrap();
        let log = TestLog::open(&store, GROUP, sync.clone()).unwrap();
        let sm = TestSm::open(&store, GROUP, sync).unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn log_store_and_state_machine_pass_openraft_conformance_suite() {
    Suite::<TestConfig, TestLog, TestSm, Builder, tempfile::TempDir>::test_all(Builder).unwrap();
}

// ---------------------------------------------------------------- group commit

/// Requests that queue up while a sync (or its callbacks) runs are all covered
/// by the next single sync, and every one of them is completed with `Ok`.
#[test]
fn requests_queued_during_a_sync_share_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
    let sync = SyncThread::start(store.clone()).unwrap();

    // Hold the sync thread inside the first batch's callback.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    sync.request(move |r| {
        r.unwrap();
        entered_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    })
    .unwrap();
    entered_rx.recv().unwrap();

    let tree = store.tree(GROUP, "log").unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let (all_tx, all_rx) = std::sync::mpsc::channel::<()>();
    const N: usize = 100;
    for i in 0..N {
        tree.insert((i as u64).to_be_bytes(), vec![1; 64]).unwrap();
        let done = done.clone();
        let all_tx = all_tx.clone();
        sync.request(move |r| {
            r.unwrap();
            if done.fetch_add(1, Ordering::SeqCst) + 1 == N {
                all_tx.send(()).unwrap();
            }
        })
        .unwrap();
    }
    release_tx.send(()).unwrap();
    all_rx.recv_timeout(Duration::from_secs(10)).unwrap();

    let stats = sync.stats();
    assert_eq!(stats.requests.load(Ordering::SeqCst), N as u64 + 1);
    assert_eq!(
        stats.syncs.load(Ordering::SeqCst),
        2,
        "one sync for 100 queued requests"
    );
}

/// Many concurrent writers awaiting their own durability all get it, and what
/// they were told is durable is there after the database is reopened.
#[test]
fn concurrent_appenders_each_see_their_write_synced_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    const WRITERS: u64 = 32;
    const EACH: u64 = 20;
    {
        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        let sync = SyncThread::start(store.clone()).unwrap();
        let tree = store.tree(GROUP, "log").unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let (tree, sync) = (tree.clone(), sync.clone());
                    tokio::spawn(async move {
                        for i in 0..EACH {
                            tree.insert((w << 32 | i).to_be_bytes(), vec![w as u8; 100])
                                .unwrap();
                            sync.sync().await.unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let stats = sync.stats();
        let requests = stats.requests.load(Ordering::SeqCst);
        let syncs = stats.syncs.load(Ordering::SeqCst);
        assert_eq!(requests, WRITERS * EACH);
        assert!(syncs >= 1 && syncs <= requests);
    }
    let store = open_store(dir.path());
    let tree = store.tree(GROUP, "log").unwrap();
    assert_eq!(tree.len() as u64, WRITERS * EACH);
    for w in 0..WRITERS {
        for i in 0..EACH {
            let v = tree.get((w << 32 | i).to_be_bytes()).unwrap().unwrap();
            assert_eq!(&*v, &[w as u8; 100][..]);
        }
    }
}

/// A vote is on disk when `save_vote` returns, and purge/truncate survive a
/// reopen together with the entries around them.
#[test]
fn vote_and_log_state_survive_reopen() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        {
            let Opened { store, mut log } = open_log(dir.path());
            raw_append(&store, &(0..10).map(|i| entry(1, i, 1)).collect::<Vec<_>>());
            log.purge(log_id(1, 3)).await.unwrap();
            log.truncate(log_id(1, 8)).await.unwrap();
            log.save_vote(&Vote::new_committed(2, 1)).await.unwrap();
        }
        let Opened { mut log, .. } = open_log(dir.path());
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(1, 7)));
        // The committed vote comes back as a plain vote for the same term
        // and node: leadership is not resumed across a restart.
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
        let ids: Vec<u64> = log
            .try_get_log_entries(..)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(ids, vec![4, 5, 6, 7]);
        // Purging everything keeps the last log id at the purge point.
        log.purge(log_id(1, 7)).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 7)));
        assert!(log.is_empty());
    });
}
