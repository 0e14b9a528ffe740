//! Changing, removing and re-keying clients.
//!
//! A change is the registration's fields merged over the stored client,
//! checked by the same rules as a new registration ([`NewClient::check`]),
//! and written with compare-and-set against the revision read (or the
//! caller's `If-Match`). The answer carries the write's log index: the
//! caller waits until every node applied it, so an old secret or a removed
//! redirect URI is refused everywhere at once.
//!
//! A secret rotation makes a new secret (shown once). The old one stops
//! working with the write, or after the grace period the caller asked for
//! (at most [`MAX_SECRET_GRACE_SECS`]), so a fleet of servers can switch
//! without an outage, as Keycloak's and Auth0's secret rotation allow.

use jsonwebtoken::jwk::JwkSet;
use rsp_consensus::Consistency;
use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, KeyValue, Txn, TxnOp};
use zeroize::Zeroizing;

use super::{
    Client, ClientError, ClientService, NewClient, SECRET_HASH_LABEL, check_algs, client_key,
    random_token, valid_client_id,
};
use crate::users::Written;

/// Client records, listed in `client_id` order.
pub const CLIENT_LISTING_PREFIX: &[u8] = b"client/";

/// The longest grace period an old secret may be given (seven days).
pub const MAX_SECRET_GRACE_SECS: u64 = 7 * 24 * 3600;

const ATTEMPTS: usize = 5;

/// Fields to change; an absent field stays as it is. `client_id` and the
/// kind of credential (secret or not) cannot change.
#[derive(Default)]
pub struct ClientPatch {
    pub client_name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub require_consent: Option<bool>,
    pub jwks: Option<JwkSet>,
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_signed_response_alg: Option<String>,
    pub refresh_token_absolute_lifetime_secs: Option<u64>,
    pub access_token_lifetime_secs: Option<u64>,
    pub id_token_lifetime_secs: Option<u64>,
}

impl ClientPatch {
    /// `client` with this patch applied, checked as a registration.
    pub fn apply(&self, client: &Client) -> Result<Client, ClientError> {
        let merged = NewClient {
            client_id: Some(client.client_id.clone()),
            client_name: self
                .client_name
                .clone()
                .or_else(|| client.client_name.clone()),
            redirect_uris: self
                .redirect_uris
                .clone()
                .unwrap_or_else(|| client.redirect_uris.clone()),
            post_logout_redirect_uris: self
                .post_logout_redirect_uris
                .clone()
                .unwrap_or_else(|| client.post_logout_redirect_uris.clone()),
            grant_types: self
                .grant_types
                .clone()
                .unwrap_or_else(|| client.grant_types.clone()),
            token_endpoint_auth_method: self
                .token_endpoint_auth_method
                .clone()
                .unwrap_or_else(|| client.token_endpoint_auth_method.name().to_string()),
            scopes: self.scopes.clone().unwrap_or_else(|| client.scopes.clone()),
            require_consent: Some(self.require_consent.unwrap_or(client.require_consent)),
            jwks: self.jwks.clone().or_else(|| client.jwks.clone()),
            id_token_signed_response_alg: Some(
                self.id_token_signed_response_alg
                    .clone()
                    .unwrap_or_else(|| client.id_token_signed_response_alg.name().to_string()),
            ),
            access_token_signed_response_alg: self
                .access_token_signed_response_alg
                .clone()
                .or_else(|| {
                    client
                        .access_token_signed_response_alg
                        .map(|a| a.name().to_string())
                }),
            refresh_token_absolute_lifetime_secs: self
                .refresh_token_absolute_lifetime_secs
                .or(client.refresh_token_absolute_lifetime_secs),
            access_token_lifetime_secs: self
                .access_token_lifetime_secs
                .or(client.access_token_lifetime_secs),
            id_token_lifetime_secs: self
                .id_token_lifetime_secs
                .or(client.id_token_lifetime_secs),
        };
        let checked = merged.check()?;
        if checked.method.uses_secret() != client.token_endpoint_auth_method.uses_secret() {
            return Err(ClientError::Invalid(
                "token_endpoint_auth_method cannot change between a secret-based method and none or private_key_jwt; register a new client".into(),
            ));
        }
        Ok(Client {
            client_id: client.client_id.clone(),
            client_name: merged.client_name,
            secret_hash: client.secret_hash.clone(),
            previous_secret_hash: client.previous_secret_hash.clone(),
            previous_secret_expires_ms: client.previous_secret_expires_ms,
            redirect_uris: merged.redirect_uris,
            post_logout_redirect_uris: merged.post_logout_redirect_uris,
            grant_types: merged.grant_types,
            token_endpoint_auth_method: checked.method,
            scopes: merged.scopes,
            require_consent: merged.require_consent.unwrap_or(client.require_consent),
            jwks: merged.jwks,
            id_token_signed_response_alg: checked.id_token_alg,
            access_token_signed_response_alg: checked.access_token_alg,
            refresh_token_absolute_lifetime_secs: merged.refresh_token_absolute_lifetime_secs,
            access_token_lifetime_secs: merged.access_token_lifetime_secs,
            id_token_lifetime_secs: merged.id_token_lifetime_secs,
            created_at_ms: client.created_at_ms,
        })
    }
}

fn parse(kv: &KeyValue) -> Result<Client, ClientError> {
    serde_json::from_slice(&kv.value).map_err(|e| ClientError::Corrupt(e.to_string()))
}

impl ClientService {
    /// The client read with `consistency`, with the revision of its record.
    pub async fn get_versioned(
        &self,
        tenant: &str,
        client_id: &str,
        consistency: Consistency,
    ) -> Result<(Client, u64), ClientError> {
        if !valid_client_id(client_id) {
            return Err(ClientError::NotFound);
        }
        let (kv, _) = self
            .consensus
            .get(&client_key(tenant, client_id), consistency)
            .await?;
        let kv = kv.ok_or(ClientError::NotFound)?;
        Ok((parse(&kv)?, kv.mod_revision))
    }

    /// Read linearizably, let `change` make the new record (or refuse), and
    /// write it (or delete the client, when `change` answers `None`) if the
    /// record is still as read, and at `expected` when given.
    async fn modify(
        &self,
        tenant: &str,
        client_id: &str,
        expected: Option<u64>,
        change: impl Fn(&Client) -> Result<Option<Client>, ClientError>,
    ) -> Result<Written<Client>, ClientError> {
        if !valid_client_id(client_id) {
            return Err(ClientError::NotFound);
        }
        let key = client_key(tenant, client_id);
        for _ in 0..ATTEMPTS {
            let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
            let kv = kv.ok_or(ClientError::NotFound)?;
            if expected.is_some_and(|e| e != kv.mod_revision) {
                return Err(ClientError::Changed);
            }
            let current = parse(&kv)?;
            let (op, value) = match change(&current)? {
                Some(new) => (
                    TxnOp::Put {
                        key: key.clone(),
                        value: serde_json::to_vec(&new)
                            .map_err(|e| ClientError::Corrupt(e.to_string()))?,
                        ttl_ms: None,
                    },
                    new,
                ),
                None => (TxnOp::Delete { key: key.clone() }, current),
            };
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                }],
                success: vec![op],
                failure: vec![],
            };
            let (resp, index) = self.consensus.txn_indexed(txn).await?;
            if resp.succeeded {
                return Ok(Written {
                    value,
                    revision: resp.revision,
                    index,
                });
            }
            if expected.is_some() {
                return Err(ClientError::Changed);
            }
        }
        Err(ClientError::Busy)
    }

    /// Change a client's registration.
    pub async fn update(
        &self,
        tenant: &str,
        client_id: &str,
        patch: &ClientPatch,
        expected: Option<u64>,
    ) -> Result<Written<Client>, ClientError> {
        let settings = self.settings(tenant).await?;
        self.modify(tenant, client_id, expected, |c| {
            let next = patch.apply(c)?;
            check_algs(&settings, &next)?;
            Ok(Some(next))
        })
        .await
    }

    /// Remove a client; its secret, codes and refresh tokens stop working
    /// (each is checked against the client record).
    pub async fn delete(
        &self,
        tenant: &str,
        client_id: &str,
        expected: Option<u64>,
    ) -> Result<Written<Client>, ClientError> {
        self.modify(tenant, client_id, expected, |_| Ok(None)).await
    }

    /// A new secret for a secret-based client, shown once. The old one is
    /// accepted for `grace_secs` more (0: refused with this write).
    pub async fn rotate_secret(
        &self,
        tenant: &str,
        client_id: &str,
        grace_secs: u64,
        now_ms: u64,
        expected: Option<u64>,
    ) -> Result<(Zeroizing<String>, Written<Client>), ClientError> {
        if grace_secs > MAX_SECRET_GRACE_SECS {
            return Err(ClientError::Invalid(format!(
                "grace_period_secs must be at most {MAX_SECRET_GRACE_SECS} (seven days)"
            )));
        }
        let secret = Zeroizing::new(random_token(32));
        let hash = self.kek.derive(SECRET_HASH_LABEL)?.hash(secret.as_bytes());
        let written = self
            .modify(tenant, client_id, expected, |c| {
                if !c.token_endpoint_auth_method.uses_secret() {
                    return Err(ClientError::Invalid(
                        "this client authenticates without a secret (none or private_key_jwt)"
                            .into(),
                    ));
                }
                let mut new = c.clone();
                new.previous_secret_hash =
                    (grace_secs > 0).then(|| c.secret_hash.clone()).flatten();
                new.previous_secret_expires_ms = new
                    .previous_secret_hash
                    .as_ref()
                    .map(|_| now_ms + grace_secs * 1000);
                new.secret_hash = Some(hash.clone());
                Ok(Some(new))
            })
            .await?;
        Ok((secret, written))
    }
}
