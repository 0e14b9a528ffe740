//! OAuth benchmark: client-credentials tokens/s (ES256 and RS256 signed JWT
//! access tokens) and introspections/s (of ES256 and of RS256 tokens), on a 1-node and a 3-node `rsp`
//! cluster of real processes, against `oidc-provider` (npm) configured the
//! same way; and password checks/s as a fraction of the argon2 ceiling.
//!
//! Not a test: it prints figures and asserts nothing. Run it with
//!
//! ```text
//! cargo build --release -p rsp-node && \
//!   RSP_BIN=target/release/rsp cargo bench -p rsp-api --bench oauth
//! ```
//!
//! What it does, in order:
//! 1. times one argon2id hash (m=19456 KiB, t=2, p=1) on this machine
//!    (median of 14, half right before and half right after step 1's load);
//!    the ceiling is `cores / time per hash`. Drives
//!    `UserService::check_password` (the path the login form takes) in
//!    process, on a 1-node in-process consensus, with `BENCH_CLIENTS`
//!    concurrent callers and the right password;
//! 2. starts `oidc-provider` from `api/http/benches/oidc-provider/server.mjs`
//!    (skipped with a line when node or the package is missing: run
//!    `npm install` in that directory);
//! 3. starts 1 `rsp` node, then 3 `rsp` nodes, with `rsp-chaos`, creates a
//!    tenant and two confidential clients (client_credentials,
//!    client_secret_basic, scope `api`, one with ES256 and one with RS256);
//! 4. round by round (`BENCH_ROUNDS`), workload by workload, system after
//!    system: `BENCH_CLIENTS` concurrent workers (one keep-alive HTTP/1.1
//!    connection per server each, on hyper's connection API) loop
//!    `POST /token` with `grant_type=client_credentials`, or
//!    `POST /introspect` of tokens issued before the run (a pool of
//!    `BENCH_TOKENS`, default 1000, taken in turn; oidc-provider introspects
//!    only opaque tokens, so its two introspection workloads are the same);
//!    on a cluster, worker `w` sends its `i`-th request to node
//!    `(w + i) % 3`;
//! 5. prints a table and the rsp/oidc-provider ratios.
//!
//! Settings (environment): `BENCH_SECS` (measured seconds per run, default
//! 5), `BENCH_WARMUP_SECS` (default 1), `BENCH_CLIENTS` (default 64),
//! `BENCH_TOKENS` (default 1000), `RSP_BIN` (relative paths resolve
//! against the workspace), `NODE_BIN`
//! (default `node`), `BENCH_ONLY=passwords` (stop after the password part) or
//! `BENCH_ONLY=endpoints` (skip it); for profiling, `BENCH_NODES` (`1`, `3`
//! or `1,3`) and `BENCH_WORKLOADS` (e.g. `token ES256,introspect RS256`).

#[path = "support/load.rs"]
mod load;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::Full;
use hyper::body::Bytes;
use rsp_chaos::{Cluster, ClusterSpec};
use rsp_identity::passwords::PasswordHasher;
use rsp_identity::users::{NewUser, UserService};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use load::{
    LoadConn, LoadResult, REQUEST_TIMEOUT, Settings, Workload, cores, env_u64, median,
    per_core_rate, percentile, post_form, run_load, selected,
};

const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);
const TENANT: &str = "bench";

fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("building an HTTP client")
}

// --- load generation ---------------------------------------------------------

/// One OAuth request kind against one system.
#[derive(Clone)]
enum Work {
    /// `POST {base}{path}` with `grant_type=client_credentials&scope=api`.
    Token {
        path: String,
        id: String,
        secret: String,
    },
    /// `POST {base}{path}` with `token=...`, taking the pool's tokens in
    /// turn; the answer must say active.
    Introspect {
        path: String,
        id: String,
        secret: String,
        tokens: Arc<Vec<String>>,
        next: Arc<std::sync::atomic::AtomicUsize>,
    },
}

impl Work {
    /// The next request's path, `Authorization` value and body. The header
    /// value and the token body are built per request, as a client would.
    fn parts(&self) -> (&str, String, String) {
        let (path, id, secret, body) = match self {
            Work::Token { path, id, secret } => (
                path,
                id,
                secret,
                "grant_type=client_credentials&scope=api".to_string(),
            ),
            Work::Introspect {
                path,
                id,
                secret,
                tokens,
                next,
            } => {
                let i = next.fetch_add(1, Ordering::Relaxed) % tokens.len().max(1);
                let token = tokens.get(i).map_or("", String::as_str);
                (path, id, secret, format!("token={token}"))
            }
        };
        let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        (path, basic, body)
    }

    fn check_body(&self, body: &[u8]) -> Result<(), String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let ok = match self {
            Work::Token { .. } => v.get("access_token").and_then(Value::as_str).is_some(),
            Work::Introspect { .. } => v.get("active") == Some(&Value::Bool(true)),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("unexpected answer: {v}"))
        }
    }
}

impl Workload for Work {
    type Sent = ();

    fn request(&self) -> Result<(hyper::Request<Full<Bytes>>, ())> {
        let (path, authorization, body) = self.parts();
        Ok((post_form(path, authorization, body)?, ()))
    }

    fn check(&self, _: (), status: hyper::StatusCode, body: &[u8]) -> Result<(), String> {
        if status.is_success() {
            self.check_body(body)
        } else {
            Err(format!("HTTP {status}: {}", String::from_utf8_lossy(body)))
        }
    }
}

// --- systems -------------------------------------------------------------------

/// What one system under test offers: where to send, and the three workloads.
struct Subject {
    name: String,
    targets: Vec<String>,
    token_es256: Work,
    token_rs256: Work,
    introspect_es256: Work,
    introspect_rs256: Work,
    /// Kept alive until the subject is dropped.
    _cluster: Option<Cluster>,
    _child: Option<ChildGuard>,
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn rsp_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("RSP_BIN").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_absolute() || p.is_file() {
                p
            } else {
                workspace().join(p)
            }
        }
        None => workspace().join("target").join("release").join("rsp"),
    };
    if !path.is_file() {
        bail!(
            "rsp binary not found at {}: run `cargo build --release -p rsp-node` and set RSP_BIN=target/release/rsp",
            path.display()
        );
    }
    Ok(path)
}

/// `n` tokens of `work`'s client (a `Work::Token`), issued before a run:
/// the introspection workload cycles through them (a resource server sees
/// each token many times; `BENCH_TOKENS`).
async fn token_pool(work: &Work, base: &str) -> Result<Arc<Vec<String>>> {
    let n = env_u64("BENCH_TOKENS", 1000)?.max(1);
    let mut conn = LoadConn::new(base)?;
    let mut tokens = Vec::new();
    for _ in 0..n {
        tokens.push(one_token(&mut conn, work).await?);
    }
    Ok(Arc::new(tokens))
}

/// One token from `work` (a `Work::Token`) over `conn`.
async fn one_token(conn: &mut LoadConn, work: &Work) -> Result<String> {
    let (path, authorization, body) = work.parts();
    let (status, body) = conn.post(path, authorization, body).await?;
    let body: Value = serde_json::from_slice(&body).context("token answer")?;
    if !status.is_success() {
        bail!("token request: HTTP {status}: {body}");
    }
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no access_token in {body}"))
}

async fn admin_post(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Value,
) -> Result<Value> {
    let resp = http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path}: HTTP {status}: {answer}");
    }
    Ok(answer)
}

async fn start_rsp(nodes: usize) -> Result<Subject> {
    let mut spec = ClusterSpec::new(nodes).without_proxies();
    spec.binary = Some(rsp_binary()?);
    spec.join_timeout = CLUSTER_TIMEOUT;
    // One public URL for the whole cluster, as behind a load balancer: the
    // issuer in the tokens is then the same on every node.
    spec.env
        .push(("RSP_PUBLIC_URL".into(), "https://id.bench.invalid".into()));
    // Like oidc-provider here, no rate limits: the bench measures capacity.
    for limit in ["RSP_TOKEN_RATE_LIMIT", "RSP_TENANT_RATE_LIMIT"] {
        spec.env.push((limit.into(), "0".into()));
    }
    let cluster = Cluster::start(spec)
        .await
        .with_context(|| format!("starting {nodes} rsp node(s)"))?;
    let leader = cluster.wait_for_leader(CLUSTER_TIMEOUT).await?;
    let targets: Vec<String> = cluster
        .ids()
        .into_iter()
        .map(|id| cluster.http(id))
        .collect::<Result<_>>()?;
    let admin = cluster.admin_token().to_string();
    let base = cluster.http(leader)?;
    let http = http_client()?;
    admin_post(
        &http,
        &base,
        &admin,
        "/admin/v1/tenants",
        json!({ "id": TENANT, "display_name": "Benchmark" }),
    )
    .await?;
    let mut made = Vec::new();
    for alg in ["ES256", "RS256"] {
        let c = admin_post(
            &http,
            &base,
            &admin,
            &format!("/admin/v1/tenants/{TENANT}/clients"),
            json!({
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scopes": ["api"],
                "id_token_signed_response_alg": alg,
            }),
        )
        .await?;
        made.push(Work::Token {
            path: format!("/t/{TENANT}/token"),
            id: c["client_id"].as_str().unwrap_or_default().to_string(),
            secret: c["client_secret"].as_str().unwrap_or_default().to_string(),
        });
    }
    let token_rs256 = made.pop().expect("two clients");
    let token_es256 = made.pop().expect("two clients");
    // Every node must answer before measuring (the clients replicate).
    for t in &targets {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        let mut conn = LoadConn::new(t)?;
        loop {
            match one_token(&mut conn, &token_es256).await {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    // Introspection of a client's own tokens, authenticated as that client.
    let introspect = |token: &Work, tokens| {
        let Work::Token { id, secret, .. } = token else {
            unreachable!()
        };
        Work::Introspect {
            path: format!("/t/{TENANT}/introspect"),
            id: id.clone(),
            secret: secret.clone(),
            tokens,
            next: Default::default(),
        }
    };
    let introspect_es256 = introspect(&token_es256, token_pool(&token_es256, &targets[0]).await?);
    let introspect_rs256 = introspect(&token_rs256, token_pool(&token_rs256, &targets[0]).await?);
    Ok(Subject {
        name: format!("rsp {nodes}n"),
        targets,
        token_es256,
        token_rs256,
        introspect_es256,
        introspect_rs256,
        _cluster: Some(cluster),
        _child: None,
    })
}

/// `oidc-provider` from `api/http/benches/oidc-provider`, or why not.
async fn start_oidc_provider() -> Result<Subject, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches")
        .join("oidc-provider");
    if !dir.join("node_modules").join("oidc-provider").is_dir() {
        return Err(format!(
            "the oidc-provider package is not installed: run `npm install` in {}",
            dir.display()
        ));
    }
    let node = std::env::var("NODE_BIN").unwrap_or_else(|_| "node".into());
    let mut child = Command::new(&node)
        .arg("server.mjs")
        .current_dir(&dir)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run `{node}` ({e}): install Node.js"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let guard = ChildGuard(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line).map(|_| line);
        // Keep draining: the provider prints warnings later (on the first
        // introspection), and a closed pipe would kill it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        read
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let ready: Value =
        serde_json::from_str(&line).map_err(|e| format!("oidc-provider said {line:?}: {e}"))?;
    let port = ready["port"].as_u64().ok_or("no port")?;
    let base = format!("http://127.0.0.1:{port}");
    let client = |k: &str| {
        (
            ready["clients"][k]["client_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            ready["clients"][k]["client_secret"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let work = |k: &str| {
        let (id, secret) = client(k);
        Work::Token {
            path: "/token".into(),
            id,
            secret,
        }
    };
    let opaque = work("opaque");
    let tokens = token_pool(&opaque, &base)
        .await
        .map_err(|e| format!("oidc-provider token: {e:#}"))?;
    let (id, secret) = client("opaque");
    // It refuses to introspect JWT access tokens: both introspection
    // workloads are of its opaque tokens.
    let introspect = Work::Introspect {
        path: "/token/introspection".into(),
        id,
        secret,
        tokens,
        next: Default::default(),
    };
    Ok(Subject {
        name: "oidc-provider".into(),
        targets: vec![base],
        token_es256: work("ES256"),
        token_rs256: work("RS256"),
        introspect_es256: introspect.clone(),
        introspect_rs256: introspect,
        _cluster: None,
        _child: Some(guard),
    })
}

// --- results ---------------------------------------------------------------------

struct Row {
    system: String,
    workload: &'static str,
    round: usize,
    result: LoadResult,
}

fn print_header() {
    println!(
        "{:>5}  {:<14}  {:<18}  {:>9}  {:>8}  {:>8}  {:>8}  {:>6}",
        "round", "system", "workload", "req/s", "p50 ms", "p99 ms", "ok", "errors"
    );
}

fn print_row(row: &Row) {
    let r = &row.result;
    println!(
        "{:>5}  {:<14}  {:<18}  {:>9.0}  {:>8.2}  {:>8.2}  {:>8}  {:>6}",
        row.round, row.system, row.workload, r.per_sec, r.p50_ms, r.p99_ms, r.ok, r.errors
    );
    if let Some(e) = &r.first_error {
        let e: String = e.chars().take(300).collect();
        println!("                first error: {e}");
    }
}

const WORKLOADS: [&str; 4] = [
    "token ES256",
    "token RS256",
    "introspect ES256",
    "introspect RS256",
];

/// One run of `workload` against `subject`.
async fn measure(
    subject: &Subject,
    workload: &'static str,
    s: &Settings,
    round: usize,
) -> Result<Row> {
    let work = match workload {
        "token ES256" => &subject.token_es256,
        "token RS256" => &subject.token_rs256,
        "introspect ES256" => &subject.introspect_es256,
        _ => &subject.introspect_rs256,
    };
    let result = run_load(work, &subject.targets, s).await?;
    let row = Row {
        system: subject.name.clone(),
        workload,
        round,
        result,
    };
    print_row(&row);
    Ok(row)
}

// --- passwords -----------------------------------------------------------------

struct PasswordFigures {
    hash_ms: f64,
    /// Raw argon2 hashes/s with one thread per core (no rsp code).
    parallel_raw: f64,
    ceiling: f64,
    checks_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: u64,
}

/// Seven timed argon2id hashes (m=19456 KiB, t=2, p=1), after one untimed.
fn hash_times() -> Result<Vec<f64>> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(19_456, 2, 1, None).map_err(|e| anyhow!("{e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = [0u8; 32];
    let mut times = Vec::new();
    for i in 0..8 {
        let t = Instant::now();
        argon
            .hash_password_into(
                b"correct horse battery staple",
                b"saltsaltsaltsalt",
                &mut out,
            )
            .map_err(|e| anyhow!("{e}"))?;
        if i > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}

/// Raw argon2id hashes/s with one OS thread per core hashing in a loop for
/// `secs`: what the machine really gives when every core hashes at once
/// (memory bandwidth and other jobs included), without any rsp code.
fn parallel_hashes(secs: Duration) -> Result<f64> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(19_456, 2, 1, None).map_err(|e| anyhow!("{e}"))?;
    per_core_rate(secs, "hashing", || {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = [0u8; 32];
        move || {
            let _ = argon.hash_password_into(b"pw", b"saltsaltsaltsalt", &mut out);
        }
    })
}

/// Raw signatures/s of a fresh key with one thread per core hashing and
/// signing a token-sized message at once (aws-lc, no rsp code): the most a
/// token endpoint signing with `alg` can give on this machine.
fn parallel_signatures(alg: &str, secs: Duration) -> Result<f64> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
    enum Pair {
        Rsa(RsaKeyPair),
        Ec(EcdsaKeyPair),
    }
    let rng = SystemRandom::new();
    let pair = Arc::new(match alg {
        "RS256" => Pair::Rsa(
            RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| anyhow!("rsa: {e}"))?,
        ),
        _ => Pair::Ec(
            EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|e| anyhow!("ec: {e}"))?,
        ),
    });
    let message = vec![b'x'; 400];
    per_core_rate(secs, "signing", || {
        let (pair, message, rng) = (pair.clone(), message.clone(), rng.clone());
        let mut out = vec![0u8; 512];
        move || match pair.as_ref() {
            Pair::Rsa(k) => {
                let len = k.public_modulus_len();
                let padding = &signature::RSA_PKCS1_SHA256;
                let _ = k.sign(padding, &rng, &message, &mut out[..len]);
            }
            Pair::Ec(k) => {
                let _ = k.sign(&rng, &message);
            }
        }
    })
}

async fn passwords(s: &Settings) -> Result<PasswordFigures> {
    // Time per hash, single-threaded: the median of 7 (after one warm-up)
    // right before and 7 right after the password run, so both see about the
    // same load on a shared machine.
    let mut times = hash_times()?;

    // The login form's password check, in process on a 1-node consensus.
    let cluster = rsp_consensus::testing::TestCluster::start(1)
        .await
        .map_err(|e| anyhow!("in-process consensus: {e}"))?;
    let users = Arc::new(UserService::new(
        cluster.node(1).clone(),
        PasswordHasher::new().map_err(|e| anyhow!("{e}"))?,
    ));
    let password = "correct horse battery staple";
    users
        .create(
            TENANT,
            NewUser {
                username: "alice".into(),
                password: Zeroizing::new(password.into()),
                email: None,
                attributes: Default::default(),
            },
            0,
        )
        .await
        .map_err(|e| anyhow!("creating the user: {e}"))?;
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + s.warmup;
    let end = measure_from + s.measure;
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..s.clients {
        let users = users.clone();
        let failures = failures.clone();
        tasks.spawn(async move {
            let mut lat = Vec::new();
            tokio::time::sleep_until(start.into()).await;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let ok = matches!(
                    users
                        .check_password(TENANT, "alice", Zeroizing::new(password.into()))
                        .await,
                    Ok(Some(_))
                );
                if sent < measure_from {
                    continue;
                }
                if ok {
                    lat.push(sent.elapsed().as_micros() as u64);
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        });
    }
    let mut all = Vec::new();
    while let Some(j) = tasks.join_next().await {
        all.extend(j.context("a password worker panicked")?);
    }
    let window = measure_from.elapsed();
    all.sort_unstable();
    times.extend(hash_times()?);
    times.sort_by(f64::total_cmp);
    let per_hash = times[times.len() / 2];
    let ceiling = cores() as f64 / per_hash;
    let parallel_raw = parallel_hashes(s.measure.min(Duration::from_secs(3)))?;
    Ok(PasswordFigures {
        hash_ms: per_hash * 1000.0,
        parallel_raw,
        ceiling,
        checks_per_sec: all.len() as f64 / window.as_secs_f64(),
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        failures: failures.load(Ordering::Relaxed),
    })
}

// --- main ------------------------------------------------------------------------

async fn run() -> Result<()> {
    let s = Settings::from_env(5, 1, 64)?;
    println!(
        "OAuth benchmark: {} clients, {}s measured (+{}s warm-up) per run, {} cores",
        s.clients,
        s.measure.as_secs(),
        s.warmup.as_secs(),
        cores()
    );

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only == "endpoints" {
        return endpoints(&s, None).await;
    }
    println!("\n--- passwords (argon2id m=19456 KiB, t=2, p=1) ---");
    let pw = passwords(&s).await?;
    println!(
        "one hash: {:.1} ms; ceiling = {} cores / {:.1} ms = {:.1} hashes/s",
        pw.hash_ms,
        cores(),
        pw.hash_ms,
        pw.ceiling
    );
    println!(
        "UserService::check_password (in process, right password, {} callers): {:.1}/s, p50 {:.1} ms, p99 {:.1} ms, {} failures -> {:.0}% of the ceiling",
        s.clients,
        pw.checks_per_sec,
        pw.p50_ms,
        pw.p99_ms,
        pw.failures,
        100.0 * pw.checks_per_sec / pw.ceiling
    );
    println!(
        "raw argon2id, {} threads hashing at once (no rsp code): {:.1}/s = {:.0}% of the ceiling; check_password is {:.0}% of that",
        cores(),
        pw.parallel_raw,
        100.0 * pw.parallel_raw / pw.ceiling,
        100.0 * pw.checks_per_sec / pw.parallel_raw
    );

    if only == "passwords" {
        return Ok(());
    }
    endpoints(&s, Some(&pw)).await
}

/// The OAuth endpoint runs and the summary (with the password figures when
/// they were measured).
async fn endpoints(s: &Settings, pw: Option<&PasswordFigures>) -> Result<()> {
    // Every system is up for the whole program, and the runs go round by
    // round, workload by workload, system after system: a drift of the
    // shared machine's speed then hits each system's runs alike, and the
    // ratios come from runs a few seconds apart.
    let mut subjects = Vec::new();
    match start_oidc_provider().await {
        Ok(op) => subjects.push(op),
        Err(why) => println!("oidc-provider skipped: {why}"),
    }
    for nodes in [1, 3] {
        if selected("BENCH_NODES", &nodes.to_string()) {
            subjects.push(start_rsp(nodes).await?);
        }
    }
    let rounds = env_u64("BENCH_ROUNDS", 3)?.max(1) as usize;
    let mut rows = Vec::new();
    println!("\n--- OAuth endpoints ({rounds} rounds) ---");
    print_header();
    for round in 1..=rounds {
        for workload in WORKLOADS {
            if !selected("BENCH_WORKLOADS", workload) {
                continue;
            }
            for subject in &subjects {
                rows.push(measure(subject, workload, s, round).await?);
            }
        }
    }
    drop(subjects);

    // What the signing alone allows on this machine (measured after the
    // runs, with nothing else running).
    let mut sign_ceiling = Vec::new();
    for alg in ["ES256", "RS256"] {
        let per_sec = parallel_signatures(alg, Duration::from_secs(2))?;
        sign_ceiling.push((alg, per_sec));
    }

    let systems = {
        let mut names: Vec<String> = Vec::new();
        for r in &rows {
            if !names.contains(&r.system) {
                names.push(r.system.clone());
            }
        }
        names
    };
    let runs = |system: &str, workload: &str| -> Vec<&Row> {
        rows.iter()
            .filter(|r| r.system == system && r.workload == workload)
            .collect()
    };
    println!("\n=== summary: median of {rounds} rounds (each round's req/s in brackets) ===");
    println!(
        "{:<14}  {:<16}  {:>9}  {:>8}  {:>8}  {:>6}  per round",
        "system", "workload", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for workload in WORKLOADS {
        for system in &systems {
            let these = runs(system, workload);
            if these.is_empty() {
                continue;
            }
            let per_round: Vec<String> = these
                .iter()
                .map(|r| format!("{:.0}", r.result.per_sec))
                .collect();
            println!(
                "{:<14}  {:<16}  {:>9.0}  {:>8.2}  {:>8.2}  {:>6}  [{}]",
                system,
                workload,
                median(these.iter().map(|r| r.result.per_sec).collect()),
                median(these.iter().map(|r| r.result.p50_ms).collect()),
                median(these.iter().map(|r| r.result.p99_ms).collect()),
                these.iter().map(|r| r.result.errors).sum::<u64>(),
                per_round.join(", ")
            );
        }
    }
    println!();
    // Ratios within each round (the runs seconds apart), then their median
    // and the lowest.
    let per_sec_median = |system: &str, workload: &str| {
        median(
            runs(system, workload)
                .iter()
                .map(|r| r.result.per_sec)
                .collect(),
        )
    };
    for workload in WORKLOADS {
        let reference = runs("oidc-provider", workload);
        for system in ["rsp 1n", "rsp 3n"] {
            let ratios: Vec<(f64, f64)> = runs(system, workload)
                .iter()
                .filter_map(|r| {
                    let o = reference.iter().find(|o| o.round == r.round)?;
                    Some((
                        r.result.per_sec / o.result.per_sec,
                        r.result.p99_ms / o.result.p99_ms,
                    ))
                })
                .collect();
            if ratios.is_empty() {
                continue;
            }
            let lowest = ratios.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
            let worst_p99 = ratios.iter().map(|r| r.1).fold(0.0, f64::max);
            println!(
                "{:<16} {system}/oidc-provider: throughput {:.2}x (lowest round {:.2}x), p99 {:.2}x (highest round {:.2}x; lower is better)",
                workload,
                median(ratios.iter().map(|r| r.0).collect()),
                lowest,
                median(ratios.iter().map(|r| r.1).collect()),
                worst_p99,
            );
        }
    }
    for (alg, ceiling) in &sign_ceiling {
        let workload = format!("token {alg}");
        let find = |system: &str| {
            let m = per_sec_median(system, &workload);
            (!m.is_nan()).then_some(m)
        };
        print!(
            "{workload}: raw {}-thread {alg} signing (aws-lc, no HTTP) {ceiling:.0}/s",
            cores()
        );
        for system in ["rsp 1n", "rsp 3n"] {
            if let Some(r) = find(system) {
                print!("; {system} {:.0}% of it", 100.0 * r / ceiling);
            }
        }
        if let Some(o) = find("oidc-provider") {
            print!(
                "; 5x oidc-provider would be {:.0}/s = {:.0}% of it",
                5.0 * o,
                500.0 * o / ceiling
            );
        }
        println!();
    }
    if let Some(pw) = pw {
        println!(
            "password checks: {:.1}/s of a {:.1}/s argon2 ceiling = {:.0}% (raw {}-thread argon2: {:.1}/s = {:.0}%)",
            pw.checks_per_sec,
            pw.ceiling,
            100.0 * pw.checks_per_sec / pw.ceiling,
            cores(),
            pw.parallel_raw,
            100.0 * pw.parallel_raw / pw.ceiling
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
