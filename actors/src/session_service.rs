//! [`SessionService`]: what the API calls for sessions of one tenant.
//!
//! Validation is a direct local read (no actor hop) under the rule in
//! `read`; creation and explicit touches go through the session
//! manager (quota, one touch at a time); revocations are written here and
//! return only once in force on every member (or fenced).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rsp_consensus::Consistency;
use rsp_consensus::kv::{Txn, TxnOp};

use crate::admission::Admission;
use crate::codec::decode;
use crate::error::{ActorError, call};
use crate::keys::{
    SESSION_PREFIX, check_user_id, legacy_user_prefix, session_key, user_sessions_prefix,
};
use crate::read::{fence, guarded_get};
use crate::session::{Revocation, Session, SessionHandle, SessionId, SessionInfo, SessionRecord};
use crate::session_manager::SessionMsg;
use crate::session_writes::{CreateRequest, record_deletes};
use crate::tenant::Permit;

const MAX_ATTRS: usize = 16;
const MAX_ATTR_BYTES: usize = 512;
/// Touch casts queued per tenant and node before validations stop asking.
const MAX_PENDING_TOUCHES: usize = 256;
/// Sessions deleted per transaction when revoking all of a user's.
const REVOKE_BATCH: usize = 500;
/// Most sessions listed or revoked for one user at once.
const MAX_USER_SESSIONS: usize = 10_000;

/// Sessions of one tenant on this node.
#[derive(Clone)]
pub struct SessionService {
    admission: Admission,
}

impl SessionService {
    pub(crate) fn new(admission: Admission) -> Self {
        SessionService { admission }
    }

    /// Start a session for `user_id`. It ends after `idle_timeout` without a
    /// touch, and after `absolute_lifetime` in any case.
    pub async fn create(
        &self,
        user_id: &str,
        attrs: BTreeMap<String, String>,
        idle_timeout: Duration,
        absolute_lifetime: Duration,
    ) -> Result<Session, ActorError> {
        let p = self.admission.enter().await?;
        let policy = p.shared.config.sessions;
        check_user_id(user_id)?;
        let attr_bytes: usize = attrs.iter().map(|(k, v)| k.len() + v.len()).sum();
        if attrs.len() > MAX_ATTRS || attr_bytes > MAX_ATTR_BYTES {
            return Err(ActorError::InvalidInput(format!(
                "at most {MAX_ATTRS} attributes of {MAX_ATTR_BYTES} bytes in all"
            )));
        }
        if idle_timeout < policy.min_idle_timeout || idle_timeout > policy.max_idle_timeout {
            return Err(ActorError::InvalidInput(
                "idle timeout out of bounds".into(),
            ));
        }
        if absolute_lifetime.is_zero() || absolute_lifetime > policy.max_lifetime {
            return Err(ActorError::InvalidInput("lifetime out of bounds".into()));
        }
        let now = p.shared.consensus.clock().now_ms();
        let record = SessionRecord::new(user_id, attrs, now, idle_timeout, absolute_lifetime);
        let req = CreateRequest {
            user_id: user_id.to_string(),
            record,
        };
        let actor = p.shared.children.sessions.current()?;
        let timeout = p.shared.config.write_call_timeout;
        let session = call(&actor, |reply| SessionMsg::Create { req, reply }, timeout).await??;
        p.shared.metrics.sessions_created.inc();
        Ok(session)
    }

    async fn read(&self, p: &Permit, handle: &SessionHandle) -> Result<SessionRecord, ActorError> {
        // A local read never waits, so a hot validation loop would otherwise
        // never yield and could starve Raft's heartbeats on this worker.
        tokio::task::coop::consume_budget().await;
        let s = &p.shared;
        let key = session_key(&s.keyspace, handle.as_str());
        let kv = guarded_get(
            &s.consensus,
            &key,
            s.config.max_local_read_silence,
            s.config.sessions.linearizable_on_miss,
        )
        .await?
        .ok_or(ActorError::SessionNotFound)?;
        let record: SessionRecord = decode("session", &kv.value)?;
        // The key may outlive its TTL here until the leader's next tick is
        // applied: judge expiry ourselves, by the earlier of both clocks.
        let expires = record
            .expires_at_ms()
            .min(kv.expires_at_ms.unwrap_or(u64::MAX));
        if expires <= s.consensus.clock().now_ms() {
            return Err(ActorError::SessionNotFound);
        }
        Ok(record)
    }

    /// The session, if live, without touching it.
    pub async fn get(&self, id: &SessionId) -> Result<SessionInfo, ActorError> {
        let p = self.admission.enter().await?;
        let handle = id.handle();
        Ok(self.read(&p, &handle).await?.info(handle))
    }

    /// The session, if live; slides its idle timeout when more than a tenth
    /// of it has passed since the last touch (in the background).
    pub async fn validate(&self, id: &SessionId) -> Result<SessionInfo, ActorError> {
        let p = self.admission.enter().await?;
        let handle = id.handle();
        let record = self.read(&p, &handle).await?;
        let now = p.shared.consensus.clock().now_ms();
        if record.wants_touch(now, p.shared.config.sessions.touch_divisor) {
            request_touch(&p, &handle);
        }
        Ok(record.info(handle))
    }

    /// Slide the idle timeout now (written through Raft), and return the
    /// session as stored afterwards.
    pub async fn touch(&self, id: &SessionId) -> Result<SessionInfo, ActorError> {
        let p = self.admission.enter().await?;
        let handle = id.handle();
        // Fail fast (and without a write) for unknown sessions.
        self.read(&p, &handle).await?;
        let actor = p.shared.children.sessions.current()?;
        let timeout = p.shared.config.write_call_timeout;
        call(
            &actor,
            |reply| SessionMsg::Touch {
                handle,
                reply: Some(reply),
            },
            timeout,
        )
        .await?
    }

    /// End a session; in force on every member when this returns.
    pub async fn revoke(&self, id: &SessionId) -> Result<Revocation, ActorError> {
        self.revoke_handle(&id.handle()).await
    }

    /// [`SessionService::revoke`] by the session's public handle.
    pub async fn revoke_handle(&self, handle: &SessionHandle) -> Result<Revocation, ActorError> {
        let p = self.admission.enter().await?;
        let s = &p.shared;
        let key = session_key(&s.keyspace, handle.as_str());
        let (kv, _) = s.consensus.get(&key, Consistency::Linearizable).await?;
        let Some(kv) = kv else {
            return Ok(Revocation::default());
        };
        // Only the index key of a handle from before the user tag needs the
        // record's user.
        let user_id = if handle.is_legacy() {
            decode::<SessionRecord>("session", &kv.value)?.user_id
        } else {
            String::new()
        };
        let ops = record_deletes(&s.keyspace, handle, &user_id);
        self.delete_and_fence(&p, vec![ops], 1).await
    }

    async fn delete_and_fence(
        &self,
        p: &Permit,
        batches: Vec<Vec<TxnOp>>,
        count: u64,
    ) -> Result<Revocation, ActorError> {
        let s = &p.shared;
        let mut last_index = 0;
        for ops in batches {
            let (_, index) = s.consensus.txn_indexed(Txn::ops(ops)).await?;
            last_index = last_index.max(index);
        }
        let committed_at = Instant::now();
        let (confirmed, fenced) = fence(
            &s.consensus,
            last_index,
            committed_at,
            s.config.revoke_confirm_timeout,
            s.config.max_local_read_silence,
        )
        .await;
        s.metrics.sessions_revoked.inc_by(count);
        Ok(Revocation {
            revoked: count,
            confirmed,
            fenced,
        })
    }

    /// Live sessions of a user (at most 10 000), read linearizably so a
    /// session just created through any node is listed.
    pub async fn list_for_user(&self, user_id: &str) -> Result<Vec<SessionInfo>, ActorError> {
        check_user_id(user_id)?;
        let p = self.admission.enter().await?;
        let now = p.shared.consensus.clock().now_ms();
        let found = user_sessions(&p, user_id).await?;
        let live = found.into_iter().filter(|(_, r)| r.expires_at_ms() > now);
        Ok(live.map(|(handle, r)| r.info(handle)).collect())
    }

    /// End every session the user has (those created before this call);
    /// in force on every member when this returns.
    pub async fn revoke_all_for_user(&self, user_id: &str) -> Result<Revocation, ActorError> {
        check_user_id(user_id)?;
        let p = self.admission.enter().await?;
        let ks = &p.shared.keyspace;
        let found = user_sessions(&p, user_id).await?;
        let count = found.len() as u64;
        let mut batches = Vec::new();
        for chunk in found.chunks(REVOKE_BATCH) {
            let ops = chunk.iter();
            batches.push(
                ops.flat_map(|(h, _)| record_deletes(ks, h, user_id))
                    .collect(),
            );
        }
        if batches.is_empty() {
            return Ok(Revocation::default());
        }
        self.delete_and_fence(&p, batches, count).await
    }

    /// Live sessions of the tenant in this node's applied state.
    pub async fn count(&self) -> Result<u64, ActorError> {
        let p = self.admission.enter().await?;
        let actor = p.shared.children.sessions.current()?;
        call(&actor, SessionMsg::Count, p.shared.config.call_timeout).await
    }
}

/// Ask the session manager, best effort, to slide a session's idle timeout.
fn request_touch(p: &Permit, handle: &SessionHandle) {
    let pending = &p.shared.pending_touches;
    if pending.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_TOUCHES {
        pending.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let sent = p.shared.children.sessions.get().is_some_and(|a| {
        a.cast(SessionMsg::Touch {
            handle: handle.clone(),
            reply: None,
        })
        .is_ok()
    });
    if !sent {
        pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The stored sessions of `user_id` (at most 10 000), expired or not:
/// those under the user's tag, read linearizably, then those made before
/// the tag through their index, read locally (applied up to that barrier).
async fn user_sessions(
    p: &Permit,
    user_id: &str,
) -> Result<Vec<(SessionHandle, SessionRecord)>, ActorError> {
    let s = &p.shared;
    let (tagged, _) = s
        .consensus
        .range(
            &s.keyspace,
            &user_sessions_prefix(user_id),
            MAX_USER_SESSIONS,
            Consistency::Linearizable,
        )
        .await?;
    let mut out = Vec::with_capacity(tagged.len());
    for kv in tagged {
        let tail = std::str::from_utf8(&kv.key.key[SESSION_PREFIX.len()..]).unwrap_or_default();
        let handle = SessionHandle::parse(tail)
            .map_err(|_| ActorError::Internal("malformed session key".into()))?;
        // Another user with the same 64-bit tag, or (by a 2^-66 chance) an
        // untagged handle that starts like the tag: not this user's here.
        if handle.is_legacy() {
            continue;
        }
        let record: SessionRecord = decode("session", &kv.value)?;
        if record.user_id == user_id {
            out.push((handle, record));
        }
    }
    let room = MAX_USER_SESSIONS.saturating_sub(out.len());
    if room == 0 {
        return Ok(out);
    }
    let (index, _) = s
        .consensus
        .range(
            &s.keyspace,
            &legacy_user_prefix(user_id),
            room,
            Consistency::Local,
        )
        .await?;
    for kv in index {
        let handle = handle_of(&kv.key.key)?;
        let key = session_key(&s.keyspace, handle.as_str());
        if let (Some(kv), _) = s.consensus.get(&key, Consistency::Local).await? {
            out.push((handle, decode("session", &kv.value)?));
        }
    }
    Ok(out)
}

/// The handle at the end of a `user_session/<user>/<handle>` key.
fn handle_of(index_key: &[u8]) -> Result<SessionHandle, ActorError> {
    let tail = index_key
        .rsplit(|b| *b == b'/')
        .next()
        .and_then(|t| std::str::from_utf8(t).ok())
        .ok_or_else(|| ActorError::Internal("malformed session index key".into()))?;
    SessionHandle::parse(tail)
}
