//! Per-tenant signing keys: ES256 (default), RS256 and EdDSA, replicated as
//! ciphertext under the KEK ([`crate::crypto::Kek`]), published as a JWKS.
//! A tenant's first key of each algorithm signs at once; later ones go
//! through [`lifecycle`]: published before they sign, and the keys they
//! replace kept publishing until the tokens they signed have expired.
//!
//! Records (tenant keyspace `t.<tenant>`):
//! - `signing_key/<kid>` -> [`StoredKey`] (JSON)
//! - `signing_key_active/<alg>` -> kid of the key that signs for `alg`
//! - and those of [`lifecycle`]

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rsp_consensus::kv::{Compare, CompareTarget, Key, Txn, TxnOp};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, KekCell, KekId, b64url};
use crate::kek_ring::{KekRing, Resealed, RingError, reseal_records};
use crate::miss_gate::{MissGate, MissRefused};
use rsp_consensus::kv::tenant_keyspace;

pub mod lifecycle;

pub use lifecycle::{KeySettings, ScheduleRun, Staged};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    ES256,
    RS256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::EdDSA];

    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::EdDSA => Algorithm::EdDSA,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Published, signs from `activate_at_ms` once the schedule activates it.
    Next,
    /// Signs new tokens.
    Active,
    /// Replaced; still verifies until `retire_at_ms`.
    Previous,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub status: KeyStatus,
    pub created_at_ms: u64,
    /// `Next`: when it is to begin signing; `Active` and `Previous`: when
    /// it began (absent for a tenant's first keys, which signed at once).
    #[serde(default)]
    pub activate_at_ms: Option<u64>,
    pub retire_at_ms: Option<u64>,
    /// PKCS#8 DER sealed under the KEK, AAD = `<tenant>/<kid>`, base64url.
    pub sealed_private: String,
    pub public_jwk: Jwk,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("key material is unusable: {0}")]
    Bad(String),
    #[error("no key `{0}`")]
    UnknownKid(String),
    #[error(transparent)]
    Refused(#[from] MissRefused),
    #[error("{0}")]
    Invalid(String),
}

/// A key ready to sign. Holds the private key; never printed.
#[derive(Clone)]
pub struct Signer {
    pub kid: String,
    pub alg: SigningAlg,
    /// The key in jsonwebtoken's form (for callers that sign with it).
    pub key: Arc<EncodingKey>,
    /// The parsed key pair rsp signs with: jsonwebtoken's `encode` parses
    /// the PKCS#8 document again on every call (a full key validation, as
    /// costly as a signature for ES256 and far more for RSA), so tokens are
    /// signed with this one, parsed once per key and node.
    pair: Arc<KeyPair>,
}

enum KeyPair {
    Ecdsa(EcdsaKeyPair),
    Rsa(aws_lc_rs::signature::RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl KeyPair {
    fn parse(alg: SigningAlg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let bad = |e: &dyn std::fmt::Display| KeyError::Bad(e.to_string());
        Ok(match alg {
            SigningAlg::ES256 => KeyPair::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|e| bad(&e))?,
            ),
            SigningAlg::RS256 => KeyPair::Rsa(
                aws_lc_rs::signature::RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| bad(&e))?,
            ),
            SigningAlg::EdDSA => {
                KeyPair::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| bad(&e))?)
            }
        })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |e: &dyn std::fmt::Display| KeyError::Bad(format!("signing failed: {e}"));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        Ok(match self {
            KeyPair::Ecdsa(kp) => kp
                .sign(&rng, message)
                .map_err(|e| failed(&e))?
                .as_ref()
                .to_vec(),
            KeyPair::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    message,
                    &mut sig,
                )
                .map_err(|e| failed(&e))?;
                sig
            }
            KeyPair::Ed25519(kp) => kp.sign(message).as_ref().to_vec(),
        })
    }
}

impl Signer {
    pub(crate) fn new(kid: String, alg: SigningAlg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        Ok(Signer {
            kid,
            alg,
            key: Arc::new(encoding_key(alg, pkcs8)?),
            pair: Arc::new(KeyPair::parse(alg, pkcs8)?),
        })
    }

    /// The signature of `message` by this key: RSASSA-PKCS1-v1_5 with
    /// SHA-256 for RS256, ECDSA P-256 SHA-256 (fixed-length) for ES256,
    /// Ed25519 for EdDSA.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.pair.sign(message)
    }

    /// A compact JWS (RFC 7515 section 7.1) of `claims` under `header`,
    /// whose `alg` must be this key's. Traced as `jwt.sign` with the
    /// algorithm and key id (never the claims or the token).
    #[tracing::instrument(name = "jwt.sign", skip_all, fields(rsp.alg = self.alg.name(), rsp.kid = %self.kid))]
    pub fn sign_jwt(
        &self,
        header: &jsonwebtoken::Header,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        if header.alg != self.alg.jwt() {
            return Err(KeyError::Bad(format!(
                "a {} key cannot sign a {:?} header",
                self.alg.name(),
                header.alg
            )));
        }
        let mut jwt = json_b64url(header)?;
        jwt.push('.');
        jwt.push_str(&json_b64url(claims)?);
        let signature = self.pair.sign(jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&b64url(&signature));
        Ok(jwt)
    }
}

fn json_b64url<T: Serialize + ?Sized>(v: &T) -> Result<String, KeyError> {
    let bytes = serde_json::to_vec(v).map_err(|e| KeyError::Bad(e.to_string()))?;
    Ok(b64url(&bytes))
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} {})", self.kid, self.alg.name())
    }
}

fn generate(alg: SigningAlg) -> Result<(Zeroizing<Vec<u8>>, EncodingKey), KeyError> {
    let bad = |e: &dyn std::fmt::Display| KeyError::Bad(e.to_string());
    let pkcs8: Zeroizing<Vec<u8>> = match alg {
        SigningAlg::ES256 => {
            let kp =
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|e| bad(&e))?;
            Zeroizing::new(kp.to_pkcs8v1().map_err(|e| bad(&e))?.as_ref().to_vec())
        }
        SigningAlg::RS256 => {
            let kp = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).map_err(|e| bad(&e))?;
            use aws_lc_rs::encoding::AsDer;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = kp.as_der().map_err(|e| bad(&e))?;
            Zeroizing::new(der.as_ref().to_vec())
        }
        SigningAlg::EdDSA => {
            let kp = Ed25519KeyPair::generate().map_err(|e| bad(&e))?;
            Zeroizing::new(kp.to_pkcs8v1().map_err(|e| bad(&e))?.as_ref().to_vec())
        }
    };
    let key = encoding_key(alg, &pkcs8)?;
    Ok((pkcs8, key))
}

fn encoding_key(alg: SigningAlg, pkcs8: &[u8]) -> Result<EncodingKey, KeyError> {
    Ok(match alg {
        SigningAlg::ES256 => EncodingKey::from_ec_der(pkcs8),
        SigningAlg::EdDSA => EncodingKey::from_ed_der(pkcs8),
        SigningAlg::RS256 => {
            // jsonwebtoken's RSA DER input is PKCS#1; its PEM reader unwraps
            // PKCS#8, which is what we keep.
            use base64::Engine;
            let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pkcs8));
            let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
            for chunk in b64.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(chunk));
                pem.push('\n');
            }
            pem.push_str("-----END PRIVATE KEY-----\n");
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| KeyError::Bad(e.to_string()))?
        }
    })
}

/// What a private key is sealed with (AAD): tenant and kid.
fn sealed_aad(tenant: &str, kid: &str) -> Vec<u8> {
    format!("{tenant}/{kid}").into_bytes()
}

fn key_record(kid: &str) -> Vec<u8> {
    format!("signing_key/{kid}").into_bytes()
}

fn active_pointer(alg: SigningAlg) -> Vec<u8> {
    format!("signing_key_active/{}", alg.name()).into_bytes()
}

/// The signing-key service of a node; caches decrypted keys per tenant.
#[derive(Clone)]
pub struct KeyService {
    consensus: Consensus,
    kek: Arc<KekCell>,
    ring: KekRing,
    signers: Arc<RwLock<HashMap<(String, String), Signer>>>,
    /// Parsed verification keys by (tenant, kid), valid while the stored
    /// record's `mod_revision` is unchanged (a rotation that sets the
    /// retirement time changes it).
    verifiers: Arc<RwLock<HashMap<(String, String), CachedVerifier>>>,
}

#[derive(Clone)]
struct CachedVerifier {
    mod_revision: u64,
    retire_at_ms: Option<u64>,
    alg: Algorithm,
    key: DecodingKey,
}

impl KeyService {
    pub fn new(consensus: Consensus, kek: Arc<KekCell>) -> Self {
        KeyService {
            ring: KekRing::new(consensus.clone(), kek.clone()),
            consensus,
            kek,
            signers: Arc::new(RwLock::new(HashMap::new())),
            verifiers: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// A new key, and the guard its write carries ([`crate::kek_ring::guard`]).
    fn new_key(
        &self,
        tenant: &str,
        alg: SigningAlg,
        now_ms: u64,
    ) -> Result<(StoredKey, Compare), KeyError> {
        let (pkcs8, encoding) = generate(alg)?;
        let kid = crate::crypto::random_token(12);
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt())
            .map_err(|e| KeyError::Bad(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        let (sealed, guard) = self.ring.seal(&sealed_aad(tenant, &kid), &pkcs8)?;
        let key = StoredKey {
            kid,
            alg,
            status: KeyStatus::Active,
            created_at_ms: now_ms,
            activate_at_ms: None,
            retire_at_ms: None,
            sealed_private: b64url(&sealed),
            public_jwk: jwk,
        };
        Ok((key, guard))
    }

    /// Re-seal the tenant's signing keys sealed under an older KEK
    /// ([`crate::kek_ring`]).
    pub async fn reseal(&self, tenant: &str, current: KekId) -> Result<Resealed, RingError> {
        reseal_records(
            &self.ring,
            &tenant_keyspace(tenant),
            b"signing_key/",
            current,
            |k: &mut StoredKey| &mut k.sealed_private,
            |_, k| sealed_aad(tenant, &k.kid),
        )
        .await
    }

    /// Every stored key of a tenant (local read).
    pub async fn keys(&self, tenant: &str) -> Result<Vec<StoredKey>, KeyError> {
        let (kvs, _) = self
            .consensus
            .range(
                &tenant_keyspace(tenant),
                b"signing_key/",
                1000,
                Consistency::Local,
            )
            .await?;
        kvs.iter()
            .map(|kv| serde_json::from_slice(&kv.value).map_err(|e| KeyError::Bad(e.to_string())))
            .collect()
    }

    async fn active_kid(
        &self,
        tenant: &str,
        alg: SigningAlg,
        consistency: Consistency,
    ) -> Result<Option<String>, KeyError> {
        let key = Key::new(tenant_keyspace(tenant), active_pointer(alg));
        let (kv, _) = self.consensus.get(&key, consistency).await?;
        Ok(kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
    }

    /// Give `alg` its first key, signing at once; a node that loses the
    /// race to another one leaves that one's key in place.
    async fn install(&self, tenant: &str, alg: SigningAlg, now_ms: u64) -> Result<bool, KeyError> {
        let ks = tenant_keyspace(tenant);
        let pointer = Key::new(ks.clone(), active_pointer(alg));
        for _ in 0..3 {
            let (new, guard) = self.new_key(tenant, alg, now_ms)?;
            let txn = Txn {
                compares: vec![
                    Compare {
                        key: pointer.clone(),
                        target: CompareTarget::Exists(false),
                    },
                    guard,
                ],
                success: vec![
                    TxnOp::Put {
                        key: Key::new(ks.clone(), key_record(&new.kid)),
                        value: serde_json::to_vec(&new)
                            .map_err(|e| KeyError::Bad(e.to_string()))?,
                        ttl_ms: None,
                    },
                    TxnOp::Put {
                        key: pointer.clone(),
                        value: new.kid.clone().into_bytes(),
                        ttl_ms: None,
                    },
                ],
                failure: vec![],
            };
            if self.consensus.txn(txn).await?.succeeded {
                self.forget(tenant);
                return Ok(true);
            }
            if self
                .active_kid(tenant, alg, Consistency::Linearizable)
                .await?
                .is_some()
            {
                // Another node's key won the race: as good as ours.
                return Ok(false);
            }
            // The KEK changed under the write: seal again under the new one.
            self.ring.refresh().await;
        }
        Err(KeyError::Bad(
            "installing a key kept conflicting with a KEK rotation".into(),
        ))
    }

    /// Create the tenant's keys for every algorithm that has none.
    pub async fn ensure(&self, tenant: &str, now_ms: u64) -> Result<(), KeyError> {
        for alg in SigningAlg::ALL {
            if self
                .active_kid(tenant, alg, Consistency::Local)
                .await?
                .is_none()
                && self
                    .active_kid(tenant, alg, Consistency::Linearizable)
                    .await?
                    .is_none()
            {
                // Losing a race to another node is fine: its key is as good.
                self.install(tenant, alg, now_ms).await?;
            }
        }
        Ok(())
    }

    /// Replace `alg`'s key now: the staged key if there is one, else a new
    /// one, signs at once (for a key that must stop signing, e.g. when it
    /// may have leaked); the replaced key verifies for `retire_ms` more.
    /// The kid that signs now.
    pub async fn rotate_now(
        &self,
        tenant: &str,
        alg: SigningAlg,
        now_ms: u64,
        retire_ms: u64,
    ) -> Result<String, KeyError> {
        for _ in 0..5 {
            let staged = self.stage(tenant, alg, now_ms, now_ms).await?;
            if let Some(kid) = self.activate(tenant, alg, now_ms, retire_ms, true).await? {
                return Ok(kid);
            }
            // Another node activated it first: that key signs now.
            if self
                .active_kid(tenant, alg, Consistency::Linearizable)
                .await?
                == Some(staged.kid.clone())
            {
                return Ok(staged.kid);
            }
        }
        Err(KeyError::Bad(
            "key rotation kept conflicting with another rotation".into(),
        ))
    }

    fn forget(&self, tenant: &str) {
        if let Ok(mut cache) = self.signers.write() {
            cache.retain(|(t, _), _| t != tenant);
        }
        if let Ok(mut cache) = self.verifiers.write() {
            cache.retain(|(t, _), _| t != tenant);
        }
    }

    /// A stored key's private half (PKCS#8 DER), opened under the KEK: for
    /// a protocol that signs through a library of its own (SAML's XML
    /// signatures, through xmlsec).
    pub async fn private_pkcs8(
        &self,
        tenant: &str,
        kid: &str,
    ) -> Result<(StoredKey, Zeroizing<Vec<u8>>), KeyError> {
        let record = Key::new(tenant_keyspace(tenant), key_record(kid));
        let (kv, _) = self.consensus.get(&record, Consistency::Local).await?;
        let kv = kv.ok_or_else(|| KeyError::UnknownKid(kid.to_string()))?;
        let stored: StoredKey =
            serde_json::from_slice(&kv.value).map_err(|e| KeyError::Bad(e.to_string()))?;
        let sealed = crate::crypto::b64url_decode(&stored.sealed_private)
            .ok_or_else(|| KeyError::Bad("sealed key is not base64url".into()))?;
        let pkcs8 = self.kek.open(&sealed_aad(tenant, kid), &sealed)?;
        Ok((stored, pkcs8))
    }

    /// The key that signs for `alg` now.
    pub async fn signer(&self, tenant: &str, alg: SigningAlg) -> Result<Signer, KeyError> {
        let kid = match self.active_kid(tenant, alg, Consistency::Local).await? {
            Some(kid) => kid,
            None => {
                self.ensure(tenant, self.consensus.clock().now_ms()).await?;
                self.active_kid(tenant, alg, Consistency::Linearizable)
                    .await?
                    .ok_or_else(|| {
                        KeyError::Bad(format!("tenant {tenant} has no {} key", alg.name()))
                    })?
            }
        };
        let cache_key = (tenant.to_string(), kid.clone());
        if let Some(s) = self
            .signers
            .read()
            .ok()
            .and_then(|c| c.get(&cache_key).cloned())
        {
            return Ok(s);
        }
        let record = Key::new(tenant_keyspace(tenant), key_record(&kid));
        let (kv, _) = self.consensus.get(&record, Consistency::Local).await?;
        let kv = kv.ok_or_else(|| KeyError::UnknownKid(kid.clone()))?;
        let stored: StoredKey =
            serde_json::from_slice(&kv.value).map_err(|e| KeyError::Bad(e.to_string()))?;
        let sealed = crate::crypto::b64url_decode(&stored.sealed_private)
            .ok_or_else(|| KeyError::Bad("sealed key is not base64url".into()))?;
        let pkcs8 = self.kek.open(&sealed_aad(tenant, &kid), &sealed)?;
        let signer = Signer::new(kid.clone(), stored.alg, &pkcs8)?;
        if let Ok(mut cache) = self.signers.write() {
            cache.insert(cache_key, signer.clone());
        }
        Ok(signer)
    }

    /// Public keys that verify tokens now: staged, active and retiring keys.
    pub async fn jwks(&self, tenant: &str, now_ms: u64) -> Result<JwkSet, KeyError> {
        let keys = self
            .keys(tenant)
            .await?
            .into_iter()
            .filter(|k| k.retire_at_ms.is_none_or(|t| t > now_ms))
            .map(|k| k.public_jwk)
            .collect();
        Ok(JwkSet { keys })
    }

    /// The verification key for `kid`, pinned to the algorithm it was made for.
    pub async fn verifier(
        &self,
        tenant: &str,
        kid: &str,
        now_ms: u64,
    ) -> Result<(Algorithm, DecodingKey), KeyError> {
        let (alg, key, _) = self.verifier_revision(tenant, kid, now_ms).await?;
        Ok((alg, key))
    }

    /// [`Self::verifier_revision`], "unknown" only after a linearizable
    /// read (the key may be a moment old and made on another node). `gate`
    /// is asked before that read, and only on a local miss; a refusal is
    /// [`KeyError::Refused`] and reads nothing.
    pub async fn find_verifier(
        &self,
        tenant: &str,
        kid: &str,
        now_ms: u64,
        gate: &dyn MissGate,
    ) -> Result<(Algorithm, DecodingKey, u64), KeyError> {
        match self.verifier_revision(tenant, kid, now_ms).await {
            Err(KeyError::UnknownKid(_)) => {
                MissRefused::check(gate)?;
                self.consensus.linearizable_barrier().await?;
                self.verifier_revision(tenant, kid, now_ms).await
            }
            other => other,
        }
    }

    /// [`Self::verifier`], with the `mod_revision` of the key record: it
    /// changes whenever the key's record does (rotation states, retirement),
    /// so a cached verification can tell it still holds.
    pub async fn verifier_revision(
        &self,
        tenant: &str,
        kid: &str,
        now_ms: u64,
    ) -> Result<(Algorithm, DecodingKey, u64), KeyError> {
        let record = Key::new(tenant_keyspace(tenant), key_record(kid));
        let (kv, _) = self.consensus.get(&record, Consistency::Local).await?;
        let kv = kv.ok_or_else(|| KeyError::UnknownKid(kid.to_string()))?;
        let cache_key = (tenant.to_string(), kid.to_string());
        let cached = self
            .verifiers
            .read()
            .ok()
            .and_then(|c| c.get(&cache_key).cloned())
            .filter(|c| c.mod_revision == kv.mod_revision);
        let v = match cached {
            Some(v) => v,
            None => {
                let stored: StoredKey =
                    serde_json::from_slice(&kv.value).map_err(|e| KeyError::Bad(e.to_string()))?;
                let key = DecodingKey::from_jwk(&stored.public_jwk)
                    .map_err(|e| KeyError::Bad(e.to_string()))?;
                let v = CachedVerifier {
                    mod_revision: kv.mod_revision,
                    retire_at_ms: stored.retire_at_ms,
                    alg: stored.alg.jwt(),
                    key,
                };
                if let Ok(mut cache) = self.verifiers.write() {
                    cache.insert(cache_key, v.clone());
                }
                v
            }
        };
        if v.retire_at_ms.is_some_and(|t| t <= now_ms) {
            return Err(KeyError::UnknownKid(kid.to_string()));
        }
        Ok((v.alg, v.key, v.mod_revision))
    }
}
