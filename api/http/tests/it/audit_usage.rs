//! The audit trail and usage per day (`GET /admin/v1/tenants/{t}/audit`,
//! `.../audit/export`, `.../usage`): an admin change made on one node is
//! in the trail read from another as soon as the change is answered; a
//! failed sign-in is recorded with the caller's address and never the
//! password; filters and paging; and usage counts match the sign-ins,
//! tokens and decisions made on every node.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::{authz, browser, support};

use authz::{ADMIN, ask, call, is_authorized_on};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use browser::{Browser, PASSWORD, Reply, TENANT, authorize_path, code_request, start_browser};
use serde_json::{Value, json};
use support::*;

fn audit_path(query: &str) -> String {
    format!("/admin/v1/tenants/{TENANT}/audit{query}")
}

/// Every audit item of a listing answered 200.
fn items(a: &Answer) -> Vec<Value> {
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["items"].as_array().expect("items").clone()
}

/// Poll the trail on `node` until `want` holds (batched events land
/// within a fraction of a second).
async fn wait_for_events(
    env: &Env,
    node: usize,
    query: &str,
    want: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = call(env, node, "GET", &audit_path(query), Some(ADMIN), None).await;
        let found = items(&a);
        if want(&found) {
            return found;
        }
        assert!(Instant::now() < deadline, "audit {query}: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_admin_change_on_one_node_is_in_the_trail_read_from_another_at_once() {
    let env = start(3).await;
    env.tenant(TENANT).await;
    env.settle().await;
    let secret_password = "an unguessable passphrase 7";
    let a = call(
        &env,
        1,
        "POST",
        &format!("/admin/v1/tenants/{TENANT}/users"),
        Some(ADMIN),
        Some(json!({"username": "bob", "password": secret_password})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let bob = a.str("id");
    // No wait: the change was answered once its record committed.
    let a = call(
        &env,
        2,
        "GET",
        &audit_path("?type=user.created"),
        Some(ADMIN),
        None,
    )
    .await;
    let found = items(&a);
    assert_eq!(found.len(), 1, "{found:?}");
    let e = &found[0];
    assert_eq!(e["type"], "user.created");
    assert_eq!(e["actor"], "operator");
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["details"]["id"], bob.as_str(), "{e}");
    assert_eq!(e["details"]["username"], "bob", "{e}");
    assert!(e["id"].is_string() && e["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(!a.body.to_string().contains(secret_password), "{}", a.body);

    // A refused change is a failure on the record; a read is no event.
    let a = call(
        &env,
        0,
        "POST",
        &format!("/admin/v1/tenants/{TENANT}/users"),
        Some(ADMIN),
        Some(json!({"username": "bob", "password": secret_password})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let failed = items(
        &call(
            &env,
            2,
            "GET",
            &audit_path("?outcome=failure"),
            Some(ADMIN),
            None,
        )
        .await,
    );
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["details"]["status"], 409);

    // A client's secret never reaches the trail.
    let a = call(
        &env,
        0,
        "POST",
        &format!("/admin/v1/tenants/{TENANT}/clients"),
        Some(ADMIN),
        Some(json!({"client_id": "svc", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let client_secret = a.str("client_secret");
    let all = call(&env, 1, "GET", &audit_path(""), Some(ADMIN), None).await;
    assert!(
        !all.body.to_string().contains(&client_secret),
        "{}",
        all.body
    );
    let kinds: Vec<String> = items(&all)
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds,
        ["client.created", "user.created", "user.created"],
        "newest first"
    );

    // Pages of one, walked to the end, give the same three.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let a = call(
            &env,
            2,
            "GET",
            &audit_path(&format!("?limit=1{after}")),
            Some(ADMIN),
            None,
        )
        .await;
        seen.extend(items(&a).into_iter().map(|e| e["id"].clone()));
        match a.body["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
        assert!(seen.len() <= 3, "{seen:?}");
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    // The export: the same events as JSON lines.
    let export = env
        .send(
            2,
            authz::json_request(
                "GET",
                &format!("/admin/v1/tenants/{TENANT}/audit/export?type=user.*"),
                Some(ADMIN),
                None,
            ),
        )
        .await;
    assert_eq!(export.status, StatusCode::OK);
    let text = match &export.body {
        Value::String(s) => s.clone(),
        one => format!("{one}\n"),
    };
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().all(|e| e["type"] == "user.created"));

    // Bad filters are refused in the admin API's own format.
    for bad in [
        "?outcome=maybe",
        "?from=yesterday",
        "?limit=0",
        "?after=%%%",
        "?colour=red",
    ] {
        let a = call(&env, 0, "GET", &audit_path(bad), Some(ADMIN), None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.body);
        assert!(a.body["error"].is_string(), "{bad}: {}", a.body);
    }
    let a = call(
        &env,
        0,
        "GET",
        "/admin/v1/tenants/nope/audit",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    let a = call(&env, 0, "GET", &audit_path(""), None, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
}

/// Post the login form of `page` as a browser at `from`.
async fn login_from(
    b: &mut Browser,
    env: &Env,
    page: &Reply,
    from: SocketAddr,
    username: &str,
    password: &str,
) -> Reply {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            (
                "csrf_token",
                page.field("csrf_token").expect("csrf").as_str(),
            ),
            ("flow", page.field("flow").expect("flow").as_str()),
            ("username", username),
            ("password", password),
        ])
        .finish();
    let mut req = Request::post(format!("/t/{TENANT}/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = b.cookie_header() {
        req = req.header(header::COOKIE, c);
    }
    let mut req = req.body(Body::from(form)).expect("request");
    req.extensions_mut().insert(ConnectInfo(from));
    b.send(env, 0, req).await
}

#[tokio::test]
async fn sign_ins_are_audited_with_the_address_and_never_the_password() {
    let env = start_browser(2).await;
    env.settle().await;
    let web = browser::client(
        &env,
        "web",
        "client_secret_basic",
        &["authorization_code"],
        false,
    )
    .await;
    let alice = env.user(TENANT, "alice").await;
    let (_, challenge) = pkce();
    let path = authorize_path(&web.id, &code_request(&challenge, "s"));
    let from: SocketAddr = "203.0.113.7:50000".parse().expect("addr");
    let wrong = "Tr0ub4dor&3-not-it";

    let mut b = Browser::default();
    let page = b.get(&env, 0, &path).await;
    let r = login_from(&mut b, &env, &page, from, "alice", wrong).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.html);
    let failed = wait_for_events(&env, 1, "?type=login.failed", |e| !e.is_empty()).await;
    let e = &failed[0];
    assert_eq!(e["ip"], "203.0.113.7", "{e}");
    assert_eq!(e["outcome"], "failure");
    assert_eq!(e["details"]["username"], "alice");
    assert_eq!(e["details"]["reason"], "bad_password");
    let all = call(&env, 1, "GET", &audit_path(""), Some(ADMIN), None).await;
    assert!(!all.body.to_string().contains(wrong), "{}", all.body);

    let page = b.get(&env, 0, &path).await;
    let r = login_from(&mut b, &env, &page, from, "alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let ok = wait_for_events(&env, 1, "?type=login.*&outcome=success", |e| !e.is_empty()).await;
    assert_eq!(ok[0]["type"], "login.succeeded");
    assert_eq!(ok[0]["actor"], format!("user:{alice}"));
    assert_eq!(ok[0]["details"]["amr"], json!(["pwd"]));
    let all = call(&env, 1, "GET", &audit_path(""), Some(ADMIN), None).await;
    assert!(!all.body.to_string().contains(PASSWORD), "{}", all.body);

    // Failures up to the limit lock the account: audited too.
    let mut b = Browser::default();
    for _ in 0..browser::MAX_FAILURES {
        let page = b.get(&env, 0, &path).await;
        login_from(&mut b, &env, &page, from, "alice", wrong).await;
    }
    let locked = wait_for_events(&env, 1, "?type=user.locked", |e| !e.is_empty()).await;
    assert_eq!(locked[0]["details"]["username"], "alice");
}

fn usage_path() -> String {
    format!("/admin/v1/tenants/{TENANT}/usage")
}

/// Today's figures read from `node`, once `want` holds.
async fn wait_for_usage(env: &Env, node: usize, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = call(env, node, "GET", &usage_path(), Some(ADMIN), None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let days = a.body["days"].as_array().expect("days").clone();
        assert_eq!(days.len(), 30, "the last 30 days by default");
        let today = days.last().expect("today").clone();
        if want(&today) {
            return today;
        }
        assert!(Instant::now() < deadline, "usage: {today}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn usage_counts_match_the_requests_made_on_every_node() {
    let env = start_browser(2).await;
    env.settle().await;
    let web = browser::client(
        &env,
        "web",
        "client_secret_basic",
        &["authorization_code"],
        false,
    )
    .await;
    env.user(TENANT, "alice").await;
    env.user(TENANT, "bob").await;
    let svc = env
        .client(
            TENANT,
            ClientSpec::new("svc", "client_secret_basic", &["client_credentials"]),
        )
        .await;
    let (_, challenge) = pkce();
    let path = authorize_path(&web.id, &code_request(&challenge, "s"));
    // Three sign-ins of two users, on both nodes.
    for (node, user) in [(0, "alice"), (1, "alice"), (1, "bob")] {
        let mut b = Browser::default();
        let page = b.get(&env, node, &path).await;
        let r = b.login(&env, node, &page, user, PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    }
    // Five token responses and four decisions, on both nodes.
    for node in [0, 1, 1, 0, 1] {
        let form = [("grant_type", "client_credentials")];
        let a = env
            .form_on(node, TENANT, "/token", Some(&svc.basic()), &form)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    for node in [0, 1, 1, 1] {
        let a = is_authorized_on(
            &env,
            node,
            TENANT,
            ADMIN,
            ask("User::\"a\"", "Action::\"view\"", "Doc::\"1\""),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let expect = |d: &Value| {
        d["logins"] == 3
            && d["active_users"] == 2
            && d["tokens_issued"] == 5
            && d["authz_decisions"] == 4
    };
    // Node 0 merges its own counts on the read; node 1's come at its next
    // merge.
    let today = wait_for_usage(&env, 0, expect).await;
    assert_eq!(
        today["date"],
        rsp_identity::usage::date_of(now_secs() * 1000)
    );
    // Merged once, counted once: more merges change nothing.
    for state in &env.states {
        state.identity.usage.flush().await.expect("merge");
    }
    let again = wait_for_usage(&env, 1, |_| true).await;
    assert_eq!(again, today);

    // A node restarting counts on from what it merged: a new meter on the
    // same node (a new process) adds to the day, losing nothing.
    let restarted = rsp_identity::usage::UsageMeter::new(
        env.cluster.nodes[1].consensus.clone(),
        rsp_identity::tenants::TenantService::new(env.cluster.nodes[1].consensus.clone()),
    );
    restarted.token_issued(TENANT);
    restarted.login(TENANT, "carol-id");
    restarted.flush().await.expect("merge");
    let after = wait_for_usage(&env, 0, |_| true).await;
    assert_eq!(after["tokens_issued"], 6, "{after}");
    assert_eq!(after["logins"], 4, "{after}");
    assert_eq!(after["active_users"], 3, "{after}");

    for bad in [
        "?from=2026-13-01",
        "?from=2026-12-08&to=2026-12-07",
        "?from=2024-01-01&to=2026-01-01",
    ] {
        let a = call(
            &env,
            0,
            "GET",
            &format!("{}{bad}", usage_path()),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.body);
    }
}
