//! Clock skew through libfaketime (Debian package `faketime`), honestly or
//! not at all.
//!
//! A node runs under the library when it is started with
//! `LD_PRELOAD=libfaketime.so.1` and `FAKETIME_TIMESTAMP_FILE` naming a
//! file of its own; the file holds the offset (`+30s`), re-read at most once
//! a second (`FAKETIME_CACHE_DURATION=1`), so the skew changes while the
//! node runs. Only the wall clock moves (`FAKETIME_DONT_FAKE_MONOTONIC=1`):
//! Raft's timers run on the monotonic clock, while TTLs and token expiry
//! read the wall clock, which is what a skewed NTP client does to a server.
//!
//! [`prepare`] restarts each node once under the library (before a run) and
//! proves the skew takes effect by reading the HTTP `Date` header a node
//! sends. Without the library every entry point fails with a clear error:
//! there is no simulated skew.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::Cluster;

/// Overrides where the library is looked for.
pub const LIBFAKETIME_ENV: &str = "RSP_CHAOS_LIBFAKETIME";

const TIMESTAMP_FILE_VAR: &str = "FAKETIME_TIMESTAMP_FILE";

const CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// The libfaketime shared object, if installed.
pub fn library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(LIBFAKETIME_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// The library, or an error that says how to get it.
pub fn require() -> Result<PathBuf> {
    library().ok_or_else(|| {
        anyhow!(
            "clock skew needs libfaketime (Debian package `faketime`), which is not installed \
             (looked in {} and ${LIBFAKETIME_ENV}); install it or choose another fault",
            CANDIDATES.join(", ")
        )
    })
}

fn offset_file(cluster: &Cluster, id: u64) -> Result<PathBuf> {
    Ok(cluster.node(id)?.process.spec().dir.join("faketime.rc"))
}

/// True when node `id` was started under libfaketime by [`prepare`].
pub fn is_prepared(cluster: &Cluster, id: u64) -> bool {
    cluster.node(id).is_ok_and(|n| {
        n.process
            .spec()
            .env
            .iter()
            .any(|(k, _)| k == TIMESTAMP_FILE_VAR)
    })
}

/// Moves node `id`'s wall clock by `offset_ms` (whole seconds; 0 resets).
pub fn set_offset(cluster: &Cluster, id: u64, offset_ms: i64) -> Result<()> {
    ensure!(
        is_prepared(cluster, id),
        "node {id} does not run under libfaketime: call faketime::prepare first"
    );
    let path = offset_file(cluster, id)?;
    let secs = offset_ms / 1000;
    std::fs::write(&path, format!("{secs:+}s\n"))
        .with_context(|| format!("writing {}", path.display()))
}

/// Restarts every node under libfaketime (offset 0), one at a time, waiting
/// for an agreed leader after each, then checks on one node that a skew
/// shows in its HTTP `Date` header.
pub async fn prepare(cluster: &Cluster, converge: Duration) -> Result<()> {
    let lib = require()?;
    for id in cluster.ids() {
        if is_prepared(cluster, id) {
            continue;
        }
        let file = offset_file(cluster, id)?;
        std::fs::write(&file, "+0s\n").with_context(|| format!("writing {}", file.display()))?;
        let node = cluster.node(id)?;
        node.process.update_spec(|spec| {
            super::powercut::add_preload(&mut spec.env, &lib);
            spec.env.extend([
                (TIMESTAMP_FILE_VAR.to_string(), file.display().to_string()),
                ("FAKETIME_CACHE_DURATION".to_string(), "1".to_string()),
                ("FAKETIME_DONT_FAKE_MONOTONIC".to_string(), "1".to_string()),
            ]);
        });
        cluster
            .restart(id)
            .await
            .with_context(|| format!("restarting node {id} under libfaketime"))?;
        cluster.wait_for_leader(converge).await?;
    }
    cluster.wait_all_ready(converge).await?;
    let probe = *cluster.ids().first().ok_or_else(|| anyhow!("no nodes"))?;
    verify(cluster, probe).await
}

/// Skews `id` by a day, waits until its `Date` header shows it, resets.
async fn verify(cluster: &Cluster, id: u64) -> Result<()> {
    const DAY: i64 = 86_400;
    set_offset(cluster, id, DAY * 1000)?;
    let url = format!("{}/healthz", cluster.http(id)?);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    let seen = cluster
        .wait_until(
            Duration::from_secs(10),
            "the node's Date header to show the skew",
            || async {
                let resp = http.get(&url).send().await?;
                let date = resp
                    .headers()
                    .get(reqwest::header::DATE)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| anyhow!("no Date header"))?
                    .to_string();
                let node_time = parse_http_date(&date)?;
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)?
                    .as_secs() as i64;
                let skew = node_time - now;
                if (skew - DAY).abs() < 120 {
                    Ok(skew)
                } else {
                    bail!("Date {date}: skew {skew}s")
                }
            },
        )
        .await;
    set_offset(cluster, id, 0)?;
    seen.map(|_| ())
        .context("libfaketime is loaded but had no effect")
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(s: &str) -> Result<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    ensure!(
        parts.len() == 6 && parts[5] == "GMT",
        "not an HTTP date: {s}"
    );
    let day: i64 = parts[1].parse()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])
    .ok_or_else(|| anyhow!("bad month in {s}"))? as i64
        + 1;
    let year: i64 = parts[3].parse()?;
    let hms: Vec<i64> = parts[4]
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    ensure!(hms.len() == 3, "bad time in {s}");
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("parses"),
            784_111_777
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT").expect("parses"),
            0
        );
        assert!(parse_http_date("yesterday").is_err());
    }
}
