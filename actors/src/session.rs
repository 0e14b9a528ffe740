//! Session types and their stored form.
//!
//! A session id is an 11-character user tag followed by 128 random bits,
//! all base64url (33 characters): a bearer secret, zeroized on drop and
//! never printed. The tag is the first 64 bits of SHA-256 of a fixed label
//! and the user id; every session of a user starts with it, so the user's
//! sessions sit next to each other in the keyspace and are listed with one
//! range read, with no index key to write beside each session. Storage never
//! sees the id: the record is kept under its [`SessionHandle`], the tag and
//! then the base64url of the first 128 bits of SHA-256(id), so a snapshot or
//! backup holds no usable tokens. The handle is public (lists, audit logs,
//! revocation by an admin).
//!
//! Ids and handles made before the tag (22 characters, the random part
//! alone) are still accepted; their sessions keep the index key they were
//! written with (see `keys`) until they end.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::base64url::{b64url, is_b64url};
use crate::error::ActorError;

const ID_BYTES: usize = 16;
/// The random part of an id, and the hash part of a handle.
const RANDOM_CHARS: usize = 22;
/// The user tag that leads ids and handles: 64 bits.
pub(crate) const TAG_CHARS: usize = 11;
/// Ids and handles now: tag and random (or hash) part.
const CHARS: usize = TAG_CHARS + RANDOM_CHARS;
/// Ids and handles made before the tag.
const LEGACY_CHARS: usize = RANDOM_CHARS;

/// Format version of [`SessionRecord`].
const RECORD_FORMAT: u8 = 1;

/// The tag every session id and handle of `user_id` starts with.
pub(crate) fn user_tag(user_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"rsp session user tag\0")
        .chain_update(user_id.as_bytes())
        .finalize();
    b64url(&digest[..8])
}

fn well_formed(s: &str) -> bool {
    is_b64url(s, CHARS) || is_b64url(s, LEGACY_CHARS)
}

/// A session's bearer secret.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SessionId(String);

impl SessionId {
    pub(crate) fn generate(user_id: &str) -> SessionId {
        let mut bytes: [u8; ID_BYTES] = rand::random();
        let mut id = user_tag(user_id);
        id.push_str(&b64url(&bytes));
        bytes.zeroize();
        SessionId(id)
    }

    /// An id as made before the user tag: while a member of the cluster
    /// cannot read tagged ones (the `session-user-tag` cluster feature).
    pub(crate) fn generate_legacy() -> SessionId {
        let mut bytes: [u8; ID_BYTES] = rand::random();
        let id = SessionId(b64url(&bytes));
        bytes.zeroize();
        id
    }

    /// Accept a presented id (cookie, header) if it has the right shape.
    pub fn parse(s: &str) -> Result<SessionId, ActorError> {
        if well_formed(s) {
            Ok(SessionId(s.to_string()))
        } else {
            // Shape errors look like unknown sessions to callers.
            Err(ActorError::SessionNotFound)
        }
    }

    /// The secret, for setting a cookie. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn handle(&self) -> SessionHandle {
        let digest = Sha256::digest(self.0.as_bytes());
        let hash = b64url(&digest[..16]);
        match self.0.get(..self.0.len() - RANDOM_CHARS) {
            Some(tag) if !tag.is_empty() => SessionHandle(format!("{tag}{hash}")),
            _ => SessionHandle(hash),
        }
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// Public name of a session (derived from, and not revealing, its id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionHandle(pub(crate) String);

impl SessionHandle {
    pub fn parse(s: &str) -> Result<SessionHandle, ActorError> {
        if well_formed(s) {
            Ok(SessionHandle(s.to_string()))
        } else {
            Err(ActorError::InvalidInput("malformed session handle".into()))
        }
    }

    /// Made before the user tag: its session also has an index key.
    pub(crate) fn is_legacy(&self) -> bool {
        self.0.len() == LEGACY_CHARS
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This handle's [`fingerprint`].
    pub(crate) fn fingerprint(&self) -> u64 {
        fingerprint(self.0.as_bytes())
    }
}

/// FNV-1a, 64 bit, of a session handle's bytes: a stable fingerprint for
/// the session manager's in-memory live set (8 bytes per session instead
/// of the whole handle).
pub(crate) fn fingerprint(handle: &[u8]) -> u64 {
    handle.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is stored under `session/<handle>`, bincode-encoded (varints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub format: u8,
    pub user_id: String,
    pub created_ms: u64,
    pub last_seen_ms: u64,
    pub idle_timeout_ms: u64,
    pub absolute_expires_ms: u64,
    pub attrs: BTreeMap<String, String>,
}

impl SessionRecord {
    pub fn new(
        user_id: &str,
        attrs: BTreeMap<String, String>,
        now_ms: u64,
        idle: Duration,
        lifetime: Duration,
    ) -> SessionRecord {
        SessionRecord {
            format: RECORD_FORMAT,
            user_id: user_id.to_string(),
            created_ms: now_ms,
            last_seen_ms: now_ms,
            idle_timeout_ms: idle.as_millis() as u64,
            absolute_expires_ms: now_ms.saturating_add(lifetime.as_millis() as u64),
            attrs,
        }
    }

    pub fn expires_at_ms(&self) -> u64 {
        self.last_seen_ms
            .saturating_add(self.idle_timeout_ms)
            .min(self.absolute_expires_ms)
    }

    /// TTL for the key written at `now_ms`: until the earlier expiry.
    pub fn ttl_ms(&self, now_ms: u64) -> u64 {
        self.expires_at_ms().saturating_sub(now_ms).max(1)
    }

    /// Whether a validation at `now_ms` should also slide the idle timeout.
    pub fn wants_touch(&self, now_ms: u64, divisor: u32) -> bool {
        let step = self.idle_timeout_ms / u64::from(divisor.max(1));
        now_ms.saturating_sub(self.last_seen_ms) > step
            && self.last_seen_ms.saturating_add(self.idle_timeout_ms) < self.absolute_expires_ms
    }

    pub fn info(&self, handle: SessionHandle) -> SessionInfo {
        SessionInfo {
            handle,
            user_id: self.user_id.clone(),
            attrs: self.attrs.clone(),
            created_ms: self.created_ms,
            last_seen_ms: self.last_seen_ms,
            expires_at_ms: self.expires_at_ms(),
            absolute_expires_ms: self.absolute_expires_ms,
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
        }
    }
}

/// A session as callers see it (no secret inside).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub handle: SessionHandle,
    pub user_id: String,
    pub attrs: BTreeMap<String, String>,
    pub created_ms: u64,
    pub last_seen_ms: u64,
    /// When it ends unless touched: the earlier of idle and absolute expiry.
    pub expires_at_ms: u64,
    pub absolute_expires_ms: u64,
    pub idle_timeout: Duration,
}

/// A new session: the secret to hand to the client, and its details.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub info: SessionInfo,
}

/// What a revocation did and where it is known to be in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// Sessions deleted.
    pub revoked: u64,
    /// Members that confirmed having applied the deletion.
    pub confirmed: Vec<u64>,
    /// Members that did not confirm in time; revoke returned only after the
    /// local-read silence bound had passed, so they serve no stale
    /// validation (see docs/actors.md).
    pub fenced: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_33_char_base64url_and_their_handles_differ_from_them() {
        let id = SessionId::generate("alice");
        assert_eq!(id.expose().len(), 33);
        assert!(SessionId::parse(id.expose()).is_ok());
        assert_ne!(id.handle().as_str(), id.expose());
        assert_eq!(id.handle(), SessionId::parse(id.expose()).unwrap().handle());
        assert!(!format!("{id:?}").contains(id.expose()));
        assert!(SessionId::parse("short").is_err());
        assert!(SessionId::parse(&format!("{}=", &id.expose()[1..])).is_err());
        assert!(SessionHandle::parse(&id.expose()[1..]).is_err());
    }

    #[test]
    fn ids_and_handles_of_a_user_share_the_users_tag_and_nothing_else() {
        let (a, b) = (SessionId::generate("alice"), SessionId::generate("alice"));
        let tag = user_tag("alice");
        assert_eq!(tag.len(), TAG_CHARS);
        for id in [&a, &b] {
            assert!(id.expose().starts_with(&tag));
            assert!(id.handle().as_str().starts_with(&tag));
            assert_eq!(id.handle().as_str().len(), 33);
            assert!(!id.handle().is_legacy());
        }
        assert_ne!(a.expose()[TAG_CHARS..], b.expose()[TAG_CHARS..]);
        assert_ne!(a.handle(), b.handle());
        assert_ne!(user_tag("alice"), user_tag("bob"));
        // The hash part covers the random part: a different id under the
        // same tag has a different handle.
        assert_ne!(
            a.handle().as_str()[TAG_CHARS..],
            b.handle().as_str()[TAG_CHARS..]
        );
    }

    #[test]
    fn ids_and_handles_from_before_the_tag_still_parse_and_map_as_before() {
        let legacy = SessionId::parse("AAAAAAAAAAAAAAAAAAAAAA").expect("22-char id");
        let handle = legacy.handle();
        // SHA-256 of the id, first 16 bytes, base64url: the derivation of
        // the earlier format, unchanged.
        let digest = Sha256::digest(b"AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(handle.as_str(), b64url(&digest[..16]));
        assert!(handle.is_legacy());
        assert_eq!(SessionHandle::parse(handle.as_str()).unwrap(), handle);
    }

    #[test]
    fn a_typical_record_encodes_well_under_a_kibibyte() {
        let attrs = BTreeMap::from([("amr".to_string(), "pwd".to_string())]);
        let r = SessionRecord::new(
            "user-0123456789",
            attrs,
            1_700_000_000_000,
            Duration::from_secs(1800),
            Duration::from_secs(86400),
        );
        let bytes = crate::codec::encode(&r).unwrap();
        assert!(bytes.len() < 100, "{} bytes", bytes.len());
        let back: SessionRecord = crate::codec::decode("session", &bytes).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn touches_are_wanted_only_after_a_tenth_of_the_idle_timeout() {
        let r = SessionRecord::new(
            "u",
            BTreeMap::new(),
            0,
            Duration::from_secs(100),
            Duration::from_secs(1000),
        );
        assert!(!r.wants_touch(10_000, 10));
        assert!(r.wants_touch(10_001, 10));
        assert_eq!(r.expires_at_ms(), 100_000);
        assert_eq!(r.ttl_ms(40_000), 60_000);
    }
}
