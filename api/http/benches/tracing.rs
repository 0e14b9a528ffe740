//! Tracing overhead: client-credentials tokens/s and browser logins/s of a
//! 1-node `rsp` with tracing off (no `--otlp-endpoint`) beside the same
//! node exporting to a local OTLP sink at `--otlp-sampling-ratio` 0, 0.1
//! and 1.0, in the same run.
//!
//! Not a test: it prints figures and asserts nothing. Run it with
//!
//! ```text
//! cargo build --release -p rsp-node && \
//!   RSP_BIN=target/release/rsp cargo bench -p rsp-api --bench tracing
//! ```
//!
//! It starts the four nodes at once (idle ones cost next to nothing), each
//! with a tenant, a confidential client (client_credentials, ES256) and a
//! user, and a sink on 127.0.0.1 that answers every OTLP export with 200
//! and counts the bytes. Then round by round (`BENCH_ROUNDS`, default 3),
//! mode after mode: `BENCH_CLIENTS` (64) workers loop `POST /token`
//! (keep-alive HTTP/1.1, the OAuth benchmark's load generator) for
//! `BENCH_SECS` (5) after `BENCH_WARMUP_SECS` (1); then `BENCH_LOGIN_CLIENTS`
//! (8) workers loop a whole browser login (`GET /authorize`, then the
//! password form `POST /login`, argon2id-bound) for as long. Last, the
//! median of each mode and its difference from tracing off. Rate limits are
//! off, as in the OAuth benchmark.

#[path = "support/load.rs"]
mod load;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::Full;
use hyper::body::Bytes;
use rsp_chaos::{Cluster, ClusterSpec};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use load::{LoadResult, Settings, Workload, env_u64, median, post_form, run_load};

const TENANT: &str = "bench";
const PASSWORD: &str = "bench password 1234";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(60);
const MODES: [(&str, Option<&str>); 4] = [
    ("off", None),
    ("ratio 0", Some("0")),
    ("ratio 0.1", Some("0.1")),
    ("ratio 1.0", Some("1.0")),
];

#[derive(Clone)]
struct TokenWork {
    path: String,
    authorization: String,
}

impl Workload for TokenWork {
    type Sent = ();

    fn request(&self) -> Result<(hyper::Request<Full<Bytes>>, ())> {
        let body = "grant_type=client_credentials&scope=api".to_string();
        Ok((post_form(&self.path, self.authorization.clone(), body)?, ()))
    }

    fn check(&self, _: (), status: hyper::StatusCode, body: &[u8]) -> Result<(), String> {
        if status.is_success() && body.starts_with(b"{\"access_token\"") {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(body)))
        }
    }
}

struct Node {
    mode: &'static str,
    base: String,
    token: TokenWork,
    _cluster: Cluster,
}

fn rsp_binary() -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let path = match std::env::var_os("RSP_BIN").filter(|v| !v.is_empty()) {
        Some(p) if PathBuf::from(&p).is_absolute() => PathBuf::from(p),
        Some(p) => workspace.join(p),
        None => workspace.join("target/release/rsp"),
    };
    if !path.is_file() {
        bail!(
            "rsp binary not found at {}: run `cargo build --release -p rsp-node` and set RSP_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// An OTLP/HTTP sink: answers every request 200, counts body bytes.
async fn sink(bytes: Arc<AtomicU64>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    let Some(head) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head + 4 + len {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    bytes.fetch_add(len as u64, Ordering::Relaxed);
                    buf.drain(..head + 4 + len);
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if stream.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

async fn admin_post(base: &str, token: &str, path: &str, body: Value) -> Result<Value> {
    let resp = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {path}: {status}: {answer}");
    }
    Ok(answer)
}

async fn start(mode: &'static str, ratio: Option<&str>, sink_url: &str) -> Result<Node> {
    let mut spec = ClusterSpec::new(1).without_proxies();
    spec.binary = Some(rsp_binary()?);
    spec.join_timeout = CLUSTER_TIMEOUT;
    for limit in [
        "RSP_TOKEN_RATE_LIMIT",
        "RSP_TENANT_RATE_LIMIT",
        "RSP_LOGIN_RATE_LIMIT",
    ] {
        spec.env.push((limit.into(), "0".into()));
    }
    if let Some(ratio) = ratio {
        spec.args.extend([
            "--otlp-endpoint".to_string(),
            sink_url.to_string(),
            "--otlp-sampling-ratio".to_string(),
            ratio.to_string(),
        ]);
    }
    let cluster = Cluster::start(spec).await.context(mode)?;
    let id = cluster.wait_for_leader(CLUSTER_TIMEOUT).await?;
    let base = cluster.http(id)?;
    let admin = cluster.admin_token().to_string();
    admin_post(
        &base,
        &admin,
        "/admin/v1/tenants",
        json!({"id": TENANT, "display_name": "Bench"}),
    )
    .await?;
    admin_post(
        &base,
        &admin,
        &format!("/admin/v1/tenants/{TENANT}/users"),
        json!({"username": "ann", "password": PASSWORD}),
    )
    .await?;
    let client = admin_post(
        &base,
        &admin,
        &format!("/admin/v1/tenants/{TENANT}/clients"),
        json!({
            "grant_types": ["client_credentials", "authorization_code"],
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_basic",
            "scopes": ["api", "openid"],
        }),
    )
    .await?;
    let id = client["client_id"].as_str().unwrap_or_default();
    let secret = client["client_secret"].as_str().unwrap_or_default();
    let token = TokenWork {
        path: format!("/t/{TENANT}/token"),
        authorization: format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
    };
    // The login workload's client id travels in the authorize URL.
    let node = Node {
        mode,
        base,
        token,
        _cluster: cluster,
    };
    one_login(&reqwest_client()?, &node.base, id).await?;
    Ok(node)
}

fn reqwest_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?)
}

fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag = &html[html[..at].rfind('<')?..at + html[at..].find('>')?];
    let v = tag.find("value=\"")? + "value=\"".len();
    Some(tag[v..v + tag[v..].find('"')?].to_string())
}

/// One browser login: the authorize page, then the password form; Ok when
/// it redirects to the client with a code.
async fn one_login(http: &reqwest::Client, base: &str, client_id: &str) -> Result<()> {
    let page = http
        .get(format!(
            "{base}/t/{TENANT}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=s&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            url_encode(REDIRECT)
        ))
        .send()
        .await?;
    let cookies: Vec<String> = page
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect();
    let html = page.text().await?;
    let (csrf, flow) = (
        field(&html, "csrf_token").context("no csrf_token")?,
        field(&html, "flow").context("no flow")?,
    );
    let body = format!(
        "csrf_token={}&flow={}&username=ann&password={}",
        url_encode(&csrf),
        url_encode(&flow),
        url_encode(PASSWORD)
    );
    let done = http
        .post(format!("{base}/t/{TENANT}/login"))
        .header(reqwest::header::COOKIE, cookies.join("; "))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await?;
    let location = done
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if done.status().as_u16() != 303 || !location.contains("code=") {
        bail!("login answered {} to {location:?}", done.status());
    }
    Ok(())
}

fn url_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Logins/s of `clients` workers looping [`one_login`] for the window, the
/// errors, and the first error.
async fn logins(node: &Node, clients: usize, s: &Settings) -> Result<(f64, u64, Option<String>)> {
    let client_id = node
        .token
        .authorization
        .strip_prefix("Basic ")
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split(':').next().map(str::to_string))
        .context("client id")?;
    let start = Instant::now();
    let (from, end) = (start + s.warmup, start + s.warmup + s.measure);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, base, client_id) = (reqwest_client()?, node.base.clone(), client_id.clone());
        tasks.spawn(async move {
            let (mut ok, mut errors, mut first) = (0u64, 0u64, None);
            while Instant::now() < end {
                let sent = Instant::now();
                let r = one_login(&http, &base, &client_id).await;
                if sent >= from {
                    match r {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            errors += 1;
                            first.get_or_insert(format!("{e:#}"));
                        }
                    }
                }
            }
            (ok, errors, first)
        });
    }
    let (mut ok, mut errors, mut first) = (0, 0, None);
    while let Some(r) = tasks.join_next().await {
        let (o, e, f) = r?;
        ok += o;
        errors += e;
        first = first.or(f);
    }
    Ok((ok as f64 / s.measure.as_secs_f64(), errors, first))
}

#[tokio::main]
async fn main() -> Result<()> {
    let s = Settings::from_env(5, 1, 64)?;
    let rounds = env_u64("BENCH_ROUNDS", 3)?.max(1) as usize;
    let login_clients = env_u64("BENCH_LOGIN_CLIENTS", 8)?.max(1) as usize;
    let exported = Arc::new(AtomicU64::new(0));
    let sink_url = sink(exported.clone()).await?;
    let mut nodes = Vec::new();
    for (mode, ratio) in MODES {
        nodes.push(start(mode, ratio, &sink_url).await?);
    }
    println!(
        "tracing overhead: {} token clients, {login_clients} login clients, {:?} measured per run, {rounds} rounds",
        s.clients, s.measure
    );
    println!(
        "{:>5}  {:<10}  {:>9}  {:>8}  {:>8}  {:>9}  {:>8}",
        "round", "mode", "tokens/s", "p50 ms", "p99 ms", "logins/s", "errors"
    );
    let mut figures: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); MODES.len()];
    for round in 1..=rounds {
        for (i, node) in nodes.iter().enumerate() {
            let r: LoadResult = run_load(&node.token, std::slice::from_ref(&node.base), &s).await?;
            let (per_sec, login_errors, first_login_error) =
                logins(node, login_clients, &s).await?;
            println!(
                "{round:>5}  {:<10}  {:>9.0}  {:>8.2}  {:>8.2}  {:>9.1}  {:>8}",
                node.mode,
                r.per_sec,
                r.p50_ms,
                r.p99_ms,
                per_sec,
                r.errors + login_errors
            );
            if let Some(e) = first_login_error {
                println!(
                    "       first login error: {}",
                    e.chars().take(200).collect::<String>()
                );
            }
            if let Some(e) = &r.first_error {
                println!(
                    "       first token error: {}",
                    e.chars().take(200).collect::<String>()
                );
            }
            figures[i].0.push(r.per_sec);
            figures[i].1.push(per_sec);
        }
    }
    let (base_tokens, base_logins) = (median(figures[0].0.clone()), median(figures[0].1.clone()));
    println!("\nmedians (difference from tracing off)");
    for (node, (tokens, logins)) in nodes.iter().zip(figures) {
        let (t, l) = (median(tokens), median(logins));
        println!(
            "{:<10}  tokens/s {:>7.0} ({:+.1}%)  logins/s {:>6.1} ({:+.1}%)",
            node.mode,
            t,
            (t / base_tokens - 1.0) * 100.0,
            l,
            (l / base_logins - 1.0) * 100.0
        );
    }
    println!("OTLP bytes exported: {}", exported.load(Ordering::Relaxed));
    Ok(())
}
