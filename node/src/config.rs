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
//!
//! Parts:
//! - `spec`: the table of settings, one line each with its three spellings,
//!   and the clap command built from it.
//! - `layers`: the values each source gives (flags, environment, file) and
//!   the lookup that lets a flag beat the environment, which beats the file.
//! - `resolve`: each winning value parsed into [`Settings`], defaults filled
//!   in, and the rules that span settings.
//! - `checks`: what must hold on disk (the data directory, token files, PEM
//!   files), checked without creating anything.

mod checks;
mod layers;
mod resolve;
mod spec;
#[cfg(test)]
mod test_support;

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use checks::check_files;
use layers::{Layer, Layers, env_layer, file_layer, flag_layer};
use resolve::resolve;

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
    /// Restart this survivor of a lost quorum as a one-node cluster keeping
    /// its data (see `server::start`).
    pub force_new_cluster: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub peer_tls_ca: Option<PathBuf>,
    pub admin_token_file: Option<PathBuf>,
    /// `None`: `RSP_KEK`, else `<data-dir>/kek` (made on first start).
    pub kek_file: Option<PathBuf>,
    /// Run by `sh -c` at start-up; its stdout is the KEK (beats `RSP_KEK`
    /// and the kek file, and is never written to disk).
    pub kek_command: Option<String>,
    /// `None`: `RSP_JOIN_TOKEN`, else `<data-dir>/join-token`.
    pub join_token_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
    /// Share of traces starting on this node that are exported.
    pub otlp_sampling_ratio: SamplingRatio,
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
    /// Seconds a client has to send a request's headers, on both listeners;
    /// also how long an idle HTTP/1.1 connection stays open.
    pub header_timeout_secs: u64,
    /// Open connections each listener keeps at most.
    pub max_connections: u64,
    pub demo: bool,
}

impl Settings {
    /// The key-encryption key file: `kek-file`, else `<data-dir>/kek`.
    pub fn kek_path(&self) -> PathBuf {
        self.kek_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("kek"))
    }

    /// Where this node keeps the cluster's join token: `<data-dir>/join-token`.
    pub fn stored_join_token_path(&self) -> PathBuf {
        self.data_dir.join("join-token")
    }

    /// The admin token file: `admin-token-file`, else `<data-dir>/admin-token`.
    pub fn admin_token_path(&self) -> PathBuf {
        self.admin_token_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin-token"))
    }
}

/// A sampling ratio: a number from 0.0 to 1.0 (never NaN, so it compares).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingRatio(f64);

impl Eq for SamplingRatio {}

impl SamplingRatio {
    /// `ratio` when it is from 0.0 to 1.0.
    pub fn new(ratio: f64) -> Option<Self> {
        (0.0..=1.0).contains(&ratio).then_some(SamplingRatio(ratio))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// Every trace.
impl Default for SamplingRatio {
    fn default() -> Self {
        SamplingRatio(1.0)
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

/// The whole `rsp` command line (`serve`, `admin`, `completions`), for
/// help and shell completions.
pub fn command() -> clap::Command {
    spec::command()
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

#[cfg(test)]
mod tests {
    use super::test_support::run;
    use super::*;

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
        assert_eq!(s.otlp_sampling_ratio.get(), 1.0);
        assert!(s.peer_routes.is_empty());
        assert_eq!(
            (s.snapshot_threshold, s.heartbeat_ms, s.election_timeout_ms),
            (10_000, 100, 500)
        );
        assert_eq!((s.header_timeout_secs, s.max_connections), (30, 10_000));
        assert_eq!(
            run(&[], &[]).map(|s| s.admin_token_path()),
            Ok(PathBuf::from("./rsp-data/admin-token"))
        );
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
