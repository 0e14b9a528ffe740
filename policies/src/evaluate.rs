//! Decisions on one compiled state: a [`Snapshot`] holds a tenant's
//! policies, schema, entities and their index, immutable once built; a node
//! swaps whole snapshots, so a decision never sees half of an update.

use std::borrow::Cow;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request,
};
use serde_json::Value;

use crate::compile::Compiled;
use crate::diagnostics::{Diagnostic, parse_errors};
use crate::error::{PolicyError, codes};
use crate::index::{Outcome, PolicyIndex, is_authorized_whole};
use crate::records::Head;

/// Most entities a decision request may carry.
pub const MAX_REQUEST_ENTITIES: usize = 1000;

/// One authorization question, in Cedar's terms.
#[derive(Debug, Clone)]
pub struct DecisionRequest {
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    /// Cedar context JSON (an object); none is the empty context.
    pub context: Option<Value>,
    /// Cedar entity JSON objects, merged over the stored entities for this
    /// decision only (an entity here replaces a stored one with its uid).
    pub entities: Vec<Value>,
}

/// An entity uid from `User::"alice"` or `{"type": "User", "id": "alice"}`
/// (also inside `{"__entity": ...}`). `what` names the field in errors.
pub fn parse_uid(value: &Value, what: &str) -> Result<EntityUid, PolicyError> {
    match value {
        Value::String(s) => EntityUid::from_str(s).map_err(|e| {
            PolicyError::invalid(
                codes::INVALID_REQUEST,
                format!("`{what}` is not a Cedar entity uid such as User::\"alice\""),
                parse_errors(&e),
            )
        }),
        Value::Object(map) if map.contains_key("__entity") => parse_uid(&map["__entity"], what),
        Value::Object(map) => match (map.get("type"), map.get("id")) {
            (Some(Value::String(t)), Some(Value::String(id))) => uid(t, id, what),
            _ => Err(PolicyError::invalid_one(
                codes::INVALID_REQUEST,
                format!("`{what}` must be a string like User::\"alice\" or {{\"type\", \"id\"}}"),
            )),
        },
        _ => Err(PolicyError::invalid_one(
            codes::INVALID_REQUEST,
            format!("`{what}` must be a string like User::\"alice\" or {{\"type\", \"id\"}}"),
        )),
    }
}

/// The uid `type::"id"`; `type` may be namespaced (`App::User`).
pub fn uid(type_name: &str, id: &str, what: &str) -> Result<EntityUid, PolicyError> {
    let t = EntityTypeName::from_str(type_name).map_err(|e| {
        PolicyError::invalid(
            codes::INVALID_REQUEST,
            format!("`{what}`: `{type_name}` is not a Cedar entity type name"),
            parse_errors(&e),
        )
    })?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

/// A tenant's compiled state, as one node holds it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Modification revision of `policy/head` this was built from (0: none).
    pub head_rev: u64,
    pub head: Head,
    pub compiled: Compiled,
    pub index: PolicyIndex,
    pub(crate) authorizer: Authorizer,
}

impl Snapshot {
    /// No policies: every decision is Deny.
    pub fn empty() -> Self {
        let compiled = Compiled {
            policies: cedar_policy::PolicySet::new(),
            schema: None,
            entities: Entities::empty(),
        };
        Snapshot {
            head_rev: 0,
            head: Head::default(),
            index: PolicyIndex::default(),
            compiled,
            authorizer: Authorizer::new(),
        }
    }

    pub fn build(head_rev: u64, head: Head, compiled: Compiled) -> Result<Self, PolicyError> {
        let index = PolicyIndex::build(&compiled.policies).map_err(|e| {
            PolicyError::invalid(
                codes::INVALID_POLICIES,
                "the policies cannot be indexed",
                vec![Diagnostic::from_cedar(&*e)],
            )
        })?;
        Ok(Snapshot {
            head_rev,
            head,
            compiled,
            index,
            authorizer: Authorizer::new(),
        })
    }

    /// Decide `req`. `sliced`: evaluate only the buckets that can apply
    /// (the normal path); otherwise the whole set (for comparison).
    ///
    /// Traced as `cedar.evaluate` (whether `sliced`, the policy head
    /// revision and the decision; never the request's entities or context).
    pub fn decide(&self, req: &DecisionRequest, sliced: bool) -> Result<Outcome, PolicyError> {
        let span = tracing::info_span!(
            "cedar.evaluate",
            rsp.sliced = sliced,
            rsp.head_rev = self.head_rev,
            rsp.decision = tracing::field::Empty,
        )
        .entered();
        let outcome = self.decide_inner(req, sliced);
        if let Ok(o) = &outcome {
            span.record("rsp.decision", tracing::field::debug(&o.decision));
        }
        outcome
    }

    fn decide_inner(&self, req: &DecisionRequest, sliced: bool) -> Result<Outcome, PolicyError> {
        let schema = self.compiled.schema.as_ref();
        let entities = self.entities_for(req)?;
        let context = match &req.context {
            None | Some(Value::Null) => Context::empty(),
            Some(v) => Context::from_json_value(v.clone(), schema.map(|s| (s, &req.action)))
                .map_err(|e| {
                    PolicyError::invalid(
                        codes::INVALID_REQUEST,
                        "the context is not valid",
                        vec![Diagnostic::from_cedar(&e)],
                    )
                })?,
        };
        let request = Request::new(
            req.principal.clone(),
            req.action.clone(),
            req.resource.clone(),
            context,
            schema,
        )
        .map_err(|e| {
            PolicyError::invalid(
                codes::INVALID_REQUEST,
                "the request does not conform to the schema",
                vec![Diagnostic::from_cedar(&e)],
            )
        })?;
        Ok(if sliced {
            self.index
                .is_authorized(&self.authorizer, &request, &entities)
        } else {
            is_authorized_whole(
                &self.authorizer,
                &request,
                &self.compiled.policies,
                &entities,
            )
        })
    }

    fn entities_for(&self, req: &DecisionRequest) -> Result<Cow<'_, Entities>, PolicyError> {
        if req.entities.is_empty() {
            return Ok(Cow::Borrowed(&self.compiled.entities));
        }
        if req.entities.len() > MAX_REQUEST_ENTITIES {
            return Err(PolicyError::invalid_one(
                codes::INVALID_REQUEST,
                format!("at most {MAX_REQUEST_ENTITIES} entities per request"),
            ));
        }
        let schema = self.compiled.schema.as_ref();
        let bad = |e: &dyn miette::Diagnostic| {
            PolicyError::invalid(
                codes::INVALID_REQUEST,
                "the request's entities are not valid",
                vec![Diagnostic::from_cedar(e)],
            )
        };
        let parsed = req
            .entities
            .iter()
            .map(|e| Entity::from_json_value(e.clone(), schema).map_err(|e| bad(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        let merged = self
            .compiled
            .entities
            .clone()
            .upsert_entities(parsed, schema)
            .map_err(|e| bad(&e))?;
        Ok(Cow::Owned(merged))
    }
}
