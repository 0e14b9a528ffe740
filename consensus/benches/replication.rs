//! Replication benchmark: a 3-node `rsp` cluster against a 3-member etcd 3.4
//! cluster, both on loopback, and the time `rsp` takes to fail over.
//!
//! Not a test: it prints figures and asserts nothing. Run it with
//!
//! ```text
//! cargo build --release -p rsp-node && \
//!   RSP_BIN=target/release/rsp cargo bench -p rsp-consensus --bench replication
//! ```
//!
//! What it does, in order:
//! 1. starts 3 `rsp` nodes with the `rsp-chaos` harness, without proxies on
//!    the peer links and with default Raft timing and durability, and 3 etcd
//!    members (`/usr/bin/etcd` or `ETCD_BIN`; skipped with a note when
//!    absent), static bootstrap, temp data dirs, free ports;
//! 2. for 1, 16 and 64 concurrent clients, each client looping one write
//!    with a 100-byte value over its own HTTP/1.1 keep-alive client —
//!    `PUT /admin/v1/kv/{key}` on rsp, `POST /v3/kv/put` on etcd's JSON
//!    gateway — once spread round-robin over the three nodes (followers
//!    forward to the leader), once against the leader only. rsp and etcd
//!    runs alternate, so both see the same (shared) machine;
//! 3. kills etcd, then kills the rsp leader with `kill -9` while one client
//!    keeps writing to the other nodes, and times kill → first 200 answer to
//!    a write sent after the kill (3 rounds; the killed node is restarted
//!    and caught up in between);
//! 4. prints a table, the rsp/etcd ratios and the failover times;
//! 5. the snapshot phase (`replication/snapshot.rs`): one client's write
//!    latency while snapshots are built, against the same client's without.
//!
//! Settings (environment): `BENCH_SECS` (measured seconds per run, default
//! 10), `BENCH_WARMUP_SECS` (default 1), `BENCH_CLIENTS` (default `1,16,64`),
//! `BENCH_FAILOVER_ROUNDS` (default 3), `RSP_BIN`, `ETCD_BIN`;
//! `BENCH_SNAPSHOT_KEYS` (records before the snapshot phase, default
//! 100000; 0 skips it), `BENCH_SNAPSHOT_SECS` (default 40),
//! `BENCH_SNAPSHOT_THRESHOLD` (default 4000), `BENCH_ONLY=snapshot` (the
//! snapshot phase alone).

#[path = "replication/snapshot.rs"]
mod snapshot;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rsp_chaos::{Cluster, ClusterSpec, wait_until};
use serde_json::{Value, json};

const VALUE_LEN: usize = 100;
/// Keys each client cycles through, so the stores stay small.
const KEYS_PER_CLIENT: u64 = 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);

fn env_u64(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v} is not a whole number")),
        _ => Ok(default),
    }
}

struct Settings {
    measure: Duration,
    warmup: Duration,
    clients: Vec<usize>,
    failover_rounds: usize,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let clients = match std::env::var("BENCH_CLIENTS") {
            Ok(v) if !v.trim().is_empty() => v
                .split(',')
                .map(|c| c.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("BENCH_CLIENTS={v} is not a list like 1,16,64"))?,
            _ => vec![1, 16, 64],
        };
        Ok(Settings {
            measure: Duration::from_secs(env_u64("BENCH_SECS", 10)?.max(1)),
            warmup: Duration::from_secs(env_u64("BENCH_WARMUP_SECS", 1)?),
            clients,
            failover_rounds: env_u64("BENCH_FAILOVER_ROUNDS", 3)? as usize,
        })
    }
}

// --- load generation ---------------------------------------------------------

/// How one system takes a write.
#[derive(Clone)]
enum Api {
    /// `PUT {base}/admin/v1/kv/{key}` with a bearer token.
    Rsp { token: String },
    /// `POST {base}/v3/kv/put` on etcd's JSON gateway.
    Etcd,
}

impl Api {
    fn request(&self, http: &reqwest::Client, base: &str, key: &str) -> reqwest::RequestBuilder {
        let value = "v".repeat(VALUE_LEN);
        match self {
            Api::Rsp { token } => http
                .put(format!("{base}/admin/v1/kv/{key}"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(json!({ "value": value }).to_string()),
            Api::Etcd => http
                .post(format!("{base}/v3/kv/put"))
                .header("content-type", "application/json")
                .body(
                    json!({ "key": base64(key.as_bytes()), "value": base64(value.as_bytes()) })
                        .to_string(),
                ),
        }
    }
}

/// Standard base64 with padding (what etcd's gateway expects for bytes).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("building an HTTP client")
}

/// What one worker saw during the measured window.
#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Figures of one run.
struct LoadResult {
    writes_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: usize,
    errors: u64,
    first_error: Option<String>,
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// `clients` workers, each with its own HTTP client, write for
/// `warmup + measure`; only requests started inside the measured window
/// count. Worker `w` sends its `i`-th request to `targets[(w + i) % len]`.
async fn run_load(
    api: &Api,
    targets: &[String],
    clients: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<LoadResult> {
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..clients {
        let api = api.clone();
        let targets = targets.to_vec();
        let http = http_client()?;
        tasks.spawn(async move {
            let mut stats = WorkerStats::default();
            tokio::time::sleep_until(start.into()).await;
            let mut i = 0u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let base = &targets[(worker + i as usize) % targets.len()];
                let key = format!("bench-{worker}-{}", i % KEYS_PER_CLIENT);
                i += 1;
                let outcome = match api.request(&http, base, &key).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.bytes().await;
                        match body {
                            Ok(_) if status.is_success() => Ok(()),
                            Ok(body) => {
                                Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)))
                            }
                            Err(e) => Err(format!("reading the answer: {e}")),
                        }
                    }
                    Err(e) => Err(format!("{e}")),
                };
                if sent < measure_from {
                    continue;
                }
                match outcome {
                    Ok(()) => stats.latencies_us.push(sent.elapsed().as_micros() as u64),
                    Err(e) => {
                        stats.errors += 1;
                        stats.first_error.get_or_insert(e);
                        // Do not spin on a refusing server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            stats
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.context("a load worker panicked")?;
        all.extend(stats.latencies_us);
        errors += stats.errors;
        if first_error.is_none() {
            first_error = stats.first_error;
        }
    }
    // The window closes when the last request started in it has answered.
    let window = measure_from.elapsed();
    all.sort_unstable();
    Ok(LoadResult {
        writes_per_sec: all.len() as f64 / window.as_secs_f64(),
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        ok: all.len(),
        errors,
        first_error,
    })
}

// --- results -----------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Spread {
    RoundRobin,
    LeaderOnly,
}

impl Spread {
    fn label(self) -> &'static str {
        match self {
            Spread::RoundRobin => "round-robin",
            Spread::LeaderOnly => "leader",
        }
    }
}

struct Row {
    clients: usize,
    spread: Spread,
    system: &'static str,
    result: LoadResult,
}

fn print_row(row: &Row) {
    let r = &row.result;
    println!(
        "{:>7}  {:<11}  {:<4}  {:>9.0}  {:>8.2}  {:>8.2}  {:>8}  {:>6}",
        row.clients,
        row.spread.label(),
        row.system,
        r.writes_per_sec,
        r.p50_ms,
        r.p99_ms,
        r.ok,
        r.errors
    );
    if let Some(e) = &r.first_error {
        println!("         first error: {e}");
    }
}

fn print_header() {
    println!(
        "{:>7}  {:<11}  {:<4}  {:>9}  {:>8}  {:>8}  {:>8}  {:>6}",
        "clients", "target", "sys", "writes/s", "p50 ms", "p99 ms", "ok", "errors"
    );
}

fn print_summary(rows: &[Row], failover: &[Duration], settings: &Settings) {
    println!();
    println!(
        "=== summary ({}s measured per run, {}-byte values, 3 nodes on loopback, {} cores) ===",
        settings.measure.as_secs(),
        VALUE_LEN,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print_header();
    for row in rows {
        print_row(row);
    }
    println!();
    for spread in [Spread::RoundRobin, Spread::LeaderOnly] {
        for &clients in &settings.clients {
            let find = |system: &str| {
                rows.iter()
                    .find(|r| r.clients == clients && r.spread == spread && r.system == system)
            };
            if let (Some(rsp), Some(etcd)) = (find("rsp"), find("etcd")) {
                println!(
                    "{:>3} clients, {:<11}: rsp/etcd throughput {:.2}x, p99 ratio (rsp/etcd, lower is better) {:.2}x",
                    clients,
                    spread.label(),
                    rsp.result.writes_per_sec / etcd.result.writes_per_sec,
                    rsp.result.p99_ms / etcd.result.p99_ms
                );
            }
        }
    }
    if !failover.is_empty() {
        let mut sorted = failover.to_vec();
        sorted.sort();
        let each: Vec<String> = failover
            .iter()
            .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
            .collect();
        println!(
            "rsp leader failover (kill -9 -> first 200): {} ; median {:.0} ms",
            each.join(", "),
            sorted[sorted.len() / 2].as_secs_f64() * 1000.0
        );
    }
}

// --- rsp ---------------------------------------------------------------------

/// `RSP_BIN`, resolved against the workspace when relative (cargo runs
/// benches in the package directory); else `target/release/rsp`.
fn rsp_binary() -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("the consensus crate has no parent directory"))?
        .to_path_buf();
    let path = match std::env::var_os("RSP_BIN").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_absolute() || p.is_file() {
                p
            } else {
                workspace.join(p)
            }
        }
        None => workspace.join("target").join("release").join("rsp"),
    };
    if !path.is_file() {
        bail!(
            "rsp binary not found at {}: run `cargo build --release -p rsp-node` and set RSP_BIN=target/release/rsp",
            path.display()
        );
    }
    Ok(path)
}

/// A metric's value from Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// (syncs, sync requests) of node `id`'s log store.
async fn sync_counts(cluster: &Cluster, id: u64) -> Option<(f64, f64)> {
    let text = cluster.client(id).ok()?.metrics().await.ok()?;
    Some((
        metric(&text, "rsp_storage_log_syncs")?,
        metric(&text, "rsp_storage_log_sync_requests")?,
    ))
}

type SyncCounts = Option<(f64, f64)>;

/// Sync counts of the leader and of one follower.
async fn sync_report(cluster: &Cluster, leader: u64) -> (SyncCounts, SyncCounts) {
    let follower = cluster.ids().into_iter().find(|id| *id != leader);
    let f = match follower {
        Some(id) => sync_counts(cluster, id).await,
        None => None,
    };
    (sync_counts(cluster, leader).await, f)
}

/// One system under load: how it takes writes and where.
struct Subject {
    system: &'static str,
    api: Api,
    all: Vec<String>,
    leader: String,
    /// The rsp cluster and its leader, for the sync counters.
    rsp: Option<(Arc<Cluster>, u64)>,
}

async fn start_rsp() -> Result<Subject> {
    let mut spec = ClusterSpec::new(3).without_proxies();
    spec.binary = Some(rsp_binary()?);
    spec.join_timeout = CLUSTER_TIMEOUT;
    println!(
        "starting 3 rsp nodes ({})",
        spec.binary.as_deref().unwrap_or(Path::new("?")).display()
    );
    let cluster = Cluster::start(spec)
        .await
        .context("starting the rsp cluster")?;
    let leader = cluster.wait_for_leader(CLUSTER_TIMEOUT).await?;
    let all: Vec<String> = cluster
        .ids()
        .into_iter()
        .map(|id| cluster.http(id))
        .collect::<Result<_>>()?;
    println!("rsp leader: node {leader}");
    Ok(Subject {
        system: "rsp",
        api: Api::Rsp {
            token: cluster.admin_token().to_string(),
        },
        all,
        leader: cluster.http(leader)?,
        rsp: Some((Arc::new(cluster), leader)),
    })
}

/// One run of `clients` writers against `subject`, printed as it ends.
async fn measure(
    subject: &Subject,
    clients: usize,
    spread: Spread,
    settings: &Settings,
) -> Result<Row> {
    let targets = match spread {
        Spread::RoundRobin => subject.all.clone(),
        Spread::LeaderOnly => vec![subject.leader.clone()],
    };
    let before = match &subject.rsp {
        Some((cluster, leader)) => Some(sync_report(cluster, *leader).await),
        None => None,
    };
    let result = run_load(
        &subject.api,
        &targets,
        clients,
        settings.warmup,
        settings.measure,
    )
    .await?;
    let row = Row {
        clients,
        spread,
        system: subject.system,
        result,
    };
    print_row(&row);
    if let (Some((cluster, leader)), Some(before)) = (&subject.rsp, before) {
        let after = sync_report(cluster, *leader).await;
        let secs = (settings.measure + settings.warmup).as_secs_f64();
        for (who, b, a) in [
            ("leader", before.0, after.0),
            ("follower", before.1, after.1),
        ] {
            if let (Some(b), Some(a)) = (b, a) {
                let syncs_per_sec = (a.0 - b.0) / secs;
                println!(
                    "         rsp {who}: {syncs_per_sec:.0} log syncs/s, {:.1} writes per sync, {:.1} log appends per sync",
                    row.result.writes_per_sec / syncs_per_sec.max(1.0),
                    (a.1 - b.1) / (a.0 - b.0).max(1.0)
                );
            }
        }
    }
    Ok(row)
}

/// Time from `kill -9` of the leader to the first 200 answer to a write sent
/// after the kill to a surviving node, with one writer looping meanwhile.
async fn failover_round(cluster: &Cluster, round: usize) -> Result<Duration> {
    let leader = cluster.wait_for_leader(CLUSTER_TIMEOUT).await?;
    let survivors: Vec<String> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .map(|id| cluster.http(id))
        .collect::<Result<_>>()?;
    let api = Api::Rsp {
        token: cluster.admin_token().to_string(),
    };
    let http = http_client()?;
    let (kill_tx, kill_rx) = tokio::sync::watch::channel::<Option<Instant>>(None);
    let stop = Arc::new(AtomicBool::new(false));
    let writer_stop = stop.clone();
    let writer = tokio::spawn(async move {
        let mut i = 0usize;
        let mut failed_after_kill = 0u64;
        while !writer_stop.load(Ordering::Relaxed) {
            let base = &survivors[i % survivors.len()];
            let key = format!("failover-{round}-{}", i % 64);
            i += 1;
            let sent = Instant::now();
            let ok = match api
                .request(&http, base, &key)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(resp) => {
                    let status = resp.status();
                    resp.bytes().await.is_ok() && status.as_u16() == 200
                }
                Err(_) => false,
            };
            let killed = *kill_rx.borrow();
            match killed {
                Some(at) if sent >= at && ok => return Some((at.elapsed(), failed_after_kill)),
                Some(_) if !ok => failed_after_kill += 1,
                _ => {}
            }
            if !ok {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        None
    });
    // Steady state first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at = Instant::now();
    kill_tx.send_replace(Some(at));
    cluster.kill(leader).await?;
    // Meanwhile, when does a surviving node claim leadership?
    let elected = async {
        let deadline = at + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(new)) = cluster.leader().await
                && new != leader
            {
                return Some((new, at.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    };
    let (elected, outcome) = tokio::join!(
        elected,
        tokio::time::timeout(Duration::from_secs(30), writer)
    );
    stop.store(true, Ordering::Relaxed);
    let (elapsed, failed) = match outcome {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => bail!("failover writer stopped without a committed write"),
        Ok(Err(e)) => bail!("failover writer panicked: {e}"),
        Err(_) => bail!("no write committed within 30 s of killing leader {leader}"),
    };
    let elected = elected.map_or_else(
        || "no new leader seen".to_string(),
        |(id, after)| {
            format!(
                "node {id} claimed leadership after {:.0} ms",
                after.as_secs_f64() * 1000.0
            )
        },
    );
    println!(
        "failover round {}: killed leader node {leader}; {elected}; first committed write after {:.0} ms ({failed} writes failed meanwhile)",
        round + 1,
        elapsed.as_secs_f64() * 1000.0
    );
    // Bring the killed node back and let it catch up before the next round.
    cluster.restart(leader).await?;
    let new_leader = cluster.wait_for_leader(CLUSTER_TIMEOUT).await?;
    let target = cluster
        .client(new_leader)?
        .cluster_info()
        .await?
        .last_applied
        .unwrap_or(0);
    let restarted = cluster.client(leader)?;
    wait_until(
        CLUSTER_TIMEOUT,
        "the restarted node to catch up",
        || async {
            let applied = restarted.cluster_info().await?.last_applied.unwrap_or(0);
            if applied >= target {
                Ok(())
            } else {
                bail!("applied {applied} of {target}")
            }
        },
    )
    .await?;
    cluster.wait_all_ready(CLUSTER_TIMEOUT).await?;
    Ok(elapsed)
}

// --- etcd --------------------------------------------------------------------

/// Three etcd members; killed (SIGKILL) and reaped on drop.
struct Etcd {
    children: Vec<Child>,
    clients: Vec<String>,
    dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn etcd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("ETCD_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/etcd"), PathBuf::from);
    path.is_file().then_some(path)
}

fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("binding a free port")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

async fn start_etcd(binary: &Path) -> Result<Etcd> {
    let dir = tempfile::Builder::new()
        .prefix("rsp-bench-etcd-")
        .tempdir()
        .context("creating etcd's temp dir")?;
    let ports = free_ports(6)?;
    let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
    let client = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);
    let initial = (0..3)
        .map(|i| format!("m{}={}", i + 1, peer(i)))
        .collect::<Vec<_>>()
        .join(",");
    let mut etcd = Etcd {
        children: Vec::new(),
        clients: (0..3).map(client).collect(),
        dir,
    };
    for i in 0..3 {
        let name = format!("m{}", i + 1);
        let base = etcd.dir.path();
        let log = std::fs::File::create(base.join(format!("{name}.log")))?;
        let child = Command::new(binary)
            .args(["--name", &name])
            .arg("--data-dir")
            .arg(base.join(format!("{name}.etcd")))
            .args(["--listen-client-urls", &client(i)])
            .args(["--advertise-client-urls", &client(i)])
            .args(["--listen-peer-urls", &peer(i)])
            .args(["--initial-advertise-peer-urls", &peer(i)])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-token", "rsp-bench"])
            .args(["--initial-cluster-state", "new"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        etcd.children.push(child);
    }
    let http = http_client()?;
    let clients = etcd.clients.clone();
    wait_until(CLUSTER_TIMEOUT, "etcd members to be healthy", || async {
        for c in &clients {
            let body: Value = http.get(format!("{c}/health")).send().await?.json().await?;
            if body.get("health").and_then(Value::as_str) != Some("true") {
                bail!("{c}: {body}");
            }
        }
        Ok(())
    })
    .await
    .with_context(|| format!("etcd logs in {}", etcd.dir.path().display()))?;
    Ok(etcd)
}

/// The client URL of the member that leads.
async fn etcd_leader(etcd: &Etcd) -> Result<String> {
    let http = http_client()?;
    wait_until(CLUSTER_TIMEOUT, "an etcd leader", || async {
        for c in &etcd.clients {
            let status: Value = http
                .post(format!("{c}/v3/maintenance/status"))
                .body("{}")
                .send()
                .await?
                .json()
                .await?;
            let me = status.pointer("/header/member_id");
            if me.is_some() && me == status.get("leader") {
                return Ok(c.clone());
            }
        }
        bail!("no member reports itself as leader")
    })
    .await
}

/// Starts etcd, or says why not and returns `None`.
async fn start_etcd_subject() -> Result<Option<(Etcd, Subject)>> {
    let Some(binary) = etcd_binary() else {
        println!(
            "etcd: not found at /usr/bin/etcd (nor ETCD_BIN); install the Debian package \
             `etcd-server` to compare. Skipping etcd."
        );
        return Ok(None);
    };
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    println!("starting 3 etcd members ({}, {version})", binary.display());
    let etcd = start_etcd(&binary).await?;
    let leader = etcd_leader(&etcd).await?;
    println!("etcd leader: {leader}");
    let subject = Subject {
        system: "etcd",
        api: Api::Etcd,
        all: etcd.clients.clone(),
        leader,
        rsp: None,
    };
    Ok(Some((etcd, subject)))
}

// --- main --------------------------------------------------------------------

async fn run(settings: Settings) -> Result<()> {
    let snapshot_keys = env_u64("BENCH_SNAPSHOT_KEYS", 100_000)?;
    let snapshot_phase = || async {
        if snapshot_keys == 0 {
            return Ok(());
        }
        snapshot::run(
            snapshot_keys,
            env_u64("BENCH_SNAPSHOT_SECS", 40)?,
            env_u64("BENCH_SNAPSHOT_THRESHOLD", 4000)?,
        )
        .await
    };
    if std::env::var("BENCH_ONLY").as_deref() == Ok("snapshot") {
        return snapshot_phase().await;
    }
    let rsp = start_rsp().await?;
    let etcd = start_etcd_subject().await?;
    // Both clusters run side by side (the idle one only heartbeats) and the
    // runs alternate, so both see the same machine.
    let mut rows = Vec::new();
    print_header();
    for &clients in &settings.clients {
        for spread in [Spread::RoundRobin, Spread::LeaderOnly] {
            rows.push(measure(&rsp, clients, spread, &settings).await?);
            if let Some((_, subject)) = &etcd {
                rows.push(measure(subject, clients, spread, &settings).await?);
            }
        }
    }
    if let Some((etcd, _)) = etcd {
        drop(etcd);
        println!("etcd killed");
    }
    let mut failover = Vec::new();
    if let Some((cluster, _)) = &rsp.rsp {
        for round in 0..settings.failover_rounds {
            failover.push(failover_round(cluster, round).await?);
        }
    }
    drop(rsp);
    print_summary(&rows, &failover, &settings);
    snapshot_phase().await
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // must not start clusters for minutes.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "replication benchmark: run it with `cargo bench -p rsp-consensus --bench replication`"
        );
        return Ok(());
    }
    let settings = Settings::from_env()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(run(settings))
}
