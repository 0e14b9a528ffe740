//! Schemas of the answers the admin handlers build with `json!` (and of
//! the error bodies), for the OpenAPI document only: nothing serializes
//! these types. Each names the handler whose answer it describes; the
//! handler and its schema sit in one review when either changes.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Every admin error: a stable code and a human message.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// The stable code (see docs/admin-api.md), e.g. `tenant_not_found`.
    error: String,
    message: String,
}

/// The policy endpoints' errors: Cedar's diagnostics beside the code.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PolicyErrorBody {
    error: String,
    message: String,
    /// Cedar's diagnostics of a refused policy set, link or entity list.
    diagnostics: Option<Vec<Value>>,
}

/// A user as administrators see it (`users::view`): never the password
/// hash.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct UserView {
    id: String,
    username: String,
    email: Option<String>,
    email_verified: bool,
    /// Free-form; `"rsp_admin": true` makes the user a tenant admin.
    #[schema(value_type = Object)]
    attributes: Value,
    disabled: bool,
    created_at_ms: u64,
}

/// `POST .../users` (`accounts::create_user`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CreatedUser {
    id: String,
    username: String,
}

/// A client as administrators see it (`clients::view`): its registration,
/// never a secret.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ClientView {
    client_id: String,
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    grant_types: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or
    /// `none`.
    token_endpoint_auth_method: String,
    scopes: Vec<String>,
    require_consent: bool,
    /// The client's public keys (a JWK Set), for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    jwks: Option<Value>,
    /// `ES256`, `RS256` or `EdDSA`.
    id_token_signed_response_alg: String,
    access_token_signed_response_alg: Option<String>,
    refresh_token_absolute_lifetime_secs: Option<u64>,
    access_token_lifetime_secs: Option<u64>,
    id_token_lifetime_secs: Option<u64>,
    has_secret: bool,
    /// Until when the previous secret is still accepted (after a rotation
    /// with a grace period).
    previous_secret_expires_ms: Option<u64>,
    created_at_ms: u64,
}

/// `POST .../clients` (`accounts::create_client`): the secret is shown
/// once, and only for a client that authenticates with one.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CreatedClient {
    client_id: String,
    client_secret: Option<String>,
}

/// `POST .../clients/{client}/secret` (`clients::rotate_secret`): the
/// client with its new secret, shown once.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct RotatedClient {
    #[serde(flatten)]
    client: ClientView,
    client_secret: String,
}

/// A second factor as listed (`factors::list`, `factors::create`): a TOTP
/// factor or a passkey, never a seed or key material.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct FactorView {
    id: String,
    /// `totp` or `webauthn`.
    #[serde(rename = "type")]
    kind: String,
    /// TOTP only.
    digits: Option<u8>,
    /// TOTP only: seconds per code.
    period: Option<u64>,
    created_at_ms: u64,
    /// Passkeys only: the name the user gave it.
    name: Option<String>,
    /// Passkeys only.
    last_used_ms: Option<u64>,
    /// Passkeys only: `passkey` or `security_key`.
    kind_detail: Option<String>,
    /// Passkeys only.
    sign_count: Option<u32>,
    /// Passkeys only: synced, as the authenticator last reported.
    backed_up: Option<bool>,
}

/// What a sign-out answers (`sessions::SignOut`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct SignOutView {
    /// Sessions ended.
    revoked: u64,
    /// Members that confirmed the revocation.
    confirmed: Vec<u64>,
    /// Members that did not confirm in time and were fenced.
    fenced: Vec<u64>,
    refresh_families_revoked: u64,
}

/// `GET .../policies/versions`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PolicyVersions {
    /// The current version (0 before any).
    current: u64,
    versions: Vec<super::mirrors::VersionSummary>,
}

/// `POST .../policies/versions/{n}/restore`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Restored {
    version: u64,
    restored_from: u64,
}

/// `PUT .../entities`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct EntitiesWritten {
    /// The current policy version.
    version: u64,
    /// Entities stored.
    entities: u64,
}

/// `GET .../policies/links`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PolicyLinks {
    links: Vec<super::mirrors::StoredLink>,
}

/// `PUT .../policies/links/{id}`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct LinkWritten {
    version: u64,
    link: String,
}

/// `POST .../saml/service-providers`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CreatedServiceProvider {
    entity_id: String,
    service_provider: super::mirrors::ServiceProvider,
}

/// `PUT /admin/v1/kv/{key}`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct KvWritten {
    revision: u64,
    /// The key's version after the write (1 for a new key).
    version: u64,
}

/// `GET /admin/v1/kv/{key}`: the key and how it was read.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct KvRead {
    #[serde(flatten)]
    kv: crate::admin::kv::KvOut,
    read: super::mirrors::ReadInfo,
}

/// `GET /admin/v1/kv/{key}` for a missing key: the error body with how
/// it was read.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct KvMissing {
    /// `key_not_found`.
    error: String,
    message: String,
    read: super::mirrors::ReadInfo,
}

/// `DELETE /admin/v1/kv/{key}`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct KvDeleted {
    revision: u64,
    /// Whether the key existed.
    deleted: bool,
}

/// `POST /admin/v1/kv/txn`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct TxnResult {
    /// Whether every comparison held (then `success` ran, else `failure`).
    succeeded: bool,
    revision: u64,
    /// One per operation run, in order: `{"op": "put", "prev"}`,
    /// `{"op": "delete", "deleted"}`, `{"op": "get", "kv"}`.
    results: Vec<Value>,
}

/// One line of `GET /admin/v1/kv/watch` (NDJSON); a watcher that fell
/// behind gets `{"error": "lagged", "message"}` instead.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct WatchEvent {
    revision: u64,
    key: String,
    /// `put`, `delete` or `expire`.
    kind: String,
    value: Option<String>,
}

/// One audit event (`rsp_identity::audit::AuditEvent`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct AuditEventView {
    /// Unique in the cluster: `<time ms>-<node>-<seq>`.
    id: String,
    /// RFC 3339, UTC, milliseconds.
    time: String,
    /// `user.created`, `login.succeeded`, `login.failed`, `user.locked`,
    /// `client.created`, `policy.updated`, `token.revoked`, ...
    /// (docs/observability.md lists them).
    #[serde(rename = "type")]
    kind: String,
    /// `operator`, `user:<id>`, `client:<id>` or `anonymous`.
    actor: String,
    /// `success` or `failure`.
    outcome: String,
    /// The caller's address, when the event came from a request.
    ip: Option<String>,
    /// The tenant of a cluster event about one (`GET /admin/v1/audit`).
    tenant: Option<String>,
    /// Identifiers and reasons; never a secret.
    #[schema(value_type = Object)]
    details: Value,
    /// Milliseconds since the Unix epoch.
    time_ms: u64,
}

/// One day of a tenant's usage (`rsp_identity::usage::DayUsage`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct DayUsageView {
    /// `YYYY-MM-DD` (UTC).
    date: String,
    /// Distinct users who signed in that day (any protocol).
    active_users: u64,
    logins: u64,
    tokens_issued: u64,
    authz_decisions: u64,
}

/// `GET .../usage`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct UsageView {
    days: Vec<DayUsageView>,
}
