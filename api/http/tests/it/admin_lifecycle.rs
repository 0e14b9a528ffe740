//! The admin lifecycle of users, clients and tenants across three nodes:
//! create on one, page through on another, change on a third; disabling,
//! a new password, secret rotation and deletion in force on every node at
//! once; `If-Match`; bad input refused with stable codes and nothing
//! changed.

use std::collections::HashSet;

use crate::{authz, support};

use authz::*;
use axum::http::StatusCode;
use rsp_actors::RuntimeConfig;
use serde_json::{Value, json};
use support::*;

const TENANT: &str = "acme";

async fn three_nodes() -> Env {
    let mut env = start(3).await;
    env.with_runtimes(RuntimeConfig::default).await;
    env.tenant(TENANT).await;
    env.settle().await;
    env
}

fn users(tenant: &str) -> String {
    format!("/admin/v1/tenants/{tenant}/users")
}

async fn create_user(env: &Env, node: usize, username: &str) -> String {
    let a = call(
        env,
        node,
        "POST",
        &users(TENANT),
        Some(ADMIN),
        Some(json!({"username": username, "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.str("id")
}

/// Every item of a listing, page by page on `node`.
async fn walk(env: &Env, node: usize, path: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10_000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let a = call(env, node, "GET", &url, Some(ADMIN), None).await;
        assert_eq!(a.status, StatusCode::OK, "{url}: {}", a.body);
        let page = a.body["items"].as_array().expect("items").clone();
        assert!(page.len() <= limit);
        items.extend(page);
        match a.body["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return items,
        }
    }
    panic!("the listing never ended");
}

fn etag(a: &Answer) -> String {
    a.headers
        .get("etag")
        .expect("an ETag")
        .to_str()
        .expect("ascii")
        .to_string()
}

async fn with_if_match(
    env: &Env,
    node: usize,
    method: &str,
    path: &str,
    tag: &str,
    body: Option<Value>,
) -> Answer {
    let mut req = json_request(method, path, Some(ADMIN), body.as_ref());
    req.headers_mut()
        .insert("if-match", tag.parse().expect("header"));
    env.send(node, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_are_created_on_one_node_paged_on_another_and_changed_on_a_third() {
    let env = three_nodes().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(create_user(&env, 0, &format!("user-{i}")).await);
    }
    // Paged on node 1 right after the creates through node 0.
    let listed = walk(&env, 1, &users(TENANT), 3).await;
    let listed_ids: Vec<String> = listed
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(listed_ids, ids, "every user once, in creation order");
    assert!(listed.iter().all(|u| u.get("password_hash").is_none()));
    // Filters.
    let one = call(
        &env,
        2,
        "GET",
        &format!("{}?username=USER-3", users(TENANT)),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        one.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        one.body
    );
    assert_eq!(one.body["items"][0]["id"], ids[3].as_str());
    let found = walk(&env, 2, &format!("{}?search=user-", users(TENANT)), 2).await;
    assert_eq!(found.len(), 7);

    // Changed on node 2 with the ETag read there; a stale ETag is refused.
    let path = format!("{}/{}", users(TENANT), ids[0]);
    let got = call(&env, 2, "GET", &path, Some(ADMIN), None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let first = etag(&got);
    let changed = with_if_match(
        &env,
        2,
        "PATCH",
        &path,
        &first,
        Some(json!({"email": "u0@example.com"})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_ne!(etag(&changed), first, "a write moves the ETag");
    let stale = with_if_match(
        &env,
        1,
        "PATCH",
        &path,
        &first,
        Some(json!({"email": "lost@example.com"})),
    )
    .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
    assert_eq!(stale.error(), "precondition_failed");
    let now = call(&env, 0, "GET", &path, Some(ADMIN), None).await;
    assert_eq!(
        now.body["email"], "u0@example.com",
        "the stale write changed nothing"
    );
    assert_eq!(etag(&now), etag(&changed), "every node gives the same ETag");

    // Deleted on node 1: not found on every node at once.
    let gone = call(&env, 1, "DELETE", &path, Some(ADMIN), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    for node in 0..3 {
        let a = call(&env, node, "GET", &path, Some(ADMIN), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "node {node}: {}", a.body);
        assert_eq!(a.error(), "user_not_found");
    }
    assert_eq!(walk(&env, 2, &users(TENANT), 100).await.len(), 6);
    // The username is free again.
    create_user(&env, 2, "user-0").await;
}

/// Tokens of `user` for `client`: one session-bound refresh token and one
/// `offline_access` refresh token.
async fn refresh_tokens(env: &Env, client: &TestClient, user: &str) -> (String, String) {
    let bound = env.code_tokens(TENANT, client, user, "openid").await;
    assert_eq!(bound.status, StatusCode::OK, "{}", bound.body);
    let offline = env
        .code_tokens(TENANT, client, user, "openid offline_access")
        .await;
    assert_eq!(offline.status, StatusCode::OK, "{}", offline.body);
    (bound.str("refresh_token"), offline.str("refresh_token"))
}

async fn refresh_on(env: &Env, node: usize, client: &TestClient, token: &str) -> Answer {
    env.form_on(
        node,
        TENANT,
        "/token",
        Some(&client.basic()),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn confidential(env: &Env) -> TestClient {
    let client = env
        .client(
            TENANT,
            ClientSpec::new(
                "web",
                "client_secret_basic",
                &["authorization_code", "refresh_token", "client_credentials"],
            ),
        )
        .await;
    env.settle().await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_or_deleted_user_is_refused_on_every_node_at_once() {
    let env = three_nodes().await;
    let client = confidential(&env).await;
    let carol = env.user(TENANT, "carol").await;
    let (bound, offline) = refresh_tokens(&env, &client, &carol).await;
    let access = env
        .code_tokens(TENANT, &client, &carol, "openid offline_access")
        .await
        .str("access_token");
    assert_eq!(
        env.introspect(TENANT, &client, &access).await.body["active"],
        true
    );

    let path = format!("{}/{carol}", users(TENANT));
    let a = call(
        &env,
        1,
        "PATCH",
        &path,
        Some(ADMIN),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // No settling: the answer came once every node had the change.
    for (token, what) in [(&bound, "session-bound"), (&offline, "offline")] {
        let r = refresh_on(&env, 2, &client, token).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.body);
        assert_eq!(r.error(), "invalid_grant", "{what}");
    }
    let seen = env.introspect(TENANT, &client, &access).await;
    assert_eq!(seen.body["active"], false, "{}", seen.body);
    for node in 0..3 {
        let login = env.states[node]
            .identity
            .users
            .check_password(TENANT, "carol", "correct horse battery".to_string().into())
            .await
            .expect("check");
        assert!(login.is_none(), "node {node} let a disabled user sign in");
    }
    // Enabled again: signing in works; the revoked session-bound family stays revoked.
    let a = call(
        &env,
        0,
        "PATCH",
        &path,
        Some(ADMIN),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let login = env.states[2]
        .identity
        .users
        .check_password(TENANT, "carol", "correct horse battery".to_string().into())
        .await
        .expect("check");
    assert!(login.is_some());
    let r = refresh_on(&env, 2, &client, &bound).await;
    assert_eq!(r.error(), "invalid_grant", "{}", r.body);

    // Deleted: the offline token (still live after re-enabling) dies too.
    let (_, offline) = refresh_tokens(&env, &client, &carol).await;
    let a = call(&env, 2, "DELETE", &path, Some(ADMIN), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let r = refresh_on(&env, 1, &client, &offline).await;
    assert_eq!(r.error(), "invalid_grant", "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_password_replaces_the_old_one_on_every_node_at_once() {
    let env = three_nodes().await;
    let dave = env.user(TENANT, "dave").await;
    let path = format!("{}/{dave}/password", users(TENANT));
    let short = call(
        &env,
        0,
        "PUT",
        &path,
        Some(ADMIN),
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
    let a = call(
        &env,
        0,
        "PUT",
        &path,
        Some(ADMIN),
        Some(json!({"password": "a brand new passphrase"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    for node in 0..3 {
        let users = &env.states[node].identity.users;
        let old = users
            .check_password(TENANT, "dave", "correct horse battery".to_string().into())
            .await
            .expect("check");
        assert!(old.is_none(), "node {node} still takes the old password");
        let new = users
            .check_password(TENANT, "dave", "a brand new passphrase".to_string().into())
            .await
            .expect("check");
        assert!(new.is_some(), "node {node} refuses the new password");
    }
    let unknown = call(
        &env,
        1,
        "PUT",
        &format!("{}/nobody/password", users(TENANT)),
        Some(ADMIN),
        Some(json!({"password": "a brand new passphrase"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_are_listed_changed_rotated_and_deleted_across_nodes() {
    let env = three_nodes().await;
    let client = confidential(&env).await;
    let base = format!("/admin/v1/tenants/{TENANT}/clients");
    let listed = walk(&env, 1, &base, 1).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["client_id"], "web");
    assert_eq!(listed[0]["has_secret"], true);
    assert!(
        !listed[0].to_string().contains("secret_hash"),
        "{}",
        listed[0]
    );

    let path = format!("{base}/web");
    let got = call(&env, 2, "GET", &path, Some(ADMIN), None).await;
    let tag = etag(&got);
    let a = with_if_match(
        &env,
        2,
        "PATCH",
        &path,
        &tag,
        Some(json!({"redirect_uris": ["https://app.example/new"]})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["redirect_uris"], json!(["https://app.example/new"]));
    assert_eq!(
        a.body["grant_types"], got.body["grant_types"],
        "other fields kept"
    );
    for (body, code) in [
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_client_metadata",
        ),
        (json!({"client_id": "other"}), "invalid_client_metadata"),
        (
            json!({"token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
    ] {
        let bad = call(&env, 0, "PATCH", &path, Some(ADMIN), Some(body.clone())).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{body}: {}", bad.body);
        assert_eq!(bad.error(), code, "{body}");
    }

    // Rotation: the old secret is refused on every node at once.
    let r = call(
        &env,
        0,
        "POST",
        &format!("{path}/secret"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fresh = TestClient {
        id: "web".into(),
        secret: Some(r.str("client_secret")),
    };
    for node in 0..3 {
        let old = env
            .form_on(
                node,
                TENANT,
                "/token",
                Some(&client.basic()),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(
            old.status,
            StatusCode::UNAUTHORIZED,
            "node {node}: {}",
            old.body
        );
        let new = env
            .form_on(
                node,
                TENANT,
                "/token",
                Some(&fresh.basic()),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(new.status, StatusCode::OK, "node {node}: {}", new.body);
    }
    // With a grace period the previous secret goes on working for a while.
    let r = call(
        &env,
        1,
        "POST",
        &format!("{path}/secret"),
        Some(ADMIN),
        Some(json!({"grace_period_secs": 600})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["previous_secret_expires_ms"].is_u64(), "{}", r.body);
    let newest = TestClient {
        id: "web".into(),
        secret: Some(r.str("client_secret")),
    };
    for c in [&fresh, &newest] {
        let a = env
            .form_on(
                2,
                TENANT,
                "/token",
                Some(&c.basic()),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }

    let gone = call(&env, 2, "DELETE", &path, Some(ADMIN), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    for node in 0..3 {
        let a = call(&env, node, "GET", &path, Some(ADMIN), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "node {node}: {}", a.body);
        let t = env
            .form_on(
                node,
                TENANT,
                "/token",
                Some(&newest.basic()),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(
            t.status,
            StatusCode::UNAUTHORIZED,
            "node {node}: {}",
            t.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_are_listed_renamed_and_deleted_only_with_force_when_they_hold_data() {
    let env = three_nodes().await;
    for id in ["beta", "gamma"] {
        let a = call(
            &env,
            0,
            "POST",
            "/admin/v1/tenants",
            Some(ADMIN),
            Some(json!({"id": id})),
        )
        .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    }
    let ids: Vec<Value> = walk(&env, 1, "/admin/v1/tenants", 2)
        .await
        .into_iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("acme"), json!("beta"), json!("gamma")]);

    let a = call(
        &env,
        2,
        "PATCH",
        "/admin/v1/tenants/beta",
        Some(ADMIN),
        Some(json!({"display_name": "Beta Corp"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["display_name"], "Beta Corp");
    let a = call(
        &env,
        2,
        "PATCH",
        "/admin/v1/tenants/beta",
        Some(ADMIN),
        Some(json!({"home_region": "eu"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED, "{}", a.body);
    let a = with_if_match(&env, 0, "DELETE", "/admin/v1/tenants/beta", "\"1\"", None).await;
    assert_eq!(a.status, StatusCode::PRECONDITION_FAILED, "{}", a.body);

    // acme holds a user: refused without force, on any node.
    create_user(&env, 0, "someone").await;
    let a = call(
        &env,
        1,
        "DELETE",
        "/admin/v1/tenants/acme",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert_eq!(a.error(), "tenant_not_empty");
    let a = call(
        &env,
        1,
        "DELETE",
        "/admin/v1/tenants/acme?force=true",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    // An empty tenant goes without force.
    let a = call(
        &env,
        2,
        "DELETE",
        "/admin/v1/tenants/gamma",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    for node in 0..3 {
        for t in ["acme", "gamma"] {
            let a = call(
                &env,
                node,
                "GET",
                &format!("/admin/v1/tenants/{t}"),
                Some(ADMIN),
                None,
            )
            .await;
            assert_eq!(
                a.status,
                StatusCode::NOT_FOUND,
                "{t} on node {node}: {}",
                a.body
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_while_others_write_shows_no_user_twice_and_skips_none_that_stayed() {
    let env = three_nodes().await;
    let mut stayed = HashSet::new();
    for i in 0..25 {
        stayed.insert(create_user(&env, i % 3, &format!("base-{i:02}")).await);
    }
    let writer = {
        let states = env.states.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                let users = &states[i % 3].identity.users;
                let new = rsp_identity::users::NewUser {
                    username: format!("churn-{i:02}"),
                    password: "correct horse battery".to_string().into(),
                    email: None,
                    attributes: Default::default(),
                };
                let user = users.create(TENANT, new, 0).await.expect("create");
                if i % 2 == 0 {
                    users.delete(TENANT, &user.id, None).await.expect("delete");
                }
            }
        })
    };
    let mut seen = Vec::new();
    for round in 0..3 {
        let items = walk(&env, round % 3, &users(TENANT), 4).await;
        seen.push(items);
    }
    writer.await.expect("writer");
    for items in seen {
        let ids: Vec<&str> = items
            .iter()
            .map(|u| u["id"].as_str().expect("id"))
            .collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "a user listed twice");
        for id in &stayed {
            assert!(
                unique.contains(id.as_str()),
                "{id} existed throughout but was skipped"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_listing_and_change_requests_get_stable_codes_and_change_nothing() {
    let env = three_nodes().await;
    let id = create_user(&env, 0, "erin").await;
    let path = format!("{}/{id}", users(TENANT));
    let before = call(&env, 0, "GET", &path, Some(ADMIN), None).await;
    for (url, code) in [
        (
            format!("{}?after=garbage!", users(TENANT)),
            "invalid_cursor",
        ),
        (format!("{}?limit=0", users(TENANT)), "invalid_limit"),
        (format!("{}?limit=100000", users(TENANT)), "invalid_limit"),
        (format!("{}?limit=ten", users(TENANT)), "invalid_limit"),
        (format!("{}?colour=red", users(TENANT)), "invalid_request"),
        (
            format!("/admin/v1/tenants/{TENANT}/clients?after=dXNlcnMAdXNlci8x"),
            "invalid_cursor",
        ),
    ] {
        let a = call(&env, 1, "GET", &url, Some(ADMIN), None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{url}: {}", a.body);
        assert_eq!(a.error(), code, "{url}");
    }
    let bodies = [
        json!({"email": 7}),
        json!({"nickname": "unknown field"}),
        json!({"disabled": "yes"}),
        json!({"email": "x".repeat(300) + "@example.com"}),
        json!({"attributes": []}),
    ];
    for body in bodies {
        let a = call(&env, 2, "PATCH", &path, Some(ADMIN), Some(body.clone())).await;
        assert!(
            a.status.is_client_error(),
            "{body}: {} {}",
            a.status,
            a.body
        );
    }
    for tag in ["W/\"1\"", "12", "\"abc\""] {
        let a = with_if_match(
            &env,
            1,
            "PATCH",
            &path,
            tag,
            Some(json!({"email": "e@example.com"})),
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{tag}: {}", a.body);
        assert_eq!(a.error(), "invalid_etag");
    }
    let after = call(&env, 0, "GET", &path, Some(ADMIN), None).await;
    assert_eq!(after.body, before.body, "nothing changed");
    assert_eq!(etag(&after), etag(&before));
}
