//! OAuth clients of a tenant. Secrets are 256-bit random values shown once
//! and stored as a keyed hash (HMAC-SHA256 under a KEK-derived key): they are
//! random, so a slow password hash would add nothing but cap the token
//! endpoint at tens of requests per second.
//!
//! Records (tenant keyspace): `client/<client_id>` -> [`Client`] (JSON).
//!
//! Every tenant also has one client that is never stored: the web
//! console's ([`CONSOLE_CLIENT_ID`], [`console_client`]), which the
//! lookups of the authorization, token and logout endpoints answer and no
//! registration may take.

use std::collections::BTreeSet;

use jsonwebtoken::jwk::JwkSet;
use rsp_consensus::kv::{Key, Txn};
use rsp_consensus::{Consensus, ConsensusError, Consistency};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use std::sync::Arc;

use crate::crypto::{CryptoError, KekCell, random_token};
use crate::keys::SigningAlg;
use crate::miss_gate::{MissGate, MissRefused};
use crate::tenants::TenantSettings;
use rsp_consensus::kv::tenant_keyspace;

mod lifecycle;

pub use lifecycle::{CLIENT_LISTING_PREFIX, ClientPatch, MAX_SECRET_GRACE_SECS};

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_TYPES: [&str; 4] = [
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_REFRESH_TOKEN,
    GRANT_DEVICE_CODE,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub const ALL: [&'static str; 4] = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            "private_key_jwt" => Some(AuthMethod::PrivateKeyJwt),
            "none" => Some(AuthMethod::None),
            _ => None,
        }
    }

    /// The registration name (`client_secret_basic`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }

    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    #[serde(default)]
    pub client_name: Option<String>,
    /// Keyed hash of the secret, for the secret-based methods.
    #[serde(default)]
    pub secret_hash: Option<String>,
    /// The secret before the last rotation, accepted until
    /// `previous_secret_expires_ms` (a grace period the rotation asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_ms: Option<u64>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    /// Scopes the client may ask for (besides `openid`); empty: the standard ones.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub require_consent: bool,
    /// Public keys for `private_key_jwt`.
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    #[serde(default = "default_alg")]
    pub id_token_signed_response_alg: SigningAlg,
    /// The algorithm of the client's access tokens (Keycloak's
    /// `access.token.signed.response.alg`); unset: the ID token's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_signed_response_alg: Option<SigningAlg>,
    /// How long a refresh-token family of this client may be renewed,
    /// from the grant that opened it (Keycloak's "Client Session Max");
    /// unset: the provider's default (30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_absolute_lifetime_secs: Option<u64>,
    /// This client's access-token lifetime; unset: the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime_secs: Option<u64>,
    /// This client's ID-token lifetime; unset: the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_lifetime_secs: Option<u64>,
    pub created_at_ms: u64,
}

/// The longest `refresh_token_absolute_lifetime_secs` a client may ask for
/// (ten years).
pub const MAX_REFRESH_ABSOLUTE_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

fn default_alg() -> SigningAlg {
    SigningAlg::ES256
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("grant_types", &self.grant_types)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == AuthMethod::None
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// What the client's access tokens are signed with.
    pub fn access_token_alg(&self) -> SigningAlg {
        self.access_token_signed_response_alg
            .unwrap_or(self.id_token_signed_response_alg)
    }

    /// How long this client's refresh-token families may be renewed, in
    /// milliseconds: its own setting, or `default`.
    pub fn refresh_absolute_lifetime_ms(&self, default: std::time::Duration) -> u64 {
        match self.refresh_token_absolute_lifetime_secs {
            Some(secs) => secs.saturating_mul(1000),
            None => default.as_millis() as u64,
        }
    }

    /// Exact, case-sensitive match against a registered redirect URI.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }
}

pub struct NewClient {
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub scopes: Vec<String>,
    /// Unset: the tenant's `consent_required_by_default`.
    pub require_consent: Option<bool>,
    pub jwks: Option<JwkSet>,
    pub id_token_signed_response_alg: Option<String>,
    /// Unset: access tokens are signed like the client's ID tokens.
    pub access_token_signed_response_alg: Option<String>,
    /// Unset: the provider's default absolute refresh lifetime.
    pub refresh_token_absolute_lifetime_secs: Option<u64>,
    /// Unset: the tenant's access-token lifetime.
    pub access_token_lifetime_secs: Option<u64>,
    /// Unset: the tenant's ID-token lifetime.
    pub id_token_lifetime_secs: Option<u64>,
}

/// What a registration settles, once checked.
pub struct CheckedClient {
    pub method: AuthMethod,
    pub id_token_alg: SigningAlg,
    pub access_token_alg: Option<SigningAlg>,
}

impl NewClient {
    /// What [`ClientService::create`] checks before it makes a secret or
    /// writes: every field's rule and how they go together. A missing
    /// `client_id` is made up afterwards (valid by construction).
    pub fn check(&self) -> Result<CheckedClient, ClientError> {
        let invalid = |m: &str| ClientError::Invalid(m.to_string());
        let method = AuthMethod::parse(&self.token_endpoint_auth_method).ok_or_else(|| {
            invalid("token_endpoint_auth_method must be client_secret_basic, client_secret_post, private_key_jwt or none")
        })?;
        if self
            .client_id
            .as_deref()
            .is_some_and(|id| !valid_client_id(id))
        {
            return Err(invalid(
                "client_id is 1 to 128 characters of A-Z a-z 0-9 - _ . :",
            ));
        }
        if self.client_id.as_deref() == Some(CONSOLE_CLIENT_ID) {
            return Err(invalid(
                "client_id `rsp-admin-console` is reserved for the console's built-in client",
            ));
        }
        let grants: BTreeSet<&str> = self.grant_types.iter().map(String::as_str).collect();
        if grants.is_empty() {
            return Err(invalid("grant_types must name at least one grant"));
        }
        if let Some(g) = grants.iter().find(|g| !GRANT_TYPES.contains(g)) {
            return Err(ClientError::Invalid(format!(
                "unsupported grant type `{g}`"
            )));
        }
        if method == AuthMethod::None && grants.contains(GRANT_CLIENT_CREDENTIALS) {
            return Err(invalid(
                "a public client (auth method none) cannot use client_credentials",
            ));
        }
        if grants.contains(GRANT_AUTHORIZATION_CODE) && self.redirect_uris.is_empty() {
            return Err(invalid(
                "authorization_code needs at least one redirect_uri",
            ));
        }
        if let Some(bad) = self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
            .find(|u| !valid_redirect_uri(u))
        {
            return Err(ClientError::Invalid(format!(
                "redirect URI `{bad}` must be absolute without a fragment, https (http only on a loopback host) or a private-use scheme"
            )));
        }
        if method == AuthMethod::PrivateKeyJwt
            && self.jwks.as_ref().is_none_or(|j| j.keys.is_empty())
        {
            return Err(invalid(
                "private_key_jwt needs the client's public keys in `jwks`",
            ));
        }
        let parse_alg = |field: &str, value: Option<&str>| match value {
            None => Ok(None),
            Some(a) => SigningAlg::parse(a)
                .map(Some)
                .ok_or_else(|| invalid(&format!("{field} must be ES256, RS256 or EdDSA"))),
        };
        let id_token_alg = parse_alg(
            "id_token_signed_response_alg",
            self.id_token_signed_response_alg.as_deref(),
        )?
        .unwrap_or(SigningAlg::ES256);
        let access_token_alg = parse_alg(
            "access_token_signed_response_alg",
            self.access_token_signed_response_alg.as_deref(),
        )?;
        if self
            .refresh_token_absolute_lifetime_secs
            .is_some_and(|s| s == 0 || s > MAX_REFRESH_ABSOLUTE_LIFETIME_SECS)
        {
            return Err(invalid(
                "refresh_token_absolute_lifetime_secs must be at least 1 and at most 315360000 (ten years)",
            ));
        }
        for (name, value, (lo, hi)) in [
            (
                "access_token_lifetime_secs",
                self.access_token_lifetime_secs,
                crate::tenants::settings::ACCESS_TOKEN_LIFETIME,
            ),
            (
                "id_token_lifetime_secs",
                self.id_token_lifetime_secs,
                crate::tenants::settings::ID_TOKEN_LIFETIME,
            ),
        ] {
            if value.is_some_and(|v| !(lo..=hi).contains(&v)) {
                return Err(ClientError::Invalid(format!(
                    "{name} must be at least {lo} and at most {hi}"
                )));
            }
        }
        if self.scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            return Err(invalid("scopes are single words"));
        }
        Ok(CheckedClient {
            method,
            id_token_alg,
            access_token_alg,
        })
    }
}

/// The web console's built-in client, in every tenant: a tenant
/// administrator signs in to `/admin/` through it (as Keycloak's
/// `security-admin-console` in every realm). Never stored or listed; its
/// id may not be registered.
pub const CONSOLE_CLIENT_ID: &str = "rsp-admin-console";

/// Where the console's client is sent back: exactly
/// `{public_url}/admin/t/{tenant}/callback`.
pub fn console_redirect_uri(public_url: &str, tenant: &str) -> String {
    format!(
        "{}/admin/t/{tenant}/callback",
        public_url.trim_end_matches('/')
    )
}

/// The console's client of `tenant`: public (auth method `none`, so PKCE is
/// required), the authorization-code grant only (no refresh tokens), its
/// one redirect URI, scopes `openid rsp:admin`, no consent page (the
/// console is the cluster's own, not a third party).
pub fn console_client(public_url: &str, tenant: &str) -> Client {
    Client {
        client_id: CONSOLE_CLIENT_ID.to_string(),
        client_name: Some("rsp console".to_string()),
        secret_hash: None,
        previous_secret_hash: None,
        previous_secret_expires_ms: None,
        redirect_uris: vec![console_redirect_uri(public_url, tenant)],
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GRANT_AUTHORIZATION_CODE.to_string()],
        token_endpoint_auth_method: AuthMethod::None,
        scopes: vec![crate::oauth::claims::ADMIN_SCOPE.to_string()],
        require_consent: false,
        jwks: None,
        id_token_signed_response_alg: SigningAlg::ES256,
        access_token_signed_response_alg: None,
        refresh_token_absolute_lifetime_secs: None,
        access_token_lifetime_secs: None,
        id_token_lifetime_secs: None,
        created_at_ms: 0,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("client `{0}` already exists")]
    Exists(String),
    #[error("no such client")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] MissRefused),
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("stored client record is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the client changed since that version was read")]
    Changed,
    #[error("the client was changed by others meanwhile; try again")]
    Busy,
    #[error("the tenant holds its maximum of {0} clients (settings.max_clients)")]
    Quota(u64),
}

/// Refuse a registration whose signing algorithms the tenant does not sign
/// with.
pub(crate) fn check_algs(settings: &TenantSettings, client: &Client) -> Result<(), ClientError> {
    for (field, alg) in [
        (
            "id_token_signed_response_alg",
            Some(client.id_token_signed_response_alg),
        ),
        (
            "access_token_signed_response_alg",
            client.access_token_signed_response_alg,
        ),
    ] {
        if let Some(alg) = alg
            && !settings.allows_alg(alg)
        {
            let allowed: Vec<&str> = settings
                .algorithms()
                .into_iter()
                .map(SigningAlg::name)
                .collect();
            return Err(ClientError::Invalid(format!(
                "{field} {} is not one of the tenant's signing algorithms ({})",
                alg.name(),
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// A redirect URI a client may register: absolute, no fragment; `https`, or
/// `http` on a loopback host (RFC 8252), or a private-use scheme with a dot
/// (`com.example.app:/cb`).
pub fn valid_redirect_uri(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() || uri.len() > 2000 {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")),
        scheme => scheme.contains('.'),
    }
}

fn valid_client_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn client_key(tenant: &str, id: &str) -> Key {
    Key::new(tenant_keyspace(tenant), format!("client/{id}").into_bytes())
}

#[derive(Clone)]
pub struct ClientService {
    consensus: Consensus,
    kek: Arc<KekCell>,
    /// Where the console's client is sent back to ([`console_client`]).
    public_url: Arc<str>,
}

/// HKDF label of the key client secrets are hashed under.
const SECRET_HASH_LABEL: &str = "rsp client secrets v1";

impl ClientService {
    /// The tenant's settings, as this node has applied them.
    async fn settings(&self, tenant: &str) -> Result<TenantSettings, ClientError> {
        crate::tenants::TenantService::new(self.consensus.clone())
            .settings(tenant)
            .await
            .map_err(|e| match e {
                crate::tenants::TenantError::Consensus(c) => ClientError::Consensus(c),
                other => ClientError::Corrupt(other.to_string()),
            })
    }

    pub fn new(consensus: Consensus, kek: Arc<KekCell>, public_url: &str) -> Self {
        ClientService {
            consensus,
            kek,
            public_url: Arc::from(public_url.trim_end_matches('/')),
        }
    }

    /// Register a client; returns it and its secret (shown once) for the
    /// secret-based methods.
    pub async fn create(
        &self,
        tenant: &str,
        new: NewClient,
        now_ms: u64,
    ) -> Result<(Client, Option<Zeroizing<String>>), ClientError> {
        let mut checked = new.check()?;
        let settings = self.settings(tenant).await?;
        if new.id_token_signed_response_alg.is_none() {
            checked.id_token_alg = settings.default_alg();
        }
        if let Some(max) = settings.max_clients {
            let (held, _) = self
                .consensus
                .range(
                    &tenant_keyspace(tenant),
                    CLIENT_LISTING_PREFIX,
                    max as usize,
                    Consistency::Linearizable,
                )
                .await?;
            if held.len() as u64 >= max {
                return Err(ClientError::Quota(max));
            }
        }
        let require_consent = new
            .require_consent
            .unwrap_or(settings.consent_required_by_default.unwrap_or(false));
        let method = checked.method;
        let client_id = new.client_id.unwrap_or_else(|| random_token(16));
        let secret = method
            .uses_secret()
            .then(|| Zeroizing::new(random_token(32)));
        let secret_hash = match &secret {
            Some(s) => Some(self.kek.derive(SECRET_HASH_LABEL)?.hash(s.as_bytes())),
            None => None,
        };
        let client = Client {
            client_id: client_id.clone(),
            client_name: new.client_name,
            secret_hash,
            previous_secret_hash: None,
            previous_secret_expires_ms: None,
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: new.post_logout_redirect_uris,
            grant_types: new.grant_types,
            token_endpoint_auth_method: method,
            scopes: new.scopes,
            require_consent,
            jwks: new.jwks,
            id_token_signed_response_alg: checked.id_token_alg,
            access_token_signed_response_alg: checked.access_token_alg,
            refresh_token_absolute_lifetime_secs: new.refresh_token_absolute_lifetime_secs,
            access_token_lifetime_secs: new.access_token_lifetime_secs,
            id_token_lifetime_secs: new.id_token_lifetime_secs,
            created_at_ms: now_ms,
        };
        check_algs(&settings, &client)?;
        let key = client_key(tenant, &client_id);
        let value = serde_json::to_vec(&client).map_err(|e| ClientError::Corrupt(e.to_string()))?;
        let txn = Txn::put_if_absent(key, value, None);
        if self.consensus.txn(txn).await?.succeeded {
            Ok((client, secret))
        } else {
            Err(ClientError::Exists(client_id))
        }
    }

    /// A client by id as the protocol endpoints see it: the stored one, or
    /// the console's built-in client ([`console_client`]).
    pub async fn get(&self, tenant: &str, client_id: &str) -> Result<Client, ClientError> {
        if client_id == CONSOLE_CLIENT_ID {
            // Signed with the tenant's first algorithm, which it always has.
            let mut client = console_client(&self.public_url, tenant);
            client.id_token_signed_response_alg = self.settings(tenant).await?.default_alg();
            return Ok(client);
        }
        if !valid_client_id(client_id) {
            return Err(ClientError::NotFound);
        }
        let (kv, _) = self
            .consensus
            .get(&client_key(tenant, client_id), Consistency::Local)
            .await?;
        let kv = kv.ok_or(ClientError::NotFound)?;
        serde_json::from_slice(&kv.value).map_err(|e| ClientError::Corrupt(e.to_string()))
    }

    /// A client by id, "not found" only after a linearizable read (it may
    /// have been registered through another node a moment ago). `gate` is
    /// asked before that read, and only on a local miss; a refusal is
    /// [`ClientError::Refused`] and reads nothing.
    pub async fn find(
        &self,
        tenant: &str,
        client_id: &str,
        gate: &dyn MissGate,
    ) -> Result<Client, ClientError> {
        match self.get(tenant, client_id).await {
            Err(ClientError::NotFound) if valid_client_id(client_id) => {
                MissRefused::check(gate)?;
                self.consensus.linearizable_barrier().await?;
                self.get(tenant, client_id).await
            }
            other => other,
        }
    }

    /// Whether `secret` is this client's secret at `now_ms`: the current
    /// one, or the one before the last rotation during its grace period
    /// (constant time).
    pub fn secret_matches(&self, client: &Client, secret: &str, now_ms: u64) -> bool {
        let Ok(key) = self.kek.derive(SECRET_HASH_LABEL) else {
            return false;
        };
        let current = client
            .secret_hash
            .as_ref()
            .is_some_and(|stored| key.verify(secret.as_bytes(), stored));
        let previous = match (
            &client.previous_secret_hash,
            client.previous_secret_expires_ms,
        ) {
            (Some(stored), Some(until)) => key.verify(secret.as_bytes(), stored) && now_ms < until,
            _ => false,
        };
        current | previous
    }
}

#[cfg(test)]
mod tests {
    use super::{
        AuthMethod, CONSOLE_CLIENT_ID, Client, ClientError, GRANT_AUTHORIZATION_CODE, NewClient,
        console_client, valid_redirect_uri,
    };

    #[test]
    fn the_console_client_is_public_code_only_and_returns_to_its_own_tenant() {
        let c = console_client("https://id.example.com/", "acme");
        assert_eq!(c.client_id, CONSOLE_CLIENT_ID);
        assert_eq!(c.token_endpoint_auth_method, AuthMethod::None);
        assert!(c.is_public());
        assert_eq!(c.grant_types, [GRANT_AUTHORIZATION_CODE]);
        assert_eq!(
            c.redirect_uris,
            ["https://id.example.com/admin/t/acme/callback"]
        );
        assert!(!c.has_redirect_uri("https://id.example.com/admin/t/other/callback"));
        assert_eq!(c.scopes, ["rsp:admin"]);
        assert!(!c.require_consent);
        assert!(c.secret_hash.is_none());
    }

    #[test]
    fn the_console_client_id_cannot_be_registered() {
        let new = NewClient {
            client_id: Some(CONSOLE_CLIENT_ID.to_string()),
            client_name: None,
            redirect_uris: vec!["https://evil.example.com/cb".into()],
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec![GRANT_AUTHORIZATION_CODE.into()],
            token_endpoint_auth_method: "none".into(),
            scopes: Vec::new(),
            require_consent: None,
            jwks: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
            refresh_token_absolute_lifetime_secs: None,
            access_token_lifetime_secs: None,
            id_token_lifetime_secs: None,
        };
        assert!(matches!(new.check(), Err(ClientError::Invalid(m)) if m.contains("reserved")));
    }

    #[test]
    fn a_client_stored_without_an_absolute_refresh_lifetime_uses_the_default() {
        let old = serde_json::json!({
            "client_id": "web", "redirect_uris": [], "grant_types": ["refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic", "created_at_ms": 0,
        });
        let client: Client = serde_json::from_value(old).expect("old record");
        let default = std::time::Duration::from_secs(30 * 24 * 3600);
        assert_eq!(
            client.refresh_absolute_lifetime_ms(default),
            30 * 24 * 3600 * 1000
        );
    }

    #[test]
    fn redirect_uris_follow_rfc_8252_and_refuse_fragments() {
        assert!(valid_redirect_uri("https://app.example.com/cb"));
        assert!(valid_redirect_uri("http://127.0.0.1:8089/callback"));
        assert!(valid_redirect_uri("http://localhost/cb"));
        assert!(valid_redirect_uri("com.example.app:/oauth"));
        assert!(!valid_redirect_uri("http://app.example.com/cb"));
        assert!(!valid_redirect_uri("https://app.example.com/cb#frag"));
        assert!(!valid_redirect_uri("/relative"));
        assert!(!valid_redirect_uri("javascript:alert(1)"));
    }
}
