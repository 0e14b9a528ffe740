//! Start-up and shutdown of one `rsp` node.
//!
//! Order matters for the contract's promise that a bad setting changes
//! nothing on disk: settings are checked, TLS material is loaded and both
//! listeners are bound *before* the data directory is created or opened.
//! Then: node identity, storage and Raft, the peer listener, bootstrap or
//! join, the admin token, the HTTP listener, and the `RSP_READY` line.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsConfig;
use rsp_actors::{KIND_LOGIN, KIND_TOKEN, RateRule, RuntimeConfig, TenantRuntime};
use rsp_api::{AdminToken, AppState};
use rsp_consensus::{Consensus, ConsensusConfig, InjectedBugs, Member, PeerService, PeerTls};
use rsp_identity::Identity;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::passwords::PasswordHasher;
use zeroize::Zeroizing;

use crate::config::Settings;

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

/// The line a supervisor or test harness waits for on stdout.
#[derive(serde::Serialize)]
struct Ready<'a> {
    node_id: u64,
    http_addr: String,
    peer_addr: &'a str,
    public_url: &'a str,
    data_dir: String,
    admin_token_file: Option<String>,
}

fn http_tls(settings: &Settings) -> Result<Option<Arc<rustls::ServerConfig>>, StartError> {
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        return Ok(None);
    };
    let chain =
        rsp_consensus::tls::load_certs(cert).map_err(|e| StartError::setting("tls-cert", e))?;
    let key = rsp_consensus::tls::load_key(key).map_err(|e| StartError::setting("tls-key", e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::setting("tls-cert", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| StartError::setting("tls-key", e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

fn bind(addr: SocketAddr, setting: &'static str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .map_err(|e| StartError::setting(setting, format!("cannot listen on {addr}: {e}")))
}

/// The node id: the one stored in the data dir wins; a `--node-id` that
/// disagrees with it is refused.
fn node_id(settings: &Settings) -> Result<(u64, bool), StartError> {
    let path = settings.data_dir.join("node-id");
    let stored = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().parse::<u64>().map_err(|_| {
            StartError::setting("data-dir", format!("{} is not a node id", path.display()))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(StartError::setting(
                "data-dir",
                format!("{}: {e}", path.display()),
            ));
        }
    };
    match (stored, settings.node_id) {
        (Some(s), Some(f)) if s != f => Err(StartError::setting(
            "node-id",
            format!("the data dir belongs to node {s}, not {f}"),
        )),
        (Some(s), _) => Ok((s, false)),
        (None, Some(f)) => Ok((f, true)),
        (None, None) if settings.join.is_some() || settings.no_bootstrap => {
            // A joining node needs an id nobody else has: random, below 2^53
            // so JSON clients read it exactly.
            Ok((rand::random_range(2..(1u64 << 53)), true))
        }
        (None, None) => Ok((1, true)),
    }
}

/// Write a small file and make it (and its directory entry) durable.
fn write_synced(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(contents)?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// The tenant runtime's settings: defaults, with the rate limits of
/// `token-rate-limit`, `login-rate-limit` and `tenant-rate-limit` (0 turns
/// a limit off).
fn runtime_config(settings: &Settings) -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    let per_sec = settings.tenant_rate_limit as f64;
    config.limits.requests_per_sec = per_sec;
    config.limits.request_burst = per_sec * 2.0;
    let limits = &mut config.rate_limits;
    for (kind, per_sec, burst) in [
        (KIND_TOKEN, settings.token_rate_limit, 2),
        (KIND_LOGIN, settings.login_rate_limit, 4),
    ] {
        if per_sec == 0 {
            limits.rules.remove(kind);
            limits.unlimited.insert(kind.to_string());
        } else {
            let per_sec = per_sec as f64;
            let rule = RateRule {
                per_sec,
                burst: per_sec * burst as f64,
            };
            limits.rules.insert(kind.to_string(), rule);
        }
    }
    config
}

/// `RSP_ADMIN_TOKEN` when set, else the token file (generated on first start).
fn admin_token(settings: &Settings) -> Result<(Zeroizing<String>, Option<PathBuf>), StartError> {
    if let Ok(token) = std::env::var("RSP_ADMIN_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok((Zeroizing::new(token.trim().to_string()), None));
    }
    let path = settings.admin_token_path();
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            Ok((Zeroizing::new(text.trim().to_string()), Some(path)))
        }
        Ok(_) => Err(StartError::setting(
            "admin-token-file",
            format!("{} is empty", path.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
            write_private(&path, token.as_bytes())
                .map_err(|e| StartError::runtime(&format!("writing {}", path.display()), e))?;
            eprintln!("rsp: generated an admin token in {}", path.display());
            Ok((token, Some(path)))
        }
        Err(e) => Err(StartError::setting(
            "admin-token-file",
            format!("{}: {e}", path.display()),
        )),
    }
}

/// Name under which members offer the KEK to nodes that join through them.
const KEK_SECRET: &str = "kek";

/// The KEK from `RSP_KEK` or the kek file, if either exists.
fn load_kek(settings: &Settings) -> Result<Option<Kek>, StartError> {
    if let Ok(text) = std::env::var("RSP_KEK")
        && !text.trim().is_empty()
    {
        let text = Zeroizing::new(text);
        return Kek::parse(&text)
            .map(Some)
            .map_err(|e| StartError::setting("kek", format!("RSP_KEK: {e}")));
    }
    let path = settings.kek_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            Kek::parse(&text)
                .map(Some)
                .map_err(|e| StartError::setting("kek-file", format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StartError::setting(
            "kek-file",
            format!("{}: {e}", path.display()),
        )),
    }
}

fn missing_kek(settings: &Settings) -> StartError {
    StartError::setting(
        "kek-file",
        format!(
            "{} is missing but this node already holds cluster data sealed under a key-encryption key; restore it or set RSP_KEK",
            settings.kek_path().display()
        ),
    )
}

fn save_kek(settings: &Settings, kek: &Kek) -> Result<(), StartError> {
    let path = settings.kek_path();
    write_private(&path, kek.encode().as_bytes()).map_err(|e| {
        StartError::runtime(
            &format!("writing the key-encryption key to {}", path.display()),
            e,
        )
    })
}

/// Fetch the KEK from the member at `peer_addr` and keep it in the kek file.
async fn fetch_kek(
    consensus: &Consensus,
    settings: &Settings,
    peer_addr: &str,
) -> Result<Kek, StartError> {
    let bytes = consensus
        .fetch_secret(peer_addr, KEK_SECRET)
        .await
        .map_err(|e| StartError::runtime(&format!("fetching the key-encryption key from {peer_addr}"), e))?
        .ok_or_else(|| {
            StartError::Runtime(format!(
                "the member at {peer_addr} has no key-encryption key to share; give this node the cluster's KEK with --kek-file or RSP_KEK"
            ))
        })?;
    let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
    let kek =
        Kek::parse(&text).map_err(|e| StartError::runtime("the fetched key-encryption key", e))?;
    save_kek(settings, &kek)?;
    Ok(kek)
}

/// Serve `app` on `listener` (HTTPS with `tls`). Accepted connections get
/// `TCP_NODELAY`: small answers (a follower's append acknowledgement, a
/// token) leave at once instead of waiting on Nagle's algorithm, which
/// measured 25% more replicated writes per second.
fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: axum::Router,
    handle: Handle<SocketAddr>,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let task = match tls {
        Some(config) => {
            let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(config))
                .map_err(|e| StartError::runtime("listener", e))?
                .map(|tls| tls.acceptor(NoDelayAcceptor::new()))
                .handle(handle);
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    tracing::error!(error = %e, "https server stopped");
                }
            })
        }
        None => {
            let server = axum_server::from_tcp(listener)
                .map_err(|e| StartError::runtime("listener", e))?
                .acceptor(NoDelayAcceptor::new())
                .handle(handle);
            tokio::spawn(async move {
                if let Err(e) = server.serve(service).await {
                    tracing::error!(error = %e, "http server stopped");
                }
            })
        }
    };
    Ok(task)
}

async fn fetch_kek_when_added(consensus: Consensus, cell: Arc<KekCell>, settings: Settings) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = consensus.status();
        let leader = status
            .leader
            .filter(|l| *l != status.this_node)
            .and_then(|l| status.members.iter().find(|m| m.id == l));
        if let Some(leader) = leader {
            let addr = consensus.transport().route(leader.id, &leader.peer_addr);
            match fetch_kek(&consensus, &settings, &addr).await {
                Ok(kek) => {
                    consensus.set_secret(KEK_SECRET, kek.encode().as_bytes());
                    cell.set(kek);
                    tracing::info!("received the cluster's key-encryption key");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "key-encryption key not received yet"),
            }
        }
    }
}

/// Run a node until `shutdown` resolves, then stop gracefully.
pub async fn run(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    // 1. Everything that can fail on a bad setting, before touching the disk.
    let bugs = match std::env::var("RSP_INJECT_BUGS") {
        Ok(list) => {
            InjectedBugs::parse(&list).map_err(|e| StartError::setting("inject-bugs", e))?
        }
        Err(_) => InjectedBugs::default(),
    };
    if bugs.any() {
        tracing::warn!(
            ?bugs,
            "RSP_INJECT_BUGS is set: this node runs with deliberate bugs and can lose or corrupt data; for checker tests only"
        );
        eprintln!(
            "rsp: WARNING: running with deliberately injected bugs ({bugs:?}); never use this outside tests"
        );
    }
    let http_tls = http_tls(&settings)?;
    let peer_tls = match (&settings.peer_tls_ca, &settings.tls_cert, &settings.tls_key) {
        (Some(ca), Some(cert), Some(key)) => {
            Some(PeerTls::load(cert, key, ca).map_err(|e| StartError::setting("peer-tls-ca", e))?)
        }
        _ => None,
    };
    let given_kek = load_kek(&settings)?;
    if given_kek.is_none()
        && settings.join.is_none()
        && !settings.no_bootstrap
        && settings.data_dir.join("store").exists()
    {
        return Err(missing_kek(&settings));
    }
    let http_listener = bind(settings.http_addr, "http-addr")?;
    let peer_listener = bind(settings.peer_addr, "peer-addr")?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|e| StartError::runtime("http listener", e))?;
    let peer_bound = peer_listener
        .local_addr()
        .map_err(|e| StartError::runtime("peer listener", e))?;
    let (id, fresh_id) = node_id(&settings)?;

    // 2. The data dir.
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        StartError::setting("data-dir", format!("{}: {e}", settings.data_dir.display()))
    })?;
    if fresh_id {
        write_synced(
            &settings.data_dir.join("node-id"),
            format!("{id}\n").as_bytes(),
        )
        .map_err(|e| StartError::runtime("writing node-id", e))?;
    }
    let public_url = settings.public_url.clone().unwrap_or_else(|| {
        let scheme = if http_tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{http_addr}")
    });
    let peer_addr = settings
        .peer_advertise_addr
        .clone()
        .unwrap_or_else(|| peer_bound.to_string());
    let member = Member {
        peer_addr: peer_addr.clone(),
        http_addr: http_addr.to_string(),
        zone: settings.zone.clone(),
        region: settings.region.clone(),
    };

    // 3. Storage and Raft, and the peer listener.
    let registry = Arc::new(prometheus::Registry::new());
    let mut config = ConsensusConfig::new(id, member, settings.data_dir.join("store"));
    config.heartbeat_ms = settings.heartbeat_ms;
    config.election_timeout_ms = settings.election_timeout_ms;
    config.snapshot_threshold = settings.snapshot_threshold;
    config.routes = settings
        .peer_routes
        .iter()
        .cloned()
        .collect::<HashMap<_, _>>();
    config.tls = peer_tls.clone();
    config.bugs = bugs;
    let consensus = Consensus::start(config, &registry)
        .await
        .map_err(|e| StartError::runtime("starting storage and raft", e))?;
    let peer_handle = Handle::new();
    let peer_task = serve(
        peer_listener,
        peer_tls.map(|t| t.server_config()),
        PeerService::new([consensus.clone()]).router(),
        peer_handle.clone(),
    )?;

    // 4. Form or join a cluster.
    let initialized = consensus
        .is_initialized()
        .await
        .map_err(|e| StartError::runtime("reading raft state", e))?;
    match (&settings.join, initialized) {
        (Some(addr), false) => {
            tracing::info!(%addr, "joining the cluster");
            consensus
                .join(addr, !settings.learner, Duration::from_secs(600))
                .await
                .map_err(|e| StartError::runtime(&format!("joining through {addr}"), e))?;
        }
        (Some(addr), true) => {
            // Already a member: a join is harmless (idempotent) and repairs a
            // node that was added as a learner but not yet promoted.
            let (c, addr, voter) = (consensus.clone(), addr.clone(), !settings.learner);
            tokio::spawn(async move {
                if let Err(e) = c.join(&addr, voter, Duration::from_secs(60)).await {
                    tracing::warn!(error = %e, "re-join on restart did not complete");
                }
            });
        }
        (None, false) if !settings.no_bootstrap => {
            consensus
                .bootstrap()
                .await
                .map_err(|e| StartError::runtime("bootstrapping a one-node cluster", e))?;
            tracing::info!(node_id = id, "bootstrapped a new one-node cluster");
        }
        (None, false) => {
            tracing::info!(node_id = id, %peer_addr, "waiting to be added to a cluster")
        }
        (None, true) => {}
    }

    // 5. The key-encryption key: given, kept from an earlier start, fetched
    // from the member we joined through, or made for a new cluster.
    let kek_cell = Arc::new(KekCell::default());
    match (given_kek, &settings.join, initialized) {
        (Some(kek), _, _) => kek_cell.set(kek),
        (None, Some(addr), _) => kek_cell.set(fetch_kek(&consensus, &settings, addr).await?),
        (None, None, false) if !settings.no_bootstrap => {
            let kek = Kek::generate();
            save_kek(&settings, &kek)?;
            kek_cell.set(kek);
        }
        (None, None, _) if settings.no_bootstrap => {
            // Added later by the admin API: fetch from the leader once we are
            // a member. Until then identity features answer "unavailable".
            let (c, cell, s) = (consensus.clone(), kek_cell.clone(), settings.clone());
            tokio::spawn(async move { fetch_kek_when_added(c, cell, s).await });
        }
        (None, None, _) => return Err(missing_kek(&settings)),
    }
    if let Ok(kek) = kek_cell.get() {
        consensus.set_secret(KEK_SECRET, kek.encode().as_bytes());
    }
    let hasher = PasswordHasher::new().map_err(|e| StartError::runtime("password hasher", e))?;
    let identity = Identity::new(consensus.clone(), kek_cell.clone(), hasher);
    let runtime = TenantRuntime::start(consensus.clone(), runtime_config(&settings), &registry)
        .await
        .map_err(|e| StartError::runtime("starting the tenant actors", e))?;

    // 6. The HTTP API.
    let (token, token_file) = admin_token(&settings)?;
    let state = AppState::new(
        consensus.clone(),
        AdminToken::new(token),
        registry.clone(),
        identity,
        &public_url,
    )
    .with_runtime(runtime.clone());
    let http_handle = Handle::new();
    let http_task = serve(
        http_listener,
        http_tls,
        rsp_api::app(state.clone()).layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(crate::telemetry::request_span)
                .on_response(crate::telemetry::record_status),
        ),
        http_handle.clone(),
    )?;
    if settings.demo {
        crate::demo::ensure(&state)
            .await
            .map_err(|e| StartError::runtime("--demo", e))?;
    }

    let ready = Ready {
        node_id: id,
        http_addr: http_addr.to_string(),
        peer_addr: &peer_addr,
        public_url: &public_url,
        data_dir: settings.data_dir.display().to_string(),
        admin_token_file: token_file.map(|p| p.display().to_string()),
    };
    let line = serde_json::to_string(&ready).map_err(|e| StartError::runtime("ready line", e))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "RSP_READY {line}");
        let _ = out.flush();
    }
    tracing::info!(node_id = id, %public_url, %peer_addr, "rsp is serving");

    // 7. Run until told to stop, then stop in order: no new requests, let
    // in-flight ones finish, then Raft (handing leadership on) and storage.
    shutdown.await;
    tracing::info!("shutting down");
    http_handle.graceful_shutdown(Some(Duration::from_secs(10)));
    let _ = http_task.await;
    runtime.shutdown().await;
    consensus.shutdown().await;
    peer_handle.graceful_shutdown(Some(Duration::from_secs(1)));
    let _ = peer_task.await;
    tracing::info!("stopped");
    Ok(())
}
