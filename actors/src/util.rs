//! Small helpers shared by the services: base64url, key layout of the
//! tenant keyspace, and record encoding.
//!
//! Keys in `t.<tenant>` written by this crate:
//! - `session/<handle>`: a session record (see [`crate::session`]); a
//!   handle starts with its user's tag, so `session/<tag>` lists a user's
//!   sessions;
//! - `user_session/<b64(user)>/<handle>`: empty index entry, same TTL, only
//!   beside sessions made before the user tag (no longer written for new
//!   ones);
//! - `lockout/<b64(user)>`: failed-login counter (see [`crate::lockout`]);
//! - `policy/...`: read by the policy evaluator (written by `rsp-policies`).
//!
//! User ids are base64url-encoded in keys so that a user id containing `/`
//! cannot make one user's prefix match another's keys.

use rsp_consensus::kv::Key;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ActorError;

pub(crate) const SESSION_PREFIX: &[u8] = b"session/";
pub(crate) const USER_SESSION_PREFIX: &[u8] = b"user_session/";
pub(crate) const LOCKOUT_PREFIX: &[u8] = b"lockout/";
pub(crate) const POLICY_HEAD: &[u8] = rsp_policies::records::HEAD.as_bytes();

/// Longest user id accepted in keys.
pub(crate) const MAX_USER_ID: usize = 256;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 section 5).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=n {
            out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Whether `s` is `len` characters of the base64url alphabet.
pub(crate) fn is_b64url(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| B64.contains(&c))
}

/// FNV-1a, 64 bit: a stable fingerprint of a session handle for the
/// in-memory live set (8 bytes per session instead of the whole handle).
pub(crate) fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub(crate) fn keyspace(tenant: &str) -> String {
    format!("t.{tenant}")
}

pub(crate) fn session_key(keyspace: &str, handle: &str) -> Key {
    let mut k = SESSION_PREFIX.to_vec();
    k.extend_from_slice(handle.as_bytes());
    Key::new(keyspace, k)
}

/// Where the records of `user_id`'s sessions are (with any other user's
/// whose tag is the same: filter on the record's user id).
pub(crate) fn user_sessions_prefix(user_id: &str) -> Vec<u8> {
    let mut k = SESSION_PREFIX.to_vec();
    k.extend_from_slice(crate::session::user_tag(user_id).as_bytes());
    k
}

/// The index of sessions made before the user tag.
pub(crate) fn legacy_user_prefix(user_id: &str) -> Vec<u8> {
    let mut k = USER_SESSION_PREFIX.to_vec();
    k.extend_from_slice(b64url(user_id.as_bytes()).as_bytes());
    k.push(b'/');
    k
}

/// A legacy index key (see [`legacy_user_prefix`]).
pub(crate) fn legacy_user_session_key(keyspace: &str, user_id: &str, handle: &str) -> Key {
    let mut k = legacy_user_prefix(user_id);
    k.extend_from_slice(handle.as_bytes());
    Key::new(keyspace, k)
}

pub(crate) fn lockout_key(keyspace: &str, user_id: &str) -> Key {
    let mut k = LOCKOUT_PREFIX.to_vec();
    k.extend_from_slice(b64url(user_id.as_bytes()).as_bytes());
    Key::new(keyspace, k)
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ActorError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| ActorError::Internal(format!("encode: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ActorError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| ActorError::Internal(format!("stored {what} does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64url_matches_rfc4648_vectors_without_padding() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(b"foob"), "Zm9vYg");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64url(&[0u8; 16]).len(), 22);
    }

    #[test]
    fn user_prefixes_do_not_overlap_when_ids_contain_slashes() {
        let a = legacy_user_prefix("alice");
        let b = legacy_user_session_key("t.x", "alice/x", "h");
        assert!(!b.key.starts_with(&a));
    }
}
