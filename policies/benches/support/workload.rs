//! The decisions benchmarks' workload, shared by the in-process bench
//! (`policies/benches/decisions.rs`) and the HTTP one
//! (`api/http/benches/authz_http.rs`, which includes this file by path):
//! a policy set of `n` policies, its entities, the requests, and how
//! figures are computed and printed.
//!
//! Policies: 80% `principal == User` with a condition, 10% `principal in
//! Group` (ten users per group), 10% forbids on one document for another
//! action. Request `k` names one user and its own document.

use std::time::Duration;

use serde_json::json;

pub const TENANT: &str = "bench";

pub fn policies(n: usize) -> String {
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

pub fn entities(n: usize) -> serde_json::Value {
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
pub fn request_parts(n: usize, k: usize) -> (String, String) {
    let owned: Vec<usize> = (0..n).filter(|i| i % 10 >= 2).collect();
    let i = owned[(k * 7919) % owned.len()];
    (format!(r#"User::"u{i}""#), format!(r#"Doc::"d{i}""#))
}

pub struct Figures {
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

pub fn figures(mut lat: Vec<Duration>, total: Duration) -> Figures {
    lat.sort();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    Figures {
        per_sec: lat.len() as f64 / total.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

pub fn row(label: &str, n: usize, f: &Figures) {
    println!(
        "{label:<22} {n:>6} {:>12.0} {:>10.1} {:>10.1}",
        f.per_sec,
        f.p50.as_secs_f64() * 1e6,
        f.p99.as_secs_f64() * 1e6
    );
}

/// `BENCH_REQUESTS` (default 20000): requests per measurement.
pub fn requests() -> usize {
    std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// The heading of a figures table, with the load average at start.
pub fn heading(what: &str, requests: usize) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{what}, sequential, {requests} requests per row, latencies in µs (load average at start: {})",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<22} {:>6} {:>12} {:>10} {:>10}",
        "path", "n", "decisions/s", "p50", "p99"
    );
}

/// Cedar alone on the whole set (the floor without slicing): figures of
/// `requests` sequential decisions.
pub fn cedar_whole_set(n: usize, requests: usize, ctx: &serde_json::Value) -> Figures {
    use std::str::FromStr;
    use std::time::Instant;

    use rsp_policies::cedar_policy::{
        Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request,
    };

    let set = PolicySet::from_str(&policies(n)).expect("policies");
    let ents = Entities::from_json_value(entities(n), None).expect("entities");
    let authorizer = Authorizer::new();
    let prepared: Vec<Request> = (0..1000)
        .map(|k| {
            let (p, r) = request_parts(n, k);
            Request::new(
                EntityUid::from_str(&p).expect("uid"),
                EntityUid::from_str(r#"Action::"view""#).expect("uid"),
                EntityUid::from_str(&r).expect("uid"),
                Context::from_json_value(ctx.clone(), None).expect("context"),
                None,
            )
            .expect("request")
        })
        .collect();
    for k in 0..requests / 10 {
        let _ = authorizer.is_authorized(&prepared[k % 1000], &set, &ents);
    }
    let mut allowed = 0usize;
    let mut lat = Vec::with_capacity(requests);
    let start = Instant::now();
    for k in 0..requests {
        let t = Instant::now();
        let r = authorizer.is_authorized(&prepared[k % 1000], &set, &ents);
        lat.push(t.elapsed());
        allowed += (r.decision() == Decision::Allow) as usize;
    }
    assert!(allowed > requests / 2, "requests should mostly be allowed");
    figures(lat, start.elapsed())
}

/// The context every request carries.
pub fn context() -> serde_json::Value {
    json!({"mfa": true, "level": 1})
}
