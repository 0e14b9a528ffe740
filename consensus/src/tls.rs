//! Mutual TLS for peer links (rustls, aws-lc-rs provider).
//!
//! With `--peer-tls-ca`, every node presents its `--tls-cert` to peers and
//! accepts only peers whose certificate chains to that CA, in both directions.
//! Peers are dialled by the host in their `peer_addr`, so a node's certificate
//! must name that host (an IP SAN for IP addresses).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::error::ConsensusError;

/// Peer TLS material, loaded once at start-up.
#[derive(Clone)]
pub struct PeerTls {
    server: Arc<rustls::ServerConfig>,
    client: rustls::ClientConfig,
}

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> ConsensusError {
    ConsensusError::Config(format!("{what} {}: {e}", path.display()))
}

/// Read every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConsensusError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err("certificate file", path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("certificate file", path, e))?;
    if certs.is_empty() {
        return Err(err("certificate file", path, "no certificate in it"));
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConsensusError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| err("private key file", path, e))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl PeerTls {
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Self, ConsensusError> {
        let chain = load_certs(cert)?;
        let key = load_key(key)?;
        let mut roots = rustls::RootCertStore::empty();
        for ca_cert in load_certs(ca)? {
            roots
                .add(ca_cert)
                .map_err(|e| err("CA certificate", ca, e))?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| err("CA certificate", ca, e))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConsensusError::Config(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| err("certificate/key pair", cert, e))?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConsensusError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| err("certificate/key pair", cert, e))?;
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(PeerTls {
            server: Arc::new(server),
            client,
        })
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }

    pub fn client_config(&self) -> rustls::ClientConfig {
        self.client.clone()
    }
}
