//! Unauthenticated look-ups that would go to the leader are limited per
//! client address on each node: an unknown tenant (confirmed by a
//! linearizable read before "not found") and every device user code
//! entered (RFC 8628 section 5.1). Known names cost nothing.

use std::net::SocketAddr;

use crate::browser;
use crate::support;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use browser::*;
use rsp_api::miss_limit::{MissLimiter, MissRule};
use support::*;

const BURST: usize = 3;

/// Browser nodes whose look-up buckets hold [`BURST`] tokens and never
/// refill.
async fn start_limited() -> Env {
    let mut env = start_browser(1).await;
    for state in &mut env.states {
        let rule = MissRule {
            per_sec: 0.0,
            burst: BURST as f64,
        };
        state.misses = MissLimiter::new(rule, state.clock().clone());
    }
    rebuild(&mut env);
    env
}

/// GET `path` from address `from`.
async fn get_from(env: &Env, from: [u8; 4], path: &str) -> Reply {
    let mut req = Request::get(path).body(Body::empty()).expect("request");
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((from, 40000))));
    Browser::default().send(env, 0, req).await
}

const ALICE: [u8; 4] = [192, 0, 2, 1];
const BOB: [u8; 4] = [192, 0, 2, 2];

#[tokio::test]
async fn unknown_tenants_past_an_address_budget_get_429_and_known_ones_still_answer() {
    let env = start_limited().await;
    let unknown = "/t/nobody/.well-known/openid-configuration";
    let known = format!("/t/{TENANT}/.well-known/openid-configuration");
    for _ in 0..BURST {
        let miss = get_from(&env, ALICE, unknown).await;
        assert_eq!(miss.status, StatusCode::NOT_FOUND, "{}", miss.html);
        // A tenant this node holds is answered locally and takes nothing.
        let hit = get_from(&env, ALICE, &known).await;
        assert_eq!(hit.status, StatusCode::OK, "{}", hit.html);
    }
    let limited = get_from(&env, ALICE, unknown).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.html
    );
    assert!(!limited.header(header::RETRY_AFTER.as_str()).is_empty());
    assert!(
        limited.html.contains("too_many_requests"),
        "{}",
        limited.html
    );
    let hit = get_from(&env, ALICE, &known).await;
    assert_eq!(hit.status, StatusCode::OK, "{}", hit.html);
    // Another address has its own budget.
    let other = get_from(&env, BOB, unknown).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.html);
}

#[tokio::test]
async fn device_user_codes_entered_past_an_address_budget_get_429() {
    let env = start_limited().await;
    let path = format!("/t/{TENANT}/device?user_code=BCDF-GHJK");
    for _ in 0..BURST {
        let miss = get_from(&env, ALICE, &path).await;
        assert_eq!(miss.status, StatusCode::BAD_REQUEST, "{}", miss.html);
    }
    let limited = get_from(&env, ALICE, &path).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.html
    );
    assert!(!limited.header(header::RETRY_AFTER.as_str()).is_empty());
    // The page without a code takes nothing; another address may still try.
    let form = get_from(&env, ALICE, &format!("/t/{TENANT}/device")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    let other = get_from(&env, BOB, &path).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.html);
}
