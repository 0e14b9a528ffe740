//! A batch of operations is applied exactly as the same operations proposed
//! one by one at the same time, and a bad operation fails alone.

use rsp_storage::kv::{CmpOp, Command, Compare, CompareTarget, Key, Op, Response, Txn, TxnOp};
use rsp_storage::{KvEngine, Store, StoreConfig};

fn engine(dir: &std::path::Path) -> KvEngine {
    let store = Store::open(&StoreConfig::new(dir)).expect("open");
    KvEngine::new(store.tree(0, "sm").expect("tree")).expect("engine")
}

fn put(k: &str, v: &str, ttl: Option<u64>) -> Op {
    Op::Txn(Txn::ops(vec![TxnOp::Put {
        key: Key::new("ks", k.as_bytes().to_vec()),
        value: v.as_bytes().to_vec(),
        ttl_ms: ttl,
    }]))
}

#[test]
fn a_batch_equals_its_operations_applied_one_by_one() {
    let ops = vec![
        put("a", "1", None),
        Op::Txn(Txn {
            compares: vec![Compare {
                key: Key::new("ks", b"a".to_vec()),
                target: CompareTarget::Value(CmpOp::Eq, b"1".to_vec()),
            }],
            success: vec![TxnOp::Put {
                key: Key::new("ks", b"a".to_vec()),
                value: b"2".to_vec(),
                ttl_ms: None,
            }],
            failure: vec![],
        }),
        Op::Txn(Txn::ops(vec![TxnOp::Put {
            key: Key::new("", b"bad".to_vec()),
            value: vec![],
            ttl_ms: None,
        }])),
        put("b", "x", Some(10)),
        Op::Tick,
    ];
    let (d1, d2) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (batched, single) = (engine(d1.path()), engine(d2.path()));
    let now = 1_000;
    let batch_resp = batched
        .apply(&Command::new(now, Op::Batch(ops.clone())), &[])
        .expect("apply batch");
    let single_resps: Vec<Response> = ops
        .iter()
        .map(|op| {
            single
                .apply(&Command::new(now, op.clone()), &[])
                .expect("apply")
        })
        .collect();
    assert_eq!(batch_resp, Response::Batch(single_resps.clone()));
    assert!(
        matches!(single_resps[2], Response::Rejected(_)),
        "the bad operation fails alone"
    );
    assert_eq!(
        batched.export().expect("export"),
        single.export().expect("export")
    );
    assert_eq!(batched.revision().expect("rev"), 3);
}

#[test]
fn nested_batches_are_refused_whole() {
    let d = tempfile::tempdir().expect("dir");
    let e = engine(d.path());
    let cmd = Command::new(5, Op::Batch(vec![put("a", "1", None), Op::Batch(vec![])]));
    assert!(rsp_storage::kv_engine::validate(&cmd).is_err());
    assert!(matches!(
        e.apply(&cmd, &[]).expect("apply"),
        Response::Rejected(_)
    ));
    assert!(
        e.get(&Key::new("ks", b"a".to_vec()))
            .expect("get")
            .is_none()
    );
}
