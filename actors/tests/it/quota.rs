//! Tenant quotas, rate limits and the placeholder policy evaluator.

use std::collections::BTreeMap;
use std::time::Duration;

use rsp_actors::{ActorError, Quota, RateRule, TenantLimits};

use crate::support::{config, metric, start};

const MIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_past_the_session_quota_is_refused_until_one_is_revoked() {
    let mut cfg = config();
    cfg.tenant_limits.insert(
        "small".into(),
        TenantLimits {
            max_sessions: 3,
            ..TenantLimits::default()
        },
    );
    let nodes = start(1, cfg).await;
    let small = nodes.rt(1).tenant("small").await.expect("tenant");
    let big = nodes.rt(1).tenant("big").await.expect("tenant");
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(
            small
                .sessions()
                .create("u", BTreeMap::new(), MIN, MIN)
                .await
                .expect("create"),
        );
    }
    match small
        .sessions()
        .create("u", BTreeMap::new(), MIN, MIN)
        .await
    {
        Err(ActorError::QuotaExceeded {
            quota: Quota::Sessions,
            limit: 3,
            ..
        }) => {}
        other => panic!("expected the sessions quota, got {other:?}"),
    }
    big.sessions()
        .create("u", BTreeMap::new(), MIN, MIN)
        .await
        .expect("other tenant unaffected");
    small.sessions().revoke(&made[0].id).await.expect("revoke");
    // The slot frees once this node's session manager has seen the deletion.
    let mut refusals = 1.0;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match small
            .sessions()
            .create("u", BTreeMap::new(), MIN, MIN)
            .await
        {
            Ok(_) => break,
            Err(ActorError::QuotaExceeded { .. }) => refusals += 1.0,
            Err(e) => panic!("{e}"),
        }
        assert!(std::time::Instant::now() < deadline, "no slot freed up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let labels = [("tenant", "small"), ("quota", "sessions")];
    let counted = metric(
        nodes.registry(1),
        "rsp_tenant_quota_rejections_total",
        &labels,
    );
    assert_eq!(counted, refusals);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_tenant_rate_are_refused_with_a_retry_after() {
    let mut cfg = config();
    cfg.limits = TenantLimits {
        requests_per_sec: 1.0,
        request_burst: 5.0,
        ..TenantLimits::default()
    };
    let nodes = start(1, cfg).await;
    let h = nodes.rt(1).tenant("acme").await.expect("tenant");
    let mut refused = None;
    for i in 0..6 {
        match h.rate_limits().check("other", "k").await {
            Ok(()) => assert!(i < 5, "call {i} admitted past the burst"),
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    match refused {
        Some((
            5,
            ActorError::QuotaExceeded {
                quota: Quota::RequestsPerSecond,
                retry_after: Some(r),
                ..
            },
        )) => {
            assert!(r > Duration::ZERO && r <= Duration::from_secs(1));
        }
        other => panic!("expected the requests quota on call 5, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_three_nodes_enforces_its_share_of_a_rate_limit() {
    let mut cfg = config();
    cfg.rate_limits.rules.insert(
        "login".into(),
        RateRule {
            per_sec: 0.3,
            burst: 9.0,
        },
    );
    let nodes = start(3, cfg).await;
    let mut total = 0;
    for id in 1..=3 {
        let h = nodes.rt(id).tenant("acme").await.expect("tenant");
        let mut admitted = 0;
        loop {
            match h.rate_limits().check("login", "192.0.2.7").await {
                Ok(()) => admitted += 1,
                Err(ActorError::RateLimited { kind, retry_after }) => {
                    assert_eq!(kind, "login");
                    assert!(retry_after > Duration::ZERO);
                    break;
                }
                Err(e) => panic!("{e}"),
            }
            assert!(
                admitted <= 9,
                "node {id} admitted more than the whole burst"
            );
        }
        assert_eq!(admitted, 3, "node {id} share of a burst of 9 over 3 nodes");
        total += admitted;
        // Another key has its own bucket.
        h.rate_limits()
            .check("login", "192.0.2.8")
            .await
            .expect("other key");
    }
    assert_eq!(total, 9);
    assert_eq!(
        metric(
            nodes.registry(1),
            "rsp_tenant_rate_limited_total",
            &[("tenant", "acme"), ("kind", "login")]
        ),
        1.0
    );
}
