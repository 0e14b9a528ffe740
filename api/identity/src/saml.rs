//! The SAML 2.0 identity provider of each tenant: its metadata, the
//! service providers it answers ([`providers`]), the requests it takes
//! ([`request`], decoded within bounds by [`wire`]) and the answers it
//! signs ([`response`], enveloped signatures by [`dsig`]), encrypting the
//! assertion when the SP asks ([`encryption`]).
//!
//! Signing uses the tenant's RS256 key ([`crate::keys`]): the same key, the
//! same rotation (the next key's certificate is in the metadata before it
//! signs), the same sealing under the KEK. Its certificate is self-signed
//! and made the same way on every node from the key (serial and validity
//! derived from the key's record), so every node publishes the same
//! metadata.

pub mod dsig;
pub mod encryption;
pub mod metadata;
pub mod providers;
pub mod request;
pub mod response;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rsp_consensus::kv::{Key, Txn, tenant_keyspace};
use rsp_consensus::{Consensus, ConsensusError, Consistency};

use crate::crypto::{CryptoError, KekCell, b64url};
use crate::keys::{KeyError, KeyService, KeyStatus, Signer, SigningAlg, StoredKey};
use crate::miss_gate::{MissGate, MissRefused};
use metadata::IdpEndpoints;
use providers::{NameIdFormat, ProviderService, ServiceProvider};
use request::{Incoming, SsoRequest};

#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    /// The message cannot be read (encoding, size, XML, missing parts).
    #[error("{0}")]
    Malformed(String),
    /// A registration or setting is not acceptable (admin API).
    #[error("{0}")]
    Invalid(String),
    /// A feature this build does not have yet.
    #[error("{0}")]
    NotYet(String),
    #[error("the service provider is not registered with this tenant")]
    UnknownProvider,
    #[error("a service provider with entity id {0} is already registered")]
    Exists(String),
    /// The SP's request is refused (`RequestDenied`).
    #[error("{0}")]
    RequestDenied(String),
    #[error("{0}")]
    Version(String),
    #[error("{0}")]
    UnsupportedBinding(String),
    #[error("{0}")]
    InvalidNameIdPolicy(String),
    #[error("this AuthnRequest was answered already")]
    Replayed,
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Refused(#[from] MissRefused),
    #[error("{0}")]
    Internal(String),
}

impl SamlError {
    pub fn malformed(m: impl Into<String>) -> Self {
        SamlError::Malformed(m.into())
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        SamlError::Invalid(m.into())
    }
    pub fn not_yet(m: impl Into<String>) -> Self {
        SamlError::NotYet(m.into())
    }
    pub fn request_denied(m: impl Into<String>) -> Self {
        SamlError::RequestDenied(m.into())
    }
    pub fn version(m: impl Into<String>) -> Self {
        SamlError::Version(m.into())
    }
    pub fn unsupported_binding(m: impl Into<String>) -> Self {
        SamlError::UnsupportedBinding(m.into())
    }
    pub fn invalid_name_id_policy(m: impl Into<String>) -> Self {
        SamlError::InvalidNameIdPolicy(m.into())
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        SamlError::Internal(e.to_string())
    }

    /// The SAML status (top-level, second-level) that tells an SP about
    /// this error.
    pub fn status(&self) -> (&'static str, Option<&'static str>) {
        use response::*;
        match self {
            SamlError::Version(_) => (STATUS_VERSION_MISMATCH, None),
            SamlError::UnsupportedBinding(_) => {
                (STATUS_REQUESTER, Some(STATUS_UNSUPPORTED_BINDING))
            }
            SamlError::InvalidNameIdPolicy(_) => {
                (STATUS_REQUESTER, Some(STATUS_INVALID_NAME_ID_POLICY))
            }
            SamlError::Malformed(_)
            | SamlError::Invalid(_)
            | SamlError::UnknownProvider
            | SamlError::RequestDenied(_)
            | SamlError::Replayed
            | SamlError::Exists(_) => (STATUS_REQUESTER, Some(STATUS_REQUEST_DENIED)),
            _ => (STATUS_RESPONDER, None),
        }
    }
}

/// The signing key and certificate of a tenant.
pub struct Signing {
    pub kid: String,
    /// The key as [`KeyService::signer`] keeps it (parsed once per key and
    /// node).
    pub signer: Signer,
    pub certificate: Arc<Vec<u8>>,
}

impl Signing {
    pub fn material(&self) -> response::SigningMaterial<'_> {
        response::SigningMaterial {
            signer: &self.signer,
            certificate: &self.certificate,
        }
    }
}

/// Labels of the keyed hashes that make persistent NameIDs and session
/// indexes (neither reveals the user id or the session id).
const NAME_ID_LABEL: &str = "rsp saml persistent nameid v1";
const SESSION_INDEX_LABEL: &str = "rsp saml session index v1";

/// The tenant IdPs of a node.
#[derive(Clone)]
pub struct SamlService {
    consensus: Consensus,
    keys: KeyService,
    kek: Arc<KekCell>,
    pub providers: ProviderService,
    certificates: Arc<Mutex<Certificates>>,
}

/// Certificates (DER) by tenant and kid.
type Certificates = HashMap<(String, String), Arc<Vec<u8>>>;

impl SamlService {
    pub fn new(consensus: Consensus, keys: KeyService, kek: Arc<KekCell>) -> Self {
        SamlService {
            providers: ProviderService::new(consensus.clone()),
            consensus,
            keys,
            kek,
            certificates: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The certificate of key `kid` (self-signed, deterministic), made
    /// once per key and node.
    async fn certificate(&self, tenant: &str, kid: &str) -> Result<Arc<Vec<u8>>, SamlError> {
        let cache_key = (tenant.to_string(), kid.to_string());
        if let Some(cert) = self
            .certificates
            .lock()
            .ok()
            .and_then(|c| c.get(&cache_key).cloned())
        {
            return Ok(cert);
        }
        let (stored, pkcs8) = self.keys.private_pkcs8(tenant, kid).await?;
        let cert = Arc::new(self_signed(tenant, &stored, &pkcs8)?);
        if let Ok(mut cache) = self.certificates.lock() {
            cache.insert(cache_key, cert.clone());
        }
        Ok(cert)
    }

    /// The key that signs the tenant's SAML messages now.
    pub async fn signing(&self, tenant: &str) -> Result<Signing, SamlError> {
        let signer = self.keys.signer(tenant, SigningAlg::RS256).await?;
        let certificate = self.certificate(tenant, &signer.kid).await?;
        Ok(Signing {
            kid: signer.kid.clone(),
            signer,
            certificate,
        })
    }

    /// The IdP metadata of tenant `tenant` at `issuer`: the certificates
    /// of the RS256 key that signs and of the one published to sign next.
    pub async fn metadata(&self, tenant: &str, issuer: &str) -> Result<String, SamlError> {
        let signing = self.signing(tenant).await?;
        let mut certificates = vec![signing.certificate.as_ref().clone()];
        for key in self.keys.keys(tenant).await? {
            if key.alg == SigningAlg::RS256 && key.status == KeyStatus::Next {
                certificates.push(self.certificate(tenant, &key.kid).await?.as_ref().clone());
            }
        }
        Ok(metadata::idp_metadata(
            &IdpEndpoints::of(issuer),
            &certificates,
        ))
    }

    /// Read and check an AuthnRequest that came to tenant `tenant`'s IdP at
    /// `issuer`; `post_relay_state` is the POST form's RelayState. An
    /// unknown SP is confirmed with a quorum read first, which `gate` may
    /// refuse.
    pub async fn sso_request(
        &self,
        tenant: &str,
        issuer: &str,
        incoming: &Incoming<'_>,
        post_relay_state: Option<String>,
        now_ms: u64,
        gate: &dyn MissGate,
    ) -> Result<(ServiceProvider, SsoRequest), SamlError> {
        let xml = request::peek(incoming, "SAMLRequest")?;
        let sp_id = request::issuer_of_authn_request(&xml)?;
        let sp = self.providers.get(tenant, &sp_id, gate).await?;
        let decoded = request::verify(incoming, "SAMLRequest", post_relay_state, &sp)?;
        let checked =
            request::check_authn_request(&decoded, &sp, &IdpEndpoints::of(issuer).sso, now_ms)?;
        if let Some(id) = &checked.request_id
            && self.answered(tenant, &sp.entity_id, id).await?
        {
            return Err(SamlError::Replayed);
        }
        Ok((sp, checked))
    }

    fn request_key(tenant: &str, sp: &str, id: &str) -> Key {
        Key::new(
            tenant_keyspace(tenant),
            format!("saml_req/{}/{id}", b64url(sp.as_bytes())).into_bytes(),
        )
    }

    async fn answered(&self, tenant: &str, sp: &str, id: &str) -> Result<bool, SamlError> {
        let (kv, _) = self
            .consensus
            .get(&Self::request_key(tenant, sp, id), Consistency::Local)
            .await?;
        Ok(kv.is_some())
    }

    /// Record that `participant` is answered in session `session` (its
    /// handle), remembered for `ttl_ms` so that single logout tells it
    /// when the session ends, and spend the request `request_id` it
    /// answers: one write through Raft. [`SamlError::Replayed`], and
    /// nothing recorded, when the request was answered before (once across
    /// the cluster); the spent id lives as long as a request is accepted.
    pub async fn record_answer(
        &self,
        tenant: &str,
        session: &str,
        participant: &Participant,
        ttl_ms: u64,
        request_id: Option<&str>,
    ) -> Result<(), SamlError> {
        let value = serde_json::to_vec(participant).map_err(SamlError::internal)?;
        let remember = rsp_consensus::kv::TxnOp::Put {
            key: Self::participant_key(tenant, session, &participant.sp),
            value,
            ttl_ms: Some(ttl_ms.max(1)),
        };
        let txn = match request_id {
            Some(id) => {
                let ttl = request::REQUEST_MAX_AGE_MS + request::CLOCK_SKEW_MS;
                let key = Self::request_key(tenant, &participant.sp, id);
                let mut txn = Txn::put_if_absent(key, b"1".to_vec(), Some(ttl));
                txn.success.push(remember);
                txn
            }
            None => Txn::ops(vec![remember]),
        };
        if self.consensus.txn(txn).await?.succeeded {
            Ok(())
        } else {
            Err(SamlError::Replayed)
        }
    }

    /// The NameID of user `user_id` for `sp` in `format`: persistent ones
    /// are a keyed hash of tenant, SP and user (stable, opaque, different
    /// for every SP); transient ones are new every time.
    pub fn name_id(
        &self,
        tenant: &str,
        sp: &str,
        user_id: &str,
        username: &str,
        email: Option<&str>,
        format: NameIdFormat,
    ) -> Result<String, SamlError> {
        Ok(match format {
            NameIdFormat::Persistent => {
                let key = self.kek.derive(NAME_ID_LABEL)?;
                let tag = key.hash(format!("{tenant}\n{sp}\n{user_id}").as_bytes());
                tag[..40].to_string()
            }
            NameIdFormat::Email => email
                .filter(|e| !e.is_empty())
                .ok_or_else(|| {
                    SamlError::invalid_name_id_policy(
                        "the user has no email address for an emailAddress NameID",
                    )
                })?
                .to_string(),
            NameIdFormat::Transient => response::new_id(),
            NameIdFormat::Unspecified => username.to_string(),
        })
    }

    /// The SessionIndex of session `session_id` (a keyed hash: the SP
    /// never learns the session id).
    pub fn session_index(&self, session_id: &str) -> Result<String, SamlError> {
        let key = self.kek.derive(SESSION_INDEX_LABEL)?;
        Ok(format!("_{}", &key.hash(session_id.as_bytes())[..40]))
    }
}

/// An SP that received an assertion in an rsp session: told when the
/// session ends (single logout).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Participant {
    pub sp: String,
    pub name_id: String,
    pub name_id_format: NameIdFormat,
    pub session_index: String,
}

/// A single logout under way: the SPs still to tell, and where the browser
/// goes when all were told (the SP that asked, or a page).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LogoutChain {
    pub pending: Vec<Participant>,
    /// The SP whose LogoutRequest started it, answered last.
    pub origin: Option<LogoutOrigin>,
    /// Where the browser goes when no SP started it (an OIDC logout's
    /// `post_logout_redirect_uri`); none: the signed-out page.
    pub done_url: Option<String>,
    /// The SP whose LogoutResponse the chain waits for.
    #[serde(default)]
    pub awaiting: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LogoutOrigin {
    pub sp: String,
    pub request_id: String,
    pub relay_state: Option<String>,
}

/// How long a logout chain waits for the next SP's answer.
const LOGOUT_CHAIN_TTL_MS: u64 = 10 * 60 * 1000;

impl SamlService {
    fn participant_key(tenant: &str, session: &str, sp: &str) -> Key {
        Key::new(
            tenant_keyspace(tenant),
            format!("saml_part/{session}/{}", b64url(sp.as_bytes())).into_bytes(),
        )
    }

    /// The SPs that received an assertion in session `session`, and
    /// forget them (a quorum read, then one write).
    pub async fn take_participants(
        &self,
        tenant: &str,
        session: &str,
    ) -> Result<Vec<Participant>, SamlError> {
        let prefix = format!("saml_part/{session}/");
        let (kvs, _) = self
            .consensus
            .range(
                &tenant_keyspace(tenant),
                prefix.as_bytes(),
                usize::MAX,
                Consistency::Linearizable,
            )
            .await?;
        if kvs.is_empty() {
            return Ok(Vec::new());
        }
        let participants = kvs
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect();
        self.consensus
            .txn(Txn::ops(vec![rsp_consensus::kv::TxnOp::DeletePrefix {
                keyspace: tenant_keyspace(tenant),
                prefix: prefix.into_bytes(),
            }]))
            .await?;
        Ok(participants)
    }

    fn chain_key(tenant: &str, id: &str) -> Key {
        Key::new(
            tenant_keyspace(tenant),
            format!("saml_slo/{id}").into_bytes(),
        )
    }

    /// Keep `chain` under `id` (new: `None`) while the next SP answers;
    /// its id travels as the RelayState.
    pub async fn save_chain(
        &self,
        tenant: &str,
        id: Option<&str>,
        chain: &LogoutChain,
    ) -> Result<String, SamlError> {
        let id = id.map_or_else(|| crate::crypto::random_token(16), str::to_string);
        let value = serde_json::to_vec(chain).map_err(SamlError::internal)?;
        self.consensus
            .txn(Txn::ops(vec![rsp_consensus::kv::TxnOp::Put {
                key: Self::chain_key(tenant, &id),
                value,
                ttl_ms: Some(LOGOUT_CHAIN_TTL_MS),
            }]))
            .await?;
        Ok(id)
    }

    /// The logout chain `id`, if it is still waiting.
    pub async fn chain(&self, tenant: &str, id: &str) -> Result<Option<LogoutChain>, SamlError> {
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(None);
        }
        let (kv, _) = self
            .consensus
            .get(&Self::chain_key(tenant, id), Consistency::Linearizable)
            .await?;
        Ok(kv.and_then(|kv| serde_json::from_slice(&kv.value).ok()))
    }

    pub async fn end_chain(&self, tenant: &str, id: &str) -> Result<(), SamlError> {
        self.consensus
            .txn(Txn::ops(vec![rsp_consensus::kv::TxnOp::Delete {
                key: Self::chain_key(tenant, id),
            }]))
            .await?;
        Ok(())
    }
}

/// A self-signed certificate for `key`: subject `CN=<tenant> SAML
/// signing`, serial and validity derived from the key's record, so every
/// node makes the same bytes (RSA PKCS#1 v1.5 signatures are
/// deterministic).
fn self_signed(tenant: &str, key: &StoredKey, pkcs8: &[u8]) -> Result<Vec<u8>, SamlError> {
    use sha2::Digest;
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.into(), &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| SamlError::internal(format!("SAML signing key: {e}")))?;
    let mut params = rcgen::CertificateParams::default();
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, format!("{tenant} SAML signing"));
    params.distinguished_name = name;
    let serial = sha2::Sha256::digest(format!("{tenant}/{}", key.kid).as_bytes());
    let mut serial = serial[..16].to_vec();
    serial[0] &= 0x7f; // positive
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let created =
        chrono::DateTime::from_timestamp_millis(key.created_at_ms as i64).unwrap_or_default();
    use chrono::Datelike;
    let (year, month, day) = (created.year(), created.month() as u8, created.day() as u8);
    params.not_before = rcgen::date_time_ymd(year, month, day);
    params.not_after = rcgen::date_time_ymd(year + 20, month, day.min(28));
    params.use_authority_key_identifier_extension = false;
    let cert = params
        .self_signed(&pair)
        .map_err(|e| SamlError::internal(format!("SAML certificate: {e}")))?;
    Ok(cert.der().to_vec())
}
