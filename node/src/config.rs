//! Settings for `rsp serve`.
//!
//! Every setting has three spellings: a flag (`--data-dir`), an environment
//! variable (`RSP_DATA_DIR`) and a key in the TOML file named by `--config` /
//! `RSP_CONFIG` (`data_dir`). A flag beats the environment, which beats the
//! file, which beats the built-in default. All three spellings come from one
//! table, `SPECS`, so no setting can lack one of them.
//!
//! [`load_from`] checks everything (syntax, cross-setting rules, the data
//! directory's permissions, the PEM files) before start-up touches the disk,
//! and itself only reads: it never creates or changes a file. [`load_or_exit`]
//! turns a failure into one line on stderr and exit code 2.
//!
//! Not here: loading TLS material into rustls types, creating the data
//! directory or generating the admin token. Start-up does those with the
//! paths checked here. Relative paths are relative to the working directory,
//! wherever they were given. An empty `RSP_*` variable counts as unset;
//! boolean variables take `true`/`false` (or `1`/`0`, `yes`/`no`, `on`/`off`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use rustls::pki_types::pem::{PemObject, SectionKind};
use zeroize::Zeroizing;

/// Where the node keeps its state unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "./rsp-data";
const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
const DEFAULT_PEER_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7080));

/// Everything `rsp serve` was told, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    /// Absolute http(s) URL without query or fragment, no trailing slash.
    /// `None`: derived from the bound HTTP address.
    pub public_url: Option<String>,
    pub peer_addr: SocketAddr,
    /// `HOST:PORT` other members use to reach this node; `None`: the bound peer address.
    pub peer_advertise_addr: Option<String>,
    /// At least 1 when given.
    pub node_id: Option<u64>,
    pub zone: String,
    pub region: String,
    /// `HOST:PORT` of any member's peer listener.
    pub join: Option<String>,
    pub learner: bool,
    pub no_bootstrap: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub peer_tls_ca: Option<PathBuf>,
    pub admin_token_file: Option<PathBuf>,
    /// `None`: `RSP_KEK`, else `<data-dir>/kek` (made on first start).
    pub kek_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
    /// `(peer id, HOST:PORT)` overriding where that peer is reached.
    pub peer_routes: Vec<(u64, String)>,
    pub snapshot_threshold: u64,
    pub heartbeat_ms: u64,
    /// Minimum election timeout; the maximum is 1.5x this.
    pub election_timeout_ms: u64,
    /// Token-endpoint requests per second per client, cluster-wide (0: off).
    pub token_rate_limit: u64,
    /// Login-form posts per second per client IP, cluster-wide (0: off).
    pub login_rate_limit: u64,
    /// Requests per second per tenant through its actors, cluster-wide (0: off).
    pub tenant_rate_limit: u64,
    pub demo: bool,
}

impl Settings {
    /// The key-encryption key file: `kek-file`, else `<data-dir>/kek`.
    pub fn kek_path(&self) -> PathBuf {
        self.kek_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("kek"))
    }

    /// The admin token file: `admin-token-file`, else `<data-dir>/admin-token`.
    pub fn admin_token_path(&self) -> PathBuf {
        self.admin_token_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin-token"))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A setting that cannot be used, named in flag spelling (`http-addr`), or
/// `config` for the file itself, or an unknown key of that file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{setting}`: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

impl ConfigError {
    fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        // The error is printed as one line, whatever the input held.
        let one_line = |s: String| s.replace(['\n', '\r'], " ");
        Self {
            setting: one_line(setting.into()),
            message: one_line(message.into()),
        }
    }
}

/// Parses the process's arguments, `RSP_*` environment and config file.
/// Prints help or version and exits 0 when asked; on any error prints one
/// line to stderr and exits 2.
pub fn load_or_exit() -> Settings {
    let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    match load(std::env::args_os().collect(), &env) {
        Ok(settings) => settings,
        Err(Failure::Usage(e)) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                eprintln!("rsp: {} (see --help)", usage_line(&e));
                std::process::exit(2)
            }
        },
        Err(Failure::Invalid(e)) => {
            eprintln!("rsp: {e}");
            std::process::exit(2)
        }
    }
}

/// [`load_or_exit`] without exiting: `args` include argv\[0\], `env` looks up
/// environment variables. Help, version and usage errors come back as a
/// [`ConfigError`] too.
pub fn load_from(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    load(args, env).map_err(|failure| match failure {
        Failure::Invalid(e) => e,
        Failure::Usage(e) => {
            let setting = match (e.kind(), e.get(ContextKind::InvalidArg)) {
                (ErrorKind::DisplayHelp, _) => "help".to_owned(),
                (ErrorKind::DisplayVersion, _) => "version".to_owned(),
                (_, Some(ContextValue::String(arg))) => arg
                    .split_whitespace()
                    .next()
                    .unwrap_or(arg)
                    .trim_start_matches('-')
                    .to_owned(),
                _ => "command-line".to_owned(),
            };
            ConfigError::new(setting, usage_line(&e))
        }
    })
}

enum Failure {
    Usage(clap::Error),
    Invalid(ConfigError),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Invalid(e)
    }
}

fn load(args: Vec<OsString>, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, Failure> {
    let matches = command()
        .try_get_matches_from(args)
        .map_err(Failure::Usage)?;
    let Some(("serve", m)) = matches.subcommand() else {
        return Err(ConfigError::new("command-line", "expected the `serve` subcommand").into());
    };
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let config = match m.try_get_one::<OsString>("config") {
        Ok(Some(path)) => Some(PathBuf::from(path)),
        Ok(None) => env("RSP_CONFIG").map(PathBuf::from),
        Err(e) => return Err(ConfigError::new("config", e.to_string()).into()),
    };
    let layers = Layers {
        flags: flag_layer(m)?,
        env: env_layer(&env)?,
        file: match config {
            Some(path) => file_layer(&path)?,
            None => Layer::default(),
        },
    };
    let settings = resolve(&layers)?;
    check_files(&settings)?;
    Ok(settings)
}

/// The first line of a clap error, without its `error: ` prefix.
fn usage_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid command line");
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Bool,
    List,
}
use Kind::{Bool, Int, List, Text};

/// One setting's three spellings and its help.
#[derive(Debug, Clone, Copy)]
struct Spec {
    flag: &'static str,
    key: &'static str,
    env: &'static str,
    kind: Kind,
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
    use super::{Bool, Int, List, Text, spec, Spec};

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
        "This node's Raft id, 1 or more");
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
    pub const LOG_FORMAT: Spec = spec("log-format", "log_format", "RSP_LOG_FORMAT", Text, "FORMAT",
        "`text` or `json` [default: text]");
    pub const OTLP_ENDPOINT: Spec = spec("otlp-endpoint",
        "otlp_endpoint", "RSP_OTLP_ENDPOINT", Text, "URL",
        "OpenTelemetry collector http(s) URL to export traces to");
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
    pub const DEMO: Spec = spec("demo", "demo", "RSP_DEMO", Bool, "",
        "Create the demo tenant, clients and user once, and print their secrets");

    /// Every setting, in the order of `rsp serve --help`.
    pub const SPECS: &[Spec] = &[
        DATA_DIR, HTTP_ADDR, PUBLIC_URL, PEER_ADDR, PEER_ADVERTISE_ADDR, NODE_ID, ZONE, REGION,
        JOIN, LEARNER, NO_BOOTSTRAP, TLS_CERT, TLS_KEY, PEER_TLS_CA, ADMIN_TOKEN_FILE, KEK_FILE,
        LOG_FORMAT, OTLP_ENDPOINT, PEER_ROUTE, SNAPSHOT_THRESHOLD, HEARTBEAT_MS,
        ELECTION_TIMEOUT_MS, TOKEN_RATE_LIMIT, LOGIN_RATE_LIMIT,
        TENANT_RATE_LIMIT, DEMO,
    ];
}
use specs::*;

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
            Text | Int => arg
                .action(ArgAction::Set)
                .value_name(self.value)
                .value_parser(value_parser!(OsString)),
        }
    }
}

fn command() -> Command {
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
    Command::new("rsp")
        .about("rsp identity platform")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve)
}

/// Values from one source, keyed by flag name.
#[derive(Default)]
struct Layer {
    text: HashMap<&'static str, OsString>,
    bools: HashMap<&'static str, bool>,
    lists: HashMap<&'static str, Vec<String>>,
}

#[derive(Clone, Copy)]
enum Source {
    Flag,
    Env,
    File,
}

/// Where a value came from, for error messages.
#[derive(Clone, Copy)]
struct Origin(Source, Spec);

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Source::Flag => write!(f, "from --{}", self.1.flag),
            Source::Env => write!(f, "from {}", self.1.env),
            Source::File => write!(f, "from `{}` in the config file", self.1.key),
        }
    }
}

fn flag_layer(m: &ArgMatches) -> Result<Layer, ConfigError> {
    let mut layer = Layer::default();
    for s in SPECS {
        let internal = |e: clap::parser::MatchesError| ConfigError::new(s.flag, e.to_string());
        match s.kind {
            Text | Int => {
                if let Some(v) = m.try_get_one::<OsString>(s.key).map_err(internal)? {
                    layer.text.insert(s.flag, v.clone());
                }
            }
            Bool => {
                if m.try_get_one::<bool>(s.key).map_err(internal)?.copied() == Some(true) {
                    layer.bools.insert(s.flag, true);
                }
            }
            List => {
                if let Some(vs) = m.try_get_many::<String>(s.key).map_err(internal)? {
                    layer.lists.insert(s.flag, vs.cloned().collect());
                }
            }
        }
    }
    Ok(layer)
}

/// `env` already answers `None` for empty variables (see `load`).
fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
    let mut layer = Layer::default();
    for s in SPECS {
        let Some(v) = env(s.env) else { continue };
        match s.kind {
            Text | Int => {
                layer.text.insert(s.flag, v.into());
            }
            Bool => {
                let b = match v.to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => true,
                    "0" | "false" | "no" | "off" => false,
                    _ => {
                        let msg = format!("{v:?} is not true or false (from {})", s.env);
                        return Err(ConfigError::new(s.flag, msg));
                    }
                };
                layer.bools.insert(s.flag, b);
            }
            List => {
                let items = v.split(',').map(str::trim).filter(|i| !i.is_empty());
                layer
                    .lists
                    .insert(s.flag, items.map(String::from).collect());
            }
        }
    }
    Ok(layer)
}

fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = fs::read_to_string(path)
        .map_err(|e| ConfigError::new("config", format!("cannot read {path:?}: {e}")))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| format!(" (line {})", before.matches('\n').count() + 1))
            .unwrap_or_default();
        ConfigError::new(
            "config",
            format!("{path:?} is not valid TOML: {}{line}", e.message()),
        )
    })?;
    let mut layer = Layer::default();
    for (key, value) in table {
        let Some(s) = SPECS.iter().find(|s| s.key == key) else {
            return Err(ConfigError::new(
                key,
                format!("unknown key in config file {path:?}"),
            ));
        };
        let wrong_type = |found: &str| {
            let want = match s.kind {
                Text => "a string",
                Int => "an integer",
                Bool => "a boolean",
                List => "an array of strings",
            };
            ConfigError::new(
                s.flag,
                format!("`{key}` in {path:?} must be {want}, not {found}"),
            )
        };
        match (s.kind, value) {
            (Text, toml::Value::String(v)) => {
                layer.text.insert(s.flag, v.into());
            }
            (Int, toml::Value::Integer(i)) => {
                layer.text.insert(s.flag, i.to_string().into());
            }
            (Bool, toml::Value::Boolean(b)) => {
                layer.bools.insert(s.flag, b);
            }
            (List, toml::Value::Array(items)) => {
                let items = items.into_iter().map(|item| match item {
                    toml::Value::String(v) => Ok(v),
                    other => Err(wrong_type(&format!(
                        "an array holding {}",
                        other.type_str()
                    ))),
                });
                layer.lists.insert(s.flag, items.collect::<Result<_, _>>()?);
            }
            (_, other) => return Err(wrong_type(other.type_str())),
        }
    }
    Ok(layer)
}

struct Layers {
    flags: Layer,
    env: Layer,
    file: Layer,
}

impl Layers {
    /// Highest precedence first.
    fn ordered(&self) -> [(Source, &Layer); 3] {
        [
            (Source::Flag, &self.flags),
            (Source::Env, &self.env),
            (Source::File, &self.file),
        ]
    }

    fn text(&self, s: Spec) -> Option<(&OsString, Origin)> {
        self.ordered()
            .into_iter()
            .find_map(|(src, layer)| layer.text.get(s.flag).map(|v| (v, Origin(src, s))))
    }

    fn flag(&self, s: Spec) -> bool {
        self.ordered()
            .into_iter()
            .find_map(|(_, layer)| layer.bools.get(s.flag).copied())
            .unwrap_or(false)
    }

    fn list(&self, s: Spec) -> Option<(&[String], Origin)> {
        self.ordered().into_iter().find_map(|(src, layer)| {
            layer
                .lists
                .get(s.flag)
                .map(|v| (v.as_slice(), Origin(src, s)))
        })
    }

    fn path(&self, s: Spec) -> Result<Option<PathBuf>, ConfigError> {
        match self.text(s) {
            Some((v, origin)) if v.is_empty() => Err(ConfigError::new(
                s.flag,
                format!("must not be empty ({origin})"),
            )),
            other => Ok(other.map(|(v, _)| PathBuf::from(v))),
        }
    }

    /// The winning value of `s`, parsed by `parse`, whose error names the value.
    fn parse<T>(
        &self,
        s: Spec,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((raw, origin)) = self.text(s) else {
            return Ok(None);
        };
        let Some(v) = raw.to_str() else {
            return Err(ConfigError::new(
                s.flag,
                format!("{raw:?} is not UTF-8 ({origin})"),
            ));
        };
        parse(v)
            .map(Some)
            .map_err(|msg| ConfigError::new(s.flag, format!("{msg} ({origin})")))
    }
}

fn resolve(l: &Layers) -> Result<Settings, ConfigError> {
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
        node_id: l.parse(NODE_ID, |v| number(v, 1))?,
        zone: l
            .parse(ZONE, label)?
            .unwrap_or_else(|| "default".to_owned()),
        region: l
            .parse(REGION, label)?
            .unwrap_or_else(|| "default".to_owned()),
        join: l.parse(JOIN, host_port)?,
        learner: l.flag(LEARNER),
        no_bootstrap: l.flag(NO_BOOTSTRAP),
        tls_cert: l.path(TLS_CERT)?,
        tls_key: l.path(TLS_KEY)?,
        peer_tls_ca: l.path(PEER_TLS_CA)?,
        admin_token_file: l.path(ADMIN_TOKEN_FILE)?,
        kek_file: l.path(KEK_FILE)?,
        log_format: l.parse(LOG_FORMAT, log_format)?.unwrap_or_default(),
        otlp_endpoint: l.parse(OTLP_ENDPOINT, |v| http_url(v).map(|_| v.to_owned()))?,
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

fn log_format(v: &str) -> Result<LogFormat, String> {
    match v.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{v:?} is neither `text` nor `json`")),
    }
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

/// Checks that read the disk, after every value parsed.
fn check_files(s: &Settings) -> Result<(), ConfigError> {
    check_data_dir(&s.data_dir).map_err(|msg| ConfigError::new(DATA_DIR.flag, msg))?;
    if let Some(path) = &s.admin_token_file {
        check_token_file(path, &s.data_dir)
            .map_err(|msg| ConfigError::new(ADMIN_TOKEN_FILE.flag, msg))?;
    }
    if let Some(path) = &s.kek_file {
        check_token_file(path, &s.data_dir).map_err(|msg| ConfigError::new(KEK_FILE.flag, msg))?;
    }
    let pem_files = [
        (TLS_CERT, &s.tls_cert, Pem::Certificate),
        (TLS_KEY, &s.tls_key, Pem::PrivateKey),
        (PEER_TLS_CA, &s.peer_tls_ca, Pem::Certificate),
    ];
    for (spec, path, want) in pem_files {
        if let Some(path) = path {
            check_pem(path, want).map_err(|msg| ConfigError::new(spec.flag, msg))?;
        }
    }
    match (&s.tls_cert, &s.tls_key) {
        (Some(_), None) => return Err(ConfigError::new(TLS_KEY.flag, "is needed with tls-cert")),
        (None, Some(_)) => return Err(ConfigError::new(TLS_CERT.flag, "is needed with tls-key")),
        _ => {}
    }
    if s.peer_tls_ca.is_some() && s.tls_cert.is_none() {
        let msg = "needs tls-cert and tls-key: mutual TLS presents this node's certificate";
        return Err(ConfigError::new(PEER_TLS_CA.flag, msg));
    }
    Ok(())
}

const READ: u8 = 1;
const WRITE: u8 = 2;
const ENTER: u8 = 4;

/// Whether this process may use `path` as `want` says, asked without opening it.
#[cfg(unix)]
fn permitted(path: &Path, want: u8) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut mode = 0;
    for (bit, flag) in [(READ, libc::R_OK), (WRITE, libc::W_OK), (ENTER, libc::X_OK)] {
        if want & bit != 0 {
            mode |= flag;
        }
    }
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call;
    // access(2) only reads it.
    unsafe { libc::access(c_path.as_ptr(), mode) == 0 }
}

#[cfg(not(unix))]
fn permitted(path: &Path, want: u8) -> bool {
    fs::metadata(path).is_ok_and(|m| want & WRITE == 0 || !m.permissions().readonly())
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// An existing, usable directory, or a missing one whose parent lets us create it.
fn check_data_dir(dir: &Path) -> Result<(), String> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => match permitted(dir, READ | WRITE | ENTER) {
            true => Ok(()),
            false => Err(format!("{dir:?} is not readable and writable")),
        },
        Ok(_) => Err(format!("{dir:?} exists but is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(dir).is_ok() {
                return Err(format!("{dir:?} is a symbolic link to nothing"));
            }
            let parent = parent_of(dir);
            match fs::metadata(parent) {
                Ok(m) if m.is_dir() && permitted(parent, WRITE | ENTER) => Ok(()),
                Ok(m) if m.is_dir() => Err(format!("cannot create {dir:?} in {parent:?}")),
                _ => Err(format!(
                    "parent directory {parent:?} of {dir:?} does not exist"
                )),
            }
        }
        Err(e) => Err(format!("cannot inspect {dir:?}: {e}")),
    }
}

/// A readable file, or a missing one that can be created (in the data dir or elsewhere).
fn check_token_file(path: &Path, data_dir: &Path) -> Result<(), String> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() && permitted(path, READ) => Ok(()),
        Ok(m) if m.is_file() => Err(format!("{path:?} is not readable")),
        Ok(_) => Err(format!("{path:?} exists but is not a regular file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = parent_of(path);
            let parent_ok = parent == data_dir
                || fs::metadata(parent).is_ok_and(|m| m.is_dir())
                    && permitted(parent, WRITE | ENTER);
            match parent_ok {
                true => Ok(()),
                false => Err(format!(
                    "cannot create {path:?}: {parent:?} is not a writable directory"
                )),
            }
        }
        Err(e) => Err(format!("cannot inspect {path:?}: {e}")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pem {
    Certificate,
    PrivateKey,
}

/// A readable file holding at least one PEM block of the wanted kind.
fn check_pem(path: &Path, want: Pem) -> Result<(), String> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| format!("cannot read {path:?}: {e}"))?);
    let mut found = false;
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(&bytes) {
        let (kind, der) = item.map_err(|e| match want {
            Pem::Certificate => format!("{path:?} holds malformed PEM: {e}"),
            // The parser's detail may quote key material.
            Pem::PrivateKey => format!("{path:?} holds malformed PEM"),
        })?;
        drop(Zeroizing::new(der));
        found |= match want {
            Pem::Certificate => kind == SectionKind::Certificate,
            Pem::PrivateKey => matches!(
                kind,
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
            ),
        };
    }
    match (found, want) {
        (true, _) => Ok(()),
        (false, Pem::Certificate) => Err(format!("{path:?} holds no PEM CERTIFICATE block")),
        (false, Pem::PrivateKey) => Err(format!("{path:?} holds no PEM private key block")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
    const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";

    fn run(flags: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let args = ["rsp", "serve"]
            .iter()
            .chain(flags)
            .map(OsString::from)
            .collect();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_from(args, &|name| env.get(name).cloned())
    }

    #[track_caller]
    fn failing_setting(result: Result<Settings, ConfigError>) -> String {
        match result {
            Ok(s) => panic!("expected an error, got {s:?}"),
            Err(e) => {
                assert!(!e.to_string().contains('\n'), "not one line: {e}");
                e.setting
            }
        }
    }

    struct Scratch(tempfile::TempDir);

    impl Scratch {
        fn new() -> Self {
            Scratch(tempfile::tempdir().expect("temp dir"))
        }
        fn path(&self, name: &str) -> String {
            self.0.path().join(name).to_string_lossy().into_owned()
        }
        fn write(&self, name: &str, contents: &str) -> String {
            let path = self.path(name);
            fs::write(&path, contents).expect("write scratch file");
            path
        }
    }

    #[test]
    fn defaults_need_no_settings() {
        let s = run(&[], &[]).expect("defaults are valid");
        assert_eq!(s.data_dir, PathBuf::from("./rsp-data"));
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.peer_addr.to_string(), "127.0.0.1:7080");
        assert_eq!(
            (s.public_url, s.peer_advertise_addr, s.node_id, s.join),
            (None, None, None, None)
        );
        assert_eq!((s.zone.as_str(), s.region.as_str()), ("default", "default"));
        assert!(!s.learner && !s.no_bootstrap && !s.demo);
        assert_eq!((s.tls_cert, s.tls_key, s.peer_tls_ca), (None, None, None));
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.otlp_endpoint, None);
        assert!(s.peer_routes.is_empty());
        assert_eq!(
            (s.snapshot_threshold, s.heartbeat_ms, s.election_timeout_ms),
            (10_000, 100, 500)
        );
        assert_eq!(
            run(&[], &[]).map(|s| s.admin_token_path()),
            Ok(PathBuf::from("./rsp-data/admin-token"))
        );
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let scratch = Scratch::new();
        let file = scratch.write(
            "rsp.toml",
            "http_addr = \"127.0.0.1:1001\"\nheartbeat_ms = 11\nelection_timeout_ms = 1000\n\
             learner = true\npeer_routes = [\"2=file:1\"]\nzone = \"file\"\n",
        );
        let env = [
            ("RSP_HTTP_ADDR", "127.0.0.1:1002"),
            ("RSP_HEARTBEAT_MS", "12"),
            ("RSP_LEARNER", "false"),
            ("RSP_PEER_ROUTES", "2=env:1, 3=env:2"),
        ];
        let flags = [
            "--config",
            &file,
            "--http-addr",
            "127.0.0.1:1003",
            "--heartbeat-ms",
            "13",
        ];
        let flags_more = [&flags[..], &["--learner", "--peer-route", "2=flag:1"]].concat();

        let default = run(&[], &[]).expect("defaults");
        let from_file = run(&flags[..2], &[]).expect("file only");
        let from_env = run(&flags[..2], &env).expect("file and env");
        let from_flags = run(&flags_more, &env).expect("all three");

        let http = |s: &Settings| s.http_addr.port();
        assert_eq!(
            [&default, &from_file, &from_env, &from_flags].map(http),
            [8080, 1001, 1002, 1003]
        );
        let beat = |s: &Settings| s.heartbeat_ms;
        assert_eq!(
            [&default, &from_file, &from_env, &from_flags].map(beat),
            [100, 11, 12, 13]
        );
        let learner = |s: &Settings| s.learner;
        assert_eq!(
            [&default, &from_file, &from_env, &from_flags].map(learner),
            [false, true, false, true]
        );
        assert_eq!(from_file.peer_routes, vec![(2, "file:1".to_owned())]);
        assert_eq!(
            from_env.peer_routes,
            vec![(2, "env:1".to_owned()), (3, "env:2".to_owned())]
        );
        assert_eq!(from_flags.peer_routes, vec![(2, "flag:1".to_owned())]);
        // A setting only the file gives survives the layers above it.
        assert_eq!(from_flags.zone, "file");
        assert_eq!(from_flags.election_timeout_ms, 1000);
    }

    #[test]
    fn config_file_can_come_from_the_environment() {
        let scratch = Scratch::new();
        let file = scratch.write("rsp.toml", "region = \"eu\"\n");
        let s = run(&[], &[("RSP_CONFIG", &file)]).expect("valid file");
        assert_eq!(s.region, "eu");
    }

    #[test]
    fn unknown_toml_key_is_named() {
        let scratch = Scratch::new();
        let typo = scratch.write("typo.toml", "http_adr = \"127.0.0.1:1\"\n");
        assert_eq!(failing_setting(run(&["--config", &typo], &[])), "http_adr");
        let table = scratch.write("table.toml", "[server]\nhttp_addr = \"127.0.0.1:1\"\n");
        assert_eq!(failing_setting(run(&["--config", &table], &[])), "server");
        // `config` is a flag, not a key of the file.
        let nested = scratch.write("nested.toml", "config = \"other.toml\"\n");
        assert_eq!(failing_setting(run(&["--config", &nested], &[])), "config");
    }

    #[test]
    fn wrong_toml_type_names_the_setting() {
        let scratch = Scratch::new();
        for (contents, setting) in [
            ("heartbeat_ms = \"100\"", "heartbeat-ms"),
            ("http_addr = 8080", "http-addr"),
            ("learner = 1", "learner"),
            ("peer_routes = [2]", "peer-route"),
            ("peer_routes = \"2=h:1\"", "peer-route"),
            ("node_id = -1", "node-id"),
        ] {
            let file = scratch.write("rsp.toml", contents);
            assert_eq!(
                failing_setting(run(&["--config", &file], &[])),
                setting,
                "{contents}"
            );
        }
    }

    #[test]
    fn unreadable_or_malformed_config_names_config() {
        let scratch = Scratch::new();
        let missing = scratch.path("missing.toml");
        assert_eq!(failing_setting(run(&["--config", &missing], &[])), "config");
        let broken = scratch.write("broken.toml", "zone = \"a\"\nhttp_addr = \n");
        let err = run(&["--config", &broken], &[]).expect_err("not TOML");
        assert_eq!(err.setting, "config");
        assert!(err.message.contains("line 2"), "{err}");
    }

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
        assert!(s.no_bootstrap && s.demo);
    }

    #[test]
    fn unusable_data_dir_is_named() {
        let scratch = Scratch::new();
        let file = scratch.write("file", "not a dir");
        assert_eq!(
            failing_setting(run(&["--data-dir", &file], &[])),
            "data-dir"
        );
        let orphan = scratch.path("missing/data");
        assert_eq!(
            failing_setting(run(&["--data-dir", &orphan], &[])),
            "data-dir"
        );
        let under_file = format!("{file}/data");
        assert_eq!(
            failing_setting(run(&["--data-dir", &under_file], &[])),
            "data-dir"
        );
    }

    #[cfg(unix)]
    #[test]
    fn read_only_data_dir_is_named() {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("skipped: permissions do not bind root");
            return;
        }
        let scratch = Scratch::new();
        let dir = scratch.path("data");
        fs::create_dir(&dir).expect("create dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).expect("chmod");
        assert_eq!(failing_setting(run(&["--data-dir", &dir], &[])), "data-dir");
    }

    #[test]
    fn validation_creates_nothing() {
        let scratch = Scratch::new();
        let data = scratch.path("data");
        let token = scratch.path("data/admin-token");
        let s = run(&["--data-dir", &data, "--admin-token-file", &token], &[]).expect("valid");
        assert_eq!(s.admin_token_path(), PathBuf::from(&token));
        assert!(!Path::new(&data).exists());
    }

    #[test]
    fn tls_files_and_their_pairing_are_checked() {
        let scratch = Scratch::new();
        let cert = scratch.write("cert.pem", CERT_PEM);
        let key = scratch.write("key.pem", KEY_PEM);
        let junk = scratch.write("junk.pem", "no pem here\n");
        let missing = scratch.path("missing.pem");
        let cases: &[(&[&str], &str)] = &[
            (&["--tls-cert", &missing], "tls-cert"),
            (&["--tls-cert", &junk, "--tls-key", &key], "tls-cert"),
            (&["--tls-cert", &key, "--tls-key", &key], "tls-cert"),
            (&["--tls-cert", &cert, "--tls-key", &missing], "tls-key"),
            (&["--tls-cert", &cert, "--tls-key", &cert], "tls-key"),
            (&["--tls-cert", &cert], "tls-key"),
            (&["--tls-key", &key], "tls-cert"),
            (&["--peer-tls-ca", &cert], "peer-tls-ca"),
            (
                &[
                    "--tls-cert",
                    &cert,
                    "--tls-key",
                    &key,
                    "--peer-tls-ca",
                    &junk,
                ],
                "peer-tls-ca",
            ),
        ];
        for (flags, setting) in cases {
            assert_eq!(&failing_setting(run(flags, &[])), setting, "{flags:?}");
        }
        let s = run(
            &[
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--peer-tls-ca",
                &cert,
            ],
            &[],
        )
        .expect("complete TLS settings");
        assert_eq!(s.peer_tls_ca, Some(PathBuf::from(&cert)));
    }

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

    #[test]
    fn help_and_version_are_reported_not_parsed() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect();
        let none = |_: &str| None;
        assert_eq!(
            load_from(args(&["rsp", "--version"]), &none).map_err(|e| e.setting),
            Err("version".to_owned())
        );
        assert_eq!(
            load_from(args(&["rsp", "serve", "--help"]), &none).map_err(|e| e.setting),
            Err("help".to_owned())
        );
    }
}
