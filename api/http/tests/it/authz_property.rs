//! Property: decisions through the HTTP API equal in-process
//! `cedar_policy::Authorizer::is_authorized` decisions on the same policies
//! and entities, for random policy sets and random requests, both with the
//! index (the default) and with slicing off.

use crate::authz;
use crate::support;

use authz::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rsp_policies::cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, Policy, PolicyId, PolicySet, Request,
};
use serde_json::{Value, json};
use std::str::FromStr;
use support::*;

const T: &str = "acme";

fn scope_policy() -> impl Strategy<Value = String> {
    let principal = prop_oneof![
        Just("principal".to_string()),
        (0..4usize).prop_map(|i| format!(r#"principal == User::"u{i}""#)),
        (0..2usize).prop_map(|i| format!(r#"principal in Group::"g{i}""#)),
        Just("principal is User".to_string()),
    ];
    let action = prop_oneof![
        Just("action".to_string()),
        Just(r#"action == Action::"view""#.to_string()),
        Just(r#"action in [Action::"edit"]"#.to_string()),
    ];
    let resource = prop_oneof![
        Just("resource".to_string()),
        (0..4usize).prop_map(|i| format!(r#"resource == Doc::"d{i}""#)),
        Just(r#"resource in Folder::"f0""#.to_string()),
    ];
    let condition = prop_oneof![
        Just(String::new()),
        Just(" when { context.ok }".to_string()),
        Just(" unless { resource.locked }".to_string()),
        Just(" when { context.level > 2 }".to_string()),
    ];
    (
        prop::bool::weighted(0.7),
        principal,
        action,
        resource,
        condition,
    )
        .prop_map(|(permit, p, a, r, c)| {
            format!(
                "{}({p}, {a}, {r}){c};",
                if permit { "permit" } else { "forbid" }
            )
        })
}

fn entities() -> Value {
    json!([
        {"uid": {"type": "User", "id": "u0"}, "attrs": {}, "parents": [{"type": "Group", "id": "g0"}]},
        {"uid": {"type": "User", "id": "u1"}, "attrs": {}, "parents": [{"type": "Group", "id": "g1"}]},
        {"uid": {"type": "Group", "id": "g1"}, "attrs": {}, "parents": [{"type": "Group", "id": "g0"}]},
        {"uid": {"type": "Doc", "id": "d0"}, "attrs": {"locked": true}, "parents": [{"type": "Folder", "id": "f0"}]},
        {"uid": {"type": "Doc", "id": "d1"}, "attrs": {"locked": false}, "parents": [{"type": "Folder", "id": "f0"}]},
        {"uid": {"type": "Doc", "id": "d2"}, "attrs": {"locked": false}, "parents": []}
    ])
}

/// (user, edit?, document, context (ok, level)).
type Ask = (usize, bool, usize, Option<(bool, i64)>);

#[derive(Debug)]
struct Case {
    policies: Vec<String>,
    requests: Vec<Ask>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(scope_policy(), 0..25),
        prop::collection::vec(
            (
                0..5usize,
                any::<bool>(),
                0..4usize,
                prop::option::of((any::<bool>(), 0i64..5)),
            ),
            1..8,
        ),
    )
        .prop_map(|(policies, requests)| Case { policies, requests })
}

fn reference(
    case: &Case,
    entities: &Entities,
    p: &str,
    a: &str,
    r: &str,
    ctx: &Option<Value>,
) -> (String, Vec<String>) {
    let mut set = PolicySet::new();
    for (i, text) in case.policies.iter().enumerate() {
        set.add(Policy::parse(Some(PolicyId::new(format!("p{i}"))), text).expect("policy"))
            .expect("add");
    }
    let context = match ctx {
        Some(c) => Context::from_json_value(c.clone(), None).expect("context"),
        None => Context::empty(),
    };
    let uid = |s: &str| EntityUid::from_str(s).expect("uid");
    let request = Request::new(uid(p), uid(a), uid(r), context, None).expect("request");
    let response = Authorizer::new().is_authorized(&request, &set, entities);
    let mut reason: Vec<String> = response
        .diagnostics()
        .reason()
        .map(|id| id.to_string())
        .collect();
    reason.sort();
    let decision = match response.decision() {
        Decision::Allow => "Allow",
        Decision::Deny => "Deny",
    };
    (decision.to_string(), reason)
}

#[test]
fn decisions_through_the_api_equal_in_process_cedar_decisions() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (env, unsliced) = rt.block_on(async {
        let env = start(1).await;
        env.tenant(T).await;
        let a = put_entities(&env, T, entities()).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let mut state = env.state().clone();
        state.authz = rsp_api::authz::AuthzServices::new(
            state.consensus.clone(),
            rsp_policies::PolicyConfig {
                sliced: false,
                ..Default::default()
            },
        );
        (env, rsp_api::app(state))
    });
    let stored = Entities::from_json_value(entities(), None).expect("entities");
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(&case(), |case| {
            rt.block_on(async {
                let text: String = case
                    .policies
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("@id(\"p{i}\") {p}\n"))
                    .collect();
                let a = put_policies(&env, 0, T, &text, None).await;
                prop_assert_eq!(a.status, 200, "{}", a.body);
                for (u, edit, d, ctx) in &case.requests {
                    let p = format!(r#"User::"u{u}""#);
                    let act = if *edit {
                        r#"Action::"edit""#
                    } else {
                        r#"Action::"view""#
                    };
                    let r = format!(r#"Doc::"d{d}""#);
                    let ctx = ctx.map(|(ok, level)| json!({"ok": ok, "level": level}));
                    let mut body = ask(&p, act, &r);
                    if let Some(c) = &ctx {
                        body["context"] = c.clone();
                    }
                    let (want, want_reason) = reference(&case, &stored, &p, act, &r, &ctx);
                    let sliced = is_authorized(&env, T, body.clone()).await;
                    prop_assert_eq!(sliced.status, 200, "{}", sliced.body);
                    prop_assert_eq!(decision(&sliced), want.as_str());
                    prop_assert_eq!(&sliced.body["diagnostics"]["reason"], &json!(want_reason));
                    let whole = {
                        use tower::ServiceExt;
                        let resp = unsliced
                            .clone()
                            .oneshot(json_request(
                                "POST",
                                &format!("/t/{T}/authz/v1/is_authorized"),
                                Some(ADMIN),
                                Some(&body),
                            ))
                            .await
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                            .await
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        serde_json::from_slice::<Value>(&bytes)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?
                    };
                    prop_assert_eq!(&whole, &sliced.body);
                }
                Ok(())
            })
        })
        .expect("API decisions equal Cedar's");
}
