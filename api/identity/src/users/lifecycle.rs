//! Changing and removing users: update (email, attributes, disabled), a new
//! password, delete.
//!
//! Each change is one compare-and-set on the user's record: against the
//! revision the caller read (an administrator's `If-Match`), or against the
//! revision just read (retried a few times when someone else wrote in
//! between). The answer carries the log index of the write, so that the
//! caller can wait until every node applied it before answering: a disabled
//! user, a replaced password or a deleted user is then refused by every
//! node's local reads at once.
//!
//! Deleting removes, in the same transaction, the username index, the
//! user's TOTP factors and their replay records, recovery codes and consents.
//! Passkeys (whose credential-id index the passkey service keeps), sessions
//! and refresh tokens are ended by the caller after the delete, when no new
//! sign-in can start.

use rsp_consensus::Consistency;
use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, KeyValue, Txn, TxnOp, tenant_keyspace};
use zeroize::Zeroizing;

use super::{User, UserError, UserService, UserUpdate, user_key, username_key};

/// Records of one user, listed in creation order (ids are UUIDv7).
pub const USER_LISTING_PREFIX: &[u8] = b"user/";

/// Attempts of a compare-and-set without `If-Match` before giving up.
const ATTEMPTS: usize = 5;

/// A record as written: its value, its new revision (the ETag) and the log
/// index of the write.
#[derive(Debug)]
pub struct Written<T> {
    pub value: T,
    pub revision: u64,
    pub index: u64,
}

fn parse(kv: &KeyValue) -> Result<User, UserError> {
    serde_json::from_slice(&kv.value).map_err(|e| UserError::Corrupt(e.to_string()))
}

fn encode(user: &User) -> Result<Vec<u8>, UserError> {
    serde_json::to_vec(user).map_err(|e| UserError::Corrupt(e.to_string()))
}

impl UserService {
    /// The user with the revision of its record.
    pub async fn get_versioned(
        &self,
        tenant: &str,
        id: &str,
        consistency: Consistency,
    ) -> Result<(User, u64), UserError> {
        let (kv, _) = self
            .consensus
            .get(&user_key(tenant, id), consistency)
            .await?;
        let kv = kv.ok_or(UserError::NotFound)?;
        Ok((parse(&kv)?, kv.mod_revision))
    }

    /// Read the user linearizably, apply `change` and write it back if the
    /// record is still as read (and at `expected`, when given).
    async fn modify(
        &self,
        tenant: &str,
        id: &str,
        expected: Option<u64>,
        change: impl Fn(&mut User),
    ) -> Result<Written<User>, UserError> {
        let key = user_key(tenant, id);
        for _ in 0..ATTEMPTS {
            let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
            let kv = kv.ok_or(UserError::NotFound)?;
            if expected.is_some_and(|e| e != kv.mod_revision) {
                return Err(UserError::Changed);
            }
            let mut user = parse(&kv)?;
            change(&mut user);
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                }],
                success: vec![TxnOp::Put {
                    key: key.clone(),
                    value: encode(&user)?,
                    ttl_ms: None,
                }],
                failure: vec![],
            };
            let (resp, index) = self.consensus.txn_indexed(txn).await?;
            if resp.succeeded {
                return Ok(Written {
                    value: user,
                    revision: resp.revision,
                    index,
                });
            }
            if expected.is_some() {
                return Err(UserError::Changed);
            }
        }
        Err(UserError::Busy)
    }

    /// Change a user's email, attributes or disabled flag.
    pub async fn update(
        &self,
        tenant: &str,
        id: &str,
        update: UserUpdate,
        expected: Option<u64>,
    ) -> Result<Written<User>, UserError> {
        update.check()?;
        self.modify(tenant, id, expected, |user| {
            if let Some(email) = &update.email
                && user.email.as_ref() != Some(email)
            {
                user.email = Some(email.clone());
                user.email_verified = false;
            }
            if let Some(attributes) = &update.attributes {
                user.attributes = attributes.clone();
            }
            if let Some(disabled) = update.disabled {
                user.disabled = disabled;
            }
        })
        .await
    }

    /// Give the user a new password (checked and hashed as at creation).
    pub async fn set_password(
        &self,
        tenant: &str,
        id: &str,
        password: Zeroizing<String>,
        expected: Option<u64>,
    ) -> Result<Written<User>, UserError> {
        crate::passwords::check_length(&password)?;
        // The user must exist before the (slow) hash is computed.
        let user = self.get(tenant, id, Consistency::Linearizable).await?;
        self.settings(tenant)
            .await?
            .password_policy()
            .check(&password, Some(&user.username))
            .map_err(UserError::PasswordPolicy)?;
        let hash = self.hasher.hash(password).await?;
        self.modify(tenant, id, expected, |user| {
            user.password_hash = hash.clone();
        })
        .await
    }

    /// Delete the user with their username, TOTP factors, recovery codes
    /// and consents. Answers the deleted user and the write's log index.
    pub async fn delete(
        &self,
        tenant: &str,
        id: &str,
        expected: Option<u64>,
    ) -> Result<Written<User>, UserError> {
        let key = user_key(tenant, id);
        let keyspace = tenant_keyspace(tenant);
        for _ in 0..ATTEMPTS {
            let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
            let kv = kv.ok_or(UserError::NotFound)?;
            if expected.is_some_and(|e| e != kv.mod_revision) {
                return Err(UserError::Changed);
            }
            let user = parse(&kv)?;
            let mut success = vec![
                TxnOp::Delete { key: key.clone() },
                TxnOp::Delete {
                    key: username_key(tenant, &user.username),
                },
                TxnOp::Delete {
                    key: rsp_consensus::kv::Key::new(
                        keyspace.clone(),
                        format!("recovery/{id}").into_bytes(),
                    ),
                },
            ];
            for record in ["factor", "factor_step", "consent"] {
                success.push(TxnOp::DeletePrefix {
                    keyspace: keyspace.clone(),
                    prefix: format!("{record}/{id}/").into_bytes(),
                });
            }
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                }],
                success,
                failure: vec![],
            };
            let (resp, index) = self.consensus.txn_indexed(txn).await?;
            if resp.succeeded {
                return Ok(Written {
                    value: user,
                    revision: resp.revision,
                    index,
                });
            }
            if expected.is_some() {
                return Err(UserError::Changed);
            }
        }
        Err(UserError::Busy)
    }
}

/// The username-index prefix of the usernames that start with `prefix`
/// (compared lowercased); each index record's value is a user id.
pub fn username_index_prefix(prefix: &str) -> Vec<u8> {
    format!("username/{}", prefix.to_lowercase()).into_bytes()
}
