//! Failed-login lockout holds exactly across nodes attacked concurrently.

use std::time::Duration;

use rsp_actors::{ActorError, LockoutPolicy, TenantHandle};

use crate::support::{config, start};

fn policy() -> LockoutPolicy {
    LockoutPolicy {
        max_failures: 5,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(60),
    }
}

/// One wrong-password attempt; true if it was admitted.
async fn guess(h: TenantHandle, user: &'static str) -> Result<bool, ActorError> {
    match h.lockout().begin_attempt(user).await {
        Ok(guard) => {
            guard.failed().await?;
            Ok(true)
        }
        Err(ActorError::Locked { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_through_three_nodes_at_once_lock_the_account_after_exactly_the_limit() {
    let mut cfg = config();
    cfg.lockout = policy();
    let nodes = start(3, cfg).await;
    let handles = nodes.tenant_everywhere("acme").await;
    let mut tasks = Vec::new();
    for i in 0..15 {
        tasks.push(tokio::spawn(guess(handles[i % 3].clone(), "mallory")));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await.expect("task").expect("attempt") {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5, "attempts admitted across three nodes");
    let status = handles[2]
        .lockout()
        .status("mallory")
        .await
        .expect("status");
    assert_eq!(status.failures, 5);
    assert!(status.locked_until_ms > 0, "{status:?}");
    for h in &handles {
        match h.lockout().begin_attempt("mallory").await {
            Err(ActorError::Locked { until_ms }) => assert_eq!(until_ms, status.locked_until_ms),
            other => panic!("expected Locked, got {:?}", other.map(|_| ())),
        }
    }
    // Other users are unaffected.
    assert!(guess(handles[0].clone(), "alice").await.expect("attempt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_login_clears_failures_and_an_unreported_attempt_counts_as_failed() {
    let mut cfg = config();
    cfg.lockout = policy();
    let nodes = start(1, cfg).await;
    let h = nodes.rt(1).tenant("acme").await.expect("tenant");
    for _ in 0..3 {
        assert!(guess(h.clone(), "carol").await.expect("attempt"));
    }
    let ok = h.lockout().begin_attempt("carol").await.expect("admitted");
    ok.succeeded().await.expect("success");
    assert_eq!(
        h.lockout().status("carol").await.expect("status").failures,
        0
    );

    // Reserved and never reported (the node died mid-check): still counted.
    for _ in 0..5 {
        drop(h.lockout().begin_attempt("carol").await.expect("admitted"));
    }
    assert!(matches!(
        h.lockout().begin_attempt("carol").await,
        Err(ActorError::Locked { .. })
    ));
}
