//! Step 1 of start-up: everything that can fail on a bad setting, done
//! before the data directory is created or opened. Deliberate bugs are read
//! from `RSP_INJECT_BUGS`, TLS material is loaded, the key-encryption key is
//! read if given, the join token is read (or one is made for a new
//! cluster), the admin token is read and checked, both listeners are bound
//! and the node id is settled.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use rsp_consensus::PeerTls;

use crate::bugs::InjectedBugs;
use rsp_identity::crypto::Kek;

use super::files::{self, GivenAdminToken};
use super::{StartError, https, join_token, kek};
use crate::config::Settings;

/// What start-up knows once the settings have been checked against the
/// world, with nothing yet written.
pub(super) struct Checked {
    pub(super) bugs: InjectedBugs,
    pub(super) http_tls: Option<Arc<rustls::ServerConfig>>,
    pub(super) peer_tls: Option<PeerTls>,
    /// The key-encryption key from `kek-command`, `RSP_KEK` or the kek
    /// file, if given.
    pub(super) given_kek: Option<Kek>,
    pub(super) join_token: join_token::Resolved,
    pub(super) admin_token: GivenAdminToken,
    pub(super) listeners: Listeners,
    pub(super) id: u64,
    /// Whether the id is new, so the data dir does not hold it yet.
    pub(super) fresh_id: bool,
}

/// Both listeners, bound, and the addresses they were bound to.
pub(super) struct Listeners {
    pub(super) http: TcpListener,
    pub(super) peer: TcpListener,
    pub(super) http_addr: SocketAddr,
    pub(super) peer_addr: SocketAddr,
}

/// Step 1, in order: bugs, TLS, the KEK, the join token, the admin token,
/// the listeners, the node id.
pub(super) fn check(settings: &Settings) -> Result<Checked, StartError> {
    let bugs = injected_bugs()?;
    let http_tls = http_tls(settings)?;
    let peer_tls = peer_tls(settings)?;
    let given_kek = kek::given(settings)?;
    let join_token = join_token::resolve(settings)?;
    let admin_token = files::given_admin_token(settings)?;
    let listeners = bind_listeners(settings)?;
    let (id, fresh_id) = node_id(settings)?;
    Ok(Checked {
        bugs,
        http_tls,
        peer_tls,
        given_kek,
        join_token,
        admin_token,
        listeners,
        id,
        fresh_id,
    })
}

/// `RSP_INJECT_BUGS`, with a loud warning when any is set. A build
/// without the `bug-injection` feature refuses the variable (exit 2): a
/// release binary has no bug switch, and an operator who set one should
/// hear so rather than believe it took.
fn injected_bugs() -> Result<InjectedBugs, StartError> {
    let list = std::env::var("RSP_INJECT_BUGS").unwrap_or_default();
    let bugs = InjectedBugs::parse(&list).map_err(|e| StartError::setting("inject-bugs", e))?;
    if bugs.any() {
        tracing::warn!(
            ?bugs,
            "RSP_INJECT_BUGS is set: this node runs with deliberate bugs and can lose or corrupt data; for checker tests only"
        );
        eprintln!(
            "rsp: WARNING: running with deliberately injected bugs ({bugs:?}); never use this outside tests"
        );
    }
    Ok(bugs)
}

fn http_tls(settings: &Settings) -> Result<Option<Arc<rustls::ServerConfig>>, StartError> {
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        return Ok(None);
    };
    let config = https::load(cert, key)
        .map_err(|(setting, message)| StartError::setting(setting, message))?;
    Ok(Some(Arc::new(config)))
}

/// Mutual TLS for peer links, when `peer-tls-ca` is given with the node's
/// certificate and key.
fn peer_tls(settings: &Settings) -> Result<Option<PeerTls>, StartError> {
    match (&settings.peer_tls_ca, &settings.tls_cert, &settings.tls_key) {
        (Some(ca), Some(cert), Some(key)) => PeerTls::load(cert, key, ca)
            .map(Some)
            .map_err(|e| StartError::setting("peer-tls-ca", e)),
        _ => Ok(None),
    }
}

fn bind_listeners(settings: &Settings) -> Result<Listeners, StartError> {
    let http = bind(settings.http_addr, "http-addr")?;
    let peer = bind(settings.peer_addr, "peer-addr")?;
    let http_addr = http
        .local_addr()
        .map_err(|e| StartError::runtime("http listener", e))?;
    let peer_addr = peer
        .local_addr()
        .map_err(|e| StartError::runtime("peer listener", e))?;
    Ok(Listeners {
        http,
        peer,
        http_addr,
        peer_addr,
    })
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
