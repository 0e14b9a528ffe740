//! Session expiry is replicated (TTL decided by the leader) and a sliding
//! touch extends the idle timeout, never past the absolute lifetime.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rsp_actors::ActorError;

use crate::support::{config, start, wait_for};

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire_by_ttl_and_validation_slides_the_idle_timeout() {
    let nodes = start(1, config()).await;
    let h = nodes.rt(1).tenant("acme").await.expect("tenant");
    let idle = Duration::from_millis(800);
    let unused = h
        .sessions()
        .create("u1", BTreeMap::new(), idle, HOUR)
        .await
        .expect("create");
    let used = h
        .sessions()
        .create("u2", BTreeMap::new(), idle, HOUR)
        .await
        .expect("create");
    let first_expiry = used.info.expires_at_ms;
    wait_for("both sessions counted", Duration::from_secs(5), || async {
        (h.sessions().count().await.ok() == Some(2)).then_some(())
    })
    .await;

    // Use one session for 2.5 idle timeouts; leave the other alone.
    let start = Instant::now();
    while start.elapsed() < idle * 5 / 2 {
        h.sessions()
            .validate(&used.id)
            .await
            .expect("used session stays valid");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(matches!(
        h.sessions().validate(&unused.id).await,
        Err(ActorError::SessionNotFound)
    ));
    let info = h.sessions().get(&used.id).await.expect("still valid");
    assert!(info.expires_at_ms > first_expiry + 1000, "{info:?}");
    // The idle one's key is gone from storage (expired through the log),
    // not only refused by the validation's own clock check.
    wait_for("expired key removed", Duration::from_secs(5), || async {
        (h.sessions().count().await.ok() == Some(1)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touching_extends_the_idle_timeout_but_not_the_absolute_lifetime() {
    let nodes = start(1, config()).await;
    let h = nodes.rt(1).tenant("acme").await.expect("tenant");
    let s = h
        .sessions()
        .create(
            "u",
            BTreeMap::new(),
            Duration::from_millis(600),
            Duration::from_millis(1500),
        )
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let touched = h.sessions().touch(&s.id).await.expect("touch");
    assert!(
        touched.expires_at_ms >= s.info.expires_at_ms + 250,
        "{touched:?}"
    );
    assert!(touched.expires_at_ms <= s.info.absolute_expires_ms);
    let ended = wait_for(
        "absolute lifetime ends the session",
        Duration::from_secs(5),
        || async {
            match h.sessions().touch(&s.id).await {
                Err(ActorError::SessionNotFound) => Some(Instant::now()),
                Ok(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    None
                }
                Err(e) => panic!("touch failed: {e}"),
            }
        },
    )
    .await;
    let _ = ended;
    let now_ms = nodes.cluster.node(1).clock().now_ms();
    assert!(
        now_ms >= s.info.absolute_expires_ms,
        "ended before its absolute expiry"
    );
}
