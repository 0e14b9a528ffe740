//! Listing a large tenant's users through the admin API by pages of 100:
//! time to the last page, per-page latency, and the serving process's
//! memory while it pages (the listing holds one page, never the tenant).
//!
//! One in-process node; `BENCH_USERS` users (default 100000) are created
//! through the user service first (with a cheap password hash: the
//! creation is not what is measured), then `GET
//! /admin/v1/tenants/{t}/users?limit=100&after=...` is walked to the end
//! through the whole axum app (tower `oneshot`, no socket), each page a
//! linearizable range read. Memory is the process's resident set
//! (`/proc/self/status` `VmRSS`) sampled after every page, against the
//! figure just before the walk. Prints figures, asserts nothing about
//! speed; progress goes to a terminal only.
//!
//! Run: `cargo bench -p rsp-api --bench admin_list` (`BENCH_USERS=10000`
//! for a quick look).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use rsp_api::{AdminToken, AppState};
use rsp_consensus::testing::TestCluster;
use rsp_identity::Identity;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::passwords::PasswordHasher;
use rsp_identity::users::NewUser;
use serde_json::Value;
use tower::ServiceExt;
use zeroize::Zeroizing;

const TENANT: &str = "bench";
const PAGE: usize = 100;
/// Creations in flight at once.
const WRITERS: usize = 64;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn progress(what: &str, done: usize, total: usize) {
    if std::io::stderr().is_terminal() {
        eprint!("\r{what}: {done}/{total}   ");
        let _ = std::io::stderr().flush();
        if done == total {
            eprintln!();
        }
    }
}

async fn setup() -> (TestCluster, axum::Router, AppState) {
    let cluster = TestCluster::start(1).await.expect("cluster");
    let node = &cluster.nodes[0];
    let hasher = PasswordHasher::with(argon2::Params::new(1024, 1, 1, None).expect("params"), 4)
        .expect("hasher");
    let identity = Identity::new(
        node.consensus.clone(),
        Arc::new(KekCell::with(Kek::generate())),
        hasher,
        "http://127.0.0.1:8080",
    );
    let state = AppState::new(
        node.consensus.clone(),
        AdminToken::new(Zeroizing::new("admin".to_string())),
        node.registry.clone(),
        identity,
        "http://127.0.0.1:8080",
    );
    state
        .tenants
        .create(TENANT, TENANT, 0)
        .await
        .expect("tenant");
    (cluster, rsp_api::app(state.clone()), state)
}

async fn create_users(state: &AppState, n: usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let state = state.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let new = NewUser {
                    username: format!("user-{i:07}"),
                    password: Zeroizing::new("correct horse battery".to_string()),
                    email: Some(format!("user-{i}@example.com")),
                    attributes: Default::default(),
                };
                state
                    .identity
                    .users
                    .create(TENANT, new, 0)
                    .await
                    .expect("create user");
                if i.is_multiple_of(1000) {
                    progress("creating users", i, n);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    progress("creating users", n, n);
}

async fn page(app: &axum::Router, after: Option<&str>) -> Value {
    let mut uri = format!("/admin/v1/tenants/{TENANT}/users?limit={PAGE}");
    if let Some(a) = after {
        uri.push_str("&after=");
        uri.push_str(a);
    }
    let req = Request::get(uri)
        .header(header::AUTHORIZATION, "Bearer admin")
        .body(Body::empty())
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    assert!(resp.status().is_success(), "{}", resp.status());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .expect("body");
    serde_json::from_slice(&bytes).expect("json")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (_cluster, app, state) = setup().await;
        let started = Instant::now();
        create_users(&state, users).await;
        println!(
            "created {users} users in {:.1} s (setup, not measured)",
            started.elapsed().as_secs_f64()
        );

        // One warm page, then the walk.
        page(&app, None).await;
        let rss_before = rss_kib();
        let mut rss_peak = rss_before;
        let mut latencies = Vec::with_capacity(users / PAGE + 1);
        let mut listed = 0;
        let mut after: Option<String> = None;
        let walk = Instant::now();
        loop {
            let t = Instant::now();
            let body = page(&app, after.as_deref()).await;
            latencies.push(t.elapsed());
            listed += body["items"].as_array().map_or(0, Vec::len);
            rss_peak = rss_peak.max(rss_kib());
            progress("paging", listed, users);
            match body["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => break,
            }
        }
        let total = walk.elapsed();
        assert_eq!(listed, users, "every user listed once");
        latencies.sort();
        println!("admin list: {users} users by pages of {PAGE}");
        println!(
            "  time to the last page: {:.2} s ({} pages, {:.0} users/s)",
            total.as_secs_f64(),
            latencies.len(),
            users as f64 / total.as_secs_f64()
        );
        println!(
            "  per page: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
        println!(
            "  resident memory: {:.1} MiB before the walk, peak {:.1} MiB during it (+{:.1} MiB)",
            rss_before as f64 / 1024.0,
            rss_peak as f64 / 1024.0,
            (rss_peak.saturating_sub(rss_before)) as f64 / 1024.0
        );
    });
}
