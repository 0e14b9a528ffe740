//! From the winning values to [`Settings`]: each value parsed (numbers,
//! addresses, names, URLs, peer routes), defaults filled in, and the rules
//! that span settings (election timeout against heartbeat, distinct
//! listeners).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::layers::Layers;
use super::spec::*;
use super::{
    ConfigError, DEFAULT_DATA_DIR, DEFAULT_HTTP_ADDR, DEFAULT_PEER_ADDR, LogFormat, SamplingRatio,
    Settings,
};

pub(super) fn resolve(l: &Layers) -> Result<Settings, ConfigError> {
    let heartbeat_ms = l.parse(HEARTBEAT_MS, |v| number(v, 1))?.unwrap_or(100);
    let election_timeout_ms = l
        .parse(ELECTION_TIMEOUT_MS, |v| number(v, 1))?
        .unwrap_or(500);
    let settings = Settings {
        data_dir: l
            .path(DATA_DIR)?
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        http_addr: l
            .parse(HTTP_ADDR, socket_addr)?
            .unwrap_or(DEFAULT_HTTP_ADDR),
        public_url: l.parse(PUBLIC_URL, public_url)?,
        peer_addr: l
            .parse(PEER_ADDR, socket_addr)?
            .unwrap_or(DEFAULT_PEER_ADDR),
        peer_advertise_addr: l.parse(PEER_ADVERTISE_ADDR, host_port)?,
        node_id: l.parse(NODE_ID, node_id)?,
        zone: l
            .parse(ZONE, label)?
            .unwrap_or_else(|| "default".to_owned()),
        region: l
            .parse(REGION, label)?
            .unwrap_or_else(|| "default".to_owned()),
        join: l.parse(JOIN, host_port)?,
        learner: l.flag(LEARNER),
        no_bootstrap: l.flag(NO_BOOTSTRAP),
        force_new_cluster: l.flag(FORCE_NEW_CLUSTER),
        tls_cert: l.path(TLS_CERT)?,
        tls_key: l.path(TLS_KEY)?,
        peer_tls_ca: l.path(PEER_TLS_CA)?,
        admin_token_file: l.path(ADMIN_TOKEN_FILE)?,
        kek_file: l.path(KEK_FILE)?,
        kek_command: l.parse(KEK_COMMAND, command_line)?,
        join_token_file: l.path(JOIN_TOKEN_FILE)?,
        log_format: l.parse(LOG_FORMAT, log_format)?.unwrap_or_default(),
        otlp_endpoint: l.parse(OTLP_ENDPOINT, |v| http_url(v).map(|_| v.to_owned()))?,
        otlp_sampling_ratio: l
            .parse(OTLP_SAMPLING_RATIO, sampling_ratio)?
            .unwrap_or_default(),
        peer_routes: peer_routes(l)?,
        snapshot_threshold: l
            .parse(SNAPSHOT_THRESHOLD, |v| number(v, 1))?
            .unwrap_or(10_000),
        heartbeat_ms,
        election_timeout_ms,
        token_rate_limit: l.parse(TOKEN_RATE_LIMIT, |v| number(v, 0))?.unwrap_or(500),
        login_rate_limit: l.parse(LOGIN_RATE_LIMIT, |v| number(v, 0))?.unwrap_or(5),
        tenant_rate_limit: l
            .parse(TENANT_RATE_LIMIT, |v| number(v, 0))?
            .unwrap_or(5_000),
        header_timeout_secs: l
            .parse(HEADER_TIMEOUT_SECS, |v| number(v, 1))?
            .unwrap_or(30),
        max_connections: l
            .parse(MAX_CONNECTIONS, |v| number(v, 1))?
            .unwrap_or(10_000),
        demo: l.flag(DEMO),
    };
    let twice_heartbeat = heartbeat_ms.checked_mul(2);
    if twice_heartbeat.is_none_or(|min| election_timeout_ms <= min)
        || election_timeout_ms.checked_mul(2).is_none()
    {
        let msg =
            format!("{election_timeout_ms} must be more than twice heartbeat-ms ({heartbeat_ms})");
        return Err(ConfigError::new(ELECTION_TIMEOUT_MS.flag, msg));
    }
    if settings.peer_addr == settings.http_addr && settings.peer_addr.port() != 0 {
        let msg = format!("{} is also http-addr", settings.peer_addr);
        return Err(ConfigError::new(PEER_ADDR.flag, msg));
    }
    Ok(settings)
}

fn peer_routes(l: &Layers) -> Result<Vec<(u64, String)>, ConfigError> {
    let Some((items, origin)) = l.list(PEER_ROUTE) else {
        return Ok(Vec::new());
    };
    let mut routes: Vec<(u64, String)> = Vec::with_capacity(items.len());
    for item in items {
        let bad = |msg: String| ConfigError::new(PEER_ROUTE.flag, format!("{msg} ({origin})"));
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| bad(format!("{item:?} is not ID=HOST:PORT")))?;
        let id = number(id.trim(), 1).map_err(bad)?;
        let addr = host_port(addr.trim()).map_err(bad)?;
        if routes.iter().any(|(known, _)| *known == id) {
            return Err(bad(format!("peer {id} is routed twice")));
        }
        routes.push((id, addr));
    }
    Ok(routes)
}

fn number(v: &str, min: u64) -> Result<u64, String> {
    let n: u64 = v
        .parse()
        .map_err(|_| format!("{v:?} is not a whole number"))?;
    if n < min {
        return Err(format!("must be at least {min}, not {n}"));
    }
    Ok(n)
}

/// A node id, or `from-hostname`: the trailing `-N` of the host name plus
/// one (`rsp-0` is node 1), for the pods of a StatefulSet.
fn node_id(v: &str) -> Result<u64, String> {
    if v != "from-hostname" {
        return number(v, 1);
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    ordinal_id(host.trim())
}

fn ordinal_id(host: &str) -> Result<u64, String> {
    host.rsplit_once('-')
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| {
            format!(
                "from-hostname needs a host name ending in -N (a StatefulSet pod's), not {host:?}"
            )
        })
}

fn socket_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| format!("{v:?} is not an IP:PORT address"))
}

/// `HOST:PORT` where HOST is an IP address or a DNS name, PORT not 0.
fn host_port(v: &str) -> Result<String, String> {
    let bad = || format!("{v:?} is not a HOST:PORT address");
    if let Ok(addr) = v.parse::<SocketAddr>() {
        return if addr.port() == 0 {
            Err(bad())
        } else {
            Ok(v.to_owned())
        };
    }
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = host.len() <= 253
        && host.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if port_ok && host_ok {
        Ok(v.to_owned())
    } else {
        Err(bad())
    }
}

fn label(v: &str) -> Result<String, String> {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{v:?} must be a non-empty name without spaces"));
    }
    Ok(v.to_owned())
}

fn command_line(v: &str) -> Result<String, String> {
    if v.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(v.to_owned())
}

fn log_format(v: &str) -> Result<LogFormat, String> {
    match v.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{v:?} is neither `text` nor `json`")),
    }
}

/// A number from 0 to 1.
fn sampling_ratio(v: &str) -> Result<SamplingRatio, String> {
    let r: f64 = v
        .trim()
        .parse()
        .map_err(|_| format!("{v:?} is not a number"))?;
    SamplingRatio::new(r).ok_or_else(|| format!("must be from 0.0 to 1.0, not {v}"))
}

/// An absolute http(s) URL with a host and no credentials.
fn http_url(v: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(v).map_err(|e| format!("{v:?} is not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{v:?} is not an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) || v.chars().any(char::is_whitespace) {
        return Err(format!("{v:?} is not a valid http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold credentials".to_owned());
    }
    Ok(url)
}

/// Normalised, without query, fragment or trailing slash.
fn public_url(v: &str) -> Result<String, String> {
    let url = http_url(v)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{v:?} must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pod_ordinal_gives_the_node_id() {
        assert_eq!(super::ordinal_id("rsp-0"), Ok(1));
        assert_eq!(super::ordinal_id("rsp-eu-west-12"), Ok(13));
        assert!(super::ordinal_id("rsp").is_err());
        assert!(super::ordinal_id("rsp-x").is_err());
        assert_eq!(super::node_id("7"), Ok(7));
        assert!(super::node_id("0").is_err());
    }

    use super::super::test_support::{failing_setting, run};
    use super::*;

    #[test]
    fn each_bad_value_names_its_setting() {
        // (flags, environment, the setting the error must name)
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (&["--http-addr", "nope"], &[], "http-addr"),
            (&[], &[("RSP_HTTP_ADDR", "localhost:80")], "http-addr"),
            (&["--peer-addr", "1.2.3.4"], &[], "peer-addr"),
            (&["--peer-addr", "127.0.0.1:8080"], &[], "peer-addr"),
            (&["--public-url", "ftp://example.com"], &[], "public-url"),
            (
                &["--public-url", "http://example.com/?a=1"],
                &[],
                "public-url",
            ),
            (
                &["--public-url", "http://example.com/#top"],
                &[],
                "public-url",
            ),
            (&["--public-url", "/relative"], &[], "public-url"),
            (
                &["--peer-advertise-addr", "no-port"],
                &[],
                "peer-advertise-addr",
            ),
            (
                &["--peer-advertise-addr", "host:0"],
                &[],
                "peer-advertise-addr",
            ),
            (&["--node-id", "0"], &[], "node-id"),
            (&["--node-id", "one"], &[], "node-id"),
            (&["--zone", ""], &[], "zone"),
            (&["--region", "two words"], &[], "region"),
            (&["--join", "http://host:7080"], &[], "join"),
            (&["--log-format", "xml"], &[], "log-format"),
            (&["--otlp-endpoint", "localhost:4317"], &[], "otlp-endpoint"),
            (
                &["--otlp-sampling-ratio", "1.5"],
                &[],
                "otlp-sampling-ratio",
            ),
            (
                &[],
                &[("RSP_OTLP_SAMPLING_RATIO", "-0.1")],
                "otlp-sampling-ratio",
            ),
            (
                &["--otlp-sampling-ratio", "NaN"],
                &[],
                "otlp-sampling-ratio",
            ),
            (
                &["--otlp-sampling-ratio", "half"],
                &[],
                "otlp-sampling-ratio",
            ),
            (&["--peer-route", "2"], &[], "peer-route"),
            (&["--peer-route", "0=host:1"], &[], "peer-route"),
            (&["--peer-route", "2=host"], &[], "peer-route"),
            (
                &["--peer-route", "2=a:1", "--peer-route", "2=b:1"],
                &[],
                "peer-route",
            ),
            (&["--snapshot-threshold", "0"], &[], "snapshot-threshold"),
            (&["--heartbeat-ms", "0"], &[], "heartbeat-ms"),
            (
                &["--heartbeat-ms", "300", "--election-timeout-ms", "600"],
                &[],
                "election-timeout-ms",
            ),
            (
                &["--election-timeout-ms", "18446744073709551615"],
                &[],
                "election-timeout-ms",
            ),
            (&[], &[("RSP_LEARNER", "maybe")], "learner"),
            (&["--data-dir", ""], &[], "data-dir"),
            (
                &["--admin-token-file", "/no/such/dir/token"],
                &[],
                "admin-token-file",
            ),
            (&["--no-such-flag"], &[], "no-such-flag"),
        ];
        for (flags, env, setting) in cases {
            assert_eq!(
                &failing_setting(run(flags, env)),
                setting,
                "{flags:?} {env:?}"
            );
        }
    }

    #[test]
    fn good_values_are_kept_and_normalised() {
        let s = run(
            &[
                "--public-url",
                "https://Id.Example.com/base/",
                "--peer-advertise-addr",
                "node-1.internal:7080",
                "--join",
                "[::1]:7080",
                "--node-id",
                "3",
                "--log-format",
                "json",
                "--otlp-endpoint",
                "http://localhost:4318",
                "--otlp-sampling-ratio",
                "0.1",
            ],
            &[
                ("RSP_NO_BOOTSTRAP", "1"),
                ("RSP_DEMO", "true"),
                ("RSP_JOIN", ""),
            ],
        )
        .expect("valid settings");
        assert_eq!(s.public_url.as_deref(), Some("https://id.example.com/base"));
        assert_eq!(
            s.peer_advertise_addr.as_deref(),
            Some("node-1.internal:7080")
        );
        assert_eq!(s.join.as_deref(), Some("[::1]:7080"));
        assert_eq!(s.node_id, Some(3));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.otlp_endpoint.as_deref(), Some("http://localhost:4318"));
        assert_eq!(s.otlp_sampling_ratio.get(), 0.1);
        assert!(s.no_bootstrap && s.demo);
    }
}
