//! The audit trail, for administrators: a tenant's events
//! (`GET /admin/v1/tenants/{t}/audit`, paged, newest first, filtered), the
//! same as JSON lines for a SIEM (`.../audit/export`), and the cluster's
//! own events (`GET /admin/v1/audit`: membership, the KEK, tenants created
//! and deleted, the key-value space).
//!
//! Every admin call that changes something is recorded by the admin
//! layer ([`record_call`]) once it is answered, and its answer waits for
//! the record to commit: the trail read next on any node shows it. A call
//! the admin policies refused is recorded as a failure. Reads are not
//! recorded. Security events (sign-ins, lockouts, revocations) are
//! recorded where they happen, batched ([`rsp_identity::audit`]).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rsp_consensus::kv::{SYSTEM_KEYSPACE, tenant_keyspace};
use rsp_identity::audit::query::{AuditFilter, QueryError, page};
use rsp_identity::audit::{AuditEvent, Draft, Outcome};
use rsp_policies::AdminPrincipal;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::accounts::require_tenant;
use super::paging::{Listing, Page, PageQuery, cursor};
use crate::admin::openapi::params as p;
use crate::admin::openapi::shapes::{AuditEventView, ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Consensus(e) => e.into(),
            QueryError::Corrupt(e) => ApiError::internal(e),
        }
    }
}

/// `?type&actor&outcome&from&to` with the paging.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(flatten)]
    page: PageQuery,
    #[serde(rename = "type")]
    kind: Option<String>,
    actor: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl AuditQuery {
    fn filter(&self) -> ApiResult<AuditFilter> {
        let outcome = match self.outcome.as_deref() {
            None => None,
            Some(o) => Some(Outcome::parse(o).ok_or_else(|| {
                ApiError::bad_request("invalid_request", "`outcome` is `success` or `failure`")
            })?),
        };
        Ok(AuditFilter {
            kind: self.kind.clone().filter(|k| !k.is_empty()),
            actor: self.actor.clone().filter(|a| !a.is_empty()),
            outcome,
            from_ms: self
                .from
                .as_deref()
                .map(|t| instant(t, "from"))
                .transpose()?,
            to_ms: self.to.as_deref().map(|t| instant(t, "to")).transpose()?,
        })
    }
}

/// An RFC 3339 time, or a `YYYY-MM-DD` date (its first millisecond for
/// `from`, its last for `to`), as ms since the epoch.
fn instant(text: &str, name: &str) -> ApiResult<u64> {
    let bad = || {
        ApiError::bad_request(
            "invalid_request",
            format!("`{name}` is an RFC 3339 time or a YYYY-MM-DD date"),
        )
    };
    if let Some(date) = rsp_identity::usage::parse_date(text) {
        let ms = rsp_identity::usage::start_ms(date);
        return Ok(match name {
            "to" => ms + 24 * 3600 * 1000 - 1,
            _ => ms,
        });
    }
    rsp_identity::usage::parse_rfc3339_ms(text).ok_or_else(bad)
}

fn item(e: AuditEvent) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

async fn list_in(
    state: &AppState,
    keyspace: &str,
    tag: &'static str,
    query: AuditQuery,
) -> ApiResult<Json<Page<Value>>> {
    let filter = query.filter()?;
    let limit = query.page.limit()?;
    let listing = Listing {
        tag,
        keyspace,
        prefix: rsp_identity::audit::PREFIX,
    };
    let after = query.page.after_key(&listing)?;
    let found = page(&state.consensus, keyspace, &filter, after, limit).await?;
    Ok(Json(Page {
        items: found.events.into_iter().map(item).collect(),
        next: found.next.map(|k| cursor(&listing, &k)),
    }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/audit",
    operation_id = "list_audit_events",
    tag = "audit",
    params(
        p::Tenant,
        p::Page,
        p::AuditFilters,
    ),
    responses(
        (status = 200, description = "A page of events, newest first; a page scans at most 10000 events, so a narrow filter may answer fewer items than `limit` with a `next`", body = Page<AuditEventView>),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_request`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<Value>>> {
    require_tenant(&state, &tenant).await?;
    list_in(&state, &tenant_keyspace(&tenant), "audit", query).await
}

#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    operation_id = "list_cluster_audit_events",
    tag = "audit",
    params(
        p::Page,
        p::AuditFilters,
    ),
    responses(
        (status = 200, description = "A page of the cluster's events (membership, KEK, tenants created and deleted, the key-value space, events of deleted tenants), newest first", body = Page<AuditEventView>),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_request`", body = ErrorBody),
    ),
)]
pub async fn list_cluster(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<Value>>> {
    list_in(&state, SYSTEM_KEYSPACE, "cluster-audit", query).await
}

/// `?type&actor&outcome&from&to` of an export (no paging).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    actor: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Events per read of an export.
const EXPORT_PAGE: usize = 1000;

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/audit/export",
    operation_id = "export_audit_events",
    tag = "audit",
    params(
        p::Tenant,
        p::AuditFilters,
    ),
    responses(
        (status = 200, description = "Every matching event, newest first, one JSON object per line (`application/x-ndjson`), streamed page by page", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn export(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    require_tenant(&state, &tenant).await?;
    let filter = AuditQuery {
        page: PageQuery::default(),
        kind: q.kind,
        actor: q.actor,
        outcome: q.outcome,
        from: q.from,
        to: q.to,
    }
    .filter()?;
    let keyspace = tenant_keyspace(&tenant);
    // The first page is read before answering, so an unavailable cluster
    // is an error status rather than a cut stream.
    let first = page(&state.consensus, &keyspace, &filter, None, EXPORT_PAGE).await?;
    let consensus = state.consensus.clone();
    let stream = futures::stream::unfold(Some(first), move |current| {
        let (consensus, keyspace, filter) = (consensus.clone(), keyspace.clone(), filter.clone());
        async move {
            let current = current?;
            let mut lines = Vec::new();
            for e in current.events {
                if let Ok(mut line) = serde_json::to_vec(&e) {
                    line.push(b'\n');
                    lines.extend_from_slice(&line);
                }
            }
            let next = match current.next {
                None => None,
                Some(after) => {
                    match page(&consensus, &keyspace, &filter, Some(after), EXPORT_PAGE).await {
                        Ok(p) => Some(p),
                        Err(e) => {
                            tracing::warn!(error = %e, "an audit export stopped early");
                            return Some((
                                Err(std::io::Error::other("the export stopped early")),
                                None,
                            ));
                        }
                    }
                }
            };
            Some((Ok::<_, std::io::Error>(lines), next))
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// The event type of an admin call that changes something: `method` on
/// the route pattern `route`.
pub fn call_kind(method: &Method, route: &str) -> String {
    let t = route.strip_prefix("/admin/v1/tenants/{tenant}");
    let m = method.as_str();
    let kind = match (m, route, t) {
        ("POST", "/admin/v1/tenants", _) => "tenant.created",
        ("PATCH", _, Some("")) => "tenant.updated",
        ("DELETE", _, Some("")) => "tenant.deleted",
        ("POST", _, Some("/users")) => "user.created",
        ("PATCH", _, Some("/users/{user}")) => "user.updated",
        ("DELETE", _, Some("/users/{user}")) => "user.deleted",
        ("PUT", _, Some("/users/{user}/password")) => "user.password_set",
        ("POST", _, Some("/users/{user}/factors")) => "mfa.factor_created",
        ("DELETE", _, Some("/users/{user}/factors")) => "mfa.factors_reset",
        ("DELETE", _, Some("/users/{user}/factors/{factor}")) => "mfa.factor_removed",
        ("DELETE", _, Some("/users/{user}/sessions")) => "session.revoked",
        ("DELETE", _, Some("/sessions/{sid}")) => "session.revoked",
        ("POST", _, Some("/clients")) => "client.created",
        ("PATCH", _, Some("/clients/{client}")) => "client.updated",
        ("DELETE", _, Some("/clients/{client}")) => "client.deleted",
        ("POST", _, Some("/clients/{client}/secret")) => "client.secret_rotated",
        ("POST", _, Some("/keys/rotate")) => "key.rotated",
        ("PUT", _, Some("/keys/settings")) => "key.settings_updated",
        ("PUT", _, Some("/mfa-policy")) => "mfa_policy.updated",
        ("PUT", _, Some("/policies")) => "policy.updated",
        ("POST", _, Some("/policies/versions/{n}/restore")) => "policy.updated",
        ("PUT", _, Some("/policies/links/{id}")) => "policy.link_updated",
        ("DELETE", _, Some("/policies/links/{id}")) => "policy.link_deleted",
        ("PUT", _, Some("/entities")) => "entities.updated",
        ("POST", _, Some("/saml/service-providers")) => "saml_sp.created",
        ("PUT", _, Some("/saml/service-providers/{entity_id}")) => "saml_sp.updated",
        ("DELETE", _, Some("/saml/service-providers/{entity_id}")) => "saml_sp.deleted",
        ("POST", "/admin/v1/cluster/nodes", _) => "cluster.node_added",
        ("DELETE", "/admin/v1/cluster/nodes/{id}", _) => "cluster.node_removed",
        ("POST", "/admin/v1/cluster/kek/rotate", _) => "cluster.kek_rotated",
        (_, r, _) if r.starts_with("/admin/v1/kv") => "kv.written",
        _ => return format!("admin.{}", m.to_ascii_lowercase()),
    };
    kind.to_string()
}

/// Whether a call with `method` is recorded: every call but a read.
pub fn recorded(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The actor of an admin call.
pub fn actor(principal: &AdminPrincipal) -> String {
    match principal {
        AdminPrincipal::Operator => "operator".to_string(),
        AdminPrincipal::TenantAdmin { subject, .. } => format!("user:{subject}"),
    }
}

/// Fields of a call's JSON answer that the record keeps: identifiers only
/// (an answer may carry a client secret or a recovery code, never kept).
const ANSWER_FIELDS: [&str; 6] = ["id", "username", "client_id", "entity_id", "kid", "version"];

/// The largest answer whose identifiers are read.
const MAX_READ_ANSWER: u64 = 64 * 1024;

/// An admin call as the audit trail records it: who, what (the admin
/// API's method and route pattern, with the path's values), from where.
pub struct Call<'a> {
    pub principal: &'a AdminPrincipal,
    pub method: &'a Method,
    pub route: &'a str,
    pub params: Vec<(String, String)>,
    pub ip: Option<std::net::IpAddr>,
    /// `console` for the web console's forms.
    pub via: Option<&'static str>,
}

/// Record `call`, answered `response` (`outcome` as its front end judges
/// it), and wait for the record (a failed record is logged; the call's
/// answer stands).
pub async fn record_call(
    state: &AppState,
    call: Call<'_>,
    outcome: Outcome,
    response: Response,
) -> Response {
    let Call {
        principal,
        method,
        route,
        params,
        ip,
        via,
    } = call;
    let status = response.status();
    let mut tenant = None;
    let mut details = Map::new();
    for (name, value) in params {
        match name.as_str() {
            "tenant" => tenant = Some(value),
            "sid" => {
                details.insert("session".into(), Value::String(value));
            }
            _ => {
                details.insert(name, Value::String(value));
            }
        }
    }
    details.insert("method".into(), Value::String(method.to_string()));
    details.insert("route".into(), Value::String(route.to_string()));
    details.insert("status".into(), Value::from(status.as_u16()));
    let (response, answer) = answer_fields(response).await;
    if let Some(answer) = answer {
        if route == "/admin/v1/tenants" {
            tenant = answer.get("id").and_then(Value::as_str).map(str::to_string);
        }
        for (k, v) in answer {
            details.entry(k).or_insert(v);
        }
    }
    if let Some(via) = via {
        details.insert("via".into(), Value::String(via.to_string()));
    }
    let mut draft = Draft::new(
        tenant.as_deref(),
        &call_kind(method, route),
        actor(principal),
        outcome,
    )
    .ip(ip);
    if let AdminPrincipal::TenantAdmin { tenant: own, .. } = principal
        && Some(own) != tenant.as_ref()
    {
        draft = draft.detail("admin_tenant", own.as_str());
    }
    for (k, v) in details {
        draft = draft.detail(&k, v);
    }
    // The operator key-value space is a raw store (tools and the Jepsen
    // workloads write it hard): its writes are queued like sign-ins, not
    // waited for, so they keep their own latency.
    if route.starts_with("/admin/v1/kv") {
        state.identity.audit.record(draft);
    } else if let Err(e) = state.identity.audit.record_and_wait(draft).await {
        tracing::error!(error = %e, route, "an admin call was not audited");
    }
    response
}

/// The identifier fields of a successful small JSON answer, and the
/// answer rebuilt.
async fn answer_fields(response: Response) -> (Response, Option<Map<String, Value>>) {
    use axum::body::HttpBody as _;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let small = response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= MAX_READ_ANSWER);
    if !(response.status().is_success() && json && small) {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_READ_ANSWER as usize).await else {
        return (
            Response::from_parts(parts, Body::empty()).into_response(),
            None,
        );
    };
    let fields = serde_json::from_slice::<Map<String, Value>>(&bytes)
        .ok()
        .map(|m| {
            m.into_iter()
                .filter(|(k, v)| {
                    ANSWER_FIELDS.contains(&k.as_str()) && (v.is_string() || v.is_number())
                })
                .collect()
        });
    (Response::from_parts(parts, Body::from(bytes)), fields)
}

/// A status as the record's outcome.
pub fn outcome_of(status: StatusCode) -> Outcome {
    match status.is_success() {
        true => Outcome::Success,
        false => Outcome::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_map_to_the_contract_types() {
        let t = "/admin/v1/tenants/{tenant}";
        for (method, route, kind) in [
            (
                Method::POST,
                "/admin/v1/tenants".to_string(),
                "tenant.created",
            ),
            (Method::POST, format!("{t}/users"), "user.created"),
            (Method::POST, format!("{t}/clients"), "client.created"),
            (Method::PUT, format!("{t}/policies"), "policy.updated"),
            (
                Method::DELETE,
                format!("{t}/sessions/{{sid}}"),
                "session.revoked",
            ),
            (
                Method::DELETE,
                "/admin/v1/cluster/nodes/{id}".to_string(),
                "cluster.node_removed",
            ),
            (Method::PUT, "/admin/v1/kv/{key}".to_string(), "kv.written"),
            (Method::POST, format!("{t}/unknown"), "admin.post"),
        ] {
            assert_eq!(call_kind(&method, &route), kind, "{method} {route}");
        }
        assert!(!recorded(&Method::GET) && recorded(&Method::PATCH));
    }

    #[test]
    fn times_and_dates_bound_a_listing() {
        assert_eq!(instant("2023-11-14", "from").unwrap(), 1_699_920_000_000);
        assert_eq!(instant("2023-11-14", "to").unwrap(), 1_700_006_399_999);
        assert_eq!(
            instant("2023-11-14T22:13:20.123Z", "from").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(
            instant("yesterday", "from").unwrap_err().code,
            "invalid_request"
        );
    }
}
