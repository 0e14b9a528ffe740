//! The device authorization grant (RFC 8628).
//!
//! - `POST {issuer}/device_authorization` (its handler is in `rsp-api`) starts a
//!   request: a random device code for the device, an 8-letter user code
//!   (`BCDFGHJKLMNPQRSTVWXZ`, shown `XXXX-XXXX`) for the person, valid 600 s,
//!   polled every 5 s.
//! - The browser side's verification page calls [`DeviceService::lookup`],
//!   then [`DeviceService::approve`] or [`DeviceService::deny`].
//! - The token endpoint polls with [`DeviceService::poll`]:
//!   `authorization_pending`, `slow_down` (and the interval grows by 5 s)
//!   when polled faster than the interval while pending, `access_denied`,
//!   `expired_token`, and the grant exactly once (a compare-and-swap that
//!   also opens the token family).
//!
//! Records (tenant keyspace): `device/<keyed hash of device code>` -> the
//! request, kept 10 minutes past its expiry so a late poll hears
//! `expired_token`; `device_user/<keyed hash of user code>` -> the device
//! record's hash, removed once the user decided.

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, KeyValue, OpResult, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use crate::clients::{Client, GRANT_DEVICE_CODE};
use crate::crypto::random_token;
use crate::oauth::claims::user_scope;
use crate::oauth::context::{OAuthContext, corrupt};
use crate::oauth::error::{OAuthError, OAuthErrorCode};
use crate::oauth::tokens::family::FamilyDraft;
use crate::oauth::tokens::{TokenService, UserGrant};
use rsp_consensus::kv::tenant_keyspace;

const DEVICE_LABEL: &str = "rsp device codes v1";
const USER_CODE_LABEL: &str = "rsp user codes v1";
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const SLOW_DOWN_STEP_SECS: u64 = 5;
const EXPIRED_GRACE_MS: u64 = 10 * 60 * 1000;

#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Status {
    Pending,
    Approved {
        user_id: String,
        auth_time: u64,
        amr: Vec<String>,
        acr: Option<String>,
    },
    Denied,
    Used,
}

#[derive(Clone, Serialize, Deserialize)]
struct DeviceRecord {
    client_id: String,
    scope: String,
    expires_at_ms: u64,
    interval_secs: u64,
    last_poll_ms: Option<u64>,
    status: Status,
}

/// What the verification page shows the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRequest {
    pub client_id: String,
    pub scope: String,
}

/// The answer of the device authorization endpoint (RFC 8628 section 3.2).
#[derive(Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// An approved request, consumed: the grant and the family opened for it.
#[derive(Debug)]
pub struct DeviceApproval {
    pub grant: UserGrant,
    pub family: FamilyDraft,
}

fn user_code() -> String {
    (0..8)
        .map(|_| USER_CODE_ALPHABET[rand::random_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect()
}

/// Upper-cased, without separators; `None` unless 8 letters of the alphabet.
fn normalize(user_code: &str) -> Option<String> {
    let code: String = user_code
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

fn error(code: OAuthErrorCode, description: &str) -> OAuthError {
    // RFC 8628 section 3.5: token-endpoint errors, all 400.
    OAuthError::new(code, description).with_status(400)
}

#[derive(Clone)]
pub struct DeviceService {
    ctx: OAuthContext,
    tokens: TokenService,
}

impl DeviceService {
    pub(crate) fn new(ctx: OAuthContext, tokens: TokenService) -> Self {
        DeviceService { ctx, tokens }
    }

    fn key(&self, tenant: &str, prefix: &str, hash: &str) -> Key {
        Key::new(
            tenant_keyspace(tenant),
            format!("{prefix}/{hash}").into_bytes(),
        )
    }

    fn put(&self, key: Key, record: &DeviceRecord) -> Result<TxnOp, OAuthError> {
        let ttl = (record.expires_at_ms + EXPIRED_GRACE_MS).saturating_sub(self.ctx.now_ms());
        Ok(TxnOp::Put {
            key,
            value: serde_json::to_vec(record).map_err(corrupt)?,
            ttl_ms: Some(ttl.max(1)),
        })
    }

    /// Start a device authorization request of an authenticated client for
    /// the `scope` it asked (its registered scopes when it asked none).
    pub async fn start(
        &self,
        tenant: &str,
        client: &Client,
        requested_scope: Option<&str>,
    ) -> Result<DeviceAuthorization, OAuthError> {
        if !client.allows_grant(GRANT_DEVICE_CODE) {
            return Err(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                "the client is not registered for the device flow",
            ));
        }
        let scope = user_scope(client, requested_scope)?;
        let client_id = &client.client_id;
        let cfg = &self.ctx.config;
        let device_code = random_token(32);
        let device_hash = self.ctx.hash(DEVICE_LABEL, &device_code)?;
        let record = DeviceRecord {
            client_id: client_id.to_string(),
            scope,
            expires_at_ms: self.ctx.now_ms() + cfg.device_ttl.as_millis() as u64,
            interval_secs: cfg.device_interval.as_secs(),
            last_poll_ms: None,
            status: Status::Pending,
        };
        // 20^8 user codes: a collision with a live one is rare; retry it.
        for _ in 0..5 {
            let code = user_code();
            let index = self.key(
                tenant,
                "device_user",
                &self.ctx.hash(USER_CODE_LABEL, &code)?,
            );
            let txn = Txn {
                compares: vec![Compare {
                    key: index.clone(),
                    target: CompareTarget::Exists(false),
                }],
                success: vec![
                    TxnOp::Put {
                        key: index,
                        value: device_hash.clone().into_bytes(),
                        ttl_ms: Some(cfg.device_ttl.as_millis() as u64),
                    },
                    self.put(self.key(tenant, "device", &device_hash), &record)?,
                ],
                failure: vec![],
            };
            if self.ctx.consensus.txn(txn).await?.succeeded {
                let shown = format!("{}-{}", &code[..4], &code[4..]);
                let verification_uri = format!("{}/device", self.ctx.issuer(tenant));
                return Ok(DeviceAuthorization {
                    device_code,
                    verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                    verification_uri,
                    user_code: shown,
                    expires_in: cfg.device_ttl.as_secs(),
                    interval: cfg.device_interval.as_secs(),
                });
            }
        }
        Err(OAuthError::server_error("no free user code after 5 tries"))
    }

    /// The device record a user code points at, if both still exist.
    async fn by_user_code(
        &self,
        tenant: &str,
        user_code: &str,
    ) -> Result<Option<(Key, Key, KeyValue)>, OAuthError> {
        let Some(code) = normalize(user_code) else {
            return Ok(None);
        };
        let index = self.key(
            tenant,
            "device_user",
            &self.ctx.hash(USER_CODE_LABEL, &code)?,
        );
        let Some(pointer) = self.ctx.get_confirmed(&index).await? else {
            return Ok(None);
        };
        let key = self.key(tenant, "device", &String::from_utf8_lossy(&pointer.value));
        Ok(self
            .ctx
            .get_confirmed(&key)
            .await?
            .map(|kv| (index, key, kv)))
    }

    /// The pending request behind `user_code` (any case, dash optional).
    pub async fn lookup(
        &self,
        tenant: &str,
        user_code: &str,
    ) -> Result<Option<DeviceRequest>, OAuthError> {
        let Some((_, _, kv)) = self.by_user_code(tenant, user_code).await? else {
            return Ok(None);
        };
        let rec: DeviceRecord = serde_json::from_slice(&kv.value).map_err(corrupt)?;
        let live = matches!(rec.status, Status::Pending) && self.ctx.now_ms() < rec.expires_at_ms;
        Ok(live.then_some(DeviceRequest {
            client_id: rec.client_id,
            scope: rec.scope,
        }))
    }

    /// The person approved the request behind `user_code` as `user_id`.
    pub async fn approve(
        &self,
        tenant: &str,
        user_code: &str,
        user_id: &str,
        auth_time: u64,
        amr: Vec<String>,
        acr: Option<String>,
    ) -> Result<DeviceRequest, OAuthError> {
        let decision = Status::Approved {
            user_id: user_id.to_string(),
            auth_time,
            amr,
            acr,
        };
        self.decide(tenant, user_code, decision).await
    }

    /// The person refused the request behind `user_code`.
    pub async fn deny(&self, tenant: &str, user_code: &str) -> Result<(), OAuthError> {
        self.decide(tenant, user_code, Status::Denied)
            .await
            .map(|_| ())
    }

    async fn decide(
        &self,
        tenant: &str,
        user_code: &str,
        decision: Status,
    ) -> Result<DeviceRequest, OAuthError> {
        let unknown =
            || OAuthError::invalid_request("the code is unknown, expired or already used");
        let Some((index, key, mut kv)) = self.by_user_code(tenant, user_code).await? else {
            return Err(unknown());
        };
        // Polls update the record too: retry on their compare-and-swaps.
        for _ in 0..5 {
            let mut rec: DeviceRecord = serde_json::from_slice(&kv.value).map_err(corrupt)?;
            if !matches!(rec.status, Status::Pending) || self.ctx.now_ms() >= rec.expires_at_ms {
                return Err(unknown());
            }
            rec.status = decision.clone();
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                }],
                success: vec![
                    self.put(key.clone(), &rec)?,
                    TxnOp::Delete { key: index.clone() },
                ],
                failure: vec![TxnOp::Get { key: key.clone() }],
            };
            let resp = self.ctx.consensus.txn(txn).await?;
            if resp.succeeded {
                return Ok(DeviceRequest {
                    client_id: rec.client_id,
                    scope: rec.scope,
                });
            }
            match resp.results.into_iter().next() {
                Some(OpResult::Get { kv: Some(now) }) => kv = now,
                _ => return Err(unknown()),
            }
        }
        Err(OAuthError::unavailable("the request is busy; retry"))
    }

    /// One poll of the token endpoint by `client` with `device_code`.
    pub async fn poll(
        &self,
        tenant: &str,
        client: &Client,
        device_code: &str,
    ) -> Result<DeviceApproval, OAuthError> {
        let invalid = || OAuthError::invalid_grant("the device_code is invalid or was used");
        let key = self.key(tenant, "device", &self.ctx.hash(DEVICE_LABEL, device_code)?);
        let Some(mut kv) = self.ctx.get_confirmed(&key).await? else {
            return Err(invalid());
        };
        let lifetimes = self.tokens.lifetimes(tenant, client).await?;
        for _ in 0..3 {
            let mut rec: DeviceRecord = serde_json::from_slice(&kv.value).map_err(corrupt)?;
            let now = self.ctx.now_ms();
            if rec.client_id != client.client_id {
                return Err(invalid());
            }
            if now >= rec.expires_at_ms {
                return Err(error(OAuthErrorCode::ExpiredToken, "the request expired"));
            }
            let mut approval = None;
            match &rec.status {
                Status::Denied => {
                    return Err(error(OAuthErrorCode::AccessDenied, "the user refused"));
                }
                Status::Used => return Err(invalid()),
                Status::Pending => {
                    if rec
                        .last_poll_ms
                        .is_some_and(|t| now < t + rec.interval_secs * 1000)
                    {
                        rec.interval_secs += SLOW_DOWN_STEP_SECS;
                        rec.last_poll_ms = Some(now);
                        self.cas(&key, &kv, &rec, vec![]).await?;
                        return Err(error(OAuthErrorCode::SlowDown, "poll less often"));
                    }
                    rec.last_poll_ms = Some(now);
                }
                Status::Approved {
                    user_id,
                    auth_time,
                    amr,
                    acr,
                } => {
                    let grant = UserGrant {
                        user_id: user_id.clone(),
                        scope: rec.scope.clone(),
                        auth_time: *auth_time,
                        acr: acr.clone(),
                        amr: amr.clone(),
                        sid: None,
                    };
                    let family = self
                        .tokens
                        .draft_family(tenant, client, &grant, &lifetimes)?;
                    rec.status = Status::Used;
                    approval = Some(DeviceApproval { grant, family });
                }
            }
            let extra = approval
                .as_ref()
                .map(|a| a.family.ops.clone())
                .unwrap_or_default();
            match self.cas(&key, &kv, &rec, extra).await? {
                None => {
                    return match approval {
                        Some(a) => Ok(a),
                        None => Err(error(
                            OAuthErrorCode::AuthorizationPending,
                            "the user has not decided yet",
                        )),
                    };
                }
                // Someone else changed the record meanwhile: look again.
                Some(now) => kv = now,
            }
        }
        Err(error(OAuthErrorCode::SlowDown, "poll less often"))
    }

    /// Replace the record if unchanged since `seen`; `Some(current)` if it
    /// changed (an error if it is gone).
    async fn cas(
        &self,
        key: &Key,
        seen: &KeyValue,
        rec: &DeviceRecord,
        extra: Vec<TxnOp>,
    ) -> Result<Option<KeyValue>, OAuthError> {
        let mut success = vec![self.put(key.clone(), rec)?];
        success.extend(extra);
        let txn = Txn {
            compares: vec![Compare {
                key: key.clone(),
                target: CompareTarget::ModRevision(CmpOp::Eq, seen.mod_revision),
            }],
            success,
            failure: vec![TxnOp::Get { key: key.clone() }],
        };
        let resp = self.ctx.consensus.txn(txn).await?;
        if resp.succeeded {
            return Ok(None);
        }
        match resp.results.into_iter().next() {
            Some(OpResult::Get { kv: Some(now) }) => Ok(Some(now)),
            _ => Err(OAuthError::invalid_grant(
                "the device_code is invalid or was used",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_alphabet_and_normalize() {
        for _ in 0..100 {
            let c = user_code();
            assert_eq!(normalize(&c).as_deref(), Some(c.as_str()));
        }
        assert_eq!(normalize("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize("BCDF GHJK").as_deref(), Some("BCDFGHJK"));
        assert!(
            normalize("ABCD-EFGH").is_none(),
            "vowels are not in the alphabet"
        );
        assert!(normalize("BCDF-GHJ").is_none());
    }
}
