//! Waiting on conditions with a deadline, never on bare sleeps.
//!
//! A condition is an async closure that returns `Ok(value)` once it holds and
//! an error describing what it saw otherwise; the last such description ends
//! up in the timeout error, so a failing test says what it was waiting for
//! and what it last observed.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::time::Instant;

/// How often conditions are re-checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Ok` or `timeout` passes. Each attempt is
/// itself bounded by the remaining time.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut last: Option<anyhow::Error> = None;
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => last = Some(e),
            Err(_) => {}
        }
        if Instant::now() + POLL_INTERVAL >= deadline {
            let seen = last.map_or_else(
                || "nothing (attempt timed out)".to_string(),
                |e| format!("{e:#}"),
            );
            return Err(anyhow!(
                "timed out after {timeout:?} waiting for {what}; last seen: {seen}"
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::bail;

    #[tokio::test]
    async fn returns_the_value_once_the_condition_holds() {
        let mut n = 0;
        let got = wait_until(Duration::from_secs(2), "n to reach 3", || {
            n += 1;
            let v = n;
            async move { if v >= 3 { Ok(v) } else { bail!("n = {v}") } }
        })
        .await
        .expect("holds");
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn timeout_names_the_condition_and_last_observation() {
        let err = wait_until(Duration::from_millis(200), "the impossible", || async {
            bail!("still 0") as Result<()>
        })
        .await
        .expect_err("times out");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("the impossible") && msg.contains("still 0"),
            "{msg}"
        );
    }
}
