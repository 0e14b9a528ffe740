//! The load generator of the HTTP benchmarks (`oauth.rs`, `saml_sso.rs`):
//! settings from the environment, a lean keep-alive HTTP/1.1 connection on
//! hyper's connection API, concurrent workers that loop a [`Workload`] for
//! a warm-up and a measured window, the figures of a run, and the
//! per-core rate of a CPU-bound operation (the ceilings the figures are
//! set beside).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A whole number from the environment, or `default` when unset.
pub fn env_u64(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v} is not a whole number")),
        _ => Ok(default),
    }
}

/// Whether `value` is one of the comma-separated values of `var` (all
/// are, when it is unset).
pub fn selected(var: &str, value: &str) -> bool {
    match std::env::var(var) {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|v| v.trim() == value),
        _ => true,
    }
}

pub struct Settings {
    pub measure: Duration,
    pub warmup: Duration,
    pub clients: usize,
}

impl Settings {
    /// `BENCH_SECS`, `BENCH_WARMUP_SECS` and `BENCH_CLIENTS`, with these
    /// defaults.
    pub fn from_env(secs: u64, warmup_secs: u64, clients: u64) -> Result<Settings> {
        Ok(Settings {
            measure: Duration::from_secs(env_u64("BENCH_SECS", secs)?.max(1)),
            warmup: Duration::from_secs(env_u64("BENCH_WARMUP_SECS", warmup_secs)?),
            clients: env_u64("BENCH_CLIENTS", clients)?.max(1) as usize,
        })
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One load worker's keep-alive HTTP/1.1 connection to one server, on
/// hyper's connection API: no pool, no URL parsing per request, so the load
/// generator takes as little as it can of the CPU it shares with the system
/// under test (as `wrk` would). Reconnects after a failed request.
pub struct LoadConn {
    addr: String,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl LoadConn {
    /// `base` is `http://host:port`.
    pub fn new(base: &str) -> Result<LoadConn> {
        let addr = base
            .strip_prefix("http://")
            .with_context(|| format!("{base} is not an http:// URL"))?
            .trim_end_matches('/')
            .to_string();
        Ok(LoadConn { addr, sender: None })
    }

    /// `POST {path}` with a form body; the status and the whole body.
    pub async fn post(
        &mut self,
        path: &str,
        authorization: String,
        body: String,
    ) -> Result<(StatusCode, Bytes)> {
        self.send(post_form(path, authorization, body)?).await
    }

    /// Send `request` (its `Host` is this connection's); the status and
    /// the whole body.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, self.try_send(request))
            .await
            .unwrap_or_else(|_| Err(anyhow!("no answer in {REQUEST_TIMEOUT:?}")));
        if answer.is_err() {
            self.sender = None;
        }
        answer
    }

    async fn try_send(&mut self, mut request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().context("no connection")?;
        sender.ready().await?;
        request
            .headers_mut()
            .insert(hyper::header::HOST, self.addr.parse()?);
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// `POST {path}` with `Authorization` and a form body.
pub fn post_form(path: &str, authorization: String, body: String) -> Result<Request<Full<Bytes>>> {
    Ok(Request::post(path)
        .header(hyper::header::AUTHORIZATION, authorization)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(body)))?)
}

/// One kind of request, made again and again by every worker.
pub trait Workload: Clone + Send + Sync + 'static {
    /// What checking the answer needs to know of its request.
    type Sent: Send;
    /// The next request (its `Host` is set by the connection).
    fn request(&self) -> Result<(Request<Full<Bytes>>, Self::Sent)>;
    /// `Ok` when the answer is what the workload counts.
    fn check(&self, sent: Self::Sent, status: StatusCode, body: &[u8]) -> Result<(), String>;
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

pub struct LoadResult {
    pub per_sec: f64,
    /// CPU seconds this process used in the measured window (load
    /// generator included), per second of it: how many cores it had.
    pub cores_used: f64,
    /// The same for the whole machine (every process).
    pub machine_cores: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub ok: usize,
    pub errors: u64,
    pub first_error: Option<String>,
}

pub fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The median of `values` (NaN when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// `s.clients` workers loop `work` for `warmup + measure`; only requests
/// started in the measured window count. Worker `w` sends its `i`-th
/// request to `targets[(w + i) % len]`.
pub async fn run_load<W: Workload>(
    work: &W,
    targets: &[String],
    s: &Settings,
) -> Result<LoadResult> {
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + s.warmup;
    let end = measure_from + s.measure;
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        (process_cpu_secs(), machine_cpu_secs())
    });
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..s.clients {
        let work = work.clone();
        let mut conns = targets
            .iter()
            .map(|t| LoadConn::new(t))
            .collect::<Result<Vec<_>>>()?;
        tasks.spawn(async move {
            let mut stats = WorkerStats::default();
            tokio::time::sleep_until(start.into()).await;
            let mut i = 0usize;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let n = conns.len();
                let conn = &mut conns[(worker + i) % n];
                i += 1;
                let outcome = match work.request() {
                    Ok((request, expect)) => match conn.send(request).await {
                        Ok((status, body)) => work.check(expect, status, &body),
                        Err(e) => Err(format!("{e:#}")),
                    },
                    Err(e) => Err(format!("{e:#}")),
                };
                if sent < measure_from {
                    continue;
                }
                match outcome {
                    Ok(()) => stats.latencies_us.push(sent.elapsed().as_micros() as u64),
                    Err(e) => {
                        stats.errors += 1;
                        stats.first_error.get_or_insert(e);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            stats
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.context("a load worker panicked")?;
        all.extend(stats.latencies_us);
        errors += stats.errors;
        if first_error.is_none() {
            first_error = stats.first_error;
        }
    }
    let (cpu, machine) = cpu_at_start.await.unwrap_or((f64::NAN, f64::NAN));
    let (cpu, machine) = (process_cpu_secs() - cpu, machine_cpu_secs() - machine);
    let window = measure_from.elapsed();
    all.sort_unstable();
    Ok(LoadResult {
        per_sec: all.len() as f64 / window.as_secs_f64(),
        cores_used: cpu / window.as_secs_f64(),
        machine_cores: machine / window.as_secs_f64(),
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        ok: all.len(),
        errors,
        first_error,
    })
}

/// CPU seconds (user and system) this process has used, all threads
/// (`/proc/self/stat`, in Linux's USER_HZ of 100); NaN elsewhere.
pub fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name's `)`: state is field 3, utime 14 and
    // stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// CPU seconds every process of the machine has used, not idle or
/// waiting for IO (`/proc/stat`, USER_HZ of 100); NaN elsewhere.
pub fn machine_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return f64::NAN;
    };
    // `cpu  user nice system idle iowait irq softirq steal ...`
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    if ticks.len() < 8 {
        return f64::NAN;
    }
    (ticks.iter().sum::<f64>() - ticks[3] - ticks[4]) / 100.0
}

/// A rate and the cores the process had while it was measured.
pub struct Rate {
    pub per_sec: f64,
    /// CPU seconds of this process per second of the measurement.
    pub cores_used: f64,
    /// The same for the whole machine.
    pub machine_cores: f64,
}

/// Runs the operation `make` gives on one thread per core at once for
/// `secs`: operations per second, all threads together.
pub fn per_core_rate<F>(secs: Duration, what: &str, make: impl Fn() -> F) -> Result<f64>
where
    F: FnMut() + Send + 'static,
{
    Ok(per_core_rate_cpu(secs, what, make)?.per_sec)
}

/// [`per_core_rate`], with the cores the process had meanwhile.
pub fn per_core_rate_cpu<F>(secs: Duration, what: &str, make: impl Fn() -> F) -> Result<Rate>
where
    F: FnMut() + Send + 'static,
{
    let (cpu, machine) = (process_cpu_secs(), machine_cpu_secs());
    let start = Instant::now();
    let handles: Vec<_> = (0..cores())
        .map(|_| {
            let mut op = make();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed() < secs {
                    op();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.join().map_err(|_| anyhow!("a {what} thread panicked"))?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Rate {
        per_sec: total as f64 / elapsed,
        cores_used: (process_cpu_secs() - cpu) / elapsed,
        machine_cores: (machine_cpu_secs() - machine) / elapsed,
    })
}
