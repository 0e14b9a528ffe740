//! Copies of the engine's state taken while commands are applied
//! (copy-on-write): whatever the interleaving of chunk reads and applies
//! (puts and deletes ahead of and behind the copy's cursor, new keys, TTL
//! expiries), a copy is exactly the state at the moment it started.
//! And a snapshot install meets copies under way as documented: a
//! backup's copy fails, a snapshot's copy is waited for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use rsp_storage::kv::{Command, Key, Op, Txn, TxnOp};
use rsp_storage::{KvEngine, Store, StoreConfig};

/// More keys than several chunks of a copy (256 entries each) and two
/// batches of a replace (1024 each).
const KEYS: u32 = 2600;

fn engine() -> (tempfile::TempDir, KvEngine) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&StoreConfig::new(dir.path())).expect("store");
    let engine = KvEngine::new(store.tree(0, "sm").expect("tree")).expect("engine");
    (dir, engine)
}

fn key(i: u32) -> Key {
    Key::new("s", format!("{i:05}"))
}

fn put(i: u32, value: u32, ttl_ms: Option<u64>) -> TxnOp {
    TxnOp::Put {
        key: key(i),
        value: value.to_be_bytes().to_vec(),
        ttl_ms,
    }
}

fn apply(engine: &KvEngine, now: u64, ops: Vec<TxnOp>) {
    engine
        .apply(&Command::new(now, Op::Txn(Txn::ops(ops))), &[])
        .expect("apply");
}

fn fill(engine: &KvEngine) {
    for start in (0..KEYS).step_by(500) {
        let ops = (start..(start + 500).min(KEYS))
            .filter(|i| i % 3 != 0)
            .map(|i| put(i, i, (i % 7 == 0).then_some(5_000)))
            .collect();
        apply(engine, 1_000, ops);
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// Read the copy's next chunk.
    Chunk,
    /// Put (or, with `false`, delete) these keys in one command at time
    /// `now` (a late enough `now` expires the TTL'd keys).
    Write(Vec<(u32, bool)>, u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Chunk),
        3 => (
            proptest::collection::vec((0..KEYS + 200, any::<bool>()), 1..40),
            prop_oneof![Just(2_000u64), Just(9_000u64)],
        )
            .prop_map(|(keys, now)| Step::Write(keys, now)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_copy_is_the_state_at_its_start_whatever_is_applied_meanwhile(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        let (_dir, engine) = engine();
        fill(&engine);
        let expected = engine.export().expect("export");
        let (mut copy, revision) = engine
            .start_copy(|tree| Ok(tree.get(b"mrev")?.map(|v| v.to_vec())))
            .expect("start");
        let now = engine.revision().expect("revision").to_be_bytes().to_vec();
        prop_assert_eq!(revision, Some(now));
        let mut copied = Vec::new();
        let mut done = false;
        for (n, step) in steps.into_iter().enumerate() {
            match step {
                Step::Chunk if !done => match copy.next_chunk().expect("chunk") {
                    Some(chunk) => copied.extend(chunk),
                    None => done = true,
                },
                Step::Chunk => {}
                Step::Write(keys, now) => {
                    let ops = keys
                        .into_iter()
                        .map(|(i, keep)| {
                            if keep {
                                put(i, n as u32, None)
                            } else {
                                TxnOp::Delete { key: key(i) }
                            }
                        })
                        .collect();
                    apply(&engine, now, ops);
                }
            }
        }
        while let Some(chunk) = copy.next_chunk().expect("chunk") {
            copied.extend(chunk);
        }
        prop_assert_eq!(copied.len(), expected.len());
        prop_assert!(copied == expected, "the copy differs from the state at its start");
    }
}

#[test]
fn a_snapshot_install_fails_a_backup_copy_and_waits_for_a_snapshot_copy() {
    let (_dir, engine) = engine();
    fill(&engine);
    let replacement = vec![(b"zother".to_vec(), b"x".to_vec())];

    // A backup's copy under way is failed by name.
    let (mut backup, ()) = engine.start_copy(|_| Ok(())).expect("start");
    backup.next_chunk().expect("first chunk");
    engine.import(&replacement).expect("install");
    let err = backup.next_chunk().expect_err("the copy must fail");
    assert!(err.to_string().contains("replaced"), "{err}");
    drop(backup);

    // A snapshot's copy is finished first: the install waits for it.
    fill(&engine);
    let expected = engine.export().expect("export");
    let (mut snapshot, ()) = engine.start_snapshot_copy(|_| Ok(())).expect("start");
    let installed = Arc::new(AtomicBool::new(false));
    let installer = {
        let engine = engine.clone();
        let installed = installed.clone();
        std::thread::spawn(move || {
            engine.import(&replacement).expect("install");
            installed.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !installed.load(Ordering::SeqCst),
        "the install did not wait"
    );
    let mut copied = Vec::new();
    while let Some(chunk) = snapshot.next_chunk().expect("chunk") {
        copied.extend(chunk);
    }
    assert_eq!(copied, expected);
    drop(snapshot);
    installer.join().expect("installer");
    assert!(installed.load(Ordering::SeqCst));
    assert_eq!(
        engine.export().expect("export"),
        vec![(b"zother".to_vec(), b"x".to_vec())]
    );
}
