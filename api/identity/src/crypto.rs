//! Secrets at rest and random values.
//!
//! - [`Kek`]: the key-encryption key. Private signing keys (and later TOTP
//!   seeds) are replicated only as AES-256-GCM ciphertext under it; the KEK
//!   itself never enters the Raft log. Every node of a cluster needs the same
//!   KEK (given by file or env, or fetched from a member when joining).
//! - keyed hashes (HMAC-SHA256 under a key derived from the KEK) for random
//!   secrets such as client secrets and refresh tokens: as strong as the
//!   secret's own entropy, and fast enough for the token endpoint.
//! - random identifiers and tokens, base64url without padding.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::{Zeroize, Zeroizing};

pub const KEK_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the key-encryption key must be {KEK_LEN} bytes (base64 or 64 hex characters)")]
    BadKek,
    #[error("ciphertext does not decrypt under this key-encryption key")]
    Decrypt,
    #[error("cryptographic operation failed")]
    Failed,
    #[error("this node does not have the cluster's key-encryption key yet")]
    NoKek,
}

/// The node's KEK, set once: at start-up, or later for a node added by the
/// admin API that fetches it from the leader after joining.
#[derive(Debug, Default)]
pub struct KekCell {
    kek: std::sync::OnceLock<Kek>,
    derived: std::sync::Mutex<std::collections::HashMap<String, HashKey>>,
}

impl KekCell {
    pub fn with(kek: Kek) -> Self {
        let cell = KekCell::default();
        cell.set(kek);
        cell
    }

    /// Set the KEK; a second call is ignored (the first one wins).
    pub fn set(&self, kek: Kek) {
        let _ = self.kek.set(kek);
    }

    pub fn get(&self) -> Result<&Kek, CryptoError> {
        self.kek.get().ok_or(CryptoError::NoKek)
    }

    /// [`Kek::derive`], cached per label.
    pub fn derive(&self, label: &str) -> Result<HashKey, CryptoError> {
        if let Ok(cache) = self.derived.lock()
            && let Some(k) = cache.get(label)
        {
            return Ok(k.clone());
        }
        let key = self.get()?.derive(label)?;
        if let Ok(mut cache) = self.derived.lock() {
            cache.insert(label.to_string(), key.clone());
        }
        Ok(key)
    }
}

/// The key-encryption key. Zeroized on drop; never printed.
pub struct Kek {
    bytes: Zeroizing<[u8; KEK_LEN]>,
}

impl Clone for Kek {
    fn clone(&self) -> Self {
        Kek {
            bytes: Zeroizing::new(*self.bytes),
        }
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    pub fn from_bytes(bytes: [u8; KEK_LEN]) -> Self {
        Kek {
            bytes: Zeroizing::new(bytes),
        }
    }

    pub fn generate() -> Self {
        Self::from_bytes(rand::random())
    }

    /// Parse a KEK written as base64 (standard or url-safe) or hex.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let mut decoded = Zeroizing::new(
            hex::decode(text)
                .ok()
                .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .or_else(|| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok())
                .ok_or(CryptoError::BadKek)?,
        );
        let bytes: [u8; KEK_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadKek)?;
        decoded.zeroize();
        Ok(Self::from_bytes(bytes))
    }

    /// The KEK as base64, for writing it to a file (0600) once.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*self.bytes))
    }

    fn aead(&self) -> Result<LessSafeKey, CryptoError> {
        let key = UnboundKey::new(&AES_256_GCM, self.bytes.as_slice())
            .map_err(|_| CryptoError::Failed)?;
        Ok(LessSafeKey::new(key))
    }

    /// Encrypt `plaintext`, binding it to `aad` (e.g. the tenant and key id,
    /// so a ciphertext cannot be moved to another record). Output: nonce ||
    /// ciphertext || tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buf = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| CryptoError::Failed)?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        buf.zeroize();
        Ok(out)
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Decrypt)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let len = self
            .aead()?
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| CryptoError::Decrypt)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// A subkey for one purpose (HKDF-SHA256 with `label` as info).
    pub fn derive(&self, label: &str) -> Result<HashKey, CryptoError> {
        struct Len;
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                32
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"rsp kek derivation")
            .extract(self.bytes.as_slice());
        let info = [label.as_bytes()];
        let okm = prk.expand(&info, Len).map_err(|_| CryptoError::Failed)?;
        let mut out = Zeroizing::new([0u8; 32]);
        okm.fill(out.as_mut_slice())
            .map_err(|_| CryptoError::Failed)?;
        Ok(HashKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, out.as_slice()),
        })
    }
}

/// A key for keyed hashes of random secrets.
#[derive(Clone)]
pub struct HashKey {
    key: hmac::Key,
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// HMAC-SHA256 of `secret`, hex encoded (what is stored).
    pub fn hash(&self, secret: &[u8]) -> String {
        hex::encode(hmac::sign(&self.key, secret).as_ref())
    }

    /// Whether `secret` hashes to `stored`, in constant time.
    pub fn verify(&self, secret: &[u8], stored: &str) -> bool {
        match hex::decode(stored) {
            Ok(tag) => hmac::verify(&self.key, secret, &tag).is_ok(),
            Err(_) => false,
        }
    }
}

/// `n` random bytes as base64url (no padding).
pub fn random_token(n: usize) -> String {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    rand::fill(bytes.as_mut_slice());
    URL_SAFE_NO_PAD.encode(bytes.as_slice())
}

pub use rsp_consensus::encoding::{b64url, b64url_decode};

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_the_same_key_and_aad() {
        let kek = Kek::generate();
        let sealed = kek.seal(b"acme/key-1", b"private key bytes").expect("seal");
        assert_eq!(
            kek.open(b"acme/key-1", &sealed).expect("open").as_slice(),
            b"private key bytes"
        );
        assert!(
            kek.open(b"other/key-1", &sealed).is_err(),
            "aad must bind the ciphertext"
        );
        assert!(
            Kek::generate().open(b"acme/key-1", &sealed).is_err(),
            "another KEK must not open it"
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(kek.open(b"acme/key-1", &tampered).is_err());
    }

    #[test]
    fn kek_round_trips_through_its_text_forms() {
        let kek = Kek::generate();
        let again = Kek::parse(&kek.encode()).expect("parse base64");
        let sealed = kek.seal(b"", b"x").expect("seal");
        assert!(again.open(b"", &sealed).is_ok());
        assert!(Kek::parse(&hex::encode([7u8; 32])).is_ok());
        assert!(Kek::parse("too short").is_err());
        assert!(Kek::parse(&hex::encode([7u8; 31])).is_err());
    }

    #[test]
    fn keyed_hashes_depend_on_the_label_and_verify_in_constant_time() {
        let kek = Kek::generate();
        let a = kek.derive("client-secret").expect("derive");
        let b = kek.derive("refresh-token").expect("derive");
        let stored = a.hash(b"s3cret");
        assert!(a.verify(b"s3cret", &stored));
        assert!(!a.verify(b"s3cret!", &stored));
        assert!(!b.verify(b"s3cret", &stored));
        assert!(!a.verify(b"s3cret", "not hex"));
    }
}
