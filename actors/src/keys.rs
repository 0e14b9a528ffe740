//! The key layout of a tenant's keyspace (`tenant_keyspace(tenant)`).
//!
//! Keys written by this crate:
//! - `session/<handle>`: a session record (see [`crate::session`]); a
//!   handle starts with its user's tag, so `session/<tag>` lists a user's
//!   sessions;
//! - `user_session/<b64(user)>/<handle>`: empty index entry, same TTL, only
//!   beside sessions made before the user tag (no longer written for new
//!   ones);
//! - `lockout/<b64(user)>`: failed-login counter (see `lockout`);
//! - `policy/...`: read by the policy evaluator (written by `rsp-policies`).
//!
//! User ids are base64url-encoded in keys so that a user id containing `/`
//! cannot make one user's prefix match another's keys.

use rsp_consensus::kv::Key;

use crate::base64url::b64url;
use crate::error::ActorError;
use crate::session::user_tag;

pub(crate) const SESSION_PREFIX: &[u8] = b"session/";
pub(crate) const USER_SESSION_PREFIX: &[u8] = b"user_session/";
pub(crate) const LOCKOUT_PREFIX: &[u8] = b"lockout/";
pub(crate) const POLICY_HEAD: &[u8] = rsp_policies::records::HEAD.as_bytes();

/// Longest user id accepted in keys.
pub(crate) const MAX_USER_ID: usize = 256;

/// User ids are 1 to 256 bytes.
pub(crate) fn check_user_id(user_id: &str) -> Result<(), ActorError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID {
        return Err(ActorError::InvalidInput(format!(
            "user id must be 1 to {MAX_USER_ID} bytes"
        )));
    }
    Ok(())
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
    k.extend_from_slice(user_tag(user_id).as_bytes());
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

#[cfg(test)]
mod tests {
    use rsp_consensus::kv::tenant_keyspace;

    use super::*;

    #[test]
    fn user_prefixes_do_not_overlap_when_ids_contain_slashes() {
        let a = legacy_user_prefix("alice");
        let b = legacy_user_session_key(&tenant_keyspace("x"), "alice/x", "h");
        assert!(!b.key.starts_with(&a));
    }
}
