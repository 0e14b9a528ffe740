//! Property: on random policy sets (static, template-linked, with scopes of
//! every kind, conditions that hold, fail or error) and random requests,
//! decisions through the index equal decisions on the whole set, which
//! equal Cedar's own `Authorizer::is_authorized` on the same set.

use std::collections::BTreeMap;

use cedar_policy::{Authorizer, Context, Entities, PolicySet, Request};
use proptest::prelude::*;
use rsp_policies::compile::compile;
use rsp_policies::records::{PolicyVersion, StoredLink};
use rsp_policies::{DecisionRequest, Snapshot, parse_uid};
use serde_json::{Value, json};

const USERS: usize = 5;
const GROUPS: usize = 3;
const DOCS: usize = 5;
const FOLDERS: usize = 2;

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_string()),
        (0..USERS).prop_map(|i| format!(r#"principal == User::"u{i}""#)),
        (0..GROUPS).prop_map(|i| format!(r#"principal in Group::"g{i}""#)),
        Just("principal is User".to_string()),
        (0..GROUPS).prop_map(|i| format!(r#"principal is User in Group::"g{i}""#)),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_string()),
        Just(r#"action == Action::"view""#.to_string()),
        Just(r#"action in [Action::"view", Action::"edit"]"#.to_string()),
        Just(r#"action == Action::"edit""#.to_string()),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_string()),
        (0..DOCS).prop_map(|i| format!(r#"resource == Doc::"d{i}""#)),
        (0..FOLDERS).prop_map(|i| format!(r#"resource in Folder::"f{i}""#)),
        Just("resource is Doc".to_string()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" when { context.flag }".to_string()),
        (0i64..4).prop_map(|n| format!(" when {{ principal.level > {n} }}")),
        Just(" unless { resource.public }".to_string()),
        Just(" when { resource.owner == principal }".to_string()),
        // Errors when the context has no `missing`.
        Just(" when { context.missing == 1 }".to_string()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.75),
        principal_scope(),
        action_scope(),
        resource_scope(),
        condition(),
    )
        .prop_map(|(permit, p, a, r, c)| {
            let effect = if permit { "permit" } else { "forbid" };
            format!("{effect}({p}, {a}, {r}){c};")
        })
}

fn links() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0..USERS + 1, 0..FOLDERS), 0..4)
}

fn entities(user_groups: &[usize], group_parent: &[Option<usize>], doc_folder: &[usize]) -> Value {
    let mut out = Vec::new();
    for (i, g) in user_groups.iter().enumerate() {
        out.push(json!({"uid": {"type": "User", "id": format!("u{i}")},
            "attrs": {"level": i as i64}, "parents": [{"type": "Group", "id": format!("g{g}")}]}));
    }
    for (i, p) in group_parent.iter().enumerate() {
        let parents: Vec<Value> = p
            .iter()
            .filter(|p| **p > i)
            .map(|p| json!({"type": "Group", "id": format!("g{p}")}))
            .collect();
        out.push(json!({"uid": {"type": "Group", "id": format!("g{i}")}, "attrs": {}, "parents": parents}));
    }
    for (i, f) in doc_folder.iter().enumerate() {
        out.push(json!({"uid": {"type": "Doc", "id": format!("d{i}")},
            "attrs": {"public": i % 2 == 0, "owner": {"__entity": {"type": "User", "id": format!("u{}", i % USERS)}}},
            "parents": [{"type": "Folder", "id": format!("f{f}")}]}));
    }
    Value::Array(out)
}

fn request() -> impl Strategy<Value = (usize, bool, usize, Option<bool>)> {
    // User 5 and doc 5 exist in no entity; folder requests use index DOCS.
    (
        0..USERS + 1,
        any::<bool>(),
        0..DOCS + 2,
        prop::option::of(any::<bool>()),
    )
}

fn cedar_outcome(
    set: &PolicySet,
    entities: &Entities,
    r: &DecisionRequest,
) -> (bool, Vec<String>, Vec<String>) {
    let context = match &r.context {
        Some(c) => Context::from_json_value(c.clone(), None).expect("context"),
        None => Context::empty(),
    };
    let request = Request::new(
        r.principal.clone(),
        r.action.clone(),
        r.resource.clone(),
        context,
        None,
    )
    .expect("request");
    let response = Authorizer::new().is_authorized(&request, set, entities);
    let mut reason: Vec<String> = response
        .diagnostics()
        .reason()
        .map(|p| p.to_string())
        .collect();
    reason.sort();
    let mut errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(|e| match e {
            cedar_policy::AuthorizationError::PolicyEvaluationError(e) => e.policy_id().to_string(),
        })
        .collect();
    errors.sort();
    (
        response.decision() == cedar_policy::Decision::Allow,
        reason,
        errors,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sliced_decisions_equal_whole_set_and_cedar_decisions(
        policies in prop::collection::vec(policy(), 0..40),
        link_pairs in links(),
        user_groups in prop::collection::vec(0..GROUPS, USERS),
        group_parent in prop::collection::vec(prop::option::of(0..GROUPS), GROUPS),
        doc_folder in prop::collection::vec(0..FOLDERS, DOCS),
        requests in prop::collection::vec(request(), 1..20),
    ) {
        let mut text = policies.join("\n");
        text.push_str("\n@id(\"share\") permit(principal == ?principal, action == Action::\"view\", resource in ?resource);");
        let links: Vec<StoredLink> = link_pairs.iter().enumerate().map(|(i, (u, f))| StoredLink {
            id: format!("link{i}"),
            template: "share".into(),
            values: BTreeMap::from([
                ("?principal".to_string(), format!(r#"User::"u{u}""#)),
                ("?resource".to_string(), format!(r#"Folder::"f{f}""#)),
            ]),
            author: "p".into(),
            time_ms: 0,
        }).collect();
        let ents = entities(&user_groups, &group_parent, &doc_folder);
        let version = PolicyVersion { version: 1, policies: text, schema: None, author: "p".into(), time_ms: 0, restored_from: None };
        let compiled = compile(Some(&version), &links, Some(&ents)).expect("compiles");
        let snapshot = Snapshot::build(1, Default::default(), compiled.clone()).expect("indexes");
        for (u, edit, d, flag) in requests {
            let resource = if d == DOCS + 1 { r#"Folder::"f0""#.to_string() } else { format!(r#"Doc::"d{d}""#) };
            let r = DecisionRequest {
                principal: parse_uid(&json!(format!(r#"User::"u{u}""#)), "p").expect("uid"),
                action: parse_uid(&json!(if edit { r#"Action::"edit""# } else { r#"Action::"view""# }), "a").expect("uid"),
                resource: parse_uid(&json!(resource), "r").expect("uid"),
                context: flag.map(|f| json!({"flag": f})),
                entities: vec![],
            };
            let sliced = snapshot.decide(&r, true).expect("sliced");
            let whole = snapshot.decide(&r, false).expect("whole");
            prop_assert_eq!(&sliced, &whole);
            let (allow, reason, errors) = cedar_outcome(&compiled.policies, &compiled.entities, &r);
            prop_assert_eq!(sliced.decision == cedar_policy::Decision::Allow, allow);
            prop_assert_eq!(&sliced.reason, &reason);
            let ids: Vec<String> = sliced.errors.iter().map(|e| e.policy_id.clone()).collect();
            prop_assert_eq!(ids, errors);
        }
    }
}
