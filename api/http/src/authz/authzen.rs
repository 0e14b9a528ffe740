//! The OpenID AuthZEN Authorization API 1.0 over Cedar.
//!
//! Mapping: subject `{type, id, properties}` is the principal `type::"id"`,
//! resource likewise, action `{name}` is `Action::"name"` (a name that is
//! already a Cedar uid, like `App::Action::"read"`, is used as is), and
//! `context` is the Cedar context. `properties` become the entity's
//! attributes for this request (its stored parents are kept); action
//! properties are not used. The answer is `{"decision": true|false}`, with
//! a `context` (`id`, `reason_admin`) naming the deciding policies or the
//! evaluation errors when there are any.
//!
//! `/access/v1/evaluations` takes defaults at the top level and an
//! `evaluations` array (without it, it answers like `/evaluation`), and
//! `options.evaluations_semantic`: `execute_all` (default),
//! `deny_on_first_deny` or `permit_on_first_permit` (stop after the first
//! false, resp. true, answer). An item that cannot be evaluated answers
//! `{"decision": false, "context": {"error": {"status": 400, "message"}}}`.
//! `X-Request-ID` is echoed.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use rsp_policies::cedar_policy::{Decision, EntityUid};
use rsp_policies::evaluate::uid;
use rsp_policies::{DecisionRequest, Outcome, PolicyError, Snapshot, parse_uid};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::authz::TenantSnapshot;
use crate::authz::caller::{AuthzCaller, require_tenant};
use crate::authz::error::{AuthzError, AuthzResult};
use crate::extract::ApiJson;
use crate::extract::ApiPath;
use crate::state::AppState;

/// Most evaluations in one call.
pub const MAX_EVALUATIONS: usize = 256;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Debug, Clone, Deserialize)]
pub struct Subject {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    pub name: String,
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Evaluation {
    pub subject: Subject,
    pub action: Action,
    pub resource: Subject,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PartialEvaluation {
    #[serde(default)]
    pub subject: Option<Subject>,
    #[serde(default)]
    pub action: Option<Action>,
    #[serde(default)]
    pub resource: Option<Subject>,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Evaluations {
    #[serde(flatten)]
    pub defaults: PartialEvaluation,
    #[serde(default)]
    pub evaluations: Option<Vec<PartialEvaluation>>,
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

impl Semantic {
    fn parse(options: Option<&Map<String, Value>>) -> AuthzResult<Self> {
        match options.and_then(|o| o.get("evaluations_semantic")) {
            None => Ok(Semantic::ExecuteAll),
            Some(Value::String(s)) => match s.as_str() {
                "execute_all" => Ok(Semantic::ExecuteAll),
                "deny_on_first_deny" => Ok(Semantic::DenyOnFirstDeny),
                "permit_on_first_permit" => Ok(Semantic::PermitOnFirstPermit),
                other => Err(AuthzError::invalid_request(format!(
                    "unknown evaluations_semantic `{other}`; use execute_all, deny_on_first_deny or permit_on_first_permit"
                ))),
            },
            Some(_) => Err(AuthzError::invalid_request(
                "options.evaluations_semantic must be a string",
            )),
        }
    }
}

fn action_uid(name: &str) -> Result<EntityUid, PolicyError> {
    if name.contains("::\"") {
        parse_uid(&Value::String(name.to_string()), "action.name")
    } else {
        uid("Action", name, "action.name")
    }
}

/// An entity for `properties`, keeping the stored entity's ancestors.
fn entity_with_properties(
    uid: &EntityUid,
    properties: &Map<String, Value>,
    snapshot: &Snapshot,
) -> Value {
    let parents: Vec<Value> = snapshot
        .compiled
        .entities
        .ancestors(uid)
        .map(|a| {
            a.map(|p| json!({"type": p.type_name().to_string(), "id": p.id().unescaped()}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "uid": {"type": uid.type_name().to_string(), "id": uid.id().unescaped()},
        "attrs": properties,
        "parents": parents,
    })
}

/// The Cedar request for one AuthZEN evaluation.
pub fn to_cedar(e: &Evaluation, snapshot: &Snapshot) -> Result<DecisionRequest, PolicyError> {
    let principal = uid(&e.subject.kind, &e.subject.id, "subject")?;
    let resource = uid(&e.resource.kind, &e.resource.id, "resource")?;
    let action = action_uid(&e.action.name)?;
    let mut entities = Vec::new();
    if let Some(p) = e.subject.properties.as_ref().filter(|p| !p.is_empty()) {
        entities.push(entity_with_properties(&principal, p, snapshot));
    }
    if let Some(p) = e.resource.properties.as_ref().filter(|p| !p.is_empty())
        && resource != principal
    {
        entities.push(entity_with_properties(&resource, p, snapshot));
    }
    Ok(DecisionRequest {
        principal,
        action,
        resource,
        context: e.context.clone().map(Value::Object),
        entities,
    })
}

/// The AuthZEN answer for a Cedar outcome.
pub fn answer(outcome: &Outcome) -> Value {
    let allowed = outcome.decision == Decision::Allow;
    let mut out = json!({ "decision": allowed });
    if !outcome.reason.is_empty() || !outcome.errors.is_empty() {
        let mut text = if outcome.reason.is_empty() {
            "no policy permits this request".to_string()
        } else if allowed {
            format!("permitted by {}", outcome.reason.join(", "))
        } else {
            format!("forbidden by {}", outcome.reason.join(", "))
        };
        for e in &outcome.errors {
            text.push_str(&format!("; policy {} failed: {}", e.policy_id, e.message));
        }
        out["context"] = json!({
            "id": "0",
            "reason_admin": {"en": text},
        });
    }
    out
}

fn error_answer(e: AuthzError) -> Value {
    json!({
        "decision": false,
        "context": {"error": {"status": e.status.as_u16(), "message": e.message}},
    })
}

fn with_request_id(headers: &HeaderMap, body: Value) -> Response {
    let mut resp = Json(body).into_response();
    if let Some(id) = headers.get(&REQUEST_ID) {
        resp.headers_mut().insert(REQUEST_ID, id.clone());
    }
    resp
}

fn decide(snapshot: &TenantSnapshot, e: &Evaluation) -> AuthzResult<Value> {
    let req = to_cedar(e, snapshot)?;
    let outcome = snapshot.decide(&req)?;
    Ok(answer(&outcome))
}

pub async fn evaluation(
    State(state): State<AppState>,
    caller: AuthzCaller,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<Evaluation, AuthzError>,
) -> AuthzResult<Response> {
    let snapshot = crate::authz::snapshot(&state, &caller.tenant, caller.started).await?;
    let answer = decide(&snapshot, &body)?;
    state.identity.usage.decisions(&caller.tenant, 1);
    Ok(with_request_id(&headers, answer))
}

/// One item with the top-level defaults filled in.
fn merged(defaults: &PartialEvaluation, item: PartialEvaluation) -> AuthzResult<Evaluation> {
    let missing = |what: &str| AuthzError::invalid_request(format!("`{what}` is missing"));
    Ok(Evaluation {
        subject: item
            .subject
            .or_else(|| defaults.subject.clone())
            .ok_or_else(|| missing("subject"))?,
        action: item
            .action
            .or_else(|| defaults.action.clone())
            .ok_or_else(|| missing("action"))?,
        resource: item
            .resource
            .or_else(|| defaults.resource.clone())
            .ok_or_else(|| missing("resource"))?,
        context: item.context.or_else(|| defaults.context.clone()),
    })
}

pub async fn evaluations(
    State(state): State<AppState>,
    caller: AuthzCaller,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<Evaluations, AuthzError>,
) -> AuthzResult<Response> {
    let semantic = Semantic::parse(body.options.as_ref())?;
    let snapshot = crate::authz::snapshot(&state, &caller.tenant, caller.started).await?;
    let Some(items) = body.evaluations.filter(|e| !e.is_empty()) else {
        // No `evaluations`: the single-evaluation request and answer.
        let single = merged(&PartialEvaluation::default(), body.defaults)?;
        let answer = decide(&snapshot, &single)?;
        state.identity.usage.decisions(&caller.tenant, 1);
        return Ok(with_request_id(&headers, answer));
    };
    if items.len() > MAX_EVALUATIONS {
        return Err(AuthzError::invalid_request(format!(
            "at most {MAX_EVALUATIONS} evaluations per call"
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let answer = match merged(&body.defaults, item).and_then(|e| decide(&snapshot, &e)) {
            Ok(a) => a,
            Err(e) if e.status.is_client_error() => error_answer(e),
            Err(e) => return Err(e),
        };
        let decision = answer["decision"].as_bool().unwrap_or(false);
        out.push(answer);
        match semantic {
            Semantic::DenyOnFirstDeny if !decision => break,
            Semantic::PermitOnFirstPermit if decision => break,
            _ => {}
        }
    }
    state
        .identity
        .usage
        .decisions(&caller.tenant, out.len() as u64);
    Ok(with_request_id(&headers, json!({ "evaluations": out })))
}

/// `GET {issuer}/.well-known/authzen-configuration` (also at
/// `/.well-known/authzen-configuration/t/{tenant}`).
pub async fn metadata(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> AuthzResult<Response> {
    require_tenant(&state, &tenant).await?;
    let pdp = format!("{}/t/{tenant}", state.public_url);
    let body = json!({
        "policy_decision_point": pdp,
        "access_evaluation_endpoint": format!("{pdp}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{pdp}/access/v1/evaluations"),
    });
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    Ok(resp)
}
