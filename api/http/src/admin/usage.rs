//! A tenant's usage per day, for billing (`GET /admin/v1/tenants/{t}/usage`):
//! active users, sign-ins, token responses and authorization decisions,
//! as merged through Raft ([`rsp_identity::usage`]). The node answering
//! merges its own counts first; another node's last few seconds of
//! counting appear at its next merge (every 5 s).

use axum::Json;
use axum::extract::State;
use rsp_identity::usage::{self, UsageError, parse_date};
use serde::Deserialize;
use serde_json::{Value, json};

use super::accounts::require_tenant;
use crate::admin::openapi::params as p;
use crate::admin::openapi::shapes::{ErrorBody, UsageView};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::Consensus(e) => e.into(),
            UsageError::BadRange(m) => ApiError::bad_request("invalid_request", m),
            UsageError::Corrupt(e) => ApiError::internal(e),
        }
    }
}

/// `?from=&to=` (dates; default: the last 30 days to today).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    from: Option<String>,
    to: Option<String>,
}

fn date(text: &str, name: &str) -> ApiResult<usage::Date> {
    parse_date(text).ok_or_else(|| {
        ApiError::bad_request("invalid_request", format!("`{name}` is a YYYY-MM-DD date"))
    })
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/usage",
    operation_id = "get_usage",
    tag = "audit",
    params(
        p::Tenant,
        ("from" = Option<String>, Query, description = "First day, YYYY-MM-DD (UTC; default: 29 days before `to`)"),
        ("to" = Option<String>, Query, description = "Last day, YYYY-MM-DD (UTC; default: today); at most 366 days in all"),
    ),
    responses(
        (status = 200, description = "Every day of the range, oldest first (days without activity are zeros)", body = UsageView),
        (status = 400, description = "`invalid_request`: a bad date, `from` after `to`, or more than 366 days", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> ApiResult<Json<Value>> {
    require_tenant(&state, &tenant).await?;
    let today = parse_date(&usage::date_of(state.consensus.clock().now_ms()))
        .ok_or_else(|| ApiError::internal("today's date"))?;
    let to = match &query.to {
        Some(t) => date(t, "to")?,
        None => today,
    };
    let from = match &query.from {
        Some(f) => date(f, "from")?,
        None => usage::days_before(to, 29),
    };
    // This node's own counts first: what it served is in the answer.
    if let Err(e) = state.identity.usage.flush().await {
        tracing::debug!(error = %e, "usage merge before a read failed");
    }
    let days = usage::days(&state.consensus, &tenant, from, to).await?;
    Ok(Json(json!({ "days": days })))
}
