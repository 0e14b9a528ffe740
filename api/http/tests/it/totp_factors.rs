//! TOTP second factors: codes from an independent RFC 6238 implementation
//! (HMAC-SHA1 and dynamic truncation written here, not totp-rs) are
//! accepted once, on any node; stale and wrong codes fail; seeds never leave
//! the server.

use std::sync::Arc;

use aws_lc_rs::hmac;
use rsp_consensus::testing::TestCluster;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::factors::FactorService;

/// RFC 4648 base32, no padding.
pub(crate) fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// RFC 6238 / RFC 4226 with HMAC-SHA1.
pub(crate) fn totp(seed: &[u8], unix_secs: u64, period: u64, digits: u32) -> String {
    let counter = unix_secs / period;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

#[test]
fn the_reference_implementation_matches_rfc_6238_appendix_b() {
    // RFC 6238 test vector: SHA1 seed "12345678901234567890", T=59 -> 94287082.
    assert_eq!(totp(b"12345678901234567890", 59, 30, 8), "94287082");
    assert_eq!(totp(b"12345678901234567890", 1111111109, 30, 8), "07081804");
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_accepted_once_on_any_node_and_stale_or_wrong_codes_fail() {
    let cluster = TestCluster::start(2).await.expect("cluster");
    let kek = Arc::new(KekCell::with(Kek::generate()));
    let node1 = FactorService::new(cluster.node(1).clone(), kek.clone());
    let node2 = FactorService::new(cluster.node(2).clone(), kek);
    let seed: [u8; 20] = rand::random();
    let info = node1
        .import_totp("acme", "alice", &base32(&seed), None, None, 0)
        .await
        .expect("import");
    assert_eq!((info.digits, info.period), (6, 30));
    assert!(
        serde_json::to_string(&info)
            .expect("json")
            .find(&base32(&seed))
            .is_none()
    );

    let now = now_secs();
    let code = totp(&seed, now, 30, 6);
    assert!(
        node2
            .verify_totp("acme", "alice", &code, now)
            .await
            .expect("verify"),
        "a fresh code is accepted"
    );
    assert!(
        !node1
            .verify_totp("acme", "alice", &code, now)
            .await
            .expect("verify"),
        "the same code on another node is a replay"
    );
    assert!(
        !node2
            .verify_totp("acme", "alice", &code, now)
            .await
            .expect("verify"),
        "and on the same node too"
    );

    let stale = totp(&seed, now - 120, 30, 6);
    assert!(
        !node1
            .verify_totp("acme", "alice", &stale, now)
            .await
            .expect("verify"),
        "two steps outside the window"
    );
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    assert!(
        !node1
            .verify_totp("acme", "alice", &wrong, now)
            .await
            .expect("verify")
    );
    assert!(
        !node1
            .verify_totp("acme", "alice", "abcdef", now)
            .await
            .expect("verify")
    );

    // The next step's code works once, whichever node sees it first.
    let later = now + 30;
    let next = totp(&seed, later, 30, 6);
    let (a, b) = tokio::join!(
        node1.verify_totp("acme", "alice", &next, later),
        node2.verify_totp("acme", "alice", &next, later)
    );
    let accepted = [a.expect("verify"), b.expect("verify")]
        .iter()
        .filter(|x| **x)
        .count();
    assert_eq!(
        accepted, 1,
        "two nodes racing on one code: exactly one accepts it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_seeds_are_validated_and_factors_can_be_listed_and_removed() {
    let cluster = TestCluster::start(1).await.expect("cluster");
    let factors = FactorService::new(
        cluster.node(1).clone(),
        Arc::new(KekCell::with(Kek::generate())),
    );
    assert!(
        factors
            .import_totp("acme", "bob", "not base32!", None, None, 0)
            .await
            .is_err()
    );
    assert!(
        factors
            .import_totp("acme", "bob", &base32(&[1u8; 5]), None, None, 0)
            .await
            .is_err(),
        "40 bits is too short"
    );
    assert!(
        factors
            .import_totp("acme", "bob", &base32(&[1u8; 20]), Some(9), None, 0)
            .await
            .is_err()
    );
    let f = factors
        .import_totp("acme", "bob", &base32(&[7u8; 20]), Some(8), Some(60), 0)
        .await
        .expect("import");
    assert!(factors.has_totp("acme", "bob").await.expect("has"));
    let listed = factors.list("acme", "bob").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].digits, listed[0].period), (8, 60));
    factors.delete("acme", "bob", &f.id).await.expect("delete");
    assert!(!factors.has_totp("acme", "bob").await.expect("has"));
    assert!(factors.delete("acme", "bob", &f.id).await.is_err());
}
