//! Supervision: a panicking tenant actor restarts with its state reloaded,
//! other tenants keep serving, and a spent restart budget degrades only the
//! tenant that spent it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rsp_actors::{ActorError, ChildKind, Fault, RestartPolicy, TenantHandle, TenantStatus};

use crate::support::{config, metric, start, wait_for};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Create and validate sessions on `h` until `stop`; count ops and errors.
fn load(h: TenantHandle, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, Vec<String>)> {
    tokio::spawn(async move {
        let mut ops = 0;
        let mut errors = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match h.sessions().create("bob", BTreeMap::new(), MIN, HOUR).await {
                Ok(s) => match h.sessions().validate(&s.id).await {
                    Ok(_) => ops += 1,
                    Err(e) => errors.push(e.to_string()),
                },
                Err(e) => errors.push(e.to_string()),
            }
        }
        (ops, errors)
    })
}

async fn wait_serving(h: &TenantHandle, expect: u64) {
    wait_for(
        "session manager serving again",
        Duration::from_secs(10),
        || async {
            match h.sessions().count().await {
                Ok(n) if n == expect => Some(()),
                _ => None,
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_session_manager_restarts_with_state_reloaded_while_another_tenant_serves() {
    let nodes = start(1, config()).await;
    let rt = nodes.rt(1);
    let alpha = rt.tenant("alpha").await.expect("alpha");
    let beta = rt.tenant("beta").await.expect("beta");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let s = alpha
            .sessions()
            .create("alice", BTreeMap::new(), MIN, HOUR)
            .await
            .expect("create");
        ids.push(s.id);
    }
    wait_serving(&alpha, 5).await;

    let stop = Arc::new(AtomicBool::new(false));
    let beta_load = load(beta.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;

    alpha
        .inject_fault(ChildKind::Sessions, Fault::Panic)
        .expect("inject");
    // A fresh actor counts 0 until it reloads: 5 proves the reload.
    wait_serving(&alpha, 5).await;
    for id in &ids {
        alpha
            .sessions()
            .validate(id)
            .await
            .expect("old session still valid");
    }
    alpha
        .sessions()
        .create("alice", BTreeMap::new(), MIN, HOUR)
        .await
        .expect("create after restart");
    wait_serving(&alpha, 6).await;

    stop.store(true, Ordering::Relaxed);
    let (ops, errors) = beta_load.await.expect("load task");
    println!("beta served {ops} create+validate pairs during alpha's restart");
    assert!(errors.is_empty(), "beta saw errors: {errors:?}");
    assert!(ops > 0, "beta load made no progress");

    let health = rt.health();
    let a = health.tenant("alpha").expect("alpha listed");
    assert_eq!(a.status, TenantStatus::Running);
    assert_eq!(a.restarts, 1);
    let restarts = metric(
        nodes.registry(1),
        "rsp_tenant_actor_restarts_total",
        &[("tenant", "alpha"), ("actor", "sessions")],
    );
    assert_eq!(restarts, 1.0);
    assert_eq!(
        metric(
            nodes.registry(1),
            "rsp_tenant_active_sessions",
            &[("tenant", "alpha")]
        ),
        6.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spending_the_restart_budget_degrades_only_that_tenant() {
    let mut cfg = config();
    cfg.restart = RestartPolicy {
        max_restarts: 2,
        window: MIN,
    };
    let nodes = start(1, cfg).await;
    let rt = nodes.rt(1);
    let alpha = rt.tenant("alpha").await.expect("alpha");
    let beta = rt.tenant("beta").await.expect("beta");
    let served = Arc::new(AtomicU64::new(0));

    for round in 0..3 {
        wait_serving(&alpha, 0).await;
        alpha
            .inject_fault(ChildKind::RateLimiter, Fault::Panic)
            .expect("inject");
        wait_for(
            "rate limiter answers or tenant degrades",
            Duration::from_secs(10),
            || async {
                match alpha.rate_limits().check("login", "10.0.0.1").await {
                    Ok(()) if round < 2 => Some(()),
                    Err(ActorError::Degraded { .. }) if round == 2 => Some(()),
                    _ => None,
                }
            },
        )
        .await;
        beta.sessions()
            .create("bob", BTreeMap::new(), MIN, HOUR)
            .await
            .expect("beta serves");
        served.fetch_add(1, Ordering::Relaxed);
    }

    let health = rt.health();
    let a = health.tenant("alpha").expect("alpha listed");
    assert!(
        matches!(&a.status, TenantStatus::Degraded { reason, .. } if reason.contains("rate_limiter")),
        "{a:?}"
    );
    assert!(!health.all_serving());
    assert!(matches!(
        rt.tenant("alpha").await,
        Err(ActorError::Degraded { .. })
    ));
    assert_eq!(
        metric(
            nodes.registry(1),
            "rsp_tenant_degraded",
            &[("tenant", "alpha")]
        ),
        1.0
    );
    let b = health.tenant("beta").expect("beta listed");
    assert_eq!(b.status, TenantStatus::Running);
    let s = beta
        .sessions()
        .create("bob", BTreeMap::new(), MIN, HOUR)
        .await
        .expect("beta serves");
    beta.sessions()
        .validate(&s.id)
        .await
        .expect("beta validates");
    assert_eq!(served.load(Ordering::Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tenant_is_stopped_and_its_old_handle_starts_it_again() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_millis(300);
    let nodes = start(1, cfg).await;
    let rt = nodes.rt(1);
    let alpha = rt.tenant("alpha").await.expect("alpha");
    let s = alpha
        .sessions()
        .create("alice", BTreeMap::new(), MIN, HOUR)
        .await
        .expect("create");
    wait_for("idle tenant stopped", Duration::from_secs(5), || async {
        rt.health().tenant("alpha").is_none().then_some(())
    })
    .await;
    assert_eq!(metric(nodes.registry(1), "rsp_tenant_running", &[]), 0.0);
    let info = alpha
        .sessions()
        .validate(&s.id)
        .await
        .expect("valid after restart");
    assert_eq!(info.user_id, "alice");
    assert_eq!(
        rt.health().tenant("alpha").map(|t| t.status.clone()),
        Some(TenantStatus::Running)
    );
}
