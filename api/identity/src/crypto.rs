//! Secrets at rest and random values.
//!
//! - [`Kek`]: the key-encryption key. Private signing keys and TOTP seeds
//!   are replicated only as AES-256-GCM ciphertext under it; the KEK itself
//!   never enters the Raft log. Every node of a cluster needs the same KEK
//!   (given by file, env or command, or fetched from a member when
//!   joining). [`KekCell`] is a node's keyring: the current KEK and, during
//!   an online rotation, the previous one.
//! - keyed hashes (HMAC-SHA256 under a key derived from the cluster's
//!   first KEK, the hash root) for random secrets such as client secrets
//!   and refresh tokens: as strong as the secret's own entropy, and fast
//!   enough for the token endpoint.
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

/// The node's keyring of key-encryption keys.
///
/// - `current` seals; every key in the ring opens (during a rotation the
///   previous KEK stays until every sealed secret was re-sealed,
///   [`crate::kek_ring`]).
/// - the hash root keys the keyed hashes ([`KekCell::derive`]). It is the
///   cluster's first KEK and never changes, so hashes stored before a
///   rotation (client secrets, refresh tokens, recovery codes) still
///   verify after it. Until the node knows it (its own KEK before any
///   rotation, or the one sealed in the replicated KEK record), keyed
///   hashes answer [`CryptoError::NoKek`].
/// - `record` is what the node knows of the replicated KEK record: the
///   guard that makes a write of a sealed value fail if the KEK it was
///   sealed under stopped being current ([`crate::kek_ring::guard`]).
#[derive(Debug, Default)]
pub struct KekCell {
    ring: std::sync::RwLock<Ring>,
    derived: std::sync::Mutex<std::collections::HashMap<String, HashKey>>,
}

#[derive(Debug, Default)]
struct Ring {
    keys: Vec<(KekId, Kek)>,
    current: Option<KekId>,
    root: Option<Kek>,
    record: RecordView,
}

/// What a node knows of the replicated KEK record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum RecordView {
    /// Not read yet: nothing is sealed.
    #[default]
    Unknown,
    /// There is none (confirmed): the KEK was never rotated.
    Absent,
    /// The record names this KEK as current.
    Current(KekId),
}

impl KekCell {
    /// A ring of one KEK that was never rotated (tests, and in-process
    /// nodes that do not rotate): ready to seal and hash.
    pub fn with(kek: Kek) -> Self {
        let cell = KekCell::default();
        cell.set(kek.clone());
        cell.install_root(kek, RecordView::Absent);
        cell
    }

    /// Add the KEK this node was given or fetched; it becomes current if
    /// there is none yet (the first one wins). Sealing and hashing wait for
    /// [`crate::kek_ring::KekRing::sync`].
    pub fn set(&self, kek: Kek) {
        let id = kek.id();
        let mut ring = write(&self.ring);
        if !ring.keys.iter().any(|(k, _)| *k == id) {
            ring.keys.push((id, kek));
        }
        if ring.current.is_none() {
            ring.current = Some(id);
        }
    }

    /// The current KEK (what members hand to joining nodes).
    pub fn get(&self) -> Result<Kek, CryptoError> {
        let ring = read(&self.ring);
        let id = ring.current.ok_or(CryptoError::NoKek)?;
        ring.key(id).cloned().ok_or(CryptoError::NoKek)
    }

    pub fn current_id(&self) -> Option<KekId> {
        read(&self.ring).current
    }

    /// The ring's key `id`, if held.
    pub fn key(&self, id: KekId) -> Option<Kek> {
        read(&self.ring).key(id).cloned()
    }

    /// Every KEK id this node holds.
    pub fn ids(&self) -> Vec<KekId> {
        read(&self.ring).keys.iter().map(|(id, _)| *id).collect()
    }

    pub fn record_view(&self) -> RecordView {
        read(&self.ring).record
    }

    /// Whether the node can seal and hash.
    pub fn is_ready(&self) -> bool {
        let ring = read(&self.ring);
        ring.current.is_some() && ring.root.is_some() && ring.record != RecordView::Unknown
    }

    /// Set the hash root and what the node knows of the KEK record.
    pub fn install_root(&self, root: Kek, record: RecordView) {
        let mut ring = write(&self.ring);
        let changed = ring.root.as_ref().is_none_or(|r| r.id() != root.id());
        ring.root = Some(root);
        ring.record = record;
        drop(ring);
        if changed && let Ok(mut cache) = self.derived.lock() {
            cache.clear();
        }
    }

    /// Make `current` (held) the sealing key and keep only `accepted`
    /// (plus `current`) in the ring.
    pub fn install(&self, current: KekId, accepted: &[KekId]) -> Result<(), CryptoError> {
        let mut ring = write(&self.ring);
        if ring.key(current).is_none() {
            return Err(CryptoError::NoKek);
        }
        ring.keys
            .retain(|(id, _)| *id == current || accepted.contains(id));
        ring.current = Some(current);
        ring.record = RecordView::Current(current);
        Ok(())
    }

    /// Add a KEK to the ring without making it current.
    pub fn add(&self, kek: Kek) {
        let id = kek.id();
        let mut ring = write(&self.ring);
        if ring.key(id).is_none() {
            ring.keys.push((id, kek));
        }
    }

    /// Seal under the current KEK; the output names it
    /// ([`sealed_with`]). Refused until the node has read the KEK record.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(self.seal_guarded(aad, plaintext)?.0)
    }

    /// [`KekCell::seal`], and what the node knew of the KEK record when it
    /// sealed: a write of the value carries [`crate::kek_ring::guard`] of
    /// it.
    pub fn seal_guarded(
        &self,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, RecordView), CryptoError> {
        let ring = read(&self.ring);
        let id = ring.current.ok_or(CryptoError::NoKek)?;
        Ok((ring.seal_under(id, aad, plaintext)?, ring.record))
    }

    /// Seal under the ring's key `id` (a rotation seals the hash root under
    /// the new KEK before it is current).
    pub fn seal_under(
        &self,
        id: KekId,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        read(&self.ring).seal_under(id, aad, plaintext)
    }

    /// The hash root, once known.
    pub fn root(&self) -> Option<Kek> {
        read(&self.ring).root.clone()
    }

    /// Open a value sealed by [`KekCell::seal`] under any KEK of the ring,
    /// or one sealed before KEKs had ids (tried under each). A value sealed
    /// under a KEK this node does not hold: [`CryptoError::NoKek`].
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let ring = read(&self.ring);
        if ring.keys.is_empty() {
            return Err(CryptoError::NoKek);
        }
        let named = sealed_with(sealed);
        if let Some(id) = named
            && let Some(kek) = ring.key(id)
            && let Ok(plain) = kek.open(aad, &sealed[SEAL_HEADER_LEN..])
        {
            return Ok(plain);
        }
        // Sealed before KEK ids (or a nonce that happens to look like a
        // header): try each key on the whole value.
        for (_, kek) in &ring.keys {
            if let Ok(plain) = kek.open(aad, sealed) {
                return Ok(plain);
            }
        }
        match named {
            Some(id) if ring.key(id).is_none() => Err(CryptoError::NoKek),
            _ => Err(CryptoError::Decrypt),
        }
    }

    /// [`Kek::derive`] of the hash root, cached per label.
    pub fn derive(&self, label: &str) -> Result<HashKey, CryptoError> {
        if let Ok(cache) = self.derived.lock()
            && let Some(k) = cache.get(label)
        {
            return Ok(k.clone());
        }
        let key = {
            let ring = read(&self.ring);
            if ring.record == RecordView::Unknown {
                return Err(CryptoError::NoKek);
            }
            ring.root
                .as_ref()
                .ok_or(CryptoError::NoKek)?
                .derive(label)?
        };
        if let Ok(mut cache) = self.derived.lock() {
            cache.insert(label.to_string(), key.clone());
        }
        Ok(key)
    }
}

impl Ring {
    fn key(&self, id: KekId) -> Option<&Kek> {
        self.keys.iter().find(|(k, _)| *k == id).map(|(_, kek)| kek)
    }

    fn seal_under(&self, id: KekId, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if self.record == RecordView::Unknown {
            return Err(CryptoError::NoKek);
        }
        let kek = self.key(id).ok_or(CryptoError::NoKek)?;
        let mut out = Vec::with_capacity(SEAL_HEADER_LEN + NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(SEAL_MAGIC);
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&kek.seal(aad, plaintext)?);
        Ok(out)
    }
}

fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// What starts a value sealed by [`KekCell::seal`]: a format mark and the
/// id of the KEK it was sealed under.
const SEAL_MAGIC: &[u8; 2] = b"K1";
const SEAL_HEADER_LEN: usize = 2 + KEK_ID_LEN;
pub const KEK_ID_LEN: usize = 8;

/// The id of the KEK `sealed` names, if it has the header of
/// [`KekCell::seal`] (a value sealed before KEK ids has none, though its
/// random nonce may look like one: [`KekCell::open`] tries both).
pub fn sealed_with(sealed: &[u8]) -> Option<KekId> {
    if sealed.len() < SEAL_HEADER_LEN + NONCE_LEN || !sealed.starts_with(SEAL_MAGIC) {
        return None;
    }
    let mut id = [0u8; KEK_ID_LEN];
    id.copy_from_slice(&sealed[2..SEAL_HEADER_LEN]);
    Some(KekId(id))
}

/// Names a KEK without revealing anything about it: the first 8 bytes of
/// an HMAC-SHA256 under the KEK of a fixed label.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KekId([u8; KEK_ID_LEN]);

impl KekId {
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(KekId(bytes.as_slice().try_into().ok()?))
    }
}

impl std::fmt::Display for KekId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for KekId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KekId({self})")
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

    /// This KEK's id ([`KekId`]).
    pub fn id(&self) -> KekId {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.bytes.as_slice());
        let tag = hmac::sign(&key, b"rsp kek id");
        let mut id = [0u8; KEK_ID_LEN];
        id.copy_from_slice(&tag.as_ref()[..KEK_ID_LEN]);
        KekId(id)
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

    #[test]
    fn a_ring_seals_under_its_current_kek_and_opens_under_any_it_holds() {
        let (old, new) = (Kek::generate(), Kek::generate());
        let cell = KekCell::with(old.clone());
        let before = cell.seal(b"aad", b"seed").expect("seal");
        assert_eq!(sealed_with(&before), Some(old.id()));
        // Sealed before KEK ids: the raw form still opens.
        let legacy = old.seal(b"aad", b"legacy").expect("seal");
        assert_eq!(
            cell.open(b"aad", &legacy).expect("open").as_slice(),
            b"legacy"
        );

        cell.add(new.clone());
        cell.install(new.id(), &[old.id()]).expect("install");
        let after = cell.seal(b"aad", b"seed").expect("seal");
        assert_eq!(sealed_with(&after), Some(new.id()));
        assert_eq!(cell.open(b"aad", &before).expect("old").as_slice(), b"seed");
        assert_eq!(cell.open(b"aad", &after).expect("new").as_slice(), b"seed");
        assert!(cell.open(b"other", &after).is_err(), "aad still binds");

        // The rotation is over: the old KEK is no longer accepted.
        cell.install(new.id(), &[]).expect("install");
        assert!(matches!(
            cell.open(b"aad", &before),
            Err(CryptoError::NoKek)
        ));
        assert!(cell.open(b"aad", &legacy).is_err());
        assert_eq!(cell.ids(), vec![new.id()]);
    }

    #[test]
    fn keyed_hashes_follow_the_hash_root_not_the_current_kek() {
        let (first, second) = (Kek::generate(), Kek::generate());
        let cell = KekCell::with(first.clone());
        let stored = cell
            .derive("client-secret")
            .expect("derive")
            .hash(b"s3cret");
        cell.add(second.clone());
        cell.install(second.id(), &[]).expect("install");
        cell.install_root(first.clone(), RecordView::Current(second.id()));
        assert!(
            cell.derive("client-secret")
                .expect("derive")
                .verify(b"s3cret", &stored)
        );
        // A node that knows only its KEK, not yet the record: nothing is
        // hashed or sealed (it could pick the wrong root).
        let fresh = KekCell::default();
        fresh.set(second);
        assert!(matches!(
            fresh.derive("client-secret"),
            Err(CryptoError::NoKek)
        ));
        assert!(matches!(fresh.seal(b"", b"x"), Err(CryptoError::NoKek)));
        assert!(!fresh.is_ready());
    }

    #[test]
    fn a_kek_id_names_the_key_without_revealing_it() {
        let kek = Kek::generate();
        assert_eq!(kek.id(), kek.clone().id());
        assert_ne!(kek.id(), Kek::generate().id());
        assert_eq!(KekId::parse(&kek.id().to_string()), Some(kek.id()));
        assert!(!kek.encode().contains(&kek.id().to_string()));
    }
}
