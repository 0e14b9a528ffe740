//! From stored records to something Cedar evaluates: parse the policy text,
//! read the schema, validate the policies against it (strict mode), add the
//! template links, and build the entity store (checked against the schema).
//! Every failure is refused with Cedar's own diagnostics; a write is
//! accepted only if the state it produces compiles.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{
    Entities, EntityUid, PolicyId, PolicySet, Schema, SlotId, ValidationMode, Validator,
};

use crate::diagnostics::{Diagnostic, parse_errors};
use crate::error::{PolicyError, codes};
use crate::records::{PolicyVersion, StoredLink};

/// Largest policy text accepted, in bytes (the replicated store refuses
/// values over 1 MiB; the version record also carries the schema).
pub const MAX_POLICY_TEXT: usize = 512 * 1024;

/// A tenant's policies, schema and entities, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub policies: PolicySet,
    pub schema: Option<Schema>,
    pub entities: Entities,
}

pub fn parse_policies(text: &str) -> Result<PolicySet, PolicyError> {
    if text.len() > MAX_POLICY_TEXT {
        return Err(PolicyError::invalid_one(
            codes::INVALID_POLICIES,
            format!("the policy text is over {MAX_POLICY_TEXT} bytes"),
        ));
    }
    crate::depth::check(text)?;
    let parsed = PolicySet::from_str(text).map_err(|e| {
        PolicyError::invalid(
            codes::INVALID_POLICIES,
            "the policies do not parse",
            parse_errors(&e),
        )
    })?;
    with_annotated_ids(parsed)
}

/// Cedar names parsed policies `policy0`, `policy1`, ... by position; a
/// policy or template annotated `@id("...")` is named by its annotation
/// instead, so reasons and links use stable names.
fn with_annotated_ids(parsed: PolicySet) -> Result<PolicySet, PolicyError> {
    let renamed = |what: &str, id: &str, e: &dyn miette::Diagnostic| {
        PolicyError::invalid(
            codes::INVALID_POLICIES,
            format!("{what} id `{id}` is used twice"),
            vec![Diagnostic::from_cedar(e).with_policy(id)],
        )
    };
    let mut out = PolicySet::new();
    for t in parsed.templates() {
        let t = match t.annotation("id") {
            Some(id) => t.new_id(PolicyId::new(id)),
            None => t.clone(),
        };
        let id = t.id().to_string();
        out.add_template(t)
            .map_err(|e| renamed("template", &id, &e))?;
    }
    for p in parsed.policies() {
        let p = match p.annotation("id") {
            Some(id) => p.new_id(PolicyId::new(id)),
            None => p.clone(),
        };
        let id = p.id().to_string();
        out.add(p).map_err(|e| renamed("policy", &id, &e))?;
    }
    Ok(out)
}

pub fn parse_schema(json: &serde_json::Value) -> Result<Schema, PolicyError> {
    Schema::from_json_value(json.clone()).map_err(|e| {
        PolicyError::invalid(
            codes::INVALID_SCHEMA,
            "the schema is not a valid Cedar JSON schema",
            vec![Diagnostic::from_cedar(&e)],
        )
    })
}

/// Strict validation of every policy, template and link against `schema`.
pub fn validate(policies: &PolicySet, schema: &Schema) -> Result<(), PolicyError> {
    let validator = Validator::new(schema.clone());
    let result = validator.validate(policies, ValidationMode::Strict);
    if result.validation_passed() {
        return Ok(());
    }
    let diagnostics = result
        .validation_errors()
        .map(|e| Diagnostic::from_cedar(e).with_policy(e.policy_id().to_string()))
        .collect();
    Err(PolicyError::invalid(
        codes::INVALID_POLICIES,
        "the policies do not validate against the schema",
        diagnostics,
    ))
}

/// Parse a slot map (`{"?principal": "User::\"bob\""}`) into Cedar's types.
pub fn link_values(
    values: &std::collections::BTreeMap<String, String>,
) -> Result<HashMap<SlotId, EntityUid>, PolicyError> {
    let mut out = HashMap::new();
    for (slot, uid) in values {
        let slot_id = match slot.as_str() {
            "?principal" | "principal" => SlotId::principal(),
            "?resource" | "resource" => SlotId::resource(),
            other => {
                return Err(PolicyError::invalid_one(
                    codes::INVALID_LINK,
                    format!("unknown slot `{other}`; templates have `?principal` and `?resource`"),
                ));
            }
        };
        let uid = EntityUid::from_str(uid).map_err(|e| {
            PolicyError::invalid(
                codes::INVALID_LINK,
                format!("slot {slot}: `{uid}` is not an entity uid"),
                parse_errors(&e),
            )
        })?;
        out.insert(slot_id, uid);
    }
    Ok(out)
}

/// Add the links to `policies` (which must hold their templates).
pub fn apply_links(policies: &mut PolicySet, links: &[StoredLink]) -> Result<(), PolicyError> {
    for link in links {
        let values = link_values(&link.values)?;
        let template = PolicyId::new(&link.template);
        policies
            .link(template, PolicyId::new(&link.id), values)
            .map_err(|e| {
                PolicyError::invalid(
                    codes::INVALID_LINK,
                    format!(
                        "link `{}` to template `{}` cannot be made",
                        link.id, link.template
                    ),
                    vec![Diagnostic::from_cedar(&e).with_policy(link.id.clone())],
                )
            })?;
    }
    Ok(())
}

/// Entities from Cedar entity JSON (an array), checked against `schema`.
pub fn parse_entities(
    json: &serde_json::Value,
    schema: Option<&Schema>,
) -> Result<Entities, PolicyError> {
    if !json.is_array() {
        return Err(PolicyError::invalid_one(
            codes::INVALID_ENTITIES,
            "entities must be a JSON array of Cedar entities",
        ));
    }
    Entities::from_json_value(json.clone(), schema).map_err(|e| {
        PolicyError::invalid(
            codes::INVALID_ENTITIES,
            "the entities are not valid",
            vec![Diagnostic::from_cedar(&e)],
        )
    })
}

/// Everything together, as a node holds it in memory.
pub fn compile(
    version: Option<&PolicyVersion>,
    links: &[StoredLink],
    entities: Option<&serde_json::Value>,
) -> Result<Compiled, PolicyError> {
    let (mut policies, schema) = match version {
        Some(v) => {
            let policies = parse_policies(&v.policies)?;
            let schema = v.schema.as_ref().map(parse_schema).transpose()?;
            (policies, schema)
        }
        None => (PolicySet::new(), None),
    };
    apply_links(&mut policies, links)?;
    if let Some(schema) = &schema {
        validate(&policies, schema)?;
    }
    let entities = match entities {
        Some(json) => parse_entities(json, schema.as_ref())?,
        None => match &schema {
            // The schema's action entities (action groups) take part in
            // `action in ...` even when no entities were written.
            Some(s) => s.action_entities().map_err(|e| {
                PolicyError::invalid(
                    codes::INVALID_SCHEMA,
                    "the schema's actions do not form valid entities",
                    vec![Diagnostic::from_cedar(&e)],
                )
            })?,
            None => Entities::empty(),
        },
    };
    Ok(Compiled {
        policies,
        schema,
        entities,
    })
}
