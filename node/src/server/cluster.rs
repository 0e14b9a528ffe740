//! Steps 3 and 4 of start-up: how this node describes itself, storage and
//! Raft with the peer listener, and forming or joining a cluster.

use std::collections::HashMap;
use std::time::Duration;

use rsp_consensus::peer_auth::JoinToken;
use rsp_consensus::{
    Consensus, ConsensusConfig, ConsensusError, InjectedBugs, Member, PeerService, PeerTls,
};

use super::StartError;
use super::listen::{Limits, Serving, serve};
use super::preflight::Listeners;
use crate::config::Settings;
use axum_server::tls_rustls::RustlsConfig;

/// How this node describes itself to clients and to other members.
pub(super) struct Advertised {
    /// The base URL of the HTTP API.
    pub(super) public_url: String,
    /// Where other members reach this node's peer listener.
    pub(super) peer_addr: String,
    pub(super) member: Member,
}

/// `public-url` and `peer-advertise-addr`, or else what was bound.
pub(super) fn advertise(settings: &Settings, listeners: &Listeners, https: bool) -> Advertised {
    let http_addr = listeners.http_addr;
    let public_url = settings.public_url.clone().unwrap_or_else(|| {
        let scheme = if https { "https" } else { "http" };
        format!("{scheme}://{http_addr}")
    });
    let peer_addr = settings
        .peer_advertise_addr
        .clone()
        .unwrap_or_else(|| listeners.peer_addr.to_string());
    let member = Member {
        peer_addr: peer_addr.clone(),
        http_addr: http_addr.to_string(),
        zone: settings.zone.clone(),
        region: settings.region.clone(),
    };
    Advertised {
        public_url,
        peer_addr,
        member,
    }
}

/// Open storage and start Raft in `<data-dir>/store`.
pub(super) async fn start_consensus(
    settings: &Settings,
    id: u64,
    member: Member,
    peer_tls: Option<PeerTls>,
    join_token: JoinToken,
    bugs: InjectedBugs,
    registry: &prometheus::Registry,
) -> Result<Consensus, StartError> {
    let mut config = ConsensusConfig::new(id, member, settings.data_dir.join("store"));
    config.heartbeat_ms = settings.heartbeat_ms;
    config.election_timeout_ms = settings.election_timeout_ms;
    config.snapshot_threshold = settings.snapshot_threshold;
    config.routes = settings
        .peer_routes
        .iter()
        .cloned()
        .collect::<HashMap<_, _>>();
    config.tls = peer_tls;
    config.join_token = join_token;
    config.bugs = bugs;
    config.force_new_cluster = settings.force_new_cluster;
    Consensus::start(config, registry)
        .await
        .map_err(|e| StartError::runtime("starting storage and raft", e))
}

/// Serve Raft's peer messages on the peer listener (mutual TLS with
/// `peer_tls`) within the listeners' `limits`.
pub(super) fn serve_peers(
    consensus: &Consensus,
    listener: std::net::TcpListener,
    peer_tls: Option<PeerTls>,
    limits: Limits,
) -> Result<Serving, StartError> {
    serve(
        listener,
        peer_tls.map(|t| RustlsConfig::from_config(t.server_config())),
        PeerService::new(consensus.peer_auth().clone(), [consensus.clone()]).router(),
        limits,
    )
}

/// Step 4: join through `--join`, bootstrap a one-node cluster, or wait to
/// be added. Returns whether this node already had Raft state.
pub(super) async fn form_or_join(
    consensus: &Consensus,
    settings: &Settings,
    id: u64,
    peer_addr: &str,
) -> Result<bool, StartError> {
    let initialized = consensus
        .is_initialized()
        .await
        .map_err(|e| StartError::runtime("reading raft state", e))?;
    // A join address that is this node's own (every pod of a StatefulSet
    // is given the first pod's) is no cluster to join: the first pod
    // bootstraps.
    let join = settings.join.as_ref().filter(|addr| *addr != peer_addr);
    match (join, initialized) {
        (Some(addr), false) => {
            tracing::info!(%addr, "joining the cluster");
            consensus
                .join(addr, !settings.learner, Duration::from_secs(600))
                .await
                .map_err(|e| match e {
                    ConsensusError::Config(m) => StartError::setting("join-token", m),
                    e => StartError::runtime(&format!("joining through {addr}"), e),
                })?;
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
    Ok(initialized)
}
