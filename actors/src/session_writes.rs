//! The Raft writes behind the session manager: creation in batches (one
//! transaction for every creation that queued up while earlier ones were
//! being committed) and the sliding touch, into a [`SessionStore`].

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Txn, TxnOp};
use rsp_consensus::{Consensus, Consistency};

use ractor::RpcReplyPort;

use crate::codec::{decode, encode};
use crate::error::ActorError;
use crate::keys::{legacy_user_session_key, session_key};
use crate::session::{Session, SessionHandle, SessionId, SessionInfo, SessionRecord};

/// Where one tenant's sessions are written: the consensus handle (whose
/// clock times them) and the tenant's keyspace.
pub(crate) struct SessionStore {
    pub consensus: Consensus,
    pub keyspace: String,
}

/// Most creations in one transaction (~1.2 KiB each at most: well inside
/// the 1 MiB command limit).
pub(crate) const MAX_BATCH: usize = 256;

/// A validated creation request.
pub(crate) struct CreateRequest {
    pub user_id: String,
    pub record: SessionRecord,
}

/// A creation waiting to be written, with its caller's reply port.
pub(crate) struct NewSession {
    pub req: CreateRequest,
    pub id: SessionId,
    pub handle: SessionHandle,
    pub reply: RpcReplyPort<Result<Session, ActorError>>,
}

impl NewSession {
    /// A new session of `req`'s user: with the user tag if `tagged` (every
    /// member reads it), else as before the tag.
    pub fn new(
        req: CreateRequest,
        tagged: bool,
        reply: RpcReplyPort<Result<Session, ActorError>>,
    ) -> Self {
        let id = if tagged {
            SessionId::generate(&req.user_id)
        } else {
            SessionId::generate_legacy()
        };
        let handle = id.handle();
        NewSession {
            req,
            id,
            handle,
            reply,
        }
    }

    pub fn fingerprint(&self) -> u64 {
        self.handle.fingerprint()
    }

    /// Compare and puts of this session, for a transaction: one key when
    /// the handle carries the user tag (listable by user without an index);
    /// the record and its index key when made the earlier way (while a
    /// member cannot read tagged sessions, see [`crate::features`]).
    fn ops(&self, store: &SessionStore) -> Result<(Compare, Vec<TxnOp>), ActorError> {
        let ks = &store.keyspace;
        let compare = Compare {
            key: session_key(ks, self.handle.as_str()),
            target: CompareTarget::Exists(false),
        };
        let record = &self.req.record;
        let puts = record_puts(
            ks,
            &self.handle,
            record,
            record.ttl_ms(store.consensus.clock().now_ms()),
        )?;
        Ok((compare, puts))
    }

    /// Send the caller its answer.
    pub fn answer(self, result: Result<(), ActorError>) {
        let session = result.map(|()| Session {
            info: self.req.record.info(self.handle),
            id: self.id,
        });
        let _ = self.reply.send(session);
    }
}

/// The puts that store `record` under `handle` for `ttl_ms`: the record,
/// and the user's index key for a handle from before the user tag.
fn record_puts(
    keyspace: &str,
    handle: &SessionHandle,
    record: &SessionRecord,
    ttl_ms: u64,
) -> Result<Vec<TxnOp>, ActorError> {
    let mut puts = vec![TxnOp::Put {
        key: session_key(keyspace, handle.as_str()),
        value: encode(record)?,
        ttl_ms: Some(ttl_ms),
    }];
    if handle.is_legacy() {
        puts.push(TxnOp::Put {
            key: legacy_user_session_key(keyspace, &record.user_id, handle.as_str()),
            value: Vec::new(),
            ttl_ms: Some(ttl_ms),
        });
    }
    Ok(puts)
}

/// How a session was stored before the user tag, for tests of the upgrade
/// path: a 22-character id, and the transaction that wrote its record under
/// the 22-character handle together with its user's index key. `clock` is
/// the node's ([`rsp_consensus::Consensus::clock`]).
#[cfg(feature = "testing")]
pub fn legacy_session_txn(
    clock: &rsp_consensus::Clock,
    tenant: &str,
    user_id: &str,
    idle: std::time::Duration,
    lifetime: std::time::Duration,
) -> Result<(SessionId, Txn), ActorError> {
    let id = SessionId::generate_legacy();
    let handle = id.handle();
    let now = clock.now_ms();
    let record = SessionRecord::new(user_id, Default::default(), now, idle, lifetime);
    let keyspace = rsp_consensus::kv::tenant_keyspace(tenant);
    let puts = record_puts(&keyspace, &handle, &record, record.ttl_ms(now))?;
    Ok((id, Txn::ops(puts)))
}

/// The deletes that end `user_id`'s session `handle`: its record, and the
/// user's index key for a handle from before the user tag.
pub(crate) fn record_deletes(keyspace: &str, handle: &SessionHandle, user_id: &str) -> Vec<TxnOp> {
    let mut deletes = vec![TxnOp::Delete {
        key: session_key(keyspace, handle.as_str()),
    }];
    if handle.is_legacy() {
        deletes.push(TxnOp::Delete {
            key: legacy_user_session_key(keyspace, user_id, handle.as_str()),
        });
    }
    deletes
}

/// Write `batch` in one transaction. Returns each session with its
/// outcome; the caller reports to the actor first and then answers, so a
/// caller's next request never finds its finished creation still pending.
pub(crate) async fn write_batch(
    store: &SessionStore,
    batch: Vec<NewSession>,
) -> Vec<(NewSession, Result<(), ActorError>)> {
    let mut txn = Txn::default();
    let mut ready = Vec::with_capacity(batch.len());
    let mut done = Vec::new();
    for s in batch {
        match s.ops(store) {
            Ok((compare, puts)) => {
                txn.compares.push(compare);
                txn.success.extend(puts);
                ready.push(s);
            }
            Err(e) => done.push((s, Err(e))),
        }
    }
    if ready.is_empty() {
        return done;
    }
    let all = |ready: Vec<NewSession>, r: Result<(), ActorError>| {
        ready.into_iter().map(move |s| (s, r.clone()))
    };
    match store.consensus.txn(txn).await {
        Ok(resp) if resp.succeeded => done.extend(all(ready, Ok(()))),
        // 2^-128 per pair of sessions; refuse rather than overwrite.
        Ok(_) if ready.len() == 1 => done.extend(all(
            ready,
            Err(ActorError::Internal("session id collision".into())),
        )),
        Ok(_) => {
            // One id collided: write them one by one so only it fails.
            for s in ready {
                done.extend(Box::pin(write_batch(store, vec![s])).await);
            }
        }
        Err(e) => done.extend(all(ready, Err(ActorError::from(e)))),
    }
    done
}

/// Slide the idle timeout: rewrite the record (and the index entry of a
/// session from before the user tag) with a new TTL, only if nobody changed
/// or deleted it since we read it.
pub(crate) async fn write_touch(
    store: &SessionStore,
    handle: &SessionHandle,
) -> Result<SessionInfo, ActorError> {
    let ks = &store.keyspace;
    let key = session_key(ks, handle.as_str());
    let (kv, _) = store.consensus.get(&key, Consistency::Local).await?;
    let kv = kv.ok_or(ActorError::SessionNotFound)?;
    let mut record: SessionRecord = decode("session", &kv.value)?;
    let now = store.consensus.clock().now_ms();
    if record.expires_at_ms() <= now {
        return Err(ActorError::SessionNotFound);
    }
    record.last_seen_ms = now;
    let success = record_puts(ks, handle, &record, record.ttl_ms(now))?;
    let txn = Txn {
        compares: vec![Compare {
            key,
            target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
        }],
        success,
        failure: Vec::new(),
    };
    let resp = store.consensus.txn(txn).await?;
    if resp.succeeded {
        return Ok(record.info(handle.clone()));
    }
    // Touched elsewhere meanwhile, or revoked: a revoked session must not
    // come back, so report what is stored now.
    let (kv, _) = store
        .consensus
        .get(&session_key(ks, handle.as_str()), Consistency::Linearizable)
        .await?;
    let kv = kv.ok_or(ActorError::SessionNotFound)?;
    let current: SessionRecord = decode("session", &kv.value)?;
    if current.expires_at_ms() <= store.consensus.clock().now_ms() {
        return Err(ActorError::SessionNotFound);
    }
    Ok(current.info(handle.clone()))
}
