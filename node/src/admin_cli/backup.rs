//! `rsp backup` (an online copy of the cluster's state through any node's
//! admin API) and `rsp restore` (that copy into a new data dir). The
//! file's layout is `rsp_consensus::backup`'s; docs/operations.md is the
//! runbook.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use rsp_consensus::backup::{self, BackupError};

use super::DEFAULT_URL;
use super::call::Call;
use super::exit::{CliResult, Failure};
use super::http::Api;
use super::output::Output;

#[derive(Args, Debug)]
#[command(
    after_help = "The admin token comes from --admin-token-file, else RSP_ADMIN_TOKEN, else the \
file RSP_ADMIN_TOKEN_FILE names, else ./rsp-data/admin-token. The file is written beside FILE \
first and renamed once it is complete and checked. Exit codes: 0 done, 1 the server refused, \
2 usage or a local file, 3 no answer."
)]
pub struct BackupArgs {
    /// The admin API's base URL of any node
    #[arg(long, env = "RSP_URL", default_value = DEFAULT_URL)]
    url: String,
    /// Where to write the backup (refused if it exists)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// File holding the admin token [default: RSP_ADMIN_TOKEN]
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// PEM CA certificates to trust for https (instead of the system's)
    #[arg(long, value_name = "FILE", env = "RSP_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Seconds the whole transfer may take
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    timeout: u64,
}

#[derive(Args, Debug)]
#[command(
    after_help = "The data dir must be new (or empty). Start it with `rsp serve --data-dir DIR` \
and the cluster's key-encryption key (--kek-file, RSP_KEK or --kek-command): it forms a one-node \
cluster holding exactly the backup's state, which other nodes then --join. Exit codes: 0 done, \
2 the backup or the data dir is unusable (nothing is written)."
)]
pub struct RestoreArgs {
    /// The backup file `rsp backup` wrote
    #[arg(long, value_name = "FILE")]
    backup: PathBuf,
    /// The new node's data directory
    #[arg(long, value_name = "DIR", env = "RSP_DATA_DIR")]
    data_dir: PathBuf,
}

/// A progress line on stderr while it is a terminal; nothing otherwise.
struct Progress {
    on: bool,
    started: Instant,
    shown: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            started: Instant::now(),
            shown: Instant::now(),
        }
    }

    fn show(&mut self, what: &str, bytes: u64) {
        if self.on && self.shown.elapsed() >= Duration::from_millis(200) {
            self.shown = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            eprint!(
                "\r{what}: {:.1} MiB ({:.1} MiB/s)   ",
                bytes as f64 / 1048576.0,
                bytes as f64 / 1048576.0 / secs
            );
        }
    }

    fn done(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}

pub fn backup(args: BackupArgs) -> CliResult<()> {
    let api = super::connect(
        &args.url,
        args.admin_token_file.as_deref(),
        args.ca_file.as_deref(),
        args.timeout,
        Output::Table,
    )?;
    if args.out.exists() {
        return Err(Failure::usage(format!(
            "{} exists; give a new file name",
            args.out.display()
        )));
    }
    let partial = partial_path(&args.out);
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", partial.display())))?;
    let started = Instant::now();
    let result = download(&api, file);
    let bytes = match result {
        Ok(bytes) => bytes,
        Err(f) => {
            let _ = std::fs::remove_file(&partial);
            return Err(f);
        }
    };
    let header = match backup::verify(&partial) {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(Failure::unreachable(format!(
                "the backup received is not whole: {e}"
            )));
        }
    };
    std::fs::rename(&partial, &args.out).map_err(|e| {
        Failure::usage(format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            args.out.display()
        ))
    })?;
    println!(
        "backup of revision {} (log index {}, {} entries, {:.1} MiB in {:.1} s) written to {}",
        header.kv_revision,
        header.log_index,
        header.entries,
        bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

/// `FILE.partial` beside `out`.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn download(api: &Api, file: File) -> CliResult<u64> {
    let mut out = BufWriter::new(file);
    let mut progress = Progress::new();
    let mut total = 0;
    api.download(&Call::get(&["cluster", "backup"]), &mut out, |n| {
        total = n;
        progress.show("receiving", n);
    })?;
    progress.done();
    let file = out
        .into_inner()
        .map_err(|e| Failure::usage(format!("cannot write the backup: {e}")))?;
    file.sync_all()
        .map_err(|e| Failure::usage(format!("cannot sync the backup: {e}")))?;
    Ok(total)
}

pub fn restore(args: RestoreArgs) -> CliResult<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let store = args.data_dir.join("store");
    let token_path = args.data_dir.join("join-token");
    if token_path.exists() {
        return Err(Failure::usage(format!(
            "{} already holds a cluster's files ({} exists); restore into a new, empty directory",
            args.data_dir.display(),
            token_path.display()
        )));
    }
    // Checked whole before the data dir is made.
    let unusable = |e: BackupError| match e {
        BackupError::Io(io) => {
            Failure::usage(format!("cannot read {}: {io}", args.backup.display()))
        }
        e => Failure::usage(format!("{}: {e}", args.backup.display())),
    };
    backup::verify(&args.backup).map_err(unusable)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.data_dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", args.data_dir.display())))?;
    let started = Instant::now();
    let header = backup::restore_verified(&args.backup, &store, rsp_consensus::META_GROUP)
        .map_err(unusable)?;
    // The restored node forms a new cluster: a new join token for it, as
    // a bootstrapping node would make.
    let token = rsp_consensus::peer_auth::JoinToken::generate();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&token_path)
        .and_then(|mut f| f.write_all(token.expose().as_bytes()))
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", token_path.display())))?;
    println!(
        "restored revision {} (log index {}, {} entries) into {} in {:.1} s; start it with \
`rsp serve --data-dir {}` and the cluster's key-encryption key (its join token is in {})",
        header.kv_revision,
        header.log_index,
        header.entries,
        args.data_dir.display(),
        started.elapsed().as_secs_f64(),
        args.data_dir.display(),
        token_path.display()
    );
    Ok(())
}
