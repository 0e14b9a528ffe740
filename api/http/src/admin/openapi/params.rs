//! Path, query and header parameters that many admin routes share, for the
//! OpenAPI document's `params(...)`.

use utoipa::IntoParams;

/// `{tenant}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct Tenant {
    /// The tenant's id.
    tenant: String,
}

/// `{tenant}` and `{user}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TenantUser {
    /// The tenant's id.
    tenant: String,
    /// The user's id.
    user: String,
}

/// `{tenant}` and `{client}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TenantClient {
    /// The tenant's id.
    tenant: String,
    /// The client's `client_id`.
    client: String,
}

/// `{tenant}` and `{entity_id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TenantProvider {
    /// The tenant's id.
    tenant: String,
    /// The SP's entity id, URL-encoded.
    entity_id: String,
}

/// `{tenant}` and the policy version `{n}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TenantVersion {
    /// The tenant's id.
    tenant: String,
    /// A policy version number.
    n: u64,
}

/// A paged listing's `?limit=N&after=CURSOR`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Page {
    /// Items per page, 1 to 1000 (default 100); 400 `invalid_limit`
    /// otherwise.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next` of the previous page; 400 `invalid_cursor` for any
    /// other.
    after: Option<String>,
}

/// `If-Match: "<revision>"` (or `*`): change the record only at that
/// revision, else 412 `precondition_failed`.
#[derive(IntoParams)]
#[into_params(names("If-Match"), parameter_in = Header)]
#[allow(dead_code)]
pub struct IfMatch(Option<String>);

/// The audit trail's filters (`?type&actor&outcome&from&to`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditFilters {
    /// Only this type (`login.failed`), or a family (`login.*`).
    #[param(rename = "type")]
    kind: Option<String>,
    /// Only this actor (`operator`, `user:<id>`, `client:<id>`,
    /// `anonymous`).
    actor: Option<String>,
    /// `success` or `failure`.
    outcome: Option<String>,
    /// Events at or after this RFC 3339 time or YYYY-MM-DD date (UTC).
    from: Option<String>,
    /// Events at or before this RFC 3339 time or YYYY-MM-DD date (UTC).
    to: Option<String>,
}
