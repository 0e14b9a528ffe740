//! Cedar decisions through HTTP: decisions per second and latency
//! (p50/p99) at 10, 100 and 1,000 policies, beside Cedar alone on the
//! whole set (the same workload as `policies/benches/decisions.rs`):
//!
//! - `rsp HTTP`: `POST /t/{tenant}/authz/v1/is_authorized` through the
//!   whole axum app (tower `oneshot`, no socket): routing, the caller check
//!   (admin token), the tenant check, JSON, the freshness check and the
//!   decision, on the node's `PolicyService` snapshot;
//! - `rsp HTTP, actor`: the same through an app whose node has a tenant
//!   runtime (as `rsp serve` does): admission, then the snapshot the
//!   tenant's policy evaluator actor publishes.
//!
//! Single-threaded, sequential; `BENCH_REQUESTS` (default 20000) requests
//! per measurement after a warm-up. Prints figures, asserts nothing about
//! speed.
//!
//! Run: `cargo bench -p rsp-api --bench authz_http`.

#[path = "../../../policies/benches/support/workload.rs"]
mod workload;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request as HttpRequest, header};
use rsp_api::{AdminToken, AppState};
use rsp_consensus::testing::TestCluster;
use rsp_identity::Identity;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::passwords::PasswordHasher;
use serde_json::json;
use tower::ServiceExt;
use zeroize::Zeroizing;

use workload::{Figures, TENANT, entities, figures, policies, row};

async fn app() -> (TestCluster, axum::Router, AppState) {
    let cluster = TestCluster::start(1).await.expect("cluster");
    let node = &cluster.nodes[0];
    let identity = Identity::new(
        node.consensus.clone(),
        Arc::new(KekCell::with(Kek::generate())),
        PasswordHasher::new().expect("hasher"),
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

/// The request bodies of `POST {issuer}/authz/v1/is_authorized`.
pub fn http_bodies(n: usize, ctx: &serde_json::Value) -> Vec<serde_json::Value> {
    (0..1000)
        .map(|k| {
            let (p, r) = workload::request_parts(n, k);
            json!({"principal": p, "action": "Action::\"view\"", "resource": r, "context": ctx})
        })
        .collect()
}

/// `requests` sequential decisions through `app`, after a warm-up.
async fn measure(app: &axum::Router, bodies: &[serde_json::Value], requests: usize) -> Figures {
    let path = format!("/t/{TENANT}/authz/v1/is_authorized");
    for k in 0..requests / 10 {
        call(app, "POST", &path, &bodies[k % 1000]).await;
    }
    let mut lat = Vec::with_capacity(requests);
    let start = Instant::now();
    for k in 0..requests {
        let t = Instant::now();
        let (status, _) = call(app, "POST", &path, &bodies[k % 1000]).await;
        lat.push(t.elapsed());
        assert_eq!(status, 200);
    }
    figures(lat, start.elapsed())
}

fn main() {
    let requests = workload::requests();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    workload::heading("decisions over HTTP", requests);
    rt.block_on(async {
        let (cluster, app, state) = app().await;
        let actor_app = actor_app(&cluster, &state).await;
        let ctx = workload::context();
        for n in [10usize, 100, 1000] {
            let (status, body) = call(
                &app,
                "PUT",
                &format!("/admin/v1/tenants/{TENANT}/policies"),
                &json!({"policies": policies(n)}),
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

            let cedar = workload::cedar_whole_set(n, requests, &ctx);
            row("cedar whole set", n, &cedar);
            let bodies = http_bodies(n, &ctx);
            for (label, app) in [("rsp HTTP", &app), ("rsp HTTP, actor", &actor_app)] {
                let http = measure(app, &bodies, requests).await;
                row(label, n, &http);
                println!(
                    "{:<22} {n:>6} {:>11.0}%",
                    format!("{label} / cedar"),
                    100.0 * http.per_sec / cedar.per_sec
                );
            }
        }
    });
}
