//! Decisions per second and latency (p50/p99) at 10, 100 and 1,000
//! policies, in process, on the same policy set and requests:
//!
//! - `cedar whole set`: `cedar_policy::Authorizer::is_authorized` on the
//!   whole set (the floor without slicing);
//! - `rsp in-process sliced`: the tenant's compiled snapshot with the
//!   index, as [`rsp_policies::PolicyService`] evaluates it.
//!
//! The same decisions through HTTP are `api/http/benches/authz_http.rs`.
//! Single-threaded, sequential; `BENCH_REQUESTS` (default 20000) requests
//! per measurement after a warm-up. Prints figures, asserts nothing about
//! speed.
//!
//! Run: `cargo bench -p rsp-policies --bench decisions`.

#[path = "support/workload.rs"]
mod workload;

use std::str::FromStr;
use std::time::Instant;

use rsp_consensus::testing::TestCluster;
use rsp_policies::cedar_policy::EntityUid;
use rsp_policies::{DecisionRequest, PolicyConfig, PolicyService};

use workload::{TENANT, entities, figures, policies, request_parts, row};

fn main() {
    let requests = workload::requests();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    workload::heading("decisions in process", requests);
    rt.block_on(async {
        let cluster = TestCluster::start(1).await.expect("cluster");
        let service =
            PolicyService::new(cluster.nodes[0].consensus.clone(), PolicyConfig::default());
        let ctx = workload::context();
        for n in [10usize, 100, 1000] {
            service
                .store()
                .put_policies(TENANT, policies(n), None, "bench")
                .await
                .expect("policies");
            service
                .store()
                .put_entities(TENANT, entities(n), "bench")
                .await
                .expect("entities");

            row(
                "cedar whole set",
                n,
                &workload::cedar_whole_set(n, requests, &ctx),
            );

            let snapshot = service
                .snapshot(TENANT, Instant::now())
                .await
                .expect("snapshot");
            let dreqs: Vec<DecisionRequest> = (0..1000)
                .map(|k| {
                    let (p, r) = request_parts(n, k);
                    DecisionRequest {
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
        }
    });
}
