//! The token endpoint's per-client rate limit: a client past its bucket
//! gets 429 `too_many_requests` with `Retry-After` in RFC 6749's JSON
//! format, other clients keep being served, and the limit is shared across
//! the cluster (each node enforces its share) rather than multiplied by
//! the number of nodes. A wrong secret is refused before the limit is
//! consulted, so an attacker cannot drain a client's budget by naming it.

use crate::support;

use std::time::Duration;

use axum::http::StatusCode;
use rsp_actors::{KIND_TOKEN, RateRule, RuntimeConfig};
use support::*;

/// `nodes` nodes whose runtimes allow `burst` token requests per client
/// across the cluster and refill at one every 100 s (nothing refills
/// during a test).
async fn start_limited(nodes: usize, burst: f64) -> Env {
    let mut env = start(nodes).await;
    env.with_runtimes(|| {
        let mut config = RuntimeConfig::default();
        config.rate_limits.rules.insert(
            KIND_TOKEN.to_string(),
            RateRule {
                per_sec: 0.01,
                burst,
            },
        );
        config
    })
    .await;
    env.tenant("acme").await;
    env
}

async fn service(env: &Env, id: &str) -> TestClient {
    env.client(
        "acme",
        ClientSpec::new(id, "client_secret_basic", &["client_credentials"]),
    )
    .await
}

#[tokio::test]
async fn a_client_over_its_token_rate_gets_429_and_other_clients_do_not() {
    let env = start_limited(1, 3.0).await;
    let svc = service(&env, "svc").await;
    let other = service(&env, "other").await;
    for i in 0..3 {
        let a = env.client_credentials("acme", &svc, "").await;
        assert_eq!(a.status, StatusCode::OK, "request {i}: {:?}", a.body);
    }
    let limited = env.client_credentials("acme", &svc, "").await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:?}",
        limited.body
    );
    assert_eq!(limited.error(), "too_many_requests");
    assert!(!limited.str("error_description").is_empty());
    let retry: u64 = limited
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry >= 1, "{retry}");
    assert_eq!(
        limited.headers.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );

    let a = env.client_credentials("acme", &other, "").await;
    assert_eq!(a.status, StatusCode::OK, "another client: {:?}", a.body);
}

#[tokio::test]
async fn a_wrong_secret_does_not_spend_the_clients_budget() {
    let env = start_limited(1, 2.0).await;
    let svc = service(&env, "svc").await;
    let forged = TestClient {
        secret: Some("not-the-secret".into()),
        ..svc.clone()
    };
    for _ in 0..10 {
        let a = env.client_credentials("acme", &forged, "").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{:?}", a.body);
        assert_eq!(a.error(), "invalid_client");
    }
    for i in 0..2 {
        let a = env.client_credentials("acme", &svc, "").await;
        assert_eq!(a.status, StatusCode::OK, "request {i}: {:?}", a.body);
    }
}

#[tokio::test]
async fn the_limit_holds_across_nodes_instead_of_multiplying() {
    // Burst 6 across 3 nodes: each node admits its share (2), so requests
    // spread over every node get 6 in all, not 18.
    let env = start_limited(3, 6.0).await;
    env.settle().await;
    let svc = service(&env, "svc").await;
    let mut ok = 0;
    for round in 0..6 {
        for node in 0..3 {
            let a = env
                .form_on(
                    node,
                    "acme",
                    "/token",
                    Some(&svc.basic()),
                    &[("grant_type", "client_credentials")],
                )
                .await;
            match a.status {
                StatusCode::OK => ok += 1,
                StatusCode::TOO_MANY_REQUESTS => assert_eq!(a.error(), "too_many_requests"),
                s => panic!("round {round} node {node}: {s} {:?}", a.body),
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        (4..=8).contains(&ok),
        "18 requests over 3 nodes against a cluster-wide burst of 6 admitted {ok}"
    );
}
