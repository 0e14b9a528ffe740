//! Mutual TLS for peer links (rustls, aws-lc-rs provider).
//!
//! With `--peer-tls-ca`, every node presents its `--tls-cert` to peers and
//! accepts only peers whose certificate chains to that CA, in both directions.
//! Peers are dialled by the host in their `peer_addr`, so a node's certificate
//! must name that host (an IP SAN for IP addresses).
//!
//! The material (certificate, key and CA) can be replaced while the node
//! runs: [`PeerTls::reload`] reads the three files again and, when they
//! load, every new handshake after it uses them, on both the listening and
//! the dialling side. The rustls configs are built once; what changes lives
//! behind their certificate resolvers and verifiers (`Live`), because the
//! HTTP client takes its config once. Session resumption is off on both
//! sides, so no handshake skips the certificate check against the CA in use.
//! Connections already open keep the identity they were made with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::error::ConsensusError;

/// Peer TLS material and the rustls configs that use it. Clones share the
/// material: a reload through one is seen by all.
#[derive(Clone)]
pub struct PeerTls {
    files: Arc<Files>,
    live: Arc<Live>,
    server: Arc<rustls::ServerConfig>,
    client: rustls::ClientConfig,
}

/// Where the material is read from.
struct Files {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

fn err(what: &str, path: &Path, e: impl fmt::Display) -> ConsensusError {
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

/// One loaded set: this node's certified key, and the verifiers of the
/// other side's certificate built from the CA.
struct Material {
    key: Arc<CertifiedKey>,
    clients: Arc<dyn ClientCertVerifier>,
    servers: Arc<WebPkiServerVerifier>,
}

impl Material {
    fn load(files: &Files) -> Result<Material, ConsensusError> {
        let chain = load_certs(&files.cert)?;
        let key = load_key(&files.key)?;
        let key = CertifiedKey::from_der(chain, key, &provider())
            .map_err(|e| err("certificate/key pair", &files.cert, e))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca_cert in load_certs(&files.ca)? {
            roots
                .add(ca_cert)
                .map_err(|e| err("CA certificate", &files.ca, e))?;
        }
        let roots = Arc::new(roots);
        let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| err("CA certificate", &files.ca, e))?;
        let servers = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| err("CA certificate", &files.ca, e))?;
        Ok(Material {
            key: Arc::new(key),
            clients,
            servers,
        })
    }
}

/// The material in use, behind the configs' resolvers and verifiers: each
/// handshake reads the current set.
struct Live(RwLock<Arc<Material>>);

impl Live {
    fn current(&self) -> Arc<Material> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, new: Material) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
    }
}

impl fmt::Debug for Live {
    // The private key stays out of `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Live(peer TLS material)")
    }
}

impl rustls::server::ResolvesServerCert for Live {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }
}

impl rustls::client::ResolvesClientCert for Live {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for Live {
    /// No CA names are hinted to the client (they would have to outlive a
    /// reload); a peer has one certificate and sends it regardless.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .clients
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ClientCertVerifier::verify_tls12_signature(&*self.current().clients, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ClientCertVerifier::verify_tls13_signature(&*self.current().clients, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ClientCertVerifier::supported_verify_schemes(&*self.current().clients)
    }
}

impl ServerCertVerifier for Live {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.current().servers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls12_signature(&*self.current().servers, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls13_signature(&*self.current().servers, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ServerCertVerifier::supported_verify_schemes(&*self.current().servers)
    }
}

impl PeerTls {
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Self, ConsensusError> {
        let files = Files {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            ca: ca.to_path_buf(),
        };
        let live = Arc::new(Live(RwLock::new(Arc::new(Material::load(&files)?))));
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConsensusError::Config(e.to_string()))?
            .with_client_cert_verifier(live.clone())
            .with_cert_resolver(live.clone());
        server.alpn_protocols = vec![b"h2".to_vec()];
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        let mut client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConsensusError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(live.clone())
            .with_client_cert_resolver(live.clone());
        client.alpn_protocols = vec![b"h2".to_vec()];
        client.resumption = rustls::client::Resumption::disabled();
        Ok(PeerTls {
            files: Arc::new(files),
            live,
            server: Arc::new(server),
            client,
        })
    }

    /// Read the certificate, key and CA files again and use them for every
    /// handshake from now on. Material that does not load is refused and
    /// the material in use stays.
    pub fn reload(&self) -> Result<(), ConsensusError> {
        self.live.replace(Material::load(&self.files)?);
        Ok(())
    }

    /// The files the material is read from: certificate, key, CA.
    pub fn files(&self) -> [&Path; 3] {
        [&self.files.cert, &self.files.key, &self.files.ca]
    }

    /// The end-entity certificate presented now.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.live.current().key.cert[0].clone()
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }

    pub fn client_config(&self) -> rustls::ClientConfig {
        self.client.clone()
    }
}
