//! The background load of an experiment: writers that put unique keys and
//! readers that read acknowledged keys back linearizably, each through a
//! client that behaves like a real one (it tries another node when one
//! does not answer, until a deadline).
//!
//! Like a real client it also avoids, for a few seconds, a node that did
//! not answer (a paused or cut-off node accepts connections and answers
//! nothing, so without this every worker would keep waiting on it); a node
//! that answered with an error is tried again at once.
//!
//! Every logical request becomes a [`Sample`]; the hypothesis is judged on
//! success rates per time window. A read that answers with anything but the
//! acknowledged value is a safety violation, counted apart from failures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{Cluster, Consistency};

/// Shape of the load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub writers: usize,
    pub readers: usize,
    /// A logical request tries nodes until this passes.
    pub request_deadline: Duration,
    /// One attempt on one node.
    pub attempt_timeout: Duration,
    /// Pause between a worker's requests.
    pub pace: Duration,
    /// How long a node that failed is avoided.
    pub avoid_for: Duration,
    /// Key prefix.
    pub prefix: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            writers: 3,
            readers: 2,
            request_deadline: Duration::from_secs(3),
            attempt_timeout: Duration::from_millis(1000),
            pace: Duration::from_millis(20),
            avoid_for: Duration::from_secs(3),
            prefix: "chaos".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    Write,
    Read,
}

/// One logical request.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub kind: SampleKind,
    /// Since the load started.
    pub start: Duration,
    pub end: Duration,
    pub ok: bool,
    /// A read that returned something other than the acknowledged value.
    pub violation: bool,
}

/// What the load saw once stopped.
#[derive(Debug, Default)]
pub struct LoadLog {
    pub samples: Vec<Sample>,
    /// Acknowledged writes (`key`, `value`).
    pub acked: Vec<(String, String)>,
    /// Descriptions of read violations (first few).
    pub violations: Vec<String>,
}

#[derive(Default)]
struct Shared {
    acked: Mutex<Vec<(String, String)>>,
    violations: Mutex<Vec<String>>,
    /// Nodes to avoid until the given time.
    avoid: Mutex<std::collections::HashMap<u64, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Running load; [`Load::stop`] ends it.
pub struct Load {
    stop: watch::Sender<bool>,
    tasks: JoinSet<Vec<Sample>>,
    shared: Arc<Shared>,
    t0: Instant,
}

enum Attempt {
    Ok(Value),
    NotFound,
    Err,
}

/// One attempt of a request against a node.
type Send = dyn Fn(
        crate::AdminClient,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<crate::ApiResponse>> + std::marker::Send>,
    > + std::marker::Send
    + Sync;

/// Tries nodes in turn, starting at `first` and skipping nodes that failed
/// recently, until a 200/404 or the deadline.
async fn request(
    cluster: &Cluster,
    shared: &Shared,
    opts: &LoadOptions,
    first: usize,
    send: &Send,
) -> Attempt {
    let deadline = Instant::now() + opts.request_deadline;
    let mut turn = first;
    loop {
        let ids = cluster.ids();
        if ids.is_empty() {
            return Attempt::Err;
        }
        let now = Instant::now();
        let healthy: Vec<u64> = {
            let avoid = lock(&shared.avoid);
            ids.iter()
                .copied()
                .filter(|id| avoid.get(id).is_none_or(|until| *until <= now))
                .collect()
        };
        // Everyone avoided: the one whose avoidance ends first.
        let soonest: Vec<u64> = {
            let avoid = lock(&shared.avoid);
            ids.iter()
                .copied()
                .min_by_key(|id| avoid.get(id).copied().unwrap_or(now))
                .into_iter()
                .collect()
        };
        let pool = if healthy.is_empty() {
            &soonest
        } else {
            &healthy
        };
        let id = pool[turn % pool.len()];
        turn += 1;
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Attempt::Err;
        }
        if let Ok(client) = cluster.client(id) {
            let client = client.with_timeout(opts.attempt_timeout.min(left));
            match send(client).await {
                Ok(r) if r.status == 200 => return Attempt::Ok(r.body),
                Ok(r) if r.status == 404 => return Attempt::NotFound,
                // A quick "no" (e.g. 503 during an election): try again soon.
                Ok(_) => {}
                // No answer: avoid this node for a while.
                Err(_) => {
                    lock(&shared.avoid).insert(id, Instant::now() + opts.avoid_for);
                }
            }
        }
        if Instant::now() >= deadline {
            return Attempt::Err;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Load {
    pub fn start(cluster: Arc<Cluster>, opts: LoadOptions) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let t0 = Instant::now();
        let mut tasks = JoinSet::new();
        for w in 0..opts.writers {
            let (cluster, opts, shared, stop_rx) = (
                cluster.clone(),
                opts.clone(),
                shared.clone(),
                stop_rx.clone(),
            );
            tasks.spawn(async move {
                let mut samples = Vec::new();
                let mut n = 0usize;
                while !*stop_rx.borrow() {
                    let key = format!("{}/w{w}/{n}", opts.prefix);
                    let value = format!("v{w}-{n}");
                    n += 1;
                    let start = t0.elapsed();
                    let body = json!({"value": value});
                    let path = format!("/admin/v1/kv/{}", crate::admin::encode_segment(&key));
                    let send = move |c: crate::AdminClient| {
                        let (path, body) = (path.clone(), body.clone());
                        Box::pin(async move { c.put(&path, &body).await }) as _
                    };
                    let outcome = request(&cluster, &shared, &opts, w + n, &send).await;
                    let ok = matches!(outcome, Attempt::Ok(_));
                    if ok {
                        lock(&shared.acked).push((key, value));
                    }
                    samples.push(Sample {
                        kind: SampleKind::Write,
                        start,
                        end: t0.elapsed(),
                        ok,
                        violation: false,
                    });
                    tokio::time::sleep(opts.pace).await;
                }
                samples
            });
        }
        for r in 0..opts.readers {
            let (cluster, opts, shared, stop_rx) = (
                cluster.clone(),
                opts.clone(),
                shared.clone(),
                stop_rx.clone(),
            );
            tasks.spawn(async move {
                let mut samples = Vec::new();
                let mut n = r;
                while !*stop_rx.borrow() {
                    let picked = {
                        let acked = lock(&shared.acked);
                        // Mostly recent writes: they are the ones at risk.
                        let recent = &acked[acked.len().saturating_sub(50)..];
                        recent.choose(&mut rand::rng()).cloned()
                    };
                    let Some((key, value)) = picked else {
                        tokio::time::sleep(opts.pace).await;
                        continue;
                    };
                    n += 1;
                    let start = t0.elapsed();
                    let path = format!(
                        "/admin/v1/kv/{}?consistency={}",
                        crate::admin::encode_segment(&key),
                        Consistency::Linearizable.as_str()
                    );
                    let send = move |c: crate::AdminClient| {
                        let path = path.clone();
                        Box::pin(async move { c.get(&path).await }) as _
                    };
                    let outcome = request(&cluster, &shared, &opts, n, &send).await;
                    let (ok, violation) = match outcome {
                        Attempt::Ok(body) => {
                            let got = body.get("value").and_then(Value::as_str);
                            if got == Some(value.as_str()) {
                                (true, false)
                            } else {
                                let mut v = lock(&shared.violations);
                                if v.len() < 20 {
                                    v.push(format!("{key}: acknowledged {value}, read {got:?}"));
                                }
                                (false, true)
                            }
                        }
                        Attempt::NotFound => {
                            let mut v = lock(&shared.violations);
                            if v.len() < 20 {
                                v.push(format!("{key}: acknowledged {value}, read: not found"));
                            }
                            (false, true)
                        }
                        Attempt::Err => (false, false),
                    };
                    samples.push(Sample {
                        kind: SampleKind::Read,
                        start,
                        end: t0.elapsed(),
                        ok,
                        violation,
                    });
                    let jitter = rand::rng().random_range(0..=opts.pace.as_millis() as u64);
                    tokio::time::sleep(opts.pace + Duration::from_millis(jitter)).await;
                }
                samples
            });
        }
        Self {
            stop,
            tasks,
            shared,
            t0,
        }
    }

    /// When the load started; sample times count from here.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> usize {
        lock(&self.shared.acked).len()
    }

    /// Waits until `n` writes are acknowledged.
    pub async fn wait_acked(&self, n: usize, timeout: Duration) -> Result<()> {
        crate::wait_until(timeout, &format!("{n} acknowledged writes"), || async {
            let seen = self.acked();
            if seen >= n {
                Ok(())
            } else {
                bail!("{seen} acknowledged")
            }
        })
        .await
    }

    /// Stops every worker (each finishes its request in flight).
    pub async fn stop(mut self) -> Result<LoadLog> {
        let _ = self.stop.send(true);
        let mut samples = Vec::new();
        let joined = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(s) = self.tasks.join_next().await {
                samples.extend(s.context("load task failed")?);
            }
            Ok::<(), anyhow::Error>(())
        })
        .await;
        match joined {
            Ok(r) => r?,
            Err(_) => bail!("load workers did not stop in time"),
        }
        samples.sort_by_key(|s| s.start);
        Ok(LoadLog {
            samples,
            acked: lock(&self.shared.acked).clone(),
            violations: lock(&self.shared.violations).clone(),
        })
    }
}

/// Success figures of the samples that started in `[from, to)`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Window {
    pub from_s: f64,
    pub to_s: f64,
    pub requests: usize,
    pub ok: usize,
    pub writes: usize,
    pub writes_ok: usize,
    pub violations: usize,
    pub p99_ms: u64,
}

impl Window {
    pub fn of(samples: &[Sample], from: Duration, to: Duration) -> Self {
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.start >= from && s.start < to)
            .collect();
        let mut lat: Vec<u64> = inside
            .iter()
            .filter(|s| s.ok)
            .map(|s| (s.end - s.start).as_millis() as u64)
            .collect();
        lat.sort_unstable();
        let p99 = if lat.is_empty() {
            0
        } else {
            lat[((lat.len() as f64 * 0.99).ceil() as usize).clamp(1, lat.len()) - 1]
        };
        Window {
            from_s: from.as_secs_f64(),
            to_s: to.as_secs_f64(),
            requests: inside.len(),
            ok: inside.iter().filter(|s| s.ok).count(),
            writes: inside
                .iter()
                .filter(|s| s.kind == SampleKind::Write)
                .count(),
            writes_ok: inside
                .iter()
                .filter(|s| s.kind == SampleKind::Write && s.ok)
                .count(),
            violations: inside.iter().filter(|s| s.violation).count(),
            p99_ms: p99,
        }
    }

    /// Requests started per second.
    pub fn rate(&self) -> f64 {
        let secs = self.to_s - self.from_s;
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// Share of requests that succeeded (1.0 when there were none).
    pub fn success(&self) -> f64 {
        if self.requests == 0 {
            1.0
        } else {
            self.ok as f64 / self.requests as f64
        }
    }
}

/// Reads every acknowledged write back (linearizably, batched in
/// transactions) through any node that answers; returns the ones missing
/// or wrong.
pub async fn lost_writes(
    cluster: &Cluster,
    acked: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<String>> {
    let mut lost = Vec::new();
    for batch in acked.chunks(200) {
        let ops: Vec<Value> = batch
            .iter()
            .map(|(k, _)| json!({"op": "get", "key": k}))
            .collect();
        let txn = json!({"compare": [], "success": ops, "failure": []});
        let body = cluster
            .wait_until(timeout, "a read of the acknowledged writes", || async {
                let mut seen = Vec::new();
                for id in cluster.live_ids() {
                    let client = cluster.client(id)?.with_timeout(Duration::from_secs(5));
                    match client.kv_txn(&txn).await {
                        Ok(r) if r.status == 200 => return Ok(r.body),
                        Ok(r) => seen.push(format!("node {id}: {}", r.status)),
                        Err(e) => seen.push(format!("node {id}: {e:#}")),
                    }
                }
                bail!("{}", seen.join("; "))
            })
            .await?;
        let results = body
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, (key, value)) in batch.iter().enumerate() {
            let got = results
                .get(i)
                .and_then(|r| r.get("kv"))
                .and_then(|kv| kv.get("value"))
                .and_then(Value::as_str);
            if got != Some(value.as_str()) {
                lost.push(format!("{key}: acknowledged {value}, now {got:?}"));
            }
        }
    }
    Ok(lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(start_ms: u64, ok: bool) -> Sample {
        Sample {
            kind: SampleKind::Write,
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(start_ms + 10),
            ok,
            violation: false,
        }
    }

    #[test]
    fn windows_count_samples_by_start_time() {
        let samples = [
            sample(0, true),
            sample(500, false),
            sample(1000, true),
            sample(1500, true),
        ];
        let w = Window::of(&samples, Duration::ZERO, Duration::from_secs(1));
        assert_eq!((w.requests, w.ok), (2, 1));
        assert!((w.success() - 0.5).abs() < 1e-9);
        assert_eq!(w.p99_ms, 10);
        let empty = Window::of(&samples, Duration::from_secs(5), Duration::from_secs(6));
        assert_eq!(empty.success(), 1.0);
    }
}
