//! Pushed authorization requests (RFC 9126).
//!
//! `POST {issuer}/par` (its handler is in `rsp-api`) authenticates the client, checks
//! the parameters exactly as the authorization endpoint will
//! ([`crate::oauth::request`]), stores them for 60 s and answers 201
//! `{"request_uri": "urn:ietf:params:oauth:request_uri:<random>",
//! "expires_in": 60}`. The authorization endpoint resolves the URI once,
//! with [`ParService::take`].
//!
//! Records (tenant keyspace): `par/<keyed hash of the random part>` ->
//! client id, parameters and expiry.

use std::collections::BTreeMap;

use rsp_consensus::kv::{CmpOp, Compare, CompareTarget, Key, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use crate::clients::Client;
use crate::crypto::random_token;
use crate::oauth::context::{OAuthContext, corrupt};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::request::validate_authorization_request;
use rsp_consensus::kv::tenant_keyspace;

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
    ctx: OAuthContext,
}

impl ParService {
    pub(crate) fn new(ctx: OAuthContext) -> Self {
        ParService { ctx }
    }

    fn key(&self, tenant: &str, random: &str) -> Result<Key, OAuthError> {
        let hash = self.ctx.hash(PAR_LABEL, random)?;
        Ok(Key::new(
            tenant_keyspace(tenant),
            format!("par/{hash}").into_bytes(),
        ))
    }

    /// Check the parameters of an authenticated client's request as the
    /// authorization endpoint will, then store them (client authentication
    /// parameters left out); returns the request URI and its lifetime in
    /// seconds.
    pub async fn push(
        &self,
        tenant: &str,
        client: &Client,
        params: Params,
    ) -> Result<(String, u64), OAuthError> {
        let mut params = params.into_map();
        params.retain(|k, _| !AUTH_PARAMS.contains(&k.as_str()));
        validate_authorization_request(client, &mut params)?;
        let ttl = self.ctx.config.par_ttl;
        let random = random_token(32);
        let record = Pushed {
            client_id: client.client_id.clone(),
            params,
            expires_at_ms: self.ctx.now_ms() + ttl.as_millis() as u64,
        };
        let txn = Txn::ops(vec![TxnOp::Put {
            key: self.key(tenant, &random)?,
            value: serde_json::to_vec(&record).map_err(corrupt)?,
            ttl_ms: Some(ttl.as_millis() as u64),
        }]);
        self.ctx.consensus.txn(txn).await?;
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
        let Some(kv) = self.ctx.get_confirmed(&key).await? else {
            return Ok(None);
        };
        let record: Pushed = serde_json::from_slice(&kv.value).map_err(corrupt)?;
        if record.client_id != client_id || self.ctx.now_ms() >= record.expires_at_ms {
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
        let taken = self.ctx.consensus.txn(txn).await?.succeeded;
        Ok(taken.then_some(record.params))
    }
}
