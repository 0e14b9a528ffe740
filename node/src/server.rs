//! Start-up and shutdown of one `rsp` node.
//!
//! Order matters for the contract's promise that a bad setting changes
//! nothing on disk: settings are checked, TLS material is loaded and both
//! listeners are bound *before* the data directory is created or opened.
//! Then: node identity, storage and Raft, the peer listener, bootstrap or
//! join, the admin token, the HTTP listener, and the `RSP_READY` line.
//!
//! [`run`] lists the steps; each lives beside it:
//! - `preflight`: everything that can fail on a bad setting, with nothing
//!   written yet (injected bugs, TLS, the given KEK, the join token, the
//!   admin token, listeners, node id).
//! - `files`: the data dir, the node-id file and the admin token.
//! - `join_token`: the cluster's join token, given, kept or made.
//! - `cluster`: the member description, storage and Raft with the peer
//!   listener, and forming or joining a cluster.
//! - `kek`: the key-encryption key, given, fetched or made.
//! - `api`: the identity services, tenant actors and the HTTP API.
//! - `key_schedule`: the job that rotates signing keys on schedule.
//! - `listen`: serving a listener within its limits (header timeout,
//!   connection cap).
//! - `https`: the HTTPS certificate, loaded.
//! - `reload`: the HTTPS certificate and the peer TLS material, reloaded
//!   on SIGHUP and when their files change.

mod api;
mod cluster;
mod files;
mod https;
mod join_token;
mod kek;
mod key_schedule;
mod listen;
mod preflight;
mod reload;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rsp_actors::TenantRuntime;
use rsp_consensus::Consensus;

use crate::config::Settings;
use cluster::Advertised;
use listen::{Limits, Serving, serve};
use preflight::Checked;

/// Why start-up failed. `Setting` errors exit with code 2 (and have changed
/// nothing on disk); the rest exit with 1.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid setting `{setting}`: {message}")]
    Setting {
        setting: &'static str,
        message: String,
    },
    #[error("{0}")]
    Runtime(String),
}

impl StartError {
    fn setting(setting: &'static str, message: impl std::fmt::Display) -> Self {
        StartError::Setting {
            setting,
            message: message.to_string(),
        }
    }

    fn runtime(what: &str, e: impl std::fmt::Display) -> Self {
        StartError::Runtime(format!("{what}: {e}"))
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Setting { .. } => 2,
            StartError::Runtime(_) => 1,
        }
    }
}

/// Run a node until `shutdown` resolves, then stop gracefully.
pub async fn run(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    // 1. Everything that can fail on a bad setting, before touching the disk.
    let Checked {
        bugs,
        http_tls,
        peer_tls,
        given_kek,
        join_token,
        admin_token,
        listeners,
        id,
        fresh_id,
    } = preflight::check(&settings)?;

    // 2. The data dir, and how this node describes itself.
    files::prepare_data_dir(&settings, id, fresh_id)?;
    let join_token_file = join_token::keep(&settings, &join_token)?;
    let advertised = cluster::advertise(&settings, &listeners, http_tls.is_some());

    // 3. Storage and Raft, and the peer listener.
    let registry = Arc::new(prometheus::Registry::new());
    if let Err(e) = crate::process_metrics::register(&registry) {
        tracing::warn!(error = %e, "the process metrics are not registered");
    }
    let member = advertised.member.clone();
    let consensus = cluster::start_consensus(
        &settings,
        id,
        member,
        peer_tls.clone(),
        join_token.token,
        bugs.consensus,
        &registry,
    )
    .await?;
    let limits = Limits::from_settings(&settings);
    let peers = cluster::serve_peers(&consensus, listeners.peer, peer_tls.clone(), limits)?;

    // 4. Form or join a cluster.
    let initialized =
        cluster::form_or_join(&consensus, &settings, id, &advertised.peer_addr).await?;

    // 5. The key-encryption key, then the services that need it.
    let kek_cell = kek::provide(&consensus, &settings, given_kek, initialized).await?;
    let (identity, runtime) = api::start_services(
        &consensus,
        &settings,
        kek_cell,
        &advertised.public_url,
        &registry,
    )
    .await?;
    let identity = kek::with_store(identity, &settings);
    let kek_follower = kek::follow(&consensus, &identity).await;
    let key_schedule = key_schedule::start(&consensus, &identity);

    // 6. The HTTP API, the demo data when asked, and the ready line.
    let (token, token_file) = files::admin_token(admin_token)?;
    let state = api::app_state(
        &consensus,
        token,
        registry.clone(),
        identity,
        &advertised.public_url,
        runtime.clone(),
        bugs.oauth,
    );
    let limits = Limits::from_settings(&settings);
    let http_tls = http_tls.map(RustlsConfig::from_config);
    let _reloader = reload::watch(http_tls.clone(), peer_tls, &settings);
    let router = api::router(&state, http_tls.is_some());
    let http = serve(listeners.http, http_tls, router, limits)?;
    if settings.demo {
        crate::demo::ensure(&state)
            .await
            .map_err(|e| StartError::runtime("--demo", e))?;
    }
    let files = ReadyFiles {
        admin_token: token_file,
        join_token: join_token_file,
    };
    announce_ready(&settings, id, listeners.http_addr, &advertised, files)?;

    // 7. Run until told to stop, then stop in order.
    shutdown.await;
    drop(key_schedule);
    drop(kek_follower);
    stop(http, &runtime, &consensus, peers, &state.identity).await;
    Ok(())
}

/// The line a supervisor or test harness waits for on stdout.
#[derive(serde::Serialize)]
struct Ready<'a> {
    node_id: u64,
    http_addr: String,
    peer_addr: &'a str,
    public_url: &'a str,
    data_dir: String,
    admin_token_file: Option<String>,
    /// `<data-dir>/join-token` when it holds the cluster's join token.
    join_token_file: Option<String>,
}

/// The secret files a node's ready line points at.
struct ReadyFiles {
    admin_token: Option<PathBuf>,
    join_token: Option<PathBuf>,
}

/// Print the `RSP_READY` line on stdout and log that the node serves.
fn announce_ready(
    settings: &Settings,
    id: u64,
    http_addr: SocketAddr,
    advertised: &Advertised,
    files: ReadyFiles,
) -> Result<(), StartError> {
    let (public_url, peer_addr) = (&advertised.public_url, &advertised.peer_addr);
    let ready = Ready {
        node_id: id,
        http_addr: http_addr.to_string(),
        peer_addr,
        public_url,
        data_dir: settings.data_dir.display().to_string(),
        admin_token_file: files.admin_token.map(|p| p.display().to_string()),
        join_token_file: files.join_token.map(|p| p.display().to_string()),
    };
    let line = serde_json::to_string(&ready).map_err(|e| StartError::runtime("ready line", e))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "RSP_READY {line}");
        let _ = out.flush();
    }
    tracing::info!(node_id = id, %public_url, %peer_addr, "rsp is serving");
    Ok(())
}

/// No new requests, let in-flight ones finish, merge the usage counts and
/// write the queued audit events, then Raft (handing leadership on) and
/// storage.
async fn stop(
    http: Serving,
    runtime: &TenantRuntime,
    consensus: &Consensus,
    peers: Serving,
    identity: &rsp_identity::Identity,
) {
    tracing::info!("shutting down");
    http.stop(Duration::from_secs(10)).await;
    let flushed = async {
        if let Err(e) = identity.usage.flush().await {
            tracing::warn!(error = %e, "the last usage counts were not merged");
        }
        identity.audit.flush().await;
    };
    if tokio::time::timeout(Duration::from_secs(10), flushed)
        .await
        .is_err()
    {
        tracing::warn!("usage and audit were not written within 10 s of shutdown");
    }
    runtime.shutdown().await;
    consensus.shutdown().await;
    peers.stop(Duration::from_secs(1)).await;
    tracing::info!("stopped");
}
