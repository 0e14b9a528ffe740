//! Slicing: only the policies that can apply to a request are evaluated.
//!
//! Cedar's authorizer evaluates every policy it is given, so its cost grows
//! with the size of the set. Each policy is put into exactly one *bucket* by
//! its scope, the most selective constraint first:
//!
//! | scope | bucket |
//! |---|---|
//! | `principal == P` | `PrincipalEq(P)` |
//! | `resource == R` | `ResourceEq(R)` |
//! | `principal in G` / `principal is T in G` | `PrincipalIn(G)` |
//! | `resource in G` / `resource is T in G` | `ResourceIn(G)` |
//! | `principal is T` | `PrincipalIs(T)` |
//! | `resource is T` | `ResourceIs(T)` |
//! | anything else | `Any` |
//!
//! A request `(p, a, r)` evaluates the buckets `PrincipalEq(p)`,
//! `ResourceEq(r)`, `PrincipalIn(x)` for `x` in `p` and its ancestors,
//! `ResourceIn(x)` likewise, `PrincipalIs(type of p)`, `ResourceIs(type of
//! r)` and `Any`, using the same (merged) entities the evaluation uses.
//!
//! Why this decides exactly as the whole set does: a policy in any other
//! bucket has a scope conjunct that is false for this request (`==`, `in`
//! and `is` never error), and Cedar evaluates the scope before the
//! conditions, so such a policy is neither satisfied nor erroring. The
//! results of the buckets combine as Cedar combines policies: Deny if any
//! forbid is satisfied (reasons: the satisfied forbids), else Allow if any
//! permit is (reasons: the satisfied permits), else Deny with no reason;
//! errors are the union. `tests/index_equivalence.rs` checks this against
//! the whole set on random policies and requests.

use std::collections::{BTreeSet, HashMap};

use cedar_policy::{
    Authorizer, Decision, Entities, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet,
    PrincipalConstraint, Request, ResourceConstraint,
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bucket {
    Any,
    PrincipalEq(EntityUid),
    ResourceEq(EntityUid),
    PrincipalIn(EntityUid),
    ResourceIn(EntityUid),
    PrincipalIs(EntityTypeName),
    ResourceIs(EntityTypeName),
}

/// The bucket a (static or template-linked) policy belongs to.
pub fn bucket_of(policy: &Policy) -> Bucket {
    let principal = policy.principal_constraint();
    let resource = policy.resource_constraint();
    if let PrincipalConstraint::Eq(p) = &principal {
        return Bucket::PrincipalEq(p.clone());
    }
    if let ResourceConstraint::Eq(r) = &resource {
        return Bucket::ResourceEq(r.clone());
    }
    match (principal, resource) {
        (PrincipalConstraint::In(g) | PrincipalConstraint::IsIn(_, g), _) => Bucket::PrincipalIn(g),
        (_, ResourceConstraint::In(g) | ResourceConstraint::IsIn(_, g)) => Bucket::ResourceIn(g),
        (PrincipalConstraint::Is(t), _) => Bucket::PrincipalIs(t),
        (_, ResourceConstraint::Is(t)) => Bucket::ResourceIs(t),
        _ => Bucket::Any,
    }
}

/// One evaluation's outcome, combined over the buckets it touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    /// Policies that determined the decision, sorted.
    pub reason: Vec<String>,
    /// Policies whose evaluation failed, with Cedar's message, sorted.
    pub errors: Vec<EvalError>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct EvalError {
    pub policy_id: String,
    pub message: String,
}

/// A policy set split into buckets.
#[derive(Debug, Clone, Default)]
pub struct PolicyIndex {
    buckets: HashMap<Bucket, PolicySet>,
    /// How many policies (static and linked) the set holds.
    len: usize,
}

impl PolicyIndex {
    /// Split `set` into buckets. Linked policies carry their template
    /// into their bucket's set.
    pub fn build(set: &PolicySet) -> Result<Self, Box<cedar_policy::PolicySetError>> {
        let mut buckets: HashMap<Bucket, PolicySet> = HashMap::new();
        let mut len = 0;
        for policy in set.policies() {
            len += 1;
            let bucket = buckets.entry(bucket_of(policy)).or_default();
            match policy.template_id() {
                None => bucket.add(policy.clone()).map_err(Box::new)?,
                Some(template_id) => {
                    if bucket.template(template_id).is_none()
                        && let Some(t) = set.template(template_id)
                    {
                        bucket.add_template(t.clone()).map_err(Box::new)?;
                    }
                    let values = policy.template_links().unwrap_or_default();
                    bucket
                        .link(template_id.clone(), policy.id().clone(), values)
                        .map_err(Box::new)?;
                }
            }
        }
        Ok(PolicyIndex { buckets, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The buckets that can hold policies applying to `principal` and
    /// `resource`, given `entities` (the ones the evaluation uses).
    fn candidates<'a>(
        &'a self,
        principal: &EntityUid,
        resource: &EntityUid,
        entities: &Entities,
    ) -> Vec<&'a PolicySet> {
        let mut keys = vec![
            Bucket::Any,
            Bucket::PrincipalEq(principal.clone()),
            Bucket::ResourceEq(resource.clone()),
            Bucket::PrincipalIn(principal.clone()),
            Bucket::ResourceIn(resource.clone()),
            Bucket::PrincipalIs(principal.type_name().clone()),
            Bucket::ResourceIs(resource.type_name().clone()),
        ];
        if let Some(ancestors) = entities.ancestors(principal) {
            keys.extend(ancestors.map(|a| Bucket::PrincipalIn(a.clone())));
        }
        if let Some(ancestors) = entities.ancestors(resource) {
            keys.extend(ancestors.map(|a| Bucket::ResourceIn(a.clone())));
        }
        keys.iter().filter_map(|k| self.buckets.get(k)).collect()
    }

    /// Evaluate `request` on the buckets that can apply to it.
    pub fn is_authorized(
        &self,
        authorizer: &Authorizer,
        request: &Request,
        entities: &Entities,
    ) -> Outcome {
        let (Some(principal), Some(resource)) = (request.principal(), request.resource()) else {
            return Outcome {
                decision: Decision::Deny,
                reason: Vec::new(),
                errors: Vec::new(),
            };
        };
        let mut permits = BTreeSet::new();
        let mut forbids = BTreeSet::new();
        let mut errors = BTreeSet::new();
        for set in self.candidates(principal, resource, entities) {
            let response = authorizer.is_authorized(request, set, entities);
            let reasons = response.diagnostics().reason().map(|id| id.to_string());
            match response.decision() {
                Decision::Allow => permits.extend(reasons),
                Decision::Deny => forbids.extend(reasons),
            }
            errors.extend(response.diagnostics().errors().map(eval_error));
        }
        combine(permits, forbids, errors)
    }
}

fn eval_error(e: &cedar_policy::AuthorizationError) -> EvalError {
    let cedar_policy::AuthorizationError::PolicyEvaluationError(inner) = e;
    EvalError {
        policy_id: inner.policy_id().to_string(),
        message: inner.inner().to_string(),
    }
}

fn combine(
    permits: BTreeSet<String>,
    forbids: BTreeSet<String>,
    errors: BTreeSet<EvalError>,
) -> Outcome {
    let (decision, reason) = if !forbids.is_empty() {
        (Decision::Deny, forbids)
    } else if !permits.is_empty() {
        (Decision::Allow, permits)
    } else {
        (Decision::Deny, BTreeSet::new())
    };
    Outcome {
        decision,
        reason: reason.into_iter().collect(),
        errors: errors.into_iter().collect(),
    }
}

/// Evaluate on the whole set (no slicing), in the same [`Outcome`] form.
pub fn is_authorized_whole(
    authorizer: &Authorizer,
    request: &Request,
    set: &PolicySet,
    entities: &Entities,
) -> Outcome {
    let response = authorizer.is_authorized(request, set, entities);
    Outcome {
        decision: response.decision(),
        reason: {
            let mut r: Vec<String> = response
                .diagnostics()
                .reason()
                .map(PolicyId::to_string)
                .collect();
            r.sort();
            r
        },
        errors: {
            let mut e: Vec<EvalError> = response.diagnostics().errors().map(eval_error).collect();
            e.sort();
            e
        },
    }
}
