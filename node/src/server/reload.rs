//! Replacing TLS material without a restart, on SIGHUP and when a file
//! changes (the files are looked at every [`POLL_INTERVAL`]): the HTTPS
//! certificate (`tls-cert`, `tls-key`) and the peer links' mutual-TLS
//! identity (the same pair, and `peer-tls-ca`). Each part is loaded whole
//! or not at all: material that does not load (unreadable, not PEM, a key
//! that does not match the certificate) is refused with an error in the
//! log, and what is in use stays. New connections get the new material;
//! connections already open keep what they were made with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use rsp_consensus::PeerTls;

use super::https;
use crate::config::Settings;

/// How often the certificate, key and CA files are looked at.
const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The task that reloads TLS material; it stops when this is dropped.
pub(super) struct Reloader(tokio::task::JoinHandle<()>);

impl Drop for Reloader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What is reloaded: the HTTPS listener's config from these files, and
/// the peer links' material.
struct Parts {
    https: Option<(RustlsConfig, PathBuf, PathBuf)>,
    peer: Option<PeerTls>,
}

impl Parts {
    /// Every file a part is read from, once each.
    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = Vec::new();
        let https = self.https.iter().flat_map(|(_, c, k)| [c.as_path(), k]);
        let peer = self.peer.iter().flat_map(|p| p.files());
        for f in https.chain(peer) {
            if !files.iter().any(|seen| seen == f) {
                files.push(f.to_path_buf());
            }
        }
        files
    }

    fn reload(&self, why: &str) {
        if let Some((config, cert, key)) = &self.https {
            reload_https(config, cert, key, why);
        }
        if let Some(peer) = &self.peer {
            match peer.reload() {
                Ok(()) => tracing::info!(%why, "reloaded the peer TLS certificate and CA"),
                Err(e) => tracing::error!(
                    error = %e,
                    %why,
                    "the new peer TLS material was not loaded; keeping the one in use"
                ),
            }
        }
    }
}

/// Reload `http` (the HTTPS listener's config) and `peer` on SIGHUP and
/// when their files change. With neither, a SIGHUP is logged and otherwise
/// ignored (rather than ending the process, its default).
pub(super) fn watch(
    http: Option<RustlsConfig>,
    peer: Option<PeerTls>,
    settings: &Settings,
) -> Reloader {
    let https = match (http, &settings.tls_cert, &settings.tls_key) {
        (Some(config), Some(cert), Some(key)) => Some((config, cert.clone(), key.clone())),
        _ => None,
    };
    let parts = Parts { https, peer };
    Reloader(tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())
            .inspect_err(|e| tracing::warn!(error = %e, "no SIGHUP handler"))
            .ok();
        let files = parts.files();
        if files.is_empty() {
            while let Some(hangup) = hangup.as_mut() {
                if hangup.recv().await.is_none() {
                    break;
                }
                tracing::info!("SIGHUP: nothing to reload without TLS");
            }
            return;
        }
        let mut seen = stamp(&files);
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                Some(()) = async { hangup.as_mut()?.recv().await } => "SIGHUP",
                _ = tick.tick() => {
                    if stamp(&files) == seen {
                        continue;
                    }
                    "the files changed"
                }
            };
            // Material that fails to load is tried again on the next change.
            seen = stamp(&files);
            parts.reload(why);
        }
    }))
}

fn reload_https(config: &RustlsConfig, cert: &Path, key: &Path, why: &str) {
    match https::load(cert, key) {
        Ok(new) => {
            config.reload_from_config(Arc::new(new));
            tracing::info!(cert = %cert.display(), %why, "reloaded the HTTPS certificate");
        }
        Err((setting, message)) => tracing::error!(
            %setting,
            error = %message,
            %why,
            "the new HTTPS certificate was not loaded; keeping the one in use"
        ),
    }
}

/// What tells a changed file: its inode, length and modification time.
type Stamp = Vec<Option<(u64, u64, SystemTime)>>;

fn stamp(files: &[PathBuf]) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.ino(), m.len(), m.modified().ok()?))
        })
        .collect()
}
