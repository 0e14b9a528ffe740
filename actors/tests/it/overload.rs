//! Bounded mailboxes: a tenant at its in-flight limit is refused at once,
//! and other tenants are served meanwhile.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rsp_actors::{ActorError, ChildKind, Fault, TenantLimits};

use crate::support::{config, metric, start, wait_for};

const MIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_tenant_answers_overloaded_at_once_while_another_tenant_is_served() {
    let mut cfg = config();
    cfg.limits = TenantLimits {
        max_in_flight: 8,
        ..TenantLimits::default()
    };
    let nodes = start(1, cfg).await;
    let rt = nodes.rt(1);
    let alpha = rt.tenant("alpha").await.expect("alpha");
    let beta = rt.tenant("beta").await.expect("beta");
    let existing = alpha
        .sessions()
        .create("a", BTreeMap::new(), MIN, MIN)
        .await
        .expect("create");

    alpha
        .inject_fault(ChildKind::Sessions, Fault::Stall(Duration::from_secs(2)))
        .expect("stall");
    let mut stuck = Vec::new();
    for _ in 0..8 {
        let h = alpha.clone();
        stuck.push(tokio::spawn(async move {
            h.sessions().create("a", BTreeMap::new(), MIN, MIN).await
        }));
    }
    wait_for(
        "alpha at its in-flight limit",
        Duration::from_secs(5),
        || async { (alpha.in_flight() == 8).then_some(()) },
    )
    .await;

    let t = Instant::now();
    let refused = alpha
        .sessions()
        .create("a", BTreeMap::new(), MIN, MIN)
        .await;
    let refused_in = t.elapsed();
    let t = Instant::now();
    let refused_read = alpha.sessions().validate(&existing.id).await;
    let refused_read_in = t.elapsed();
    let t = Instant::now();
    let s = beta
        .sessions()
        .create("b", BTreeMap::new(), MIN, MIN)
        .await
        .expect("beta create");
    beta.sessions()
        .validate(&s.id)
        .await
        .expect("beta validate");
    let beta_in = t.elapsed();
    println!(
        "overloaded alpha refused a create in {refused_in:?} and a validate in {refused_read_in:?}; \
         beta create+validate took {beta_in:?}"
    );
    match refused {
        Err(ActorError::Overloaded { retry_after, .. }) => assert!(!retry_after.is_zero()),
        other => panic!("expected Overloaded, got {other:?}"),
    }
    assert!(matches!(refused_read, Err(ActorError::Overloaded { .. })));
    assert!(refused_in < Duration::from_secs(1) && refused_read_in < Duration::from_secs(1));
    assert!(
        beta_in < Duration::from_secs(1),
        "beta slowed to {beta_in:?}"
    );

    for task in stuck {
        task.await
            .expect("task")
            .expect("queued create completes after the stall");
    }
    assert_eq!(alpha.in_flight(), 0);
    assert!(
        metric(
            nodes.registry(1),
            "rsp_tenant_overloaded_total",
            &[("tenant", "alpha")]
        ) >= 2.0
    );
    assert_eq!(
        metric(
            nodes.registry(1),
            "rsp_tenant_overloaded_total",
            &[("tenant", "beta")]
        ),
        0.0
    );
}
