//! Signing keys: created per tenant, sealed under the KEK, published in the
//! JWKS, rotated with an overlap window.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Header, Validation, decode, decode_header, encode};
use rsp_consensus::testing::TestCluster;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::keys::{KeyService, KeySettings, KeyStatus, SigningAlg};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Claims {
    sub: String,
    exp: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn sign_and_verify(keys: &KeyService, tenant: &str, alg: SigningAlg) -> String {
    let signer = keys.signer(tenant, alg).await.expect("signer");
    let mut header = Header::new(alg.jwt());
    header.kid = Some(signer.kid.clone());
    let claims = Claims {
        sub: "alice".into(),
        exp: now_ms() / 1000 + 60,
    };
    // rsp's own signing path (cached key pair) and jsonwebtoken's: both
    // verify with the published key, under the pinned algorithm only.
    let ours = signer.sign_jwt(&header, &claims).expect("sign");
    let theirs = encode(&header, &claims, &signer.key).expect("sign");
    for token in [&ours, &theirs] {
        let kid = decode_header(token).expect("header").kid.expect("kid");
        let (pinned, key) = keys
            .verifier(tenant, &kid, now_ms())
            .await
            .expect("verifier");
        assert_eq!(pinned, alg.jwt());
        let back = decode::<Claims>(token, &key, &Validation::new(pinned)).expect("verify");
        assert_eq!(back.claims, claims);
    }
    // A header naming another algorithm is refused, never signed.
    let other = SigningAlg::ALL
        .into_iter()
        .find(|a| *a != alg)
        .expect("another algorithm");
    assert!(signer.sign_jwt(&Header::new(other.jwt()), &claims).is_err());
    ours
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_signs_and_verifies_and_the_jwks_has_no_private_parts() {
    let cluster = TestCluster::start(1).await.expect("cluster");
    let keys = KeyService::new(
        cluster.node(1).clone(),
        Arc::new(KekCell::with(Kek::generate())),
    );
    keys.ensure("acme", now_ms()).await.expect("ensure");
    for alg in SigningAlg::ALL {
        sign_and_verify(&keys, "acme", alg).await;
    }
    let jwks =
        serde_json::to_value(keys.jwks("acme", now_ms()).await.expect("jwks")).expect("json");
    let list = jwks["keys"].as_array().expect("keys");
    assert_eq!(list.len(), 3);
    for k in list {
        assert!(k["kid"].is_string() && k["alg"].is_string(), "{k}");
        assert!(
            k.get("d").is_none() && k.get("p").is_none(),
            "private material in the JWKS: {k}"
        );
    }
    // Stored records hold ciphertext, not a PKCS#8 key.
    for stored in keys.keys("acme").await.expect("records") {
        let text = serde_json::to_string(&stored).expect("json");
        assert!(!text.contains("PRIVATE KEY"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_keeps_verifying_during_the_overlap_and_stops_after() {
    let cluster = TestCluster::start(1).await.expect("cluster");
    let keys = KeyService::new(
        cluster.node(1).clone(),
        Arc::new(KekCell::with(Kek::generate())),
    );
    let old_token = sign_and_verify(&keys, "acme", SigningAlg::ES256).await;
    let old_kid = decode_header(&old_token).expect("header").kid.expect("kid");
    let new_kid = keys
        .rotate_now("acme", SigningAlg::ES256, now_ms(), 1500)
        .await
        .expect("rotate");
    assert_ne!(old_kid, new_kid);
    assert_eq!(
        keys.signer("acme", SigningAlg::ES256)
            .await
            .expect("signer")
            .kid,
        new_kid
    );
    assert!(
        keys.verifier("acme", &old_kid, now_ms()).await.is_ok(),
        "old key must verify during the overlap"
    );
    let jwks = keys.jwks("acme", now_ms()).await.expect("jwks");
    assert!(jwks.find(&old_kid).is_some() && jwks.find(&new_kid).is_some());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while keys.verifier("acme", &old_kid, now_ms()).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "old key still verifies after the overlap"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        keys.jwks("acme", now_ms())
            .await
            .expect("jwks")
            .find(&old_kid)
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_kek_cannot_use_the_keys() {
    let cluster = TestCluster::start(1).await.expect("cluster");
    let keys = KeyService::new(
        cluster.node(1).clone(),
        Arc::new(KekCell::with(Kek::generate())),
    );
    keys.ensure("acme", now_ms()).await.expect("ensure");
    let stranger = KeyService::new(
        cluster.node(1).clone(),
        Arc::new(KekCell::with(Kek::generate())),
    );
    assert!(stranger.signer("acme", SigningAlg::ES256).await.is_err());
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// One node on a manual clock, and a key service on it.
async fn clocked() -> (TestCluster, rsp_consensus::ManualClock, KeyService) {
    let (clock, hand) = rsp_consensus::Clock::manual(now_ms());
    let cluster = TestCluster::start_with(1, &|c| c.clock = clock.clone())
        .await
        .expect("cluster");
    let keys = KeyService::new(cluster.node(1).clone(), Arc::new(KekCell::with(kek())));
    (cluster, hand, keys)
}

/// One KEK for every key service of these tests that shares keys.
fn kek() -> Kek {
    static KEK: std::sync::OnceLock<Kek> = std::sync::OnceLock::new();
    KEK.get_or_init(Kek::generate).clone()
}

fn clock_ms(cluster: &TestCluster) -> u64 {
    cluster.node(1).clock().now_ms()
}

/// A token signed by the tenant's ES256 key now, and its kid.
async fn es256_token(keys: &KeyService, now_ms: u64) -> (String, String) {
    let signer = keys
        .signer("acme", SigningAlg::ES256)
        .await
        .expect("signer");
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(signer.kid.clone());
    let claims = Claims {
        sub: "alice".into(),
        exp: now_ms / 1000 + 600,
    };
    (signer.sign_jwt(&header, &claims).expect("sign"), signer.kid)
}

async fn verifies(keys: &KeyService, token: &str, now_ms: u64) -> bool {
    let kid = decode_header(token).expect("header").kid.expect("kid");
    let Ok((alg, key)) = keys.verifier("acme", &kid, now_ms).await else {
        return false;
    };
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    decode::<Claims>(token, &key, &validation).is_ok()
}

async fn jwks_has(keys: &KeyService, kid: &str, now_ms: u64) -> bool {
    keys.jwks("acme", now_ms)
        .await
        .expect("jwks")
        .find(kid)
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_publishes_the_next_key_a_day_before_it_signs_and_keeps_the_old_one_a_week() {
    let (cluster, hand, keys) = clocked().await;
    keys.ensure("acme", clock_ms(&cluster))
        .await
        .expect("ensure");
    let (old_token, old_kid) = es256_token(&keys, clock_ms(&cluster)).await;
    let run = keys
        .run_schedule("acme", clock_ms(&cluster))
        .await
        .expect("schedule");
    assert_eq!(run, Default::default(), "a new key is not due");

    // 89 days on (90 by default, published 24 hours ahead): the next key is
    // published, and the old one still signs.
    hand.advance(DAY * 89 + Duration::from_secs(1));
    let run = keys
        .run_schedule("acme", clock_ms(&cluster))
        .await
        .expect("schedule");
    assert_eq!(run.staged.len(), 3, "one successor per algorithm: {run:?}");
    assert!(run.activated.is_empty());
    let next = run
        .staged
        .iter()
        .find(|s| s.alg == SigningAlg::ES256)
        .expect("ES256 successor")
        .clone();
    assert!(next.activates_at_ms > clock_ms(&cluster));
    assert!(jwks_has(&keys, &next.kid, clock_ms(&cluster)).await);
    assert!(jwks_has(&keys, &old_kid, clock_ms(&cluster)).await);
    assert_eq!(es256_token(&keys, clock_ms(&cluster)).await.1, old_kid);
    let again = keys
        .run_schedule("acme", clock_ms(&cluster))
        .await
        .expect("schedule");
    assert_eq!(again, Default::default(), "staged twice: {again:?}");

    // At 90 days the next key signs; the old one keeps verifying.
    hand.advance(DAY);
    let run = keys
        .run_schedule("acme", clock_ms(&cluster))
        .await
        .expect("schedule");
    assert!(run.activated.contains(&next.kid), "{run:?}");
    assert_eq!(es256_token(&keys, clock_ms(&cluster)).await.1, next.kid);
    assert!(verifies(&keys, &old_token, clock_ms(&cluster)).await);
    assert!(jwks_has(&keys, &old_kid, clock_ms(&cluster)).await);

    // A week later the old key is gone from the JWKS and verifies nothing.
    hand.advance(DAY * 7 + Duration::from_secs(1));
    assert!(!verifies(&keys, &old_token, clock_ms(&cluster)).await);
    assert!(!jwks_has(&keys, &old_kid, clock_ms(&cluster)).await);
    assert!(jwks_has(&keys, &next.kid, clock_ms(&cluster)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_running_the_schedule_at_once_stage_and_activate_one_key_each() {
    let (cluster, hand, keys) = clocked().await;
    let other = KeyService::new(cluster.node(1).clone(), Arc::new(KekCell::with(kek())));
    keys.ensure("acme", clock_ms(&cluster))
        .await
        .expect("ensure");
    let staged_count = |list: &[rsp_identity::keys::StoredKey]| {
        list.iter().filter(|k| k.status == KeyStatus::Next).count()
    };
    for step in [DAY * 90, DAY] {
        hand.advance(step);
        let now = clock_ms(&cluster);
        let (a, b) = tokio::join!(
            keys.run_schedule("acme", now),
            other.run_schedule("acme", now)
        );
        let (a, b) = (a.expect("schedule"), b.expect("schedule"));
        let list = keys.keys("acme").await.expect("keys");
        if step == DAY {
            assert_eq!(a.activated.len() + b.activated.len(), 3, "{a:?} / {b:?}");
            assert_eq!(staged_count(&list), 0);
            assert_eq!(
                list.iter()
                    .filter(|k| k.status == KeyStatus::Active)
                    .count(),
                3
            );
        } else {
            assert_eq!(staged_count(&list), 3, "{list:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sets_its_own_rotation_period() {
    let (cluster, hand, keys) = clocked().await;
    keys.ensure("acme", clock_ms(&cluster))
        .await
        .expect("ensure");
    let bad = KeySettings {
        rotation_days: 1,
        publish_hours: 24,
        retire_days: 7,
    };
    assert!(keys.set_settings("acme", &bad).await.is_err());
    let weekly = KeySettings {
        rotation_days: 7,
        publish_hours: 1,
        retire_days: 2,
    };
    keys.set_settings("acme", &weekly).await.expect("settings");
    assert_eq!(keys.settings("acme").await.expect("settings"), weekly);
    hand.advance(DAY * 7);
    let run = keys
        .run_schedule("acme", clock_ms(&cluster))
        .await
        .expect("schedule");
    assert_eq!(run.staged.len(), 3, "{run:?}");
    let run = keys
        .run_schedule("acme", clock_ms(&cluster))
        .await
        .expect("schedule");
    assert_eq!(run.activated.len(), 3, "due at once: {run:?}");
    let retiring = keys.keys("acme").await.expect("keys");
    let retire_at = retiring
        .iter()
        .find_map(|k| k.retire_at_ms)
        .expect("a previous key");
    assert_eq!(retire_at, clock_ms(&cluster) + 2 * DAY.as_millis() as u64);
}

/// `POST /admin/v1/tenants/{t}/keys/rotate` through the HTTP app.
async fn rotate_over_http(env: &crate::support::Env, body: &str) -> crate::support::Answer {
    use axum::body::Body;
    use axum::http::{Request, header};
    let req = Request::post("/admin/v1/tenants/acme/keys/rotate")
        .header(header::AUTHORIZATION, "Bearer admin")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    env.send(0, req).await
}

async fn jwks_kids(env: &crate::support::Env) -> Vec<String> {
    use axum::body::Body;
    use axum::http::Request;
    let a = env
        .send(
            0,
            Request::get("/t/acme/jwks")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(a.body).expect("jwks");
    set.keys
        .into_iter()
        .filter_map(|k| k.common.key_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotate_route_publishes_a_key_at_once_and_tokens_signed_before_keep_working() {
    use crate::support::{ClientSpec, start_clocked};
    use axum::http::StatusCode;
    let (env, hand) = start_clocked(1, rsp_identity::oauth::config::OidcConfig::default()).await;
    env.tenant("acme").await;
    let mut spec = ClientSpec::new("svc", "client_secret_basic", &["client_credentials"]);
    spec.scopes = &["read"];
    let c = env.client("acme", spec).await;
    let before = env
        .client_credentials("acme", &c, "read")
        .await
        .str("access_token");
    let old_kid = decode_header(&before).expect("header").kid.expect("kid");

    // Only the operator may rotate.
    let req = axum::http::Request::post("/admin/v1/tenants/acme/keys/rotate")
        .body(axum::body::Body::empty())
        .expect("request");
    assert_eq!(env.send(0, req).await.status, StatusCode::UNAUTHORIZED);

    let a = rotate_over_http(&env, r#"{"alg": "ES256"}"#).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let new_kid = a.body["keys"][0]["kid"].as_str().expect("kid").to_string();
    assert_ne!(new_kid, old_kid);
    let kids = jwks_kids(&env).await;
    assert!(
        kids.contains(&new_kid) && kids.contains(&old_kid),
        "{kids:?}"
    );
    // Published, not signing yet: the next token is still the old key's.
    let during = env
        .client_credentials("acme", &c, "read")
        .await
        .str("access_token");
    assert_eq!(
        decode_header(&during).expect("header").kid.as_deref(),
        Some(old_kid.as_str())
    );
    let i = env.introspect("acme", &c, &before).await;
    assert_eq!(i.body["active"], true, "{}", i.body);

    // After the publication lead the schedule makes it sign.
    hand.advance(DAY + Duration::from_secs(1));
    let now = env.state().clock().now_ms();
    let run = env
        .state()
        .identity
        .keys
        .run_schedule("acme", now)
        .await
        .expect("schedule");
    assert!(run.activated.contains(&new_kid), "{run:?}");
    let after = env
        .client_credentials("acme", &c, "read")
        .await
        .str("access_token");
    assert_eq!(
        decode_header(&after).expect("header").kid.as_deref(),
        Some(new_kid.as_str())
    );
    let kids = jwks_kids(&env).await;
    assert!(
        kids.contains(&new_kid) && kids.contains(&old_kid),
        "{kids:?}"
    );

    // An immediate rotation signs at once; a token of the key it replaced
    // still introspects as active.
    let a = rotate_over_http(&env, r#"{"alg": "ES256", "immediate": true}"#).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let third = a.body["keys"][0]["kid"].as_str().expect("kid").to_string();
    let now_token = env
        .client_credentials("acme", &c, "read")
        .await
        .str("access_token");
    assert_eq!(
        decode_header(&now_token).expect("header").kid.as_deref(),
        Some(third.as_str())
    );
    for token in [&after, &now_token] {
        let i = env.introspect("acme", &c, token).await;
        assert_eq!(i.body["active"], true, "{}", i.body);
    }
    let a = rotate_over_http(&env, r#"{"alg": "HS256"}"#).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
}
