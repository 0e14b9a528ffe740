//! The HTTPS listener's certificate: loaded from `tls-cert` and `tls-key`
//! at start-up, and replaced without a restart on SIGHUP or when either
//! file changes (looked at every [`POLL_INTERVAL`]). A new pair that does
//! not load (unreadable, not PEM, a key that does not match the
//! certificate) is refused with an error in the log, and the certificate
//! in use stays. Connections already open keep the certificate they were
//! made with. The peer listener's mutual-TLS identity is loaded once, at
//! start-up.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;

use crate::config::Settings;

/// How often the certificate and key files are looked at.
pub(super) const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// A server config serving `cert` with `key` (HTTP/2 and HTTP/1.1), or
/// the setting to blame and why not.
pub(super) fn load(
    cert: &Path,
    key: &Path,
) -> Result<rustls::ServerConfig, (&'static str, String)> {
    let chain = rsp_consensus::tls::load_certs(cert).map_err(|e| ("tls-cert", e.to_string()))?;
    let key = rsp_consensus::tls::load_key(key).map_err(|e| ("tls-key", e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ("tls-cert", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ("tls-key", e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The task that reloads the certificate; it stops when this is dropped.
pub(super) struct Reloader(tokio::task::JoinHandle<()>);

impl Drop for Reloader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reload `config` from `tls-cert` and `tls-key` on SIGHUP and when they
/// change. Without HTTPS a SIGHUP is logged and otherwise ignored (rather
/// than ending the process, its default).
pub(super) fn watch(config: Option<RustlsConfig>, settings: &Settings) -> Reloader {
    let files = match (config, &settings.tls_cert, &settings.tls_key) {
        (Some(config), Some(cert), Some(key)) => Some((config, cert.clone(), key.clone())),
        _ => None,
    };
    Reloader(tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())
            .inspect_err(|e| tracing::warn!(error = %e, "no SIGHUP handler"))
            .ok();
        let Some((config, cert, key)) = files else {
            while let Some(hangup) = hangup.as_mut() {
                if hangup.recv().await.is_none() {
                    break;
                }
                tracing::info!("SIGHUP: nothing to reload without HTTPS");
            }
            return;
        };
        let mut seen = stamp(&cert, &key);
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                Some(()) = async { hangup.as_mut()?.recv().await } => "SIGHUP",
                _ = tick.tick() => {
                    if stamp(&cert, &key) == seen {
                        continue;
                    }
                    "the files changed"
                }
            };
            // A pair that fails to load is tried again on the next change.
            seen = stamp(&cert, &key);
            reload(&config, &cert, &key, why);
        }
    }))
}

fn reload(config: &RustlsConfig, cert: &Path, key: &Path, why: &str) {
    match load(cert, key) {
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
type Stamp = [Option<(u64, u64, SystemTime)>; 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    [cert, key].map(|p| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.ino(), m.len(), m.modified().ok()?))
    })
}
