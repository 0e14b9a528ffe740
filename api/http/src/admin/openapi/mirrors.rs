//! Schemas of the types other crates own that admin routes take or
//! answer as they are (`rsp_identity`, `rsp_consensus`, `rsp_policies`),
//! so those crates stay free of OpenAPI. Each has the name and fields of
//! the type it describes; the tests in `openapi/mirror_checks.rs` prove
//! the document's properties are the fields the real types serialize.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// `rsp_identity::tenants::Tenant`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Tenant {
    id: String,
    display_name: String,
    created_at_ms: u64,
    /// Only the settings that were set (`{}`: all are the node's defaults).
    settings: TenantSettings,
}

/// `rsp_identity::tenants::TenantSettings`: every setting is optional
/// (unset: the node's default), and `null` in a `PATCH` unsets it. Bounds
/// in docs/admin-api.md, "Tenant settings".
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct TenantSettings {
    /// 60 to 86400 (default 600).
    access_token_lifetime_secs: Option<u64>,
    /// 60 to 86400 (default: the access token's).
    id_token_lifetime_secs: Option<u64>,
    /// 300 to 31536000 (default 30 days).
    refresh_token_idle_lifetime_secs: Option<u64>,
    /// 300 to ten years, at least the idle lifetime (default 30 days).
    refresh_token_absolute_lifetime_secs: Option<u64>,
    /// 60 to 2592000 (default 1800).
    session_idle_timeout_secs: Option<u64>,
    /// 300 to 31536000, at least the idle timeout (default 36000).
    session_absolute_lifetime_secs: Option<u64>,
    /// 1 to 100 failed attempts (default 5).
    lockout_threshold: Option<u32>,
    /// 60 to 86400 (default 900).
    lockout_window_secs: Option<u64>,
    /// 60 to 86400 (default 900).
    lockout_duration_secs: Option<u64>,
    /// 8 to 128 characters (default 8).
    password_min_length: Option<u32>,
    /// Refuse the built-in list of common passwords (default true).
    password_block_common: Option<bool>,
    /// Up to 10000 more passwords to refuse, compared case-insensitively.
    password_blocklist: Option<Vec<String>>,
    /// Non-empty (default: all).
    signing_algorithms: Option<Vec<SigningAlg>>,
    /// `require_consent` of clients registered without it (default false).
    consent_required_by_default: Option<bool>,
    /// 1 to 10^9 (default: no limit).
    max_users: Option<u64>,
    /// 1 to 10^9 (default: no limit).
    max_clients: Option<u64>,
    /// Days an audit event is kept, 1 to 3650 (default 90).
    audit_retention_days: Option<u64>,
}

/// `rsp_identity::keys::KeySettings`: a tenant's key schedule. Every
/// field has a default, so `{}` is valid.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct KeySettings {
    /// Days a key signs before the next one takes over (1 to 3650,
    /// default 90).
    rotation_days: Option<u64>,
    /// Hours the next key is published before it signs (0 to 720, less
    /// than the rotation period; default 24).
    publish_hours: Option<u64>,
    /// Days a replaced key keeps verifying (1 to 365, default 7).
    retire_days: Option<u64>,
}

/// `rsp_identity::keys::KeyStatus`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum KeyStatus {
    Next,
    Active,
    Previous,
}

/// `rsp_identity::keys::SigningAlg`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum SigningAlg {
    ES256,
    RS256,
    EdDSA,
}

/// `rsp_identity::keys::Staged`: a key staged to sign from
/// `activates_at_ms`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Staged {
    kid: String,
    alg: SigningAlg,
    activates_at_ms: u64,
}

/// `rsp_identity::mfa_policy::MfaMode`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum MfaMode {
    Optional,
    Required,
    Cedar,
}

/// `rsp_identity::mfa_policy::MfaPolicy`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct MfaPolicy {
    mode: MfaMode,
}

/// `rsp_identity::saml::providers::Acs`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Acs {
    index: u32,
    url: String,
    is_default: Option<bool>,
}

/// `rsp_identity::saml::providers::AttributeMapping`: which user field
/// becomes which SAML attribute.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct AttributeMapping {
    /// `email`, `username`, `id`, or `attributes.<name>`.
    source: String,
    name: String,
    friendly_name: Option<String>,
    name_format: Option<String>,
}

/// `rsp_identity::saml::providers::Registration`: an SP by fields, by its
/// metadata, or both (fields win over metadata). See docs/saml.md.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Registration {
    entity_id: Option<String>,
    display_name: Option<String>,
    /// One ACS (index 0, the default).
    acs_url: Option<String>,
    /// Several, indexed.
    acs: Option<Vec<Acs>>,
    slo_url: Option<String>,
    certificate_pem: Option<String>,
    certificates_pem: Option<Vec<String>>,
    encryption_certificate_pem: Option<String>,
    /// `persistent` (default), `email`, `transient`, `unspecified`, or a
    /// NameID format URI.
    name_id_format: Option<String>,
    attributes: Option<Vec<AttributeMapping>>,
    assertion_lifetime_secs: Option<u64>,
    require_signed_requests: Option<bool>,
    sign_response: Option<bool>,
    require_consent: Option<bool>,
    encrypt_assertions: Option<bool>,
    /// The SP's `EntityDescriptor`.
    metadata_xml: Option<String>,
}

/// `rsp_identity::saml::providers::ServiceProvider`: a registered SP.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ServiceProvider {
    entity_id: String,
    display_name: Option<String>,
    acs: Vec<Acs>,
    slo_url: Option<String>,
    /// Signing certificates (DER, base64).
    certificates: Vec<String>,
    /// `persistent`, `email`, `transient` or `unspecified`.
    name_id_format: String,
    attributes: Vec<AttributeMapping>,
    assertion_lifetime_secs: u64,
    require_signed_requests: bool,
    sign_response: bool,
    require_consent: bool,
    encrypt_assertions: bool,
    /// DER, base64.
    encryption_certificate: Option<String>,
    created_at_ms: u64,
}

/// `rsp_identity::kek_ring::KekStatus`. KEKs are named by an id, never
/// shown.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct KekStatus {
    generation: u64,
    current: String,
    previous: Vec<String>,
    /// Whether re-sealing is still going on.
    rotating: bool,
    rotated_at_ms: Option<u64>,
    resealed_at_ms: Option<u64>,
    /// Members that do not hold the current KEK yet.
    waiting_for: Vec<u64>,
    /// Records re-sealed by this call.
    resealed: u64,
}

/// `rsp_consensus::Role`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Role {
    Leader,
    Follower,
    Learner,
}

/// `rsp_consensus::MemberStatus`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct MemberStatus {
    id: u64,
    peer_addr: String,
    http_addr: String,
    zone: String,
    region: String,
    role: Role,
}

/// `rsp_consensus::ClusterStatus`, as this node sees it.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ClusterStatus {
    leader: Option<u64>,
    term: u64,
    this_node: u64,
    last_applied: Option<u64>,
    last_log_index: Option<u64>,
    snapshot_index: Option<u64>,
    purged_index: Option<u64>,
    members: Vec<MemberStatus>,
}

/// `rsp_consensus::ReadInfo`: how a key-value read was served.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ReadInfo {
    /// `linearizable` or `local`.
    consistency: String,
    node_id: u64,
    applied_index: u64,
    revision: u64,
    leader: Option<u64>,
    leader_silence_ms: Option<u64>,
    behind_since_ms: Option<u64>,
}

/// `rsp_policies::PolicyVersion`: one accepted policy set.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct PolicyVersion {
    /// 0 (with empty `policies`) before any was stored.
    version: u64,
    /// Cedar policies and templates, as submitted.
    policies: String,
    /// Cedar JSON schema, when one was given.
    schema: Option<Value>,
    author: Option<String>,
    time_ms: Option<u64>,
    restored_from: Option<u64>,
}

/// `rsp_policies::store::Receipt`: what an accepted write answers.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Receipt {
    /// The current policy version after the write.
    version: u64,
    /// Members that did not confirm applying the write in time.
    unconfirmed: Option<Vec<u64>>,
}

/// `rsp_policies::store::VersionSummary`: a version as listed.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct VersionSummary {
    version: u64,
    author: String,
    time_ms: u64,
    restored_from: Option<u64>,
    current: bool,
}

/// `rsp_policies::StoredLink`: a template-linked policy.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct StoredLink {
    id: String,
    template: String,
    /// Slot (`?principal`, `?resource`) to entity uid in Cedar syntax.
    values: std::collections::BTreeMap<String, String>,
    author: String,
    time_ms: u64,
}

/// `rsp_policies::StoredEntities`: the tenant's entities (Cedar entity
/// JSON) with who wrote them; `{"entities": []}` before any.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct StoredEntities {
    entities: Vec<Value>,
    author: Option<String>,
    time_ms: Option<u64>,
}
