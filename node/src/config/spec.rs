//! The table of settings: each one's flag, TOML key, environment variable,
//! kind and help, in one line, and the `rsp serve` command built from it.

use std::ffi::OsString;

use clap::{Arg, ArgAction, Command, value_parser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Int,
    /// A decimal number (a TOML float or integer).
    Float,
    Bool,
    List,
}
use Kind::{Bool, Float, Int, List, Text};

/// One setting's three spellings and its help.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    pub(super) flag: &'static str,
    pub(super) key: &'static str,
    pub(super) env: &'static str,
    pub(super) kind: Kind,
    value: &'static str,
    help: &'static str,
}

const fn spec(
    flag: &'static str,
    key: &'static str,
    env: &'static str,
    kind: Kind,
    value: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        flag,
        key,
        env,
        kind,
        value,
        help,
    }
}

/// The settings table: one line per setting, kept as a table by hand.
#[rustfmt::skip]
mod specs {
    use super::{Bool, Float, Int, List, Text, spec, Spec};

    pub const DATA_DIR: Spec = spec("data-dir", "data_dir", "RSP_DATA_DIR", Text, "DIR",
        "Directory for the node's storage [default: ./rsp-data]");
    pub const HTTP_ADDR: Spec = spec("http-addr", "http_addr", "RSP_HTTP_ADDR", Text, "IP:PORT",
        "Address the HTTP(S) API listens on [default: 127.0.0.1:8080]");
    pub const PUBLIC_URL: Spec = spec("public-url", "public_url", "RSP_PUBLIC_URL", Text, "URL",
        "Absolute http(s) URL clients reach this node at [default: from http-addr]");
    pub const PEER_ADDR: Spec = spec("peer-addr", "peer_addr", "RSP_PEER_ADDR", Text, "IP:PORT",
        "Address the Raft peer listener binds [default: 127.0.0.1:7080]");
    pub const PEER_ADVERTISE_ADDR: Spec = spec("peer-advertise-addr",
        "peer_advertise_addr", "RSP_PEER_ADVERTISE_ADDR", Text, "HOST:PORT",
        "Address other members reach this node's peer listener at [default: peer-addr]");
    pub const NODE_ID: Spec = spec("node-id", "node_id", "RSP_NODE_ID", Int, "ID",
        "This node's Raft id, 1 or more; `from-hostname`: the host name's trailing -N plus one (StatefulSet pods)");
    pub const ZONE: Spec = spec("zone", "zone", "RSP_ZONE", Text, "NAME",
        "Failure zone this node runs in [default: default]");
    pub const REGION: Spec = spec("region", "region", "RSP_REGION", Text, "NAME",
        "Region this node runs in [default: default]");
    pub const JOIN: Spec = spec("join", "join", "RSP_JOIN", Text, "HOST:PORT",
        "Peer address of any member of the cluster to join");
    pub const LEARNER: Spec = spec("learner", "learner", "RSP_LEARNER", Bool, "",
        "Join as a non-voting learner");
    pub const NO_BOOTSTRAP: Spec = spec("no-bootstrap",
        "no_bootstrap", "RSP_NO_BOOTSTRAP", Bool, "",
        "Do not start a one-node cluster on an empty data dir; wait to be added by the admin API");
    pub const FORCE_NEW_CLUSTER: Spec = spec("force-new-cluster",
        "force_new_cluster", "RSP_FORCE_NEW_CLUSTER", Bool, "",
        "Restart this surviving member of a cluster that lost its quorum for good as a one-node cluster keeping its data, with a new join token (docs/operations.md); once");
    pub const TLS_CERT: Spec = spec("tls-cert", "tls_cert", "RSP_TLS_CERT", Text, "FILE",
        "PEM certificate chain; with tls-key serves HTTPS and is the node's peer TLS identity");
    pub const TLS_KEY: Spec = spec("tls-key", "tls_key", "RSP_TLS_KEY", Text, "FILE",
        "PEM private key of tls-cert");
    pub const PEER_TLS_CA: Spec = spec("peer-tls-ca",
        "peer_tls_ca", "RSP_PEER_TLS_CA", Text, "FILE",
        "PEM CA certificates; enables mutual TLS on peer links (needs tls-cert and tls-key)");
    pub const ADMIN_TOKEN_FILE: Spec = spec("admin-token-file",
        "admin_token_file", "RSP_ADMIN_TOKEN_FILE", Text, "FILE",
        "File holding the admin token [default: <data-dir>/admin-token]");
    pub const KEK_FILE: Spec = spec("kek-file",
        "kek_file", "RSP_KEK_FILE", Text, "FILE",
        "File holding the key-encryption key (32 bytes, base64) that seals signing keys; the same on every node [default: <data-dir>/kek]");
    pub const KEK_COMMAND: Spec = spec("kek-command",
        "kek_command", "RSP_KEK_COMMAND", Text, "CMD",
        "Shell command whose standard output is the key-encryption key (base64), run at start-up instead of reading kek-file or RSP_KEK (a Vault, KMS or HSM helper)");
    pub const JOIN_TOKEN_FILE: Spec = spec("join-token-file",
        "join_token_file", "RSP_JOIN_TOKEN_FILE", Text, "FILE",
        "File holding the cluster's join token, which every peer message proves; RSP_JOIN_TOKEN gives the value itself [default: <data-dir>/join-token, made by the node that bootstraps]");
    pub const LOG_FORMAT: Spec = spec("log-format", "log_format", "RSP_LOG_FORMAT", Text, "FORMAT",
        "`text` or `json` [default: text]");
    pub const OTLP_ENDPOINT: Spec = spec("otlp-endpoint",
        "otlp_endpoint", "RSP_OTLP_ENDPOINT", Text, "URL",
        "OpenTelemetry collector http(s) URL to export traces to");
    pub const OTLP_SAMPLING_RATIO: Spec = spec("otlp-sampling-ratio",
        "otlp_sampling_ratio", "RSP_OTLP_SAMPLING_RATIO", Float, "RATIO",
        "Share of traces that start on this node to export, 0.0 to 1.0; a caller's sampled traceparent is always followed [default: 1.0]");
    pub const PEER_ROUTE: Spec = spec("peer-route",
        "peer_routes", "RSP_PEER_ROUTES", List, "ID=HOST:PORT",
        "Reach peer ID at HOST:PORT instead of its own address; repeatable (env: comma-separated)");
    pub const SNAPSHOT_THRESHOLD: Spec = spec("snapshot-threshold",
        "snapshot_threshold", "RSP_SNAPSHOT_THRESHOLD", Int, "ENTRIES",
        "Log entries since the last snapshot that trigger a new one [default: 10000]");
    pub const HEARTBEAT_MS: Spec = spec("heartbeat-ms",
        "heartbeat_ms", "RSP_HEARTBEAT_MS", Int, "MS",
        "Raft heartbeat interval [default: 100]");
    pub const ELECTION_TIMEOUT_MS: Spec = spec("election-timeout-ms",
        "election_timeout_ms", "RSP_ELECTION_TIMEOUT_MS", Int, "MS",
        "Least Raft election timeout (the most is 1.5x it); over 2x heartbeat-ms [default: 500]");
    pub const TOKEN_RATE_LIMIT: Spec = spec("token-rate-limit",
        "token_rate_limit", "RSP_TOKEN_RATE_LIMIT", Int, "PER_SEC",
        "Token-endpoint requests per second per client across the cluster, burst 2x; 0 turns it off [default: 500]");
    pub const LOGIN_RATE_LIMIT: Spec = spec("login-rate-limit",
        "login_rate_limit", "RSP_LOGIN_RATE_LIMIT", Int, "PER_SEC",
        "Login-form posts per second per client IP across the cluster, burst 4x; 0 turns it off [default: 5]");
    pub const TENANT_RATE_LIMIT: Spec = spec("tenant-rate-limit",
        "tenant_rate_limit", "RSP_TENANT_RATE_LIMIT", Int, "PER_SEC",
        "Requests per second per tenant across the cluster (token endpoint, logins, sessions), burst 2x; 0 turns it off [default: 5000]");
    pub const HEADER_TIMEOUT_SECS: Spec = spec("header-timeout-secs",
        "header_timeout_secs", "RSP_HEADER_TIMEOUT_SECS", Int, "SECS",
        "Seconds a client has to send a request's headers (and that an idle HTTP/1.1 connection stays open), on both listeners [default: 30]");
    pub const MAX_CONNECTIONS: Spec = spec("max-connections",
        "max_connections", "RSP_MAX_CONNECTIONS", Int, "COUNT",
        "Open connections each listener (HTTP API, peer) keeps at most; one more is closed at once [default: 10000]");
    pub const DEMO: Spec = spec("demo", "demo", "RSP_DEMO", Bool, "",
        "Create the demo tenant, clients and user once, and print their secrets");

    /// Every setting, in the order of `rsp serve --help`.
    pub const SPECS: &[Spec] = &[
        DATA_DIR, HTTP_ADDR, PUBLIC_URL, PEER_ADDR, PEER_ADVERTISE_ADDR, NODE_ID, ZONE, REGION,
        JOIN, LEARNER, NO_BOOTSTRAP, FORCE_NEW_CLUSTER, TLS_CERT, TLS_KEY, PEER_TLS_CA, ADMIN_TOKEN_FILE, KEK_FILE,
        KEK_COMMAND, JOIN_TOKEN_FILE, LOG_FORMAT, OTLP_ENDPOINT, OTLP_SAMPLING_RATIO, PEER_ROUTE,
        SNAPSHOT_THRESHOLD, HEARTBEAT_MS, ELECTION_TIMEOUT_MS, TOKEN_RATE_LIMIT, LOGIN_RATE_LIMIT,
        TENANT_RATE_LIMIT, HEADER_TIMEOUT_SECS, MAX_CONNECTIONS, DEMO,
    ];
}
pub(super) use specs::*;

const AFTER_HELP: &str = "Each flag can also be set by the environment variable shown, or by a \
key in the --config TOML file spelled like the flag with `_` for `-` (`peer_routes = \
[\"2=HOST:PORT\"]` for --peer-route). A flag beats the environment, which beats the file, \
which beats the default.";

impl Spec {
    fn arg(self) -> Arg {
        let arg = Arg::new(self.key)
            .long(self.flag)
            .help(format!("{} [env: {}]", self.help, self.env));
        match self.kind {
            Bool => arg.action(ArgAction::SetTrue),
            List => arg
                .action(ArgAction::Append)
                .value_name(self.value)
                .value_parser(value_parser!(String)),
            Text | Int | Float => arg
                .action(ArgAction::Set)
                .value_name(self.value)
                .value_parser(value_parser!(OsString)),
        }
    }
}

pub(super) fn command() -> Command {
    let config = Arg::new("config")
        .long("config")
        .value_name("FILE")
        .value_parser(value_parser!(OsString))
        .help("TOML file of settings [env: RSP_CONFIG]");
    let serve = SPECS.iter().fold(
        Command::new("serve")
            .about("Run a node of an rsp cluster")
            .after_help(AFTER_HELP)
            .arg(config),
        |cmd, s| cmd.arg(s.arg()),
    );
    let rsp = Command::new("rsp")
        .about("rsp identity platform")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve);
    // `rsp admin` and `rsp completions`, so `rsp --help` lists them too.
    crate::admin_cli::add_subcommands(rsp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_flag_a_key_and_a_variable() {
        let mut flags: Vec<&str> = SPECS.iter().map(|s| s.flag).collect();
        flags.sort_unstable();
        flags.dedup();
        assert_eq!(flags.len(), SPECS.len());
        for s in SPECS.iter().filter(|s| s.flag != "peer-route") {
            assert_eq!(s.key, s.flag.replace('-', "_"));
            assert_eq!(s.env, format!("RSP_{}", s.key.to_uppercase()));
        }
        command().debug_assert();
    }
}
