//! Sessions on a 3-node in-process cluster (fsync on every node, loopback
//! peer links): created/s and validated/s, bytes per stored session, memory
//! and disk per 100k sessions; and, when `redis-server` is installed, Redis
//! SET (AOF, `appendfsync always`) and GET over loopback in the same run.
//!
//! `cargo bench -p rsp-actors --bench sessions`
//! Env: BENCH_SECS (5), BENCH_CONCURRENCY (64), BENCH_SESSIONS (100000).

#[path = "support/ceiling.rs"]
mod ceiling;
#[path = "support/resp.rs"]
mod resp;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsp_actors::{RuntimeConfig, SessionId, TenantHandle, TenantLimits, TenantRuntime};
use rsp_consensus::Consistency;
use rsp_consensus::kv::{Key, Txn, TxnOp, tenant_keyspace};
use rsp_consensus::testing::TestCluster;

/// The allocator the `rsp` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const IDLE: Duration = Duration::from_secs(1800);
const LIFETIME: Duration = Duration::from_secs(86400);
const USER: &str = "user-0123456789";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn attrs() -> BTreeMap<String, String> {
    BTreeMap::from([("amr".to_string(), "pwd".to_string())])
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path).map_or(0, |rd| {
        rd.flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

/// Per node: (proposals, ops proposed, proposal ns, log syncs, appends and
/// votes they covered, sync ns).
fn counters(cluster: &TestCluster) -> Vec<[u64; 6]> {
    use std::sync::atomic::Ordering::Relaxed;
    let nodes = cluster.nodes.iter();
    nodes
        .map(|n| {
            let (b, s) = (n.consensus.batch_stats(), n.consensus.log_sync_stats());
            [
                b.proposals.load(Relaxed),
                b.ops.load(Relaxed),
                b.nanos.load(Relaxed),
                s.syncs.load(Relaxed),
                s.requests.load(Relaxed),
                s.nanos.load(Relaxed),
            ]
        })
        .collect()
}

/// Where the time of a write phase went: the leader's proposals (entries,
/// writes per entry, time from proposal to answer) and each node's log syncs.
fn print_rounds(before: &[[u64; 6]], after: &[[u64; 6]], secs: u64) {
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        let d: Vec<u64> = (0..6).map(|k| a[k] - b[k]).collect();
        let per = |num: u64, den: u64| num as f64 / den.max(1) as f64;
        if d[0] > 0 {
            println!(
                "    node {}: {} entries proposed ({:.1} writes each), {:.2} ms from proposal to answer",
                i + 1,
                d[0],
                per(d[1], d[0]),
                per(d[2], d[0]) / 1e6
            );
        }
        println!(
            "    node {}: {:.0} log syncs/s, {:.2} ms each, {:.1} appends per sync",
            i + 1,
            per(d[3], secs),
            per(d[5], d[3]) / 1e6,
            per(d[4], d[3])
        );
    }
}

/// Run `op` from `tasks` concurrent tasks for `secs`: (ok, errors, ok/s).
/// The first errors of each task are printed.
async fn timed<F, Fut>(tasks: usize, secs: u64, op: F) -> (u64, u64, f64)
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let op = op.clone();
        set.spawn(async move {
            let (mut ok, mut err, mut i) = (0u64, 0u64, t);
            while Instant::now() < deadline {
                match op(i).await {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        if err < 2 {
                            eprintln!("  error: {e}");
                        }
                        err += 1;
                    }
                }
                i += tasks;
            }
            (ok, err)
        });
    }
    let (mut ok, mut err) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (o, e) = r.expect("bench task");
        ok += o;
        err += e;
    }
    (ok, err, ok as f64 / start.elapsed().as_secs_f64())
}

async fn create(h: &TenantHandle) -> Result<SessionId, String> {
    let sessions = h.sessions();
    let s = sessions.create(USER, attrs(), IDLE, LIFETIME).await;
    s.map(|s| s.id).map_err(|e| e.to_string())
}

async fn create_n(h: &TenantHandle, n: usize, tasks: usize) -> Vec<SessionId> {
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let h = h.clone();
        set.spawn(async move {
            let mut ids = Vec::new();
            for _ in (t..n).step_by(tasks) {
                ids.push(create(&h).await.expect("create"));
            }
            ids
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        all.extend(r.expect("task"));
    }
    all
}

/// Set in the child process that measures the expiry index alone.
const PROBE: &str = "BENCH_EXPIRY_INDEX_PROBE";

fn main() {
    if std::env::var_os(PROBE).is_some() {
        println!("{}", expiry_index_memory());
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(run());
}

async fn run() {
    let secs = env("BENCH_SECS", 5) as u64;
    let tasks = env("BENCH_CONCURRENCY", 64);
    let n_mem = env("BENCH_SESSIONS", 100_000);
    println!(
        "sessions: 3 in-process nodes, fsync, {tasks} concurrent callers, {secs} s per figure"
    );
    let config = RuntimeConfig {
        limits: TenantLimits {
            max_in_flight: 100_000,
            requests_per_sec: 1e9,
            request_burst: 1e9,
            max_sessions: 100_000_000,
        },
        ..RuntimeConfig::default()
    };
    let cluster = TestCluster::start(3).await.expect("cluster");
    let mut runtimes = Vec::new();
    for n in &cluster.nodes {
        let rt = TenantRuntime::start(n.consensus.clone(), config.clone(), &n.registry);
        runtimes.push(rt.await.expect("runtime"));
        n.consensus.ready().await.expect("ready");
    }
    // Sessions in the current format: every member has recorded it.
    let since = Instant::now();
    while !runtimes.iter().all(|rt| rt.session_user_tags()) {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "features not in force"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = cluster
        .leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let follower = (1..=3).find(|id| *id != leader).expect("follower");
    let on_leader = runtimes[(leader - 1) as usize]
        .tenant("bench")
        .await
        .expect("tenant");
    let on_follower = runtimes[(follower - 1) as usize]
        .tenant("bench")
        .await
        .expect("tenant");

    // Bytes per stored session.
    let s = on_leader
        .sessions()
        .create(USER, attrs(), IDLE, LIFETIME)
        .await
        .expect("create");
    let key = Key::new(
        tenant_keyspace("bench"),
        format!("session/{}", s.info.handle),
    );
    let (kv, _) = cluster
        .node(leader)
        .get(&key, Consistency::Local)
        .await
        .expect("read");
    let value = kv.expect("stored").value.len();
    println!(
        "stored per session: record {value} B (user id 15 B, 1 attribute) under a {} B key \
         (no index key: the handle starts with the user's tag): {} B of keys and values",
        key.key.len(),
        value + key.key.len()
    );

    // Baseline: the same two-key write straight through Consensus::txn.
    let consensus = cluster.node(leader).clone();
    let before = counters(&cluster);
    let (ok, err, raw) = timed(tasks, secs, move |i| {
        let c = consensus.clone();
        async move {
            let put = |k: String| TxnOp::Put {
                key: Key::new(tenant_keyspace("raw"), k),
                value: vec![b'x'; 58],
                ttl_ms: Some(IDLE.as_millis() as u64),
            };
            let txn = Txn::ops(vec![put(format!("s/{i}")), put(format!("u/{i}"))]);
            c.txn(txn).await.map(|_| ()).map_err(|e| e.to_string())
        }
    })
    .await;
    println!(
        "baseline: 2-key txn/s straight through Consensus on the leader: {raw:.0} ({ok} ok, {err} errors)"
    );
    print_rounds(&before, &counters(&cluster), secs);

    // Creation (durable: committed by a quorum, fsync on each node).
    let mut created = Vec::new();
    for (name, h) in [
        ("leader", &on_leader),
        ("follower (forwarded)", &on_follower),
    ] {
        let h = h.clone();
        let before = counters(&cluster);
        let (ok, err, rate) = timed(tasks, secs, move |_| {
            let h = h.clone();
            async move { create(&h).await.map(|_| ()) }
        })
        .await;
        println!("created/s via {name}: {rate:.0} ({ok} ok, {err} errors)");
        print_rounds(&before, &counters(&cluster), secs);
        created.push(rate);
    }

    // Validation (local read) of existing sessions.
    let ids = Arc::new(create_n(&on_leader, 10_000, tasks).await);
    let mut validated = Vec::new();
    for (name, h) in [("leader", &on_leader), ("follower", &on_follower)] {
        let (h, ids) = (h.clone(), ids.clone());
        let (ok, err, rate) = timed(tasks, secs, move |i| {
            let (h, ids) = (h.clone(), ids.clone());
            async move {
                let v = h.sessions().validate(&ids[i % ids.len()]).await;
                v.map(|_| ()).map_err(|e| e.to_string())
            }
        })
        .await;
        println!("validated/s on {name}: {rate:.0} ({ok} ok, {err} errors)");
        validated.push(rate);
    }

    // Memory and disk per 100k sessions (all three nodes live in this process).
    let disk = || -> u64 {
        let nodes = cluster.nodes.iter();
        nodes.map(|n| dir_bytes(n.consensus.store().path())).sum()
    };
    let (disk_before, rss_before) = (disk(), rss_bytes());
    let t = Instant::now();
    create_n(&on_follower, n_mem, tasks).await;
    let took = t.elapsed();
    let rss = rss_bytes().saturating_sub(rss_before) as f64;
    let disk_delta = disk().saturating_sub(disk_before) as f64;
    let scale = 100_000.0 / n_mem as f64 / 1_048_576.0;
    println!(
        "{n_mem} more sessions in {took:.1?}; per 100k: RSS +{:.1} MiB for the 3 nodes together \
         (sled page caches, capped at 256 MiB a node, and Raft buffers), disk +{:.1} MiB together",
        rss * scale,
        disk_delta * scale
    );
    println!(
        "state machine's in-memory expiry index: {} MiB per 100k sessions per node (a set of that \
         shape, by the RSS of a fresh process)",
        expiry_index_probe()
    );
    let live = on_leader.sessions().count().await.expect("count");
    println!(
        "actor state per node: live set of {live} 8-byte fingerprints (~{:.1} MiB per 100k with the hash table)",
        100_000.0 * 8.0 * 8.0 / 7.0 / 1_048_576.0
    );

    let set_rate = redis(tasks, secs, value, &created, &validated).await;
    for rt in &runtimes {
        rt.shutdown().await;
    }
    drop(cluster);
    state_machine_ceiling(secs, &created, set_rate);
}

/// CPU per creation in one replica's state machine, measured after the
/// cluster is gone: what three replicas on this machine's cores could do at
/// most, beside the creations measured above and the target (half of Redis
/// SET with `appendfsync always`).
fn state_machine_ceiling(secs: u64, created: &[f64], set_rate: Option<f64>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = Duration::from_secs(secs.max(2));
    println!(
        "\nstate machine alone, one thread, {} sessions per entry, per CPU second of the process \
         (sled's threads included); every replica applies every creation:",
        ceiling::SESSIONS_PER_ENTRY
    );
    let rows = [
        ceiling::engine_sessions(run),
        ceiling::raw_sled_sessions(run, 2),
        ceiling::raw_sled_sessions(run, 1),
    ];
    for c in &rows {
        print!(
            "  {:<38} {:>6.0}/s on one thread, {:>6.0}/CPU-s -> 3 replicas on {cores} cores: at most {:>6.0}/s",
            c.workload,
            c.sessions as f64 / c.wall_s,
            c.per_cpu_sec(),
            c.three_replicas(cores)
        );
        print!(
            "; created via leader {:.0}%",
            100.0 * created[0] / c.three_replicas(cores)
        );
        if let Some(set) = set_rate {
            print!(
                "; half of Redis SET ({:.0}/s) = {:.0}%",
                set / 2.0,
                50.0 * set / c.three_replicas(cores)
            );
        }
        println!();
        if let Some(t) = c.reopen {
            println!(
                "  opening the engine over those {} sessions (one record each) rebuilds its expiry index in {:.0} ms",
                c.sessions,
                t.as_secs_f64() * 1e3
            );
        }
    }
    let (floor, per_cpu) = ceiling::replicated_floor(run);
    let bound = per_cpu * cores as f64;
    print!(
        "\nleast work of 3 replicas on sled, no Raft, network or actors (3 threads, each: append \
         the entry and sync, then 1 insert per session): {floor:.0}/s; with every core busy at \
         most {bound:.0}/s; created via leader {:.0}% of that",
        100.0 * created[0] / bound
    );
    if let Some(set) = set_rate {
        print!(
            "; half of Redis SET ({:.0}/s) = {:.0}% of it",
            set / 2.0,
            50.0 * set / bound
        );
    }
    println!();
}

/// [`expiry_index_memory`] in a fresh process (this one's allocator holds
/// memory freed by the cluster, which would hide the set's growth).
fn expiry_index_probe() -> String {
    let exe = std::env::current_exe().expect("bench executable");
    let out = std::process::Command::new(exe).env(PROBE, "1").output();
    match out {
        Ok(o) if o.status.success() => {
            let mib: f64 = String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse()
                .unwrap_or(f64::NAN);
            format!("{mib:.1}")
        }
        _ => "(probe failed)".to_string(),
    }
}

/// Memory of the state machine's in-memory expiry index for 100k sessions
/// (one key with a TTL each): a set of that shape, measured by RSS.
fn expiry_index_memory() -> f64 {
    use std::collections::BTreeSet;
    let before = rss_bytes();
    let mut set: BTreeSet<(u64, Vec<u8>)> = BTreeSet::new();
    for i in 0..100_000u64 {
        let handle = format!("{i:033}");
        let record = format!("d\x07t.benchsession/{handle}");
        set.insert((1_000_000 + i, record.into_bytes()));
    }
    let bytes = rss_bytes().saturating_sub(before) as f64;
    drop(set);
    bytes / 1_048_576.0
}

/// Redis SET and GET beside the figures above; the SET rate, unless
/// `redis-server` is missing.
async fn redis(
    tasks: usize,
    secs: u64,
    value_len: usize,
    created: &[f64],
    validated: &[f64],
) -> Option<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(server) = resp::RedisServer::start(dir.path()).await else {
        println!("redis-server not found (apt-get install redis-server): Redis comparison skipped");
        return None;
    };
    let port = server.port;
    let value = Arc::new(vec![b'x'; value_len]);
    // One connection per caller: task t only ever uses i % tasks == t.
    let mut list = Vec::new();
    for _ in 0..tasks {
        let c = resp::Resp::connect(port).await.expect("connect");
        list.push(tokio::sync::Mutex::new(c));
    }
    let conns = Arc::new(list);
    let ttl = IDLE.as_millis().to_string();
    let set_conns = conns.clone();
    let (ok, err, set_rate) = timed(tasks, secs, move |i| {
        let (v, ttl, c) = (value.clone(), ttl.clone(), set_conns.clone());
        async move {
            let key = format!("session:{i:022}");
            let args: [&[u8]; 5] = [b"SET", key.as_bytes(), &v, b"PX", ttl.as_bytes()];
            let reply = c[i % c.len()].lock().await.cmd(&args).await;
            reply.map(|_| ()).map_err(|e| e.to_string())
        }
    })
    .await;
    println!("redis SET PX (appendfsync always)/s: {set_rate:.0} ({ok} ok, {err} errors)");
    // Keys 0..tasks were each written first by their task, so they exist.
    let (ok, err, get_rate) = timed(tasks, secs, move |i| {
        let c = conns.clone();
        async move {
            let key = format!("session:{:022}", i % tasks);
            let reply = c[i % c.len()]
                .lock()
                .await
                .cmd(&[b"GET", key.as_bytes()])
                .await;
            match reply {
                Ok(resp::Reply::Bulk(Some(_))) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    println!("redis GET/s: {get_rate:.0} ({ok} ok, {err} errors)");
    println!(
        "ratios: create/SET via leader {:.2}, via follower {:.2}; validate/GET on leader {:.1}, \
         on follower {:.1} (validation here is in-process; GET crosses loopback TCP)",
        created[0] / set_rate,
        created[1] / set_rate,
        validated[0] / get_rate,
        validated[1] / get_rate
    );
    drop(server);
    Some(set_rate)
}
