//! Users of a tenant: created through the admin API, found by username at
//! login, passwords checked with [`PasswordHasher`].
//!
//! Records (tenant keyspace): `user/<id>` -> [`User`] (JSON) and
//! `username/<lowercased username>` -> id, written in one transaction that
//! refuses a taken username.
//!
//! A user administers their tenant (may use an access token with scope
//! `rsp:admin`) only when their attributes hold [`ADMIN_ATTRIBUTE`]` = true`.

use rsp_consensus::kv::{Compare, CompareTarget, Key, Txn, TxnOp};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::passwords::{PasswordError, PasswordHasher};
use rsp_consensus::kv::tenant_keyspace;

mod lifecycle;

pub use lifecycle::{USER_LISTING_PREFIX, Written, username_index_prefix};

#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub password_hash: String,
    pub created_at_ms: u64,
    #[serde(default)]
    pub disabled: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub struct NewUser {
    pub username: String,
    pub password: Zeroizing<String>,
    pub email: Option<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl NewUser {
    /// What [`UserService::create`] checks before it hashes the password
    /// or writes: username, email and the password's length.
    pub fn check(&self) -> Result<(), UserError> {
        if !valid_username(&self.username) {
            return Err(UserError::InvalidUsername);
        }
        if let Some(email) = &self.email
            && !valid_email(email)
        {
            return Err(UserError::InvalidEmail);
        }
        crate::passwords::check_length(&self.password)?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("usernames are 1 to 128 printable characters")]
    InvalidUsername,
    #[error("email is not an address")]
    InvalidEmail,
    #[error("username `{0}` is taken")]
    Exists(String),
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("stored user record is unreadable: {0}")]
    Corrupt(String),
    #[error("the user was changed by others meanwhile; try again")]
    Busy,
    #[error("the user changed since that version was read")]
    Changed,
    /// The tenant's password policy refused the password (the reason never
    /// repeats it).
    #[error("{0}")]
    PasswordPolicy(String),
    #[error("the tenant holds its maximum of {0} users (settings.max_users)")]
    Quota(u64),
}

/// The user attribute that makes a user an administrator of their tenant:
/// `"rsp_admin": true` (any other value, or none, is no grant).
pub const ADMIN_ATTRIBUTE: &str = "rsp_admin";

impl User {
    /// Whether the user is granted tenant administration explicitly (and is
    /// not disabled).
    pub fn is_tenant_admin(&self) -> bool {
        !self.disabled
            && self.attributes.get(ADMIN_ATTRIBUTE) == Some(&serde_json::Value::Bool(true))
    }
}

/// Changes to a user; an absent field stays as it is.
#[derive(Default)]
pub struct UserUpdate {
    pub email: Option<String>,
    /// Replaces every attribute.
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// A disabled user cannot sign in, and tokens stop being issued to
    /// them (refresh included).
    pub disabled: Option<bool>,
}

impl UserUpdate {
    /// What [`UserService::update`] checks before it reads the user.
    pub fn check(&self) -> Result<(), UserError> {
        if self.email.as_deref().is_some_and(|e| !valid_email(e)) {
            return Err(UserError::InvalidEmail);
        }
        Ok(())
    }
}

fn valid_email(email: &str) -> bool {
    email.len() <= 254 && email.contains('@') && !email.chars().any(char::is_whitespace)
}

pub(crate) fn user_key(tenant: &str, id: &str) -> Key {
    Key::new(tenant_keyspace(tenant), format!("user/{id}").into_bytes())
}

pub(crate) fn username_key(tenant: &str, username: &str) -> Key {
    Key::new(tenant_keyspace(tenant), username_index_prefix(username))
}

fn valid_username(u: &str) -> bool {
    let n = u.chars().count();
    (1..=128).contains(&n) && !u.chars().any(|c| c.is_control()) && u.trim() == u
}

#[derive(Clone)]
pub struct UserService {
    consensus: Consensus,
    hasher: PasswordHasher,
}

impl UserService {
    pub fn new(consensus: Consensus, hasher: PasswordHasher) -> Self {
        UserService { consensus, hasher }
    }

    /// The tenant's settings, as this node has applied them.
    pub(crate) async fn settings(
        &self,
        tenant: &str,
    ) -> Result<crate::tenants::TenantSettings, UserError> {
        crate::tenants::TenantService::new(self.consensus.clone())
            .settings(tenant)
            .await
            .map_err(|e| match e {
                crate::tenants::TenantError::Consensus(c) => UserError::Consensus(c),
                other => UserError::Corrupt(other.to_string()),
            })
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    pub async fn create(&self, tenant: &str, new: NewUser, now_ms: u64) -> Result<User, UserError> {
        new.check()?;
        let settings = self.settings(tenant).await?;
        settings
            .password_policy()
            .check(&new.password, Some(&new.username))
            .map_err(UserError::PasswordPolicy)?;
        if let Some(max) = settings.max_users {
            let (held, _) = self
                .consensus
                .range(
                    &tenant_keyspace(tenant),
                    USER_LISTING_PREFIX,
                    max as usize,
                    Consistency::Linearizable,
                )
                .await?;
            if held.len() as u64 >= max {
                return Err(UserError::Quota(max));
            }
        }
        let password_hash = self.hasher.hash(new.password).await?;
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            username: new.username.clone(),
            email: new.email,
            email_verified: false,
            attributes: new.attributes,
            password_hash,
            created_at_ms: now_ms,
            disabled: false,
        };
        let index = username_key(tenant, &new.username);
        let txn = Txn {
            compares: vec![Compare {
                key: index.clone(),
                target: CompareTarget::Exists(false),
            }],
            success: vec![
                TxnOp::Put {
                    key: user_key(tenant, &user.id),
                    value: serde_json::to_vec(&user)
                        .map_err(|e| UserError::Corrupt(e.to_string()))?,
                    ttl_ms: None,
                },
                TxnOp::Put {
                    key: index,
                    value: user.id.clone().into_bytes(),
                    ttl_ms: None,
                },
            ],
            failure: vec![],
        };
        if self.consensus.txn(txn).await?.succeeded {
            Ok(user)
        } else {
            Err(UserError::Exists(new.username))
        }
    }

    pub async fn get(
        &self,
        tenant: &str,
        id: &str,
        consistency: Consistency,
    ) -> Result<User, UserError> {
        let (kv, _) = self
            .consensus
            .get(&user_key(tenant, id), consistency)
            .await?;
        let kv = kv.ok_or(UserError::NotFound)?;
        serde_json::from_slice(&kv.value).map_err(|e| UserError::Corrupt(e.to_string()))
    }

    pub async fn find_by_username(
        &self,
        tenant: &str,
        username: &str,
    ) -> Result<Option<User>, UserError> {
        if !valid_username(username) {
            return Ok(None);
        }
        // A local miss is confirmed linearizably: the user may have been
        // created through another node a moment ago.
        let index = username_key(tenant, username);
        let mut kv = self.consensus.get(&index, Consistency::Local).await?.0;
        if kv.is_none() {
            kv = self
                .consensus
                .get(&index, Consistency::Linearizable)
                .await?
                .0;
        }
        match kv {
            Some(kv) => match self
                .get(
                    tenant,
                    &String::from_utf8_lossy(&kv.value),
                    Consistency::Local,
                )
                .await
            {
                Ok(u) => Ok(Some(u)),
                Err(UserError::NotFound) => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    /// The user if `username` exists, is enabled and `password` matches;
    /// takes the same time whether or not the user exists.
    pub async fn check_password(
        &self,
        tenant: &str,
        username: &str,
        password: Zeroizing<String>,
    ) -> Result<Option<User>, UserError> {
        let user = self.find_by_username(tenant, username).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self.hasher.verify(password, stored).await?;
        Ok(user.filter(|u| ok && !u.disabled))
    }
}
