//! The `set` workload: unique adds, each its own key (`PUT <prefix>/s/<e>`),
//! and reads of the newest elements (one transaction of `get`s, a
//! linearizable read through the log). After the clients stop and the
//! faults are healed, a final read covers every element ever attempted
//! (linearizable `GET`s, many at once).
//!
//! Elements are numbered in the order adds are invoked, so a read covers
//! the range `[from, to]` of the `read_window` newest ones, and the checker
//! knows which elements each read could have seen.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::{OpCtx, WorkloadOptions};
use crate::client::KvClient;
use crate::history::{EventType, Process, Record, Recorder};
use crate::outcome::Outcome;

/// Reads in flight during the final read.
const FINAL_PARALLEL: usize = 32;

pub struct SetWorkload {
    prefix: String,
    read_window: usize,
    next: AtomicI64,
}

impl SetWorkload {
    pub fn new(opts: &WorkloadOptions) -> Self {
        Self {
            prefix: format!("{}/s/", opts.prefix),
            read_window: opts.read_window.max(1),
            next: AtomicI64::new(0),
        }
    }

    fn key(&self, e: i64) -> String {
        format!("{}{e}", self.prefix)
    }

    fn keys(&self, from: i64, to: i64) -> Vec<String> {
        (from..=to).map(|e| self.key(e)).collect()
    }

    /// Elements present, from a read's answers for `from..`.
    fn present(from: i64, values: &[Option<String>]) -> Vec<i64> {
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some())
            .map(|(i, _)| from + i as i64)
            .collect()
    }

    pub async fn step(&self, ctx: &OpCtx<'_>, rng: &mut StdRng) -> EventType {
        let newest = self.next.load(Ordering::Relaxed) - 1;
        if newest >= 0 && rng.random_bool(0.2) {
            let to = newest;
            let from = (to - self.read_window as i64 + 1).max(0);
            ctx.invoke("read", None, json!({"from": from, "to": to}));
            let outcome = ctx.client.get_many(&self.keys(from, to)).await;
            return ctx.complete("read", None, &outcome, |values| {
                json!(Self::present(from, values))
            });
        }
        let e = self.next.fetch_add(1, Ordering::Relaxed);
        ctx.invoke("add", None, json!(e));
        let outcome = ctx.client.write(&self.key(e), &e.to_string()).await;
        ctx.complete("add", None, &outcome, |_| json!(e))
    }

    /// Reads every element ever attempted with linearizable `GET`s (many at
    /// once, each through whichever node answers: not through the write
    /// path, so a bug there cannot fake the final read); records one
    /// `final-read` (`fail` when it could not finish in `timeout`, which
    /// leaves the check unknown).
    pub async fn final_read(&self, recorder: &Recorder, clients: &[KvClient], timeout: Duration) {
        let process = Process::Named("final".to_string());
        let last = self.next.load(Ordering::Relaxed) - 1;
        recorder.record(
            Record::new(process.clone(), EventType::Invoke, "final-read")
                .value(json!({"from": 0, "to": last})),
        );
        let deadline = Instant::now() + timeout;
        let mut present = Vec::new();
        let mut error = None;
        let elements: Vec<i64> = (0..=last).collect();
        'batches: for batch in elements.chunks(FINAL_PARALLEL) {
            let mut tasks = tokio::task::JoinSet::new();
            for e in batch {
                let (e, key, clients) = (*e, self.key(*e), clients.to_vec());
                tasks.spawn(async move {
                    (e, read_anywhere(&clients, &key, e as usize, deadline).await)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok((e, Ok(true))) => present.push(e),
                    Ok((_, Ok(false))) => {}
                    Ok((e, Err(why))) => {
                        error = Some(format!("final read incomplete at element {e}: {why}"));
                        break 'batches;
                    }
                    Err(join) => {
                        error = Some(format!("final read task failed: {join}"));
                        break 'batches;
                    }
                }
            }
        }
        present.sort_unstable();
        let done = match error {
            None => Record::new(process, EventType::Ok, "final-read").value(Value::from(present)),
            Some(e) => Record::new(process, EventType::Fail, "final-read").error(e),
        };
        recorder.record(done);
    }
}

/// Whether `key` exists, asking the nodes in turn (from `first`) until one
/// answers or the deadline passes.
async fn read_anywhere(
    clients: &[KvClient],
    key: &str,
    first: usize,
    deadline: Instant,
) -> Result<bool, String> {
    if clients.is_empty() {
        return Err("no clients".to_string());
    }
    let mut turn = first;
    loop {
        let client = &clients[turn % clients.len()];
        turn += 1;
        match client.read(key).await {
            Outcome::Ok(v) => return Ok(v.is_some()),
            Outcome::Fail(e) | Outcome::Info(e) => {
                if Instant::now() >= deadline {
                    return Err(format!("node {}: {e}", client.node));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_the_elements_they_found() {
        let values = vec![Some("5".to_string()), None, Some("7".to_string())];
        assert_eq!(SetWorkload::present(5, &values), vec![5, 7]);
        let w = SetWorkload::new(&WorkloadOptions {
            prefix: "run1".into(),
            ..WorkloadOptions::default()
        });
        assert_eq!(
            w.keys(3, 4),
            vec!["run1/s/3".to_string(), "run1/s/4".to_string()]
        );
    }
}
