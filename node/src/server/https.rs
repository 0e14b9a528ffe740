//! The HTTPS listener's certificate, loaded from `tls-cert` and `tls-key`
//! (at start-up, and again by `reload`).

use std::path::Path;
use std::sync::Arc;

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
