//! Brute-force lockout, exact cluster-wide and durable.
//!
//! Each user has a record `lockout/<b64(user)>` in the tenant keyspace,
//! written through Raft. Before a password is checked, the caller
//! *reserves* an attempt: a compare-and-swap on the record's version that
//! counts the attempt as a failure up front. Concurrent reservations through
//! any number of nodes serialize on that version, so at most
//! `max_failures` attempts are ever admitted per window, whichever node
//! they come through and even if a node dies mid-attempt (an unresolved
//! reservation stays counted). The N-th failure sets `locked_until`; an
//! attempt that decided nothing against the user (a right password with a
//! second factor still to come, a check that could not be made) hands its
//! reservation back and leaves the other failures as they are; only a
//! completed sign-in deletes the record.

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, KeyValue, OpResult, Txn, TxnOp};
use rsp_consensus::{Consensus, Consistency};
use serde::{Deserialize, Serialize};

use crate::admission::Admission;
use crate::codec::{decode, encode};
use crate::config::LockoutPolicy;
use crate::error::ActorError;
use crate::keys::{check_user_id, lockout_key};

/// Compare-and-swap rounds before giving up with `Contention`.
const MAX_CAS_ROUNDS: usize = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LockoutRecord {
    /// Attempts reserved in this window (each counts as failed unless it
    /// succeeded, which deletes the record).
    failures: u32,
    window_start_ms: u64,
    locked_until_ms: u64,
}

/// State read from storage: the record and the version to compare against.
struct Current {
    record: Option<LockoutRecord>,
    version: u64,
}

fn current(kv: Option<&KeyValue>) -> Result<Current, ActorError> {
    Ok(match kv {
        Some(kv) => Current {
            record: Some(decode("lockout", &kv.value)?),
            version: kv.version,
        },
        None => Current {
            record: None,
            version: 0,
        },
    })
}

/// Failed-login lockout for one tenant.
#[derive(Clone)]
pub struct LockoutService {
    admission: Admission,
}

/// Lockout state of a user, for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockoutStatus {
    pub failures: u32,
    /// Unix ms; 0 when not locked.
    pub locked_until_ms: u64,
}

/// A reserved login attempt. Report the outcome with
/// [`AttemptGuard::failed`], [`AttemptGuard::released`] or
/// [`AttemptGuard::succeeded`]; dropped without any, it stays counted as a
/// failure.
#[must_use = "report the outcome of the attempt"]
pub struct AttemptGuard {
    consensus: Consensus,
    policy: LockoutPolicy,
    key: Key,
    window_start_ms: u64,
}

enum Step {
    Write(LockoutRecord),
    Done,
}

/// Read-modify-write of a lockout record under a version compare. A
/// decision to write is validated by the compare, so it may start from a
/// local read; a decision *not* to write is only as fresh as the read it
/// started from, hence `consistency`.
async fn cas<T>(
    consensus: &Consensus,
    policy: &LockoutPolicy,
    key: &Key,
    consistency: Consistency,
    mut decide: impl FnMut(&Current) -> Result<(Step, T), ActorError>,
) -> Result<T, ActorError> {
    let (kv, _) = consensus.get(key, consistency).await?;
    let mut cur = current(kv.as_ref())?;
    let ttl = (policy.window + policy.lockout).as_millis() as u64;
    for _ in 0..MAX_CAS_ROUNDS {
        let (step, out) = decide(&cur)?;
        let Step::Write(record) = step else {
            return Ok(out);
        };
        let txn = Txn {
            compares: vec![Compare {
                key: key.clone(),
                target: CompareTarget::Version(CmpOp::Eq, cur.version),
            }],
            success: vec![TxnOp::Put {
                key: key.clone(),
                value: encode(&record)?,
                ttl_ms: Some(ttl),
            }],
            failure: vec![TxnOp::Get { key: key.clone() }],
        };
        let resp = consensus.txn(txn).await?;
        if resp.succeeded {
            return Ok(out);
        }
        cur = match resp.results.first() {
            Some(OpResult::Get { kv }) => current(kv.as_ref())?,
            _ => return Err(ActorError::Internal("lockout CAS answered no read".into())),
        };
    }
    Err(ActorError::Contention("a lockout record".into()))
}

impl LockoutService {
    pub(crate) fn new(admission: Admission) -> Self {
        LockoutService { admission }
    }

    /// The node's lockout, for tenants that set none of their own.
    pub fn defaults(&self) -> LockoutPolicy {
        self.admission.shared().config.lockout
    }

    /// Reserve a login attempt for `user_id` before checking the password,
    /// or learn that the account is locked (the node's lockout).
    pub async fn begin_attempt(&self, user_id: &str) -> Result<AttemptGuard, ActorError> {
        self.begin_attempt_with(user_id, self.defaults()).await
    }

    /// [`Self::begin_attempt`] under `policy` (the tenant's settings).
    pub async fn begin_attempt_with(
        &self,
        user_id: &str,
        policy: LockoutPolicy,
    ) -> Result<AttemptGuard, ActorError> {
        check_user_id(user_id)?;
        let p = self.admission.enter().await?;
        let consensus = p.shared.consensus.clone();
        let key = lockout_key(&p.shared.keyspace, user_id);
        let window = policy.window.as_millis() as u64;
        let clock = consensus.clock().clone();
        let mut confirmed = false;
        loop {
            let result = cas(&consensus, &policy, &key, Consistency::Local, |cur| {
                let now = clock.now_ms();
                let mut r = cur.record.unwrap_or_default();
                if r.locked_until_ms > now {
                    return Err(ActorError::Locked {
                        until_ms: r.locked_until_ms,
                    });
                }
                if cur.record.is_none() || now >= r.window_start_ms.saturating_add(window) {
                    r = LockoutRecord {
                        failures: 0,
                        window_start_ms: now,
                        locked_until_ms: 0,
                    };
                }
                if r.failures >= policy.max_failures {
                    // Reservations still unresolved count as failures.
                    return Err(ActorError::Locked {
                        until_ms: r.window_start_ms.saturating_add(window),
                    });
                }
                r.failures += 1;
                Ok((Step::Write(r), r.window_start_ms))
            })
            .await;
            match result {
                Ok(window_start_ms) => {
                    return Ok(AttemptGuard {
                        consensus,
                        policy,
                        key,
                        window_start_ms,
                    });
                }
                // A refusal decided on a stale local read (a success on
                // another node may have cleared the record): confirm it once.
                Err(ActorError::Locked { .. }) if !confirmed => {
                    confirmed = true;
                    consensus.linearizable_barrier().await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Current failures and lock of a user (linearizable).
    pub async fn status(&self, user_id: &str) -> Result<LockoutStatus, ActorError> {
        check_user_id(user_id)?;
        let p = self.admission.enter().await?;
        let key = lockout_key(&p.shared.keyspace, user_id);
        let (kv, _) = p
            .shared
            .consensus
            .get(&key, Consistency::Linearizable)
            .await?;
        let r = current(kv.as_ref())?.record.unwrap_or_default();
        let now = p.shared.consensus.clock().now_ms();
        let window = p.shared.config.lockout.window.as_millis() as u64;
        let live = r.window_start_ms.saturating_add(window) > now || r.locked_until_ms > now;
        Ok(LockoutStatus {
            failures: if live { r.failures } else { 0 },
            locked_until_ms: if r.locked_until_ms > now {
                r.locked_until_ms
            } else {
                0
            },
        })
    }
}

impl AttemptGuard {
    /// The secret was wrong. The attempt is already counted; the failure
    /// that reaches the limit starts the lock. True when this call started
    /// it.
    pub async fn failed(self) -> Result<bool, ActorError> {
        let policy = self.policy;
        let lockout = policy.lockout.as_millis() as u64;
        let window_start = self.window_start_ms;
        let clock = self.consensus.clock();
        // Linearizable: our own reservation may have been committed through
        // the leader and not yet be applied here.
        cas(
            &self.consensus,
            &policy,
            &self.key,
            Consistency::Linearizable,
            |cur| {
                let now = clock.now_ms();
                match cur.record {
                    Some(r)
                        if r.window_start_ms == window_start
                            && r.failures >= policy.max_failures
                            && r.locked_until_ms <= now =>
                    {
                        let locked = LockoutRecord {
                            locked_until_ms: now.saturating_add(lockout),
                            ..r
                        };
                        Ok((Step::Write(locked), true))
                    }
                    _ => Ok((Step::Done, false)),
                }
            },
        )
        .await
    }

    /// The attempt decided nothing against the user: the secret was right
    /// but the sign-in has another step to pass (the password before a
    /// second factor), or nothing could be checked. The reservation is
    /// handed back; every other failure in the window stays counted, and a
    /// lock stays as it is.
    pub async fn released(self) -> Result<(), ActorError> {
        let window_start = self.window_start_ms;
        let clock = self.consensus.clock();
        // Linearizable, as in `failed`: our reservation must be seen.
        cas(
            &self.consensus,
            &self.policy,
            &self.key,
            Consistency::Linearizable,
            |cur| match cur.record {
                Some(r)
                    if r.window_start_ms == window_start
                        && r.failures > 0
                        && r.locked_until_ms <= clock.now_ms() =>
                {
                    let returned = LockoutRecord {
                        failures: r.failures - 1,
                        ..r
                    };
                    Ok((Step::Write(returned), ()))
                }
                _ => Ok((Step::Done, ())),
            },
        )
        .await
    }

    /// The whole sign-in succeeded (every step it needed): clear the
    /// user's failures. Not for a step that another one follows
    /// ([`AttemptGuard::released`]).
    pub async fn succeeded(self) -> Result<(), ActorError> {
        let txn = Txn::ops(vec![TxnOp::Delete {
            key: self.key.clone(),
        }]);
        self.consensus.txn(txn).await?;
        Ok(())
    }
}
