//! A policy write acknowledged through node A governs the very next
//! decision on node C, over HTTP, round after round.

use crate::authz;
use crate::support;

use authz::*;
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_policy_write_on_node_a_governs_a_decision_on_node_c_right_after() {
    let env = start(3).await;
    env.tenant("acme").await;
    env.settle().await;
    let body = ask(r#"User::"alice""#, r#"Action::"view""#, r#"Doc::"1""#);
    // C has loaded the tenant's (empty) set before the writes start.
    assert_eq!(
        decision(&is_authorized_on(&env, 2, "acme", ADMIN, body.clone()).await),
        "Deny"
    );
    for round in 0..6 {
        let (policy, expected) = if round % 2 == 0 {
            (
                "permit(principal == User::\"alice\", action, resource);",
                "Allow",
            )
        } else {
            (
                "forbid(principal == User::\"alice\", action, resource);",
                "Deny",
            )
        };
        let a = put_policies(&env, 0, "acme", policy, None).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["version"], json!(round + 1));
        let c = is_authorized_on(&env, 2, "acme", ADMIN, body.clone()).await;
        assert_eq!(decision(&c), expected, "round {round}: {}", c.body);
    }
}
