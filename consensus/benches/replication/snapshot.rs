//! The snapshot phase of the replication benchmark: does a Raft snapshot
//! stall writes? A separate 3-node cluster with a low
//! `--snapshot-threshold` is filled with `BENCH_SNAPSHOT_KEYS` records of
//! 1 KiB, then one client writes to the leader for `BENCH_SNAPSHOT_SECS`
//! while every node snapshots again and again. Each node's
//! `rsp_raft_snapshot_duration_seconds{kind="build"}` is polled every
//! 50 ms, which gives the stretches during which some node was building a
//! snapshot; the writes that overlap one are compared with the others
//! (p50, p99, max). Target: p99 during a snapshot within 2x of p99
//! without.

use super::*;

const FILL_VALUE: usize = 1024;
const FILL_CLIENTS: usize = 32;

/// One write of the measured client: when it started (since the phase
/// began) and how long it took.
struct Sample {
    start_us: u64,
    took_us: u64,
}

/// `(count, sum)` of node snapshot builds from its metrics.
async fn builds(cluster: &Cluster, id: u64) -> Option<(f64, f64)> {
    let text = cluster.client(id).ok()?.metrics().await.ok()?;
    Some((
        metric(
            &text,
            "rsp_raft_snapshot_duration_seconds_count{kind=\"build\"}",
        )?,
        metric(
            &text,
            "rsp_raft_snapshot_duration_seconds_sum{kind=\"build\"}",
        )?,
    ))
}

async fn put(http: &reqwest::Client, base: &str, token: &str, key: &str, len: usize) -> Result<()> {
    let resp = http
        .put(format!("{base}/admin/v1/kv/{key}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(json!({ "value": "s".repeat(len) }).to_string())
        .send()
        .await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

fn summary(label: &str, mut took: Vec<u64>) {
    took.sort_unstable();
    println!(
        "  {label:<26} {:>7} writes  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        took.len(),
        percentile(&took, 0.50),
        percentile(&took, 0.99),
        took.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
    );
}

pub async fn run(keys: u64, secs: u64, threshold: u64) -> Result<()> {
    println!(
        "\nsnapshot phase: 3 nodes, --snapshot-threshold {threshold}, {keys} records of {FILL_VALUE} B, one client for {secs} s"
    );
    let mut spec = ClusterSpec::new(3)
        .without_proxies()
        .args(["--snapshot-threshold".to_string(), threshold.to_string()]);
    spec.binary = Some(rsp_binary()?);
    spec.join_timeout = CLUSTER_TIMEOUT;
    let cluster = Arc::new(Cluster::start(spec).await.context("starting the cluster")?);
    let leader = cluster.wait_for_leader(CLUSTER_TIMEOUT).await?;
    let base = cluster.http(leader)?;
    let token = cluster.admin_token().to_string();

    let filled = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..FILL_CLIENTS as u64 {
        let (base, token) = (base.clone(), token.clone());
        let http = http_client()?;
        tasks.spawn(async move {
            let mut i = w;
            while i < keys {
                // The fill is not measured: a write refused while the
                // cluster is busy (a leader change under this load) is
                // sent again.
                let key = format!("fill-{i:08}");
                let mut tries = 0;
                while let Err(e) = put(&http, &base, &token, &key, FILL_VALUE).await {
                    tries += 1;
                    if tries == 20 {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                i += FILL_CLIENTS as u64;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a fill worker panicked")??;
    }
    println!("  filled in {:.1} s", filled.elapsed().as_secs_f64());

    // Poll the build counters; a build seen finishing at `t` with `d`
    // seconds added to the sum ran over [t - d - 50 ms, t].
    let began = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (cluster, stop) = (cluster.clone(), stop.clone());
        tokio::spawn(async move {
            let ids = cluster.ids();
            let mut last = Vec::new();
            for id in &ids {
                last.push(builds(&cluster, *id).await.unwrap_or((0.0, 0.0)));
            }
            let mut spans: Vec<(u64, u64, u64)> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                for (n, id) in ids.iter().enumerate() {
                    let Some(now) = builds(&cluster, *id).await else {
                        continue;
                    };
                    if now.0 > last[n].0 {
                        let end = began.elapsed().as_micros() as u64;
                        let took = ((now.1 - last[n].1) * 1e6) as u64 + 50_000;
                        spans.push((*id, end.saturating_sub(took), end));
                    }
                    last[n] = now;
                }
            }
            spans
        })
    };
    let http = http_client()?;
    let mut samples = Vec::new();
    let mut errors = 0u64;
    let mut i = 0u64;
    while began.elapsed() < Duration::from_secs(secs) {
        let start = began.elapsed();
        let key = format!("bench-{}", i % KEYS_PER_CLIENT);
        i += 1;
        match put(&http, &base, &token, &key, VALUE_LEN).await {
            Ok(()) => samples.push(Sample {
                start_us: start.as_micros() as u64,
                took_us: (began.elapsed() - start).as_micros() as u64,
            }),
            Err(_) => errors += 1,
        }
    }
    stop.store(true, Ordering::SeqCst);
    let spans = poller.await.context("the metrics poller panicked")?;
    let (mut during, mut outside) = (Vec::new(), Vec::new());
    for s in &samples {
        let end = s.start_us + s.took_us;
        if spans.iter().any(|(_, a, b)| s.start_us <= *b && end >= *a) {
            during.push(s.took_us);
        } else {
            outside.push(s.took_us);
        }
    }
    let built: Vec<String> = spans
        .iter()
        .map(|(id, a, b)| format!("node {id} {:.0} ms", (b - a) as f64 / 1000.0))
        .collect();
    println!("  snapshots built ({}): {}", spans.len(), built.join(", "));
    summary("during a snapshot build", during.clone());
    summary("outside snapshot builds", outside.clone());
    summary("all", samples.iter().map(|s| s.took_us).collect());
    println!("  errors: {errors}");
    let p99 = |mut v: Vec<u64>| {
        v.sort_unstable();
        percentile(&v, 0.99)
    };
    if !during.is_empty() && !outside.is_empty() {
        let ratio = p99(during) / p99(outside);
        println!(
            "  p99 during / outside: {ratio:.2}x (target at most 2x: {})",
            if ratio <= 2.0 { "met" } else { "NOT met" }
        );
    } else {
        println!(
            "  no write overlapped a snapshot build: raise BENCH_SNAPSHOT_SECS or lower --snapshot-threshold"
        );
    }
    Ok(())
}
