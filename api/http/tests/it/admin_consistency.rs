//! Admin calls on a node that lags the leader: a tenant created a moment
//! ago through another node is never answered "not found". The lag is
//! injected by routing the leader's link to one follower into a closed
//! port, so that follower stops receiving the log while the other two
//! commit.

use std::time::Duration;

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;
use support::*;

fn create_user(tenant: &str) -> Request<Body> {
    Request::post(format!("/admin/v1/tenants/{tenant}/users"))
        .header(header::AUTHORIZATION, "Bearer admin")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"username": "late-user", "password": "a long enough password"}).to_string(),
        ))
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_node_never_says_a_new_tenant_is_not_found() {
    let env = start(3).await;
    let leader = env
        .cluster
        .leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let lagging = (1..=3).find(|id| *id != leader).expect("a follower");
    let leader_node = env.cluster.node(leader);
    leader_node
        .transport()
        .set_route(lagging, Some("127.0.0.1:1".into()));

    env.states[(leader - 1) as usize]
        .tenants
        .create("late", "Late", 0)
        .await
        .expect("tenant created through the leader");

    // The lagging node does not have the tenant yet: it must wait or say
    // it cannot answer, not claim the tenant does not exist.
    let a = env.send((lagging - 1) as usize, create_user("late")).await;
    assert_ne!(
        a.status,
        StatusCode::NOT_FOUND,
        "a lagging node answered not found: {}",
        a.body
    );

    // Healed, the same call succeeds there.
    leader_node.transport().set_route(lagging, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = env.send((lagging - 1) as usize, create_user("late")).await;
        if a.status == StatusCode::CREATED || a.status == StatusCode::CONFLICT {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the healed node still refuses: {} {}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_node_never_refuses_the_password_of_a_new_user() {
    let env = start(3).await;
    env.tenant("acme").await;
    env.settle().await;
    let leader = env
        .cluster
        .leader(Duration::from_secs(10))
        .await
        .expect("leader");
    let lagging = (1..=3).find(|id| *id != leader).expect("a follower");
    let leader_node = env.cluster.node(leader);
    leader_node
        .transport()
        .set_route(lagging, Some("127.0.0.1:1".into()));
    let new = rsp_identity::users::NewUser {
        username: "fresh".into(),
        password: "correct horse battery".to_string().into(),
        email: None,
        attributes: Default::default(),
    };
    env.states[(leader - 1) as usize]
        .identity
        .users
        .create("acme", new, 0)
        .await
        .expect("user created through the leader");

    // The lagging node does not hold the user: it must not answer "wrong
    // username or password"; it may only fail to answer.
    let users = &env.states[(lagging - 1) as usize].identity.users;
    let checked = users
        .check_password("acme", "fresh", "correct horse battery".to_string().into())
        .await;
    assert!(
        !matches!(checked, Ok(None)),
        "a lagging node refused a new user's right password"
    );

    leader_node.transport().set_route(lagging, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match users
            .check_password("acme", "fresh", "correct horse battery".to_string().into())
            .await
        {
            Ok(Some(_)) => break,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "the healed node still refuses: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
