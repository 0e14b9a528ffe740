//! Signing keys: created per tenant, sealed under the KEK, published in the
//! JWKS, rotated with an overlap window.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Header, Validation, decode, decode_header, encode};
use rsp_consensus::testing::TestCluster;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::keys::{KeyService, SigningAlg};
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
        .rotate("acme", SigningAlg::ES256, now_ms(), 1500)
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
