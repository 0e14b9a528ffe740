//! Model test of [`KvEngine::apply`]: random command sequences over a small key
//! space are applied both to the engine (on sled) and to a plain `BTreeMap`
//! model written from the documented semantics in `rsp_storage::kv`; after
//! every command the responses, the watch events and the whole state must
//! agree. Reopening the database in the middle of a sequence, or at its end,
//! must change nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rsp_storage::kv::{
    COMMAND_FORMAT, CmpOp, Command, Compare, CompareTarget, EventKind, Key, KeyValue,
    MAX_VALUE_LEN, Op, OpResult, Response, Txn, TxnOp, TxnResponse, WatchEvent,
};
use rsp_storage::{KvEngine, Store, StoreConfig};
use tokio::sync::broadcast;

/// Valid keyspaces; "a" is a byte prefix of "ab" on purpose. The empty name is
/// invalid and makes a command `Rejected`.
const KEYSPACES: &[&str] = &["a", "ab"];
const KEYS: &[&[u8]] = &[b"", b"x", b"xa", b"xy", b"y"];
const PREFIXES: &[&[u8]] = &[b"", b"x", b"xy", b"z"];
const VALUES: &[&[u8]] = &[b"", b"1", b"10", b"2"];

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    value: Vec<u8>,
    version: u64,
    create_rev: u64,
    mod_rev: u64,
    expires_at: Option<u64>,
}

#[derive(Debug, Default)]
struct Model {
    data: BTreeMap<Key, Rec>,
    revision: u64,
    last_now: u64,
}

fn kv(key: &Key, r: &Rec) -> KeyValue {
    KeyValue {
        key: key.clone(),
        value: r.value.clone(),
        create_revision: r.create_rev,
        mod_revision: r.mod_rev,
        version: r.version,
        expires_at_ms: r.expires_at,
    }
}

fn cmp<T: Ord>(op: CmpOp, left: &T, right: &T) -> bool {
    match op {
        CmpOp::Eq => left == right,
        CmpOp::Ne => left != right,
        CmpOp::Lt => left < right,
        CmpOp::Gt => left > right,
    }
}

fn txn_keyspaces(txn: &Txn) -> Vec<&str> {
    let mut out: Vec<&str> = txn.compares.iter().map(|c| &*c.key.keyspace).collect();
    for op in txn.success.iter().chain(&txn.failure) {
        out.push(match op {
            TxnOp::Put { key, .. } | TxnOp::Delete { key } | TxnOp::Get { key } => &key.keyspace,
            TxnOp::DeletePrefix { keyspace, .. } | TxnOp::Range { keyspace, .. } => keyspace,
        });
    }
    out
}

fn put_bytes(txn: &Txn) -> usize {
    txn.success
        .iter()
        .chain(&txn.failure)
        .map(|op| match op {
            TxnOp::Put { key, value, .. } => key.key.len() + value.len(),
            _ => 0,
        })
        .sum()
}

impl Model {
    fn in_prefix(&self, keyspace: &str, prefix: &[u8]) -> Vec<Key> {
        self.data
            .keys()
            .filter(|k| k.keyspace == keyspace && k.key.starts_with(prefix))
            .cloned()
            .collect()
    }

    fn apply(&mut self, cmd: &Command) -> (Response, Vec<WatchEvent>) {
        if cmd.format > COMMAND_FORMAT {
            return (Response::Unsupported { format: cmd.format }, Vec::new());
        }
        if let Op::Txn(txn) = &cmd.op {
            let bad_keyspace = txn_keyspaces(txn)
                .iter()
                .any(|k| k.is_empty() || k.len() > 64);
            if bad_keyspace || put_bytes(txn) > MAX_VALUE_LEN {
                return (Response::Rejected(String::new()), Vec::new());
            }
        }
        let mut events = Vec::new();
        // The store's time never goes backwards.
        let now = cmd.now_ms.max(self.last_now);
        self.last_now = now;

        // Every due key expires, all in one revision, before the command.
        let mut due: Vec<(u64, Key)> = self
            .data
            .iter()
            .filter_map(|(k, r)| {
                r.expires_at
                    .filter(|&at| at <= now)
                    .map(|at| (at, k.clone()))
            })
            .collect();
        // Expiry order: by time, then by (keyspace length, keyspace, key).
        due.sort_by(|(a, ka), (b, kb)| {
            (a, ka.keyspace.len(), &ka.keyspace, &ka.key).cmp(&(
                b,
                kb.keyspace.len(),
                &kb.keyspace,
                &kb.key,
            ))
        });
        if !due.is_empty() {
            self.revision += 1;
            for (_, key) in due {
                self.data.remove(&key);
                events.push(WatchEvent {
                    revision: self.revision,
                    key,
                    kind: EventKind::Expire,
                    value: None,
                });
            }
        }

        let txn = match &cmd.op {
            Op::Tick => {
                return (
                    Response::Tick {
                        revision: self.revision,
                    },
                    events,
                );
            }
            Op::Txn(txn) => txn,
            // Batches are proven equal to their operations one by one in
            // kv_batch.rs; this model only generates single operations.
            Op::Batch(_) => panic!("the model generates no batches"),
        };

        let succeeded = txn.compares.iter().all(|c| {
            let rec = self.data.get(&c.key);
            match &c.target {
                CompareTarget::Exists(want) => rec.is_some() == *want,
                CompareTarget::Value(op, v) => rec.is_some_and(|r| cmp(*op, &r.value, v)),
                CompareTarget::Version(op, v) => cmp(*op, &rec.map_or(0, |r| r.version), v),
                CompareTarget::ModRevision(op, v) => cmp(*op, &rec.map_or(0, |r| r.mod_rev), v),
            }
        });
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let rev = self.revision + 1;
        let mut changed = false;
        let mut results = Vec::new();
        for op in ops {
            results.push(match op {
                TxnOp::Put { key, value, ttl_ms } => {
                    let prev = self.data.get(key).cloned();
                    let rec = Rec {
                        value: value.clone(),
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        create_rev: prev.as_ref().map_or(rev, |p| p.create_rev),
                        mod_rev: rev,
                        expires_at: ttl_ms.map(|t| now.saturating_add(t)),
                    };
                    self.data.insert(key.clone(), rec);
                    events.push(WatchEvent {
                        revision: rev,
                        key: key.clone(),
                        kind: EventKind::Put,
                        value: Some(value.clone()),
                    });
                    changed = true;
                    OpResult::Put {
                        prev: prev.map(|p| kv(key, &p)),
                    }
                }
                TxnOp::Delete { key } => {
                    let deleted = self.data.remove(key).is_some();
                    if deleted {
                        changed = true;
                        events.push(WatchEvent {
                            revision: rev,
                            key: key.clone(),
                            kind: EventKind::Delete,
                            value: None,
                        });
                    }
                    OpResult::Delete {
                        deleted: deleted as u64,
                    }
                }
                TxnOp::DeletePrefix { keyspace, prefix } => {
                    let keys = self.in_prefix(keyspace, prefix);
                    for key in &keys {
                        self.data.remove(key);
                        changed = true;
                        events.push(WatchEvent {
                            revision: rev,
                            key: key.clone(),
                            kind: EventKind::Delete,
                            value: None,
                        });
                    }
                    OpResult::Delete {
                        deleted: keys.len() as u64,
                    }
                }
                TxnOp::Get { key } => OpResult::Get {
                    kv: self.data.get(key).map(|r| kv(key, r)),
                },
                TxnOp::Range {
                    keyspace,
                    prefix,
                    limit,
                } => OpResult::Range {
                    kvs: self
                        .in_prefix(keyspace, prefix)
                        .iter()
                        .take(*limit as usize)
                        .map(|k| kv(k, &self.data[k]))
                        .collect(),
                },
            });
        }
        if changed {
            self.revision = rev;
        }
        (
            Response::Txn(TxnResponse {
                succeeded,
                revision: self.revision,
                results,
            }),
            events,
        )
    }

    fn keyspace(&self, keyspace: &str) -> Vec<KeyValue> {
        self.in_prefix(keyspace, b"")
            .iter()
            .map(|k| kv(k, &self.data[k]))
            .collect()
    }
}

// ---------------------------------------------------------------- the engine

struct Engine {
    dir: tempfile::TempDir,
    store: Option<Store>,
    engine: Option<KvEngine>,
    events: Option<broadcast::Receiver<WatchEvent>>,
}

impl Engine {
    fn new() -> Self {
        let mut e = Engine {
            dir: tempfile::tempdir().expect("temp dir"),
            store: None,
            engine: None,
            events: None,
        };
        e.open();
        e
    }

    fn open(&mut self) {
        // sled's background threads may hold its file lock for a moment after
        // the last handle is dropped.
        let deadline = Instant::now() + Duration::from_secs(10);
        let store = loop {
            match Store::open(&StoreConfig::new(self.dir.path())) {
                Ok(store) => break store,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => panic!("cannot reopen the store: {e}"),
            }
        };
        let engine = KvEngine::new(store.tree(0, "sm").expect("tree")).expect("engine");
        self.events = Some(engine.watch());
        self.engine = Some(engine);
        self.store = Some(store);
    }

    /// Drop every handle on the database (sled flushes on drop) and open it
    /// again from disk.
    fn reopen(&mut self) {
        self.events = None;
        self.engine = None;
        self.store = None;
        self.open();
    }

    fn kv(&self) -> &KvEngine {
        self.engine.as_ref().expect("engine open")
    }

    fn apply(&mut self, cmd: &Command) -> (Response, Vec<WatchEvent>) {
        let response = self.kv().apply(cmd, &[]).expect("apply");
        let rx = self.events.as_mut().expect("watching");
        let mut events = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(e) => events.push(e),
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(e) => panic!("watch stream broke: {e}"),
            }
        }
        (response, events)
    }
}

/// The reason text of a rejection is for people; only the variant is modelled.
fn normalize(r: Response) -> Response {
    match r {
        Response::Rejected(_) => Response::Rejected(String::new()),
        other => other,
    }
}

fn assert_same_state(engine: &KvEngine, model: &Model, step: usize) {
    assert_eq!(
        engine.revision().unwrap(),
        model.revision,
        "revision, step {step}"
    );
    assert_eq!(
        engine.last_now_ms().unwrap(),
        model.last_now,
        "last now, step {step}"
    );
    for ks in KEYSPACES {
        assert_eq!(
            engine.range(ks, b"", usize::MAX).unwrap(),
            model.keyspace(ks),
            "keyspace {ks:?}, step {step}"
        );
        // Paging by `range_after` with any page size walks the same keys.
        for (page, prefix) in [1, 2, 3]
            .into_iter()
            .flat_map(|n| PREFIXES.iter().map(move |p| (n, *p)))
        {
            let mut walked = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let got = engine
                    .range_after(ks, prefix, after.as_deref(), page)
                    .unwrap();
                after = got.last().map(|kv| kv.key.key.clone());
                let last = got.len() < page;
                walked.extend(got);
                if last {
                    break;
                }
            }
            let expected: Vec<KeyValue> = model
                .keyspace(ks)
                .into_iter()
                .filter(|kv| kv.key.key.starts_with(prefix))
                .collect();
            assert_eq!(
                walked, expected,
                "pages of {page} under {prefix:?}, {ks:?}, step {step}"
            );
        }
        for key in KEYS {
            let key = Key::new(*ks, *key);
            assert_eq!(
                engine.get(&key).unwrap(),
                model.data.get(&key).map(|r| kv(&key, r)),
                "get {key:?}, step {step}"
            );
        }
    }
    let next = model.data.values().filter_map(|r| r.expires_at).min();
    assert_eq!(
        engine.next_expiry_ms().unwrap(),
        next,
        "next expiry, step {step}"
    );
}

// ---------------------------------------------------------------- generators

#[derive(Debug, Clone)]
enum Step {
    /// Move the leader clock by `dt` (sometimes backwards) and apply `op`;
    /// `newer_format` makes the command one format newer than this build.
    Apply {
        dt: i64,
        op: Op,
        newer_format: bool,
    },
    Reopen,
}

fn keyspace() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => Just("a".to_string()),
        20 => Just("ab".to_string()),
        1 => Just(String::new()),
    ]
}

fn bytes(from: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(from).prop_map(|b| b.to_vec())
}

fn key() -> impl Strategy<Value = Key> {
    (keyspace(), bytes(KEYS)).prop_map(|(keyspace, key)| Key { keyspace, key })
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Gt)
    ]
}

fn compare() -> impl Strategy<Value = Compare> {
    let target = prop_oneof![
        (cmp_op(), bytes(VALUES)).prop_map(|(o, v)| CompareTarget::Value(o, v)),
        (cmp_op(), 0u64..4).prop_map(|(o, v)| CompareTarget::Version(o, v)),
        (cmp_op(), 0u64..30).prop_map(|(o, v)| CompareTarget::ModRevision(o, v)),
        any::<bool>().prop_map(CompareTarget::Exists),
    ];
    (key(), target).prop_map(|(key, target)| Compare { key, target })
}

fn txn_op() -> impl Strategy<Value = TxnOp> {
    let ttl = prop_oneof![2 => Just(None), 1 => (0u64..300).prop_map(Some)];
    prop_oneof![
        4 => (key(), bytes(VALUES), ttl)
            .prop_map(|(key, value, ttl_ms)| TxnOp::Put { key, value, ttl_ms }),
        2 => key().prop_map(|key| TxnOp::Delete { key }),
        1 => (keyspace(), bytes(PREFIXES))
            .prop_map(|(keyspace, prefix)| TxnOp::DeletePrefix { keyspace, prefix }),
        2 => key().prop_map(|key| TxnOp::Get { key }),
        1 => (keyspace(), bytes(PREFIXES), 0u32..4)
            .prop_map(|(keyspace, prefix, limit)| TxnOp::Range { keyspace, prefix, limit }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let txn = (
        prop::collection::vec(compare(), 0..3),
        prop::collection::vec(txn_op(), 0..4),
        prop::collection::vec(txn_op(), 0..3),
    )
        .prop_map(|(compares, success, failure)| {
            Op::Txn(Txn {
                compares,
                success,
                failure,
            })
        });
    prop_oneof![9 => txn, 1 => Just(Op::Tick)]
}

fn step(reopen_weight: u32) -> impl Strategy<Value = Step> {
    let dt = prop_oneof![6 => 0i64..120, 1 => -300i64..0, 1 => Just(0i64)];
    let apply =
        (dt, op(), prop::bool::weighted(0.03)).prop_map(|(dt, op, newer_format)| Step::Apply {
            dt,
            op,
            newer_format,
        });
    prop_oneof![40 => apply, reopen_weight => Just(Step::Reopen)]
}

/// Runs `steps` against the engine and the model, comparing after each one.
fn run(steps: &[Step]) -> (Engine, Model) {
    let mut engine = Engine::new();
    let mut model = Model::default();
    let mut clock: u64 = 1_000_000;
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Apply {
                dt,
                op,
                newer_format,
            } => {
                clock = clock.saturating_add_signed(*dt);
                let mut cmd = Command::new(clock, op.clone());
                if *newer_format {
                    cmd.format = COMMAND_FORMAT + 1;
                }
                let (want, want_events) = model.apply(&cmd);
                let (got, got_events) = engine.apply(&cmd);
                assert_eq!(normalize(got), want, "response, step {i}: {cmd:?}");
                assert_eq!(got_events, want_events, "events, step {i}: {cmd:?}");
            }
            Step::Reopen => engine.reopen(),
        }
        assert_same_state(engine.kv(), &model, i);
    }
    (engine, model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn apply_matches_the_model(steps in prop::collection::vec(step(1), 1..60)) {
        run(&steps);
    }

    #[test]
    fn reopening_the_database_keeps_identical_state(
        steps in prop::collection::vec(step(0), 1..40),
    ) {
        let (mut engine, model) = run(&steps);
        let before = engine.kv().export().unwrap();
        engine.reopen();
        prop_assert_eq!(engine.kv().export().unwrap(), before);
        assert_same_state(engine.kv(), &model, steps.len());
    }
}

// ---------------------------------------------------------------- fixed cases

#[test]
fn a_key_expires_at_the_first_command_at_or_after_its_deadline_in_its_own_revision() {
    let mut engine = Engine::new();
    let key = Key::new("a", "session");
    let put = |ttl| {
        Op::Txn(Txn::ops(vec![TxnOp::Put {
            key: key.clone(),
            value: b"v".to_vec(),
            ttl_ms: ttl,
        }]))
    };
    engine.apply(&Command::new(1_000, put(Some(100))));
    assert_eq!(engine.kv().next_expiry_ms().unwrap(), Some(1_100));
    // One millisecond early: still there, no revision used.
    let (r, events) = engine.apply(&Command::new(1_099, Op::Tick));
    assert_eq!(r, Response::Tick { revision: 1 });
    assert!(events.is_empty());
    // A put by another command at the deadline sees the key gone, and the
    // expiry takes revision 2 before the put's revision 3.
    let other = Key::new("a", "other");
    let (r, events) = engine.apply(&Command::new(
        1_100,
        Op::Txn(Txn {
            compares: vec![Compare {
                key: key.clone(),
                target: CompareTarget::Exists(false),
            }],
            success: vec![TxnOp::Put {
                key: other.clone(),
                value: b"w".to_vec(),
                ttl_ms: None,
            }],
            failure: vec![],
        }),
    ));
    let Response::Txn(r) = r else {
        panic!("txn response expected, got {r:?}")
    };
    assert!(r.succeeded);
    assert_eq!(r.revision, 3);
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.revision)).collect();
    assert_eq!(kinds, vec![(EventKind::Expire, 2), (EventKind::Put, 3)]);
    assert_eq!(engine.kv().get(&key).unwrap(), None);
    assert_eq!(engine.kv().next_expiry_ms().unwrap(), None);
}

#[test]
fn rejected_and_unsupported_commands_change_nothing() {
    let mut engine = Engine::new();
    let oversized = Op::Txn(Txn::ops(vec![TxnOp::Put {
        key: Key::new("a", "k"),
        value: vec![0; MAX_VALUE_LEN],
        ttl_ms: None,
    }]));
    let (r, events) = engine.apply(&Command::new(5_000, oversized));
    assert!(matches!(r, Response::Rejected(_)), "{r:?}");
    assert!(events.is_empty());
    let mut newer = Command::new(6_000, Op::Tick);
    newer.format = COMMAND_FORMAT + 1;
    let (r, _) = engine.apply(&newer);
    assert_eq!(
        r,
        Response::Unsupported {
            format: COMMAND_FORMAT + 1
        }
    );
    assert_eq!(engine.kv().revision().unwrap(), 0);
    assert_eq!(engine.kv().last_now_ms().unwrap(), 0);
    assert!(engine.kv().export().unwrap().is_empty());
    // The largest accepted transaction: key plus value exactly at the limit.
    let at_limit = Op::Txn(Txn::ops(vec![TxnOp::Put {
        key: Key::new("a", "k"),
        value: vec![7; MAX_VALUE_LEN - 1],
        ttl_ms: None,
    }]));
    let (r, _) = engine.apply(&Command::new(7_000, at_limit));
    assert!(
        matches!(r, Response::Txn(TxnResponse { revision: 1, .. })),
        "{r:?}"
    );
}

/// The expiry index lives in memory and snapshots do not carry it: an
/// engine that installs one (also one of an earlier version, which carried
/// the index in its on-disk layout), or opens a store that still has that
/// layout on disk, rebuilds it from the records, and keys expire on time.
#[test]
fn the_expiry_index_survives_snapshots_and_the_earlier_on_disk_layout() {
    let mut source = Engine::new();
    let put = |key: &str, ttl| {
        Op::Txn(Txn::ops(vec![TxnOp::Put {
            key: Key::new("a", key),
            value: b"v".to_vec(),
            ttl_ms: ttl,
        }]))
    };
    source.apply(&Command::new(1_000, put("short", Some(100))));
    source.apply(&Command::new(1_000, put("long", Some(500))));
    source.apply(&Command::new(1_000, put("forever", None)));
    let snapshot = source.kv().export().unwrap();
    assert!(snapshot.iter().all(|(k, _)| k.first() != Some(&b'x')));
    // An earlier version's snapshot: the index entries in the earlier
    // layout (`x`, the deadline, the keyspace's length and name, the key).
    let mut legacy = snapshot.clone();
    for (at, key) in [(1_100u64, "short"), (1_500, "long")] {
        let mut k = vec![b'x'];
        k.extend_from_slice(&at.to_be_bytes());
        k.push(1);
        k.extend_from_slice(b"a");
        k.extend_from_slice(key.as_bytes());
        legacy.push((k, Vec::new()));
    }

    // Install into a fresh engine: the index comes back from the records.
    let mut target = Engine::new();
    target.kv().import(&legacy).unwrap();
    assert_eq!(target.kv().next_expiry_ms().unwrap(), Some(1_100));
    assert_eq!(target.kv().export().unwrap(), snapshot);
    let (_, events) = target.apply(&Command::new(1_100, Op::Tick));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].key, Key::new("a", "short"));
    assert_eq!(events[0].kind, EventKind::Expire);
    assert_eq!(target.kv().next_expiry_ms().unwrap(), Some(1_500));

    // A store written by an earlier version, with the index on disk: the
    // entries are dropped when the engine opens, and the index rebuilt.
    let mut old = Engine::new();
    let tree = old.kv().tree().clone();
    for (k, v) in &legacy {
        tree.insert(k.as_slice(), v.as_slice()).unwrap();
    }
    drop(tree);
    old.reopen();
    let on_disk = old.kv().tree().scan_prefix([b'x']).count();
    assert_eq!(
        on_disk, 0,
        "the earlier layout's index is removed from disk"
    );
    assert_eq!(old.kv().next_expiry_ms().unwrap(), Some(1_100));
    let (_, events) = old.apply(&Command::new(2_000, Op::Tick));
    let expired: Vec<&Key> = events.iter().map(|e| &e.key).collect();
    // In order of deadline.
    assert_eq!(expired, [&Key::new("a", "short"), &Key::new("a", "long")]);
    assert_eq!(old.kv().next_expiry_ms().unwrap(), None);
    assert!(old.kv().get(&Key::new("a", "forever")).unwrap().is_some());
}
