//! Raft snapshots as files, through the state machine's openraft API: one
//! node's snapshot sent in chunks (as openraft does, seeking to each
//! offset) and installed on another; an install cut short by a crash is
//! redone when the store opens; a snapshot the previous release kept
//! inside sled is moved to a file and still served.

use std::io::SeekFrom;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{Entry, EntryPayload, SnapshotMeta};
use rsp_storage::kv::{Command, Key, Op, Txn, TxnOp};
use rsp_storage::{KvEngine, StateMachineStore, Store, StoreConfig, SyncThread};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::log_model::TestConfig;

type Sm = StateMachineStore<TestConfig>;
const GROUP: u64 = 0;

fn open(dir: &std::path::Path) -> (Store, Sm) {
    let store = Store::open(&StoreConfig::new(dir)).expect("store");
    let sync = SyncThread::start(store.clone()).expect("sync thread");
    let sm = Sm::open(&store, GROUP, sync).expect("state machine");
    (store, sm)
}

fn entry(index: u64, ops: Vec<TxnOp>) -> Entry<TestConfig> {
    Entry {
        log_id: openraft::testing::log_id(1, 1, index),
        payload: EntryPayload::Normal(Command::new(1_000 + index, Op::Txn(Txn::ops(ops)))),
    }
}

/// 3000 records over 30 entries, some with a TTL.
async fn fill(sm: &mut Sm) {
    let entries = (1..=30u64).map(|n| {
        entry(
            n,
            (0..100u64)
                .map(|i| TxnOp::Put {
                    key: Key::new("s", format!("{n:03}-{i:03}")),
                    value: vec![n as u8; 300],
                    ttl_ms: (i % 10 == 0).then_some(60_000),
                })
                .collect(),
        )
    });
    sm.apply(entries.collect::<Vec<_>>()).await.expect("apply");
}

async fn read_all(file: &mut rsp_storage::SnapshotFile) -> Vec<u8> {
    file.seek(SeekFrom::Start(0)).await.expect("seek");
    let mut out = Vec::new();
    file.read_to_end(&mut out).await.expect("read");
    out
}

/// The records and the applied log id (the membership, which the source
/// never applied, is written by the install from the snapshot's meta).
fn state(engine: &KvEngine) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = engine.export().expect("export");
    all.retain(|(k, _)| k != b"mmembership");
    all
}

fn same(a: &KvEngine, b: &KvEngine) -> bool {
    let (a, b) = (state(a), state(b));
    a.len() == 3003 && a == b
}

/// A filled state machine, its snapshot and the snapshot's bytes (keep
/// the directory and store while the state machine is used).
struct Source {
    _dir: tempfile::TempDir,
    _store: Store,
    sm: Sm,
    snapshot: openraft::Snapshot<TestConfig>,
    bytes: Vec<u8>,
}

async fn source() -> Source {
    let dir = tempfile::tempdir().expect("dir");
    let (store, mut sm) = open(dir.path());
    fill(&mut sm).await;
    let mut snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");
    assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), Some(30));
    let bytes = read_all(&mut snapshot.snapshot).await;
    Source {
        _dir: dir,
        _store: store,
        sm,
        snapshot,
        bytes,
    }
}

#[tokio::test]
async fn a_snapshot_is_sent_in_chunks_installed_and_an_interrupted_install_is_redone() {
    // Named bindings keep the source's directory and store alive.
    let Source {
        _dir,
        _store,
        sm: a,
        snapshot,
        bytes,
    } = source().await;

    // Received in 64 KiB chunks, each written at its offset, last first:
    // as openraft's receiver does when chunks are resent.
    let b_dir = tempfile::tempdir().expect("dir");
    let (b_store, mut b) = open(b_dir.path());
    let mut received = b.begin_receiving_snapshot().await.expect("begin");
    let chunks: Vec<(usize, &[u8])> = bytes
        .chunks(64 << 10)
        .enumerate()
        .map(|(i, c)| (i * (64 << 10), c))
        .collect();
    for (offset, chunk) in chunks.iter().rev() {
        received
            .seek(SeekFrom::Start(*offset as u64))
            .await
            .expect("seek");
        received.write_all(chunk).await.expect("write");
    }
    received.shutdown().await.expect("shutdown");
    b.install_snapshot(&snapshot.meta, received)
        .await
        .expect("install");
    assert!(
        same(&a.engine(), &b.engine()),
        "the installed state differs"
    );
    assert_eq!(
        b.engine().next_expiry_ms().expect("expiry"),
        a.engine().next_expiry_ms().expect("expiry"),
        "the expiry index is rebuilt"
    );
    let mut current = b
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("a snapshot");
    assert_eq!(current.meta, snapshot.meta);
    assert_eq!(read_all(&mut current.snapshot).await, bytes);

    // A crash in the middle of the install: the marker is left and the
    // tree is half replaced. Opening the store again finishes it.
    let snap = b_store.tree(GROUP, "snap").expect("tree");
    let file = snap.get(b"file").expect("get").expect("file name");
    snap.insert(b"installing", file).expect("marker");
    let sm_tree = b_store.tree(GROUP, "sm").expect("tree");
    // A record the snapshot does not hold (a valid one: the tree is read
    // as records when the store opens).
    let record = sm_tree.first().expect("first").expect("a record").1;
    sm_tree.insert(b"d\x01szzz", record).expect("insert");
    sm_tree.remove(b"mapplied").expect("remove");
    b_store.sync().expect("sync");
    drop((b, sm_tree, snap, current, b_store));
    let (_b_store, mut b) = open(b_dir.path());
    assert!(same(&a.engine(), &b.engine()), "the install was not redone");
    let (applied, _) = b.applied_state().await.expect("applied");
    assert_eq!(applied, snapshot.meta.last_log_id);
}

#[tokio::test]
async fn a_snapshot_the_previous_release_kept_in_sled_is_moved_to_a_file() {
    let Source {
        _dir,
        _store,
        sm: _a,
        snapshot,
        bytes,
    } = source().await;

    // The previous release's layout: the bytes under `data`, no file.
    let c_dir = tempfile::tempdir().expect("dir");
    {
        let store = Store::open(&StoreConfig::new(c_dir.path())).expect("store");
        let snap = store.tree(GROUP, "snap").expect("tree");
        let meta: &SnapshotMeta<u64, openraft::BasicNode> = &snapshot.meta;
        let meta = bincode::serde::encode_to_vec(meta, bincode::config::standard()).unwrap();
        snap.insert(b"meta", meta).expect("meta");
        snap.insert(b"data", bytes.clone()).expect("data");
        store.sync().expect("sync");
    }
    let (store, mut c) = open(c_dir.path());
    let mut current = c
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("a snapshot");
    assert_eq!(current.meta, snapshot.meta);
    assert_eq!(read_all(&mut current.snapshot).await, bytes);
    let snap = store.tree(GROUP, "snap").expect("tree");
    assert!(
        snap.get(b"data").expect("get").is_none(),
        "moved out of sled"
    );
}
