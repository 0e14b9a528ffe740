//! Pushed authorization requests (RFC 9126).
//!
//! `POST {issuer}/par` (the handler here) authenticates the client, checks
//! the parameters exactly as the authorization endpoint will
//! ([`crate::oidc::request`]), stores them for 60 s and answers 201
//! `{"request_uri": "urn:ietf:params:oauth:request_uri:<random>",
//! "expires_in": 60}`. The authorization endpoint resolves the URI once,
//! with [`ParService::take`].
//!
//! Records (tenant keyspace): `par/<keyed hash of the random part>` ->
//! client id, parameters and expiry.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::identity::crypto::random_token;
use crate::oidc::client_auth::Public;
use crate::oidc::error::{OAuthError, OAuthResult};
use crate::oidc::http::{OAuthForm, authorization, json_no_store};
use crate::oidc::request::validate_authorization_request;
use crate::oidc::services::{Base, corrupt};
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;
use crate::tenants::tenant_keyspace;

pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
const PAR_LABEL: &str = "rsp pushed requests v1";
/// Client authentication parameters, not part of the authorization request.
const AUTH_PARAMS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

#[derive(Serialize, Deserialize)]
struct Pushed {
    client_id: String,
    params: BTreeMap<String, String>,
    expires_at_ms: u64,
}

#[derive(Clone)]
pub struct ParService {
    base: Base,
}

impl ParService {
    pub(crate) fn new(base: Base) -> Self {
        ParService { base }
    }

    fn key(&self, tenant: &str, random: &str) -> Result<Key, OAuthError> {
        let hash = self.base.hash(PAR_LABEL, random)?;
        Ok(Key::new(
            tenant_keyspace(tenant),
            format!("par/{hash}").into_bytes(),
        ))
    }

    /// Store validated parameters; returns the request URI and its
    /// lifetime in seconds.
    pub async fn push(
        &self,
        tenant: &str,
        client_id: &str,
        params: BTreeMap<String, String>,
    ) -> Result<(String, u64), OAuthError> {
        let ttl = self.base.config.par_ttl;
        let random = random_token(32);
        let record = Pushed {
            client_id: client_id.to_string(),
            params,
            expires_at_ms: crate::now_ms() + ttl.as_millis() as u64,
        };
        let txn = Txn::ops(vec![TxnOp::Put {
            key: self.key(tenant, &random)?,
            value: serde_json::to_vec(&record).map_err(corrupt)?,
            ttl_ms: Some(ttl.as_millis() as u64),
        }]);
        self.base.consensus.txn(txn).await?;
        Ok((format!("{REQUEST_URI_PREFIX}{random}"), ttl.as_secs()))
    }

    /// The parameters pushed as `request_uri` by `client_id`, once: `None`
    /// when unknown, expired, already taken or pushed by another client.
    pub async fn take(
        &self,
        tenant: &str,
        client_id: &str,
        request_uri: &str,
    ) -> Result<Option<BTreeMap<String, String>>, OAuthError> {
        let Some(random) = request_uri.strip_prefix(REQUEST_URI_PREFIX) else {
            return Ok(None);
        };
        let key = self.key(tenant, random)?;
        let Some(kv) = self.base.get_confirmed(&key).await? else {
            return Ok(None);
        };
        let record: Pushed = serde_json::from_slice(&kv.value).map_err(corrupt)?;
        if record.client_id != client_id || crate::now_ms() >= record.expires_at_ms {
            return Ok(None);
        }
        let txn = Txn {
            compares: vec![Compare {
                key: key.clone(),
                target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
            }],
            success: vec![TxnOp::Delete { key }],
            failure: vec![],
        };
        let taken = self.base.consensus.txn(txn).await?.succeeded;
        Ok(taken.then_some(record.params))
    }
}

/// `POST {issuer}/par` (RFC 9126 section 2).
pub async fn push(
    State(state): State<AppState>,
    t: TenantCtx,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> OAuthResult<Response> {
    let client = state
        .oidc
        .client_auth
        .authenticate(
            &t.id,
            authorization(&headers),
            &params,
            &t.endpoint("/par"),
            Public::Allowed,
        )
        .await?;
    let mut request = params.into_map();
    request.retain(|k, _| !AUTH_PARAMS.contains(&k.as_str()));
    validate_authorization_request(&client, &mut request)?;
    let (request_uri, expires_in) = state
        .oidc
        .par
        .push(&t.id, &client.client_id, request)
        .await?;
    Ok(json_no_store(
        StatusCode::CREATED,
        json!({"request_uri": request_uri, "expires_in": expires_in}),
    ))
}
