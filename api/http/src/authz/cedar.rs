//! `POST {issuer}/authz/v1/is_authorized` and its batch form.
//!
//! Request: `{"principal": "User::\"alice\"", "action": "Action::\"view\"",
//! "resource": "Doc::\"1\"", "context"?: {}, "entities"?: [...]}`; uids may
//! also be `{"type", "id"}`. Instead of `principal`, `"access_token"` takes
//! the principal from a verified token ([`crate::authz::principal`]).
//! Answer: `{"decision": "Allow" | "Deny", "diagnostics": {"reason":
//! [policy ids], "errors": [{"policy_id", "message"}]}}`.
//!
//! Batch: `{"requests": [<request>...], "entities"?: [...]}` (the shared
//! entities are merged into every request) answers `{"results": [<answer>
//! ...]}` in order, all decided on one snapshot. A malformed item refuses
//! the whole batch (400 naming its index).

use axum::Json;
use axum::extract::State;
use rsp_policies::cedar_policy::Decision;
use rsp_policies::evaluate::MAX_REQUEST_ENTITIES;
use rsp_policies::{DecisionRequest, Outcome, Snapshot, parse_uid};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authz::caller::AuthzCaller;
use crate::authz::error::{AuthzError, AuthzResult};
use crate::authz::{TenantSnapshot, principal};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Most requests in one batch.
pub const MAX_BATCH: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsAuthorized {
    principal: Option<Value>,
    access_token: Option<String>,
    action: Value,
    resource: Value,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    entities: Option<Vec<Value>>,
}

impl std::fmt::Debug for IsAuthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsAuthorized")
            .field("principal", &self.principal)
            .field("access_token", &self.access_token.as_ref().map(|_| ".."))
            .field("action", &self.action)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsAuthorizedBatch {
    requests: Vec<IsAuthorized>,
    #[serde(default)]
    entities: Option<Vec<Value>>,
}

/// The answer's JSON.
pub fn answer(outcome: &Outcome) -> Value {
    json!({
        "decision": match outcome.decision {
            Decision::Allow => "Allow",
            Decision::Deny => "Deny",
        },
        "diagnostics": {
            "reason": outcome.reason,
            "errors": outcome.errors,
        },
    })
}

/// Build the Cedar request of one body, against `snapshot`'s entities.
async fn request(
    state: &AppState,
    caller: &AuthzCaller,
    snapshot: &Snapshot,
    body: IsAuthorized,
    shared: &[Value],
) -> AuthzResult<DecisionRequest> {
    let mut entities = body.entities.unwrap_or_default();
    entities.extend(shared.iter().cloned());
    let principal = match (body.principal, body.access_token) {
        (Some(p), None) => parse_uid(&p, "principal")?,
        (None, Some(token)) => {
            let (uid, entity) =
                principal::from_token(state, &caller.tenant, &token, &snapshot.compiled.entities)
                    .await?;
            entities.push(entity);
            uid
        }
        (Some(_), Some(_)) => {
            return Err(AuthzError::invalid_request(
                "give either `principal` or `access_token`, not both",
            ));
        }
        (None, None) => {
            return Err(AuthzError::invalid_request(
                "`principal` (or `access_token`) is required",
            ));
        }
    };
    if entities.len() > MAX_REQUEST_ENTITIES {
        return Err(AuthzError::invalid_request(format!(
            "at most {MAX_REQUEST_ENTITIES} entities per request"
        )));
    }
    if body
        .context
        .as_ref()
        .is_some_and(|c| !c.is_object() && !c.is_null())
    {
        return Err(AuthzError::invalid_request(
            "`context` must be a JSON object",
        ));
    }
    Ok(DecisionRequest {
        principal,
        action: parse_uid(&body.action, "action")?,
        resource: parse_uid(&body.resource, "resource")?,
        context: body.context,
        entities,
    })
}

fn decide(snapshot: &TenantSnapshot, req: &DecisionRequest) -> AuthzResult<Value> {
    Ok(answer(&snapshot.decide(req)?))
}

pub async fn is_authorized(
    State(state): State<AppState>,
    caller: AuthzCaller,
    ApiJson(body, _): ApiJson<IsAuthorized, AuthzError>,
) -> AuthzResult<Json<Value>> {
    let snapshot = crate::authz::snapshot(&state, &caller.tenant, caller.started).await?;
    let req = request(&state, &caller, &snapshot, body, &[]).await?;
    let answer = decide(&snapshot, &req)?;
    state.identity.usage.decisions(&caller.tenant, 1);
    Ok(Json(answer))
}

pub async fn is_authorized_batch(
    State(state): State<AppState>,
    caller: AuthzCaller,
    ApiJson(body, _): ApiJson<IsAuthorizedBatch, AuthzError>,
) -> AuthzResult<Json<Value>> {
    if body.requests.is_empty() || body.requests.len() > MAX_BATCH {
        return Err(AuthzError::invalid_request(format!(
            "`requests` must hold 1 to {MAX_BATCH} requests"
        )));
    }
    let snapshot = crate::authz::snapshot(&state, &caller.tenant, caller.started).await?;
    let shared = body.entities.unwrap_or_default();
    let mut results = Vec::with_capacity(body.requests.len());
    for (i, item) in body.requests.into_iter().enumerate() {
        let req = request(&state, &caller, &snapshot, item, &shared)
            .await
            .map_err(|e| e.context(&format!("requests[{i}]")))?;
        results.push(decide(&snapshot, &req).map_err(|e| e.context(&format!("requests[{i}]")))?);
    }
    state
        .identity
        .usage
        .decisions(&caller.tenant, results.len() as u64);
    Ok(Json(json!({ "results": results })))
}
