//! On a node with a tenant runtime, decisions use the snapshot that the
//! tenant's policy evaluator actor publishes, with the same freshness
//! guarantee: a write acknowledged through one node governs the next
//! decision on every node.

use crate::authz;
use crate::support;

use authz::*;
use rsp_actors::{RuntimeConfig, TenantRuntime};
use serde_json::json;
use support::*;

async fn with_runtimes(nodes: usize) -> (Env, Vec<TenantRuntime>) {
    let mut env = start(nodes).await;
    let runtimes = env.with_runtimes(RuntimeConfig::default).await;
    env.tenant("acme").await;
    env.settle().await;
    (env, runtimes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_use_the_evaluator_actors_snapshot_on_every_node() {
    let (env, runtimes) = with_runtimes(3).await;
    let ask_read = ask("User::\"alice\"", "Action::\"read\"", "Doc::\"1\"");
    for node in 0..3 {
        let a = is_authorized_on(&env, node, "acme", ADMIN, ask_read.clone()).await;
        assert_eq!(decision(&a), "Deny", "{}", a.body);
    }
    for (n, policy) in [
        "@id(\"p1\") permit (principal == User::\"alice\", action, resource);",
        "@id(\"p2\") forbid (principal, action == Action::\"read\", resource);",
    ]
    .iter()
    .enumerate()
    {
        let w = put_policies(&env, 0, "acme", policy, None).await;
        assert_eq!(w.status, 200, "{}", w.body);
        for node in 0..3 {
            let a = is_authorized_on(&env, node, "acme", ADMIN, ask_read.clone()).await;
            let (want, reason) = if n == 0 {
                ("Allow", "p1")
            } else {
                ("Deny", "p2")
            };
            assert_eq!(
                decision(&a),
                want,
                "node {node} after write {n}: {}",
                a.body
            );
            assert_eq!(a.body["diagnostics"]["reason"], json!([reason]));
        }
    }
    for (node, runtime) in runtimes.iter().enumerate() {
        let handle = runtime.tenant("acme").await.expect("tenant");
        let published = handle.policies().published().expect("published");
        assert_eq!(published.head.version, 2, "node {node}");
        // The node-level service held nothing: the actors did.
        assert_eq!(env.states[node].authz.policies.loaded_tenants(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authzen_and_batch_decide_through_the_actor_too() {
    let (env, runtimes) = with_runtimes(1).await;
    let w = put_policies(
        &env,
        0,
        "acme",
        "@id(\"p1\") permit (principal == user::\"alice\", action == Action::\"read\", resource);",
        None,
    )
    .await;
    assert_eq!(w.status, 200, "{}", w.body);
    let a = call(
        &env,
        0,
        "POST",
        "/t/acme/access/v1/evaluation",
        Some(ADMIN),
        Some(
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                    "resource": {"type": "doc", "id": "1"}}),
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["decision"], true);
    let b = call(
        &env,
        0,
        "POST",
        "/t/acme/authz/v1/is_authorized_batch",
        Some(ADMIN),
        Some(json!({"requests": [
            ask("user::\"alice\"", "Action::\"read\"", "doc::\"1\""),
            ask("user::\"bob\"", "Action::\"read\"", "doc::\"1\""),
        ]})),
    )
    .await;
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(b.body["results"][0]["decision"], "Allow");
    assert_eq!(b.body["results"][1]["decision"], "Deny");
    let handle = runtimes[0].tenant("acme").await.expect("tenant");
    assert!(handle.policies().published().is_some());
    assert_eq!(env.state().authz.policies.loaded_tenants(), 0);
}
