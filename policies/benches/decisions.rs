//! Decisions per second and latency (p50/p99) at 10, 100 and 1,000
//! policies, three ways on the same policy set and requests:
//!
//! - `cedar whole set`: `cedar_policy::Authorizer::is_authorized` in
//!   process on the whole set (the floor without slicing);
//! - `rsp in-process`: the tenant's compiled snapshot with the index
//!   (what the service evaluates, without HTTP);
//! - `rsp HTTP`: `POST /t/{tenant}/authz/v1/is_authorized` through the
//!   whole axum app (tower `oneshot`, no socket): routing, the caller check
//!   (admin token), the tenant check, JSON, the freshness check and the
//!   decision, on the node's `PolicyService` snapshot;
//! - `rsp HTTP, actor`: the same through an app whose node has a tenant
//!   runtime (as `rsp serve` does): admission, then the snapshot the
//!   tenant's policy evaluator actor publishes.
//!
//! Each request names one user and one document; whatever the set's size,
//! two policies apply to it (the user's own and its group's) and a few more
//! share a bucket with it. Policies: 80% `principal == User` with a
//! condition, 10% `principal in Group` (ten users per group), 10% forbids
//! on one document for another action.
//! Single-threaded, sequential; `BENCH_REQUESTS` (default 20000) requests
//! per measurement after a warm-up. Prints figures, asserts nothing.
//!
//! Run: `cargo bench -p rsp-policies --bench decisions`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request as HttpRequest, header};
use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request};
use rsp_api::identity::Identity;
use rsp_api::identity::crypto::{Kek, KekCell};
use rsp_api::identity::passwords::PasswordHasher;
use rsp_api::{AdminToken, AppState};
use rsp_consensus::testing::TestCluster;
use serde_json::json;
use tower::ServiceExt;
use zeroize::Zeroizing;

const TENANT: &str = "bench";

fn policies(n: usize) -> String {
    (0..n)
        .map(|i| match i % 10 {
            0 => format!(
                r#"@id("p{i}") permit(principal in Group::"g{i}", action == Action::"view", resource) when {{ context.mfa }};"#
            ),
            1 => format!(
                r#"@id("p{i}") forbid(principal, action == Action::"delete", resource == Doc::"d{i}");"#
            ),
            _ => format!(
                r#"@id("p{i}") permit(principal == User::"u{i}", action in [Action::"view", Action::"edit"], resource == Doc::"d{i}") when {{ context.mfa || context.level > 2 }};"#
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn entities(n: usize) -> serde_json::Value {
    json!(
        (0..n)
            .map(
                |i| json!({"uid": {"type": "User", "id": format!("u{i}")}, "attrs": {},
            "parents": [{"type": "Group", "id": format!("g{}", i % 7)}]})
            )
            .collect::<Vec<_>>()
    )
}

/// Request `k`: a user views its own document (its policy applies), users
/// spread over the set.
fn request_parts(n: usize, k: usize) -> (String, String) {
    let owned: Vec<usize> = (0..n).filter(|i| i % 10 >= 2).collect();
    let i = owned[(k * 7919) % owned.len()];
    (format!(r#"User::"u{i}""#), format!(r#"Doc::"d{i}""#))
}

struct Figures {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn figures(mut lat: Vec<Duration>, total: Duration) -> Figures {
    lat.sort();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    Figures {
        per_sec: lat.len() as f64 / total.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn row(label: &str, n: usize, f: &Figures) {
    println!(
        "{label:<22} {n:>6} {:>12.0} {:>10.1} {:>10.1}",
        f.per_sec,
        f.p50.as_secs_f64() * 1e6,
        f.p99.as_secs_f64() * 1e6
    );
}

async fn app() -> (TestCluster, axum::Router, AppState) {
    let cluster = TestCluster::start(1).await.expect("cluster");
    let node = &cluster.nodes[0];
    let identity = Identity::new(
        node.consensus.clone(),
        Arc::new(KekCell::with(Kek::generate())),
        PasswordHasher::new().expect("hasher"),
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

/// The same node's app with a tenant runtime (decisions on the actors'
/// snapshots).
async fn actor_app(cluster: &TestCluster, state: &AppState) -> axum::Router {
    let node = &cluster.nodes[0];
    let config = rsp_actors::RuntimeConfig::default();
    let runtime = rsp_actors::TenantRuntime::start(node.consensus.clone(), config, &node.registry)
        .await
        .expect("tenant runtime");
    rsp_api::app(state.clone().with_runtime(runtime))
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, axum::body::Bytes) {
    let req = HttpRequest::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, "Bearer admin")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, bytes)
}

fn main() {
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "decisions, sequential, {requests} requests per row, latencies in µs (load average at start: {})",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<22} {:>6} {:>12} {:>10} {:>10}",
        "path", "n", "decisions/s", "p50", "p99"
    );
    rt.block_on(async {
        let (cluster, app, state) = app().await;
        let actor_app = actor_app(&cluster, &state).await;
        for n in [10usize, 100, 1000] {
            let text = policies(n);
            let (status, body) = call(
                &app,
                "PUT",
                &format!("/admin/v1/tenants/{TENANT}/policies"),
                &json!({"policies": text}),
            )
            .await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let (status, body) = call(
                &app,
                "PUT",
                &format!("/admin/v1/tenants/{TENANT}/entities"),
                &entities(n),
            )
            .await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

            // Cedar alone, whole set.
            let set = PolicySet::from_str(&text).expect("policies");
            let ents = Entities::from_json_value(entities(n), None).expect("entities");
            let authorizer = Authorizer::new();
            let ctx = json!({"mfa": true, "level": 1});
            let cedar_req = |k: usize| {
                let (p, r) = request_parts(n, k);
                Request::new(
                    EntityUid::from_str(&p).expect("uid"),
                    EntityUid::from_str(r#"Action::"view""#).expect("uid"),
                    EntityUid::from_str(&r).expect("uid"),
                    Context::from_json_value(ctx.clone(), None).expect("context"),
                    None,
                )
                .expect("request")
            };
            let prepared: Vec<Request> = (0..1000).map(cedar_req).collect();
            let mut allowed = 0usize;
            let mut lat = Vec::with_capacity(requests);
            for k in 0..requests / 10 {
                let _ = authorizer.is_authorized(&prepared[k % 1000], &set, &ents);
            }
            let start = Instant::now();
            for k in 0..requests {
                let t = Instant::now();
                let r = authorizer.is_authorized(&prepared[k % 1000], &set, &ents);
                lat.push(t.elapsed());
                allowed += (r.decision() == cedar_policy::Decision::Allow) as usize;
            }
            let cedar = figures(lat, start.elapsed());
            row("cedar whole set", n, &cedar);
            assert!(allowed > requests / 2, "requests should mostly be allowed");

            // The service's snapshot, sliced, no HTTP.
            let snapshot = state
                .authz
                .policies
                .snapshot(TENANT, Instant::now())
                .await
                .expect("snapshot");
            let dreqs: Vec<rsp_policies::DecisionRequest> = (0..1000)
                .map(|k| {
                    let (p, r) = request_parts(n, k);
                    rsp_policies::DecisionRequest {
                        principal: EntityUid::from_str(&p).expect("uid"),
                        action: EntityUid::from_str(r#"Action::"view""#).expect("uid"),
                        resource: EntityUid::from_str(&r).expect("uid"),
                        context: Some(ctx.clone()),
                        entities: vec![],
                    }
                })
                .collect();
            let mut lat = Vec::with_capacity(requests);
            let start = Instant::now();
            for k in 0..requests {
                let t = Instant::now();
                let o = snapshot.decide(&dreqs[k % 1000], true).expect("decides");
                lat.push(t.elapsed());
                std::hint::black_box(o);
            }
            row("rsp in-process sliced", n, &figures(lat, start.elapsed()));

            // Through HTTP.
            let path = format!("/t/{TENANT}/authz/v1/is_authorized");
            let bodies: Vec<serde_json::Value> = (0..1000)
                .map(|k| {
                    let (p, r) = request_parts(n, k);
                    json!({"principal": p, "action": "Action::\"view\"", "resource": r, "context": ctx})
                })
                .collect();
            for k in 0..requests / 10 {
                call(&app, "POST", &path, &bodies[k % 1000]).await;
            }
            let mut lat = Vec::with_capacity(requests);
            let start = Instant::now();
            for k in 0..requests {
                let t = Instant::now();
                let (status, _) = call(&app, "POST", &path, &bodies[k % 1000]).await;
                lat.push(t.elapsed());
                assert_eq!(status, 200);
            }
            let http = figures(lat, start.elapsed());
            row("rsp HTTP", n, &http);
            println!(
                "{:<22} {n:>6} {:>11.0}%",
                "HTTP / cedar",
                100.0 * http.per_sec / cedar.per_sec
            );

            // Through HTTP, on the tenant actor's snapshot.
            for k in 0..requests / 10 {
                call(&actor_app, "POST", &path, &bodies[k % 1000]).await;
            }
            let mut lat = Vec::with_capacity(requests);
            let start = Instant::now();
            for k in 0..requests {
                let t = Instant::now();
                let (status, _) = call(&actor_app, "POST", &path, &bodies[k % 1000]).await;
                lat.push(t.elapsed());
                assert_eq!(status, 200);
            }
            let actor = figures(lat, start.elapsed());
            row("rsp HTTP, actor", n, &actor);
            println!(
                "{:<22} {n:>6} {:>11.0}%",
                "HTTP actor / cedar",
                100.0 * actor.per_sec / cedar.per_sec
            );
        }
    });
}
