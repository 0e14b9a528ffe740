//! Recovery codes and pending TOTP seeds at the storage level: what is
//! replicated holds neither a code nor a seed in clear; a code works once
//! even when two nodes see it at the same moment; a new set replaces the
//! old one; a pending seed becomes a factor only with a valid first code.

use std::sync::Arc;

use aws_lc_rs::hmac;
use rsp_consensus::Consistency;
use rsp_consensus::testing::TestCluster;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::factors::FactorService;
use rsp_identity::recovery::{CODES_PER_SET, RecoveryService};

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The store's revision on node 1 (every write moves it).
fn revision(cluster: &TestCluster) -> u64 {
    cluster
        .node(1)
        .read_info(Consistency::Local)
        .expect("read info")
        .revision
}

/// Everything stored in the tenant's keyspace under `prefix`, as text.
async fn stored(cluster: &TestCluster, prefix: &str) -> String {
    let (kvs, _) = cluster
        .node(1)
        .range("t.acme", prefix.as_bytes(), 100, Consistency::Linearizable)
        .await
        .expect("range");
    kvs.iter()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_code_works_once_even_when_two_nodes_race_and_only_hashes_are_stored() {
    let cluster = TestCluster::start(2).await.expect("cluster");
    let kek = Arc::new(KekCell::with(Kek::generate()));
    let node1 = RecoveryService::new(cluster.node(1).clone(), kek.clone());
    let node2 = RecoveryService::new(cluster.node(2).clone(), kek);
    let codes = node1.generate("acme", "alice", 0).await.expect("generate");
    assert_eq!(codes.0.len(), CODES_PER_SET);

    let record = stored(&cluster, "recovery/").await;
    for c in &codes.0 {
        assert!(!record.contains(c.as_str()), "a code in clear: {record}");
        assert!(!record.contains(&c.replace('-', "")), "{record}");
    }

    for c in &codes.0 {
        let (a, b) = tokio::join!(
            node1.redeem("acme", "alice", c),
            node2.redeem("acme", "alice", c)
        );
        let won = [a.expect("redeem"), b.expect("redeem")]
            .iter()
            .filter(|x| **x)
            .count();
        assert_eq!(won, 1, "two nodes racing on one code: exactly one accepts");
    }
    assert_eq!(node2.remaining("acme", "alice").await.expect("count"), 0);
    assert!(!node1.redeem("acme", "alice", "").await.expect("redeem"));
    assert!(
        !node1
            .redeem("acme", "bob", &codes.0[0])
            .await
            .expect("redeem")
    );

    // A new set replaces the old one.
    let first = node1.generate("acme", "carol", 0).await.expect("generate");
    let second = node2.generate("acme", "carol", 0).await.expect("generate");
    assert!(
        !node1
            .redeem("acme", "carol", &first.0[0])
            .await
            .expect("redeem")
    );
    assert!(
        node1
            .redeem("acme", "carol", &second.0[0])
            .await
            .expect("redeem")
    );
    assert_eq!(
        node1.remaining("acme", "carol").await.expect("count"),
        CODES_PER_SET - 1
    );
}

/// RFC 4648 base32 decoding.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base32") as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}

/// RFC 6238, HMAC-SHA1, 6 digits, 30 s (written here, not totp-rs).
fn totp_at(seed: &[u8], unix_secs: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let mac = hmac::sign(&key, &(unix_secs / 30).to_be_bytes());
    let mac = mac.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    format!("{:06}", binary % 1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_totp_seed_is_sealed_and_becomes_a_factor_only_with_a_valid_code() {
    let cluster = TestCluster::start(2).await.expect("cluster");
    let kek = Arc::new(KekCell::with(Kek::generate()));
    let node1 = FactorService::new(cluster.node(1).clone(), kek.clone());
    let node2 = FactorService::new(cluster.node(2).clone(), kek);
    let now = now_secs();
    let before = revision(&cluster);
    let (e, pending) = node1
        .begin_totp("acme", "alice", "acme", "alice@example.com", now * 1000)
        .expect("begin");
    assert!(
        e.uri
            .starts_with("otpauth://totp/acme:alice%40example.com?")
    );
    assert!(e.uri.contains(e.secret_base32.as_str()));
    assert_eq!(revision(&cluster), before, "a pending seed is not written");
    let carried = serde_json::to_string(&pending).expect("pending as JSON");
    assert!(!carried.contains(e.secret_base32.as_str()), "{carried}");
    assert!(!format!("{e:?}").contains(e.secret_base32.as_str()));
    assert!(!format!("{pending:?}").contains(e.secret_base32.as_str()));
    assert!(node1.list("acme", "alice").await.expect("list").is_empty());

    let seed = base32_decode(&e.secret_base32);
    let wrong = format!(
        "{:06}",
        (totp_at(&seed, now).parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    assert!(
        node2
            .confirm_totp("acme", "alice", &pending, &wrong, now)
            .await
            .expect("confirm")
            .is_none()
    );
    let again = node2
        .reopen_totp(
            "acme",
            "alice",
            &pending,
            "acme",
            "alice@example.com",
            now * 1000,
        )
        .expect("reopen");
    assert!(
        node2
            .confirm_totp("acme", "bob", &pending, &totp_at(&seed, now), now)
            .await
            .is_err(),
        "another user's pending seed"
    );
    assert!(
        node2
            .confirm_totp(
                "acme",
                "alice",
                &pending,
                &totp_at(&seed, now + 600),
                now + 600
            )
            .await
            .is_err(),
        "expired"
    );
    assert_eq!(again.secret_base32.as_str(), e.secret_base32.as_str());

    let code = totp_at(&seed, now);
    let info = node2
        .confirm_totp("acme", "alice", &pending, &code, now)
        .await
        .expect("confirm")
        .expect("a valid first code");
    assert_eq!(info.id, e.id);
    assert!(
        node1
            .confirm_totp("acme", "alice", &pending, &code, now)
            .await
            .is_err(),
        "confirmed once"
    );
    assert!(
        !node1
            .verify_totp("acme", "alice", &code, now)
            .await
            .expect("verify"),
        "the confirming code cannot also sign in"
    );
    assert!(
        node1
            .verify_totp("acme", "alice", &totp_at(&seed, now + 30), now)
            .await
            .expect("verify")
    );

    node1.delete_all("acme", "alice").await.expect("reset");
    assert!(node2.list("acme", "alice").await.expect("list").is_empty());
    assert!(stored(&cluster, "factor").await.is_empty());
}
