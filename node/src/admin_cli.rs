//! `rsp admin RESOURCE VERB` (the admin API from a shell), `rsp backup`,
//! `rsp restore`, `rsp cert` and `rsp completions SHELL`. docs/cli.md is the user's guide.
//!
//! Each command becomes one `call::Call` (method, path, body, how to show
//! the answer) that `http::Api` sends with the admin token and prints:
//! `--output table` for people, `--output json` for scripts. The exit code
//! says what happened ([`Exit`]). Secrets (the token, passwords, TOTP
//! seeds, a KEK) come from files, the environment or stdin, never argv.
//!
//! Parts:
//! - `call`: a request and its view; `http`: the client, paging, printing;
//!   `output`: tables and `key: value` lines; `inputs`: the token, stdin
//!   secrets, files, `KEY=VALUE`; `exit`: exit codes and error lines;
//! - one file per group of resources: `tenancy` (tenants, users), `clients`,
//!   `signin` (factors, sessions, MFA policy, signing keys), `authz`
//!   (policies, entities), `saml`, `cluster` (cluster, kv), `reports`
//!   (audit, usage, OpenAPI).
//!
//! Not for: anything `rsp serve` does. This client only speaks the public
//! admin API, as any operator's tool would.

mod authz;
mod backup;
mod call;
mod cert;
mod clients;
mod cluster;
mod exit;
mod http;
mod inputs;
mod output;
mod reports;
mod saml;
mod signin;
mod tenancy;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Command, FromArgMatches, Subcommand};

pub use exit::Exit;
use exit::Failure;
use http::Api;
use output::Output;

/// The help heading of the options every `rsp admin` command takes.
const GLOBAL: &str = "Connection and output";

/// Where `rsp serve` listens with no settings (CONTRACT.md).
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

// The subcommands this module adds beside `serve` (a doc comment here
// would become the `rsp` command's own about text).
#[derive(Subcommand, Debug)]
enum Cli {
    /// Call the admin API of a running cluster (docs/cli.md)
    Admin(Box<AdminArgs>),
    /// Copy the whole cluster's state at one revision, online, through any node
    Backup(backup::BackupArgs),
    /// Write a backup into a new data dir that starts as a one-node cluster
    Restore(backup::RestoreArgs),
    /// Make a CA and node certificates for mutual TLS between nodes
    Cert {
        #[command(subcommand)]
        what: cert::Cert,
    },
    /// Print a shell completion script for rsp
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
#[command(
    after_help = "The admin token comes from --admin-token-file, else RSP_ADMIN_TOKEN, \
else the file RSP_ADMIN_TOKEN_FILE names, else ./rsp-data/admin-token. Exit codes: 0 done, \
1 the server refused, 2 usage, 3 no answer, 4 not found, 5 conflict, 6 not offered by this server."
)]
struct AdminArgs {
    /// The admin API's base URL
    #[arg(long, env = "RSP_URL", default_value = DEFAULT_URL, global = true, help_heading = GLOBAL)]
    url: String,
    /// File holding the admin token [default: RSP_ADMIN_TOKEN]
    #[arg(long, value_name = "FILE", global = true, help_heading = GLOBAL)]
    admin_token_file: Option<PathBuf>,
    /// PEM CA certificates to trust for https (instead of the system's)
    #[arg(long, value_name = "FILE", env = "RSP_CA_FILE", global = true, help_heading = GLOBAL)]
    ca_file: Option<PathBuf>,
    /// How answers are printed
    #[arg(long, value_enum, default_value_t = Output::Table, env = "RSP_OUTPUT", global = true, help_heading = GLOBAL)]
    output: Output,
    /// Seconds to wait for an answer
    #[arg(long, value_name = "SECS", default_value_t = 90, global = true, help_heading = GLOBAL)]
    timeout: u64,
    #[command(subcommand)]
    resource: Resource,
}

#[derive(Subcommand, Debug)]
enum Resource {
    /// Tenants
    Tenants {
        #[command(subcommand)]
        verb: tenancy::Tenants,
    },
    /// Users of a tenant
    Users {
        #[command(subcommand)]
        verb: tenancy::Users,
    },
    /// OAuth clients of a tenant
    Clients {
        #[command(subcommand)]
        verb: clients::Clients,
    },
    /// Users' second factors
    Factors {
        #[command(subcommand)]
        verb: signin::Factors,
    },
    /// Users' browser sessions
    Sessions {
        #[command(subcommand)]
        verb: signin::Sessions,
    },
    /// A tenant's signing keys and their rotation
    Keys {
        #[command(subcommand)]
        verb: signin::Keys,
    },
    /// A tenant's MFA policy
    MfaPolicy {
        #[command(subcommand)]
        verb: signin::MfaPolicy,
    },
    /// A tenant's Cedar policies
    Policies {
        #[command(subcommand)]
        verb: authz::Policies,
    },
    /// A tenant's Cedar entities
    Entities {
        #[command(subcommand)]
        verb: authz::Entities,
    },
    /// SAML service providers
    Saml {
        #[command(subcommand)]
        verb: saml::Saml,
    },
    /// Cluster membership and the key-encryption key
    Cluster {
        #[command(subcommand)]
        verb: cluster::Cluster,
    },
    /// The operators' key-value space
    Kv {
        #[command(subcommand)]
        verb: cluster::Kv,
    },
    /// A tenant's audit events
    Audit {
        #[command(subcommand)]
        verb: reports::Audit,
    },
    /// A tenant's daily activity
    Usage {
        #[command(flatten)]
        tenant: tenancy::TenantArg,
        /// First day, YYYY-MM-DD
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD
        #[arg(long)]
        to: Option<String>,
    },
    /// The OpenAPI document of the admin API
    Openapi,
}

/// `cmd` (the `rsp` command) with `admin` and `completions` added.
pub fn add_subcommands(cmd: Command) -> Command {
    Cli::augment_subcommands(cmd)
}

/// Runs `rsp admin ...` or `rsp completions ...` and returns the exit code;
/// `None` when `args` (with argv\[0\]) name another subcommand.
pub fn dispatch(args: Vec<OsString>, rsp: impl FnOnce() -> Command) -> Option<i32> {
    let first = args.get(1).and_then(|a| a.to_str());
    if !matches!(
        first,
        Some("admin" | "completions" | "backup" | "restore" | "cert")
    ) {
        return None;
    }
    let mut command = rsp();
    let matches = match command.try_get_matches_from_mut(args) {
        Ok(m) => m,
        // Help and version exit 0, usage errors 2 (clap's codes).
        Err(e) => e.exit(),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.format(&mut command).exit(),
    };
    Some(match cli {
        Cli::Completions { shell } => {
            clap_complete::generate(shell, &mut command, "rsp", &mut std::io::stdout());
            Exit::Ok.code()
        }
        Cli::Admin(args) => finish(run(*args)),
        Cli::Backup(args) => finish(backup::backup(args)),
        Cli::Restore(args) => finish(backup::restore(args)),
        Cli::Cert { what } => finish(what.run()),
    })
}

/// The exit code of a command, its failure's lines printed on stderr.
fn finish(result: Result<(), Failure>) -> i32 {
    match result {
        Ok(()) => Exit::Ok.code(),
        Err(failure) => {
            for line in &failure.lines {
                eprintln!("{line}");
            }
            failure.exit.code()
        }
    }
}

/// The client of `url`'s admin API, with the admin token from
/// `token_file` or the environment.
fn connect(
    url: &str,
    token_file: Option<&std::path::Path>,
    ca_file: Option<&std::path::Path>,
    timeout_secs: u64,
    output: Output,
) -> Result<Api, Failure> {
    let env = |name: &str| std::env::var(name).ok();
    let token = inputs::admin_token(token_file, &env)?;
    // One process-wide TLS crypto provider (see shared/DEPENDENCIES.md).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Api::new(
        url,
        token,
        ca_file,
        Duration::from_secs(timeout_secs.max(1)),
        output,
    )
}

fn run(args: AdminArgs) -> Result<(), Failure> {
    let api = connect(
        &args.url,
        args.admin_token_file.as_deref(),
        args.ca_file.as_deref(),
        args.timeout,
        args.output,
    )?;
    match args.resource {
        Resource::Tenants { verb } => verb.run(&api),
        Resource::Users { verb } => verb.run(&api),
        Resource::Clients { verb } => verb.run(&api),
        Resource::Factors { verb } => verb.run(&api),
        Resource::Sessions { verb } => verb.run(&api),
        Resource::Keys { verb } => verb.run(&api),
        Resource::MfaPolicy { verb } => verb.run(&api),
        Resource::Policies { verb } => verb.run(&api),
        Resource::Entities { verb } => verb.run(&api),
        Resource::Saml { verb } => verb.run(&api),
        Resource::Cluster { verb } => verb.run(&api),
        Resource::Kv { verb } => verb.run(&api),
        Resource::Audit { verb } => verb.run(&api),
        Resource::Usage { tenant, from, to } => reports::usage(&api, &tenant, from, to),
        Resource::Openapi => reports::openapi(&api),
    }
}
