//! Online rotation of the key-encryption key on a 3-node in-process
//! cluster: every sealed secret is re-sealed under the new KEK, the old one
//! stops opening anything, keyed hashes made before still verify, a value
//! sealed under the old KEK cannot be written after the rotation, and a
//! member that lacks the new KEK holds the re-sealing back.

use std::sync::Arc;
use std::time::Duration;

use rsp_consensus::kv::{Key, Txn, TxnOp};
use rsp_consensus::testing::TestCluster;
use rsp_consensus::{Consensus, Consistency};
use rsp_identity::Identity;
use rsp_identity::crypto::{Kek, KekCell, KekId, sealed_with};
use rsp_identity::keys::{KeyService, SigningAlg};
use rsp_identity::passwords::PasswordHasher;
use rsp_identity::tenants::TenantService;

use crate::totp_factors::{base32, totp};

const TENANT: &str = "acme";
const WAIT: Duration = Duration::from_secs(20);

fn identities(cluster: &TestCluster, kek: &Kek) -> Vec<Identity> {
    let hasher = PasswordHasher::with(argon2::Params::new(1024, 1, 1, None).expect("params"), 2)
        .expect("hasher");
    cluster
        .nodes
        .iter()
        .map(|node| {
            Identity::new(
                node.consensus.clone(),
                Arc::new(KekCell::with(kek.clone())),
                hasher.clone(),
                "http://127.0.0.1:8080",
            )
        })
        .collect()
}

/// What each node's KEK follower does in `rsp serve`: read the record
/// now and then (here every 100 ms).
fn follow(nodes: &[Identity]) {
    for identity in nodes {
        let ring = identity.kek_ring.clone();
        tokio::spawn(async move {
            loop {
                let _ = ring.sync(Consistency::Local).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

fn now_ms(node: &Consensus) -> u64 {
    node.clock().now_ms()
}

/// A tenant with its signing keys and one TOTP factor; the seed.
async fn tenant_with_secrets(cluster: &TestCluster, identity: &Identity) -> [u8; 20] {
    let node = cluster.node(1);
    TenantService::new(node.clone())
        .create(TENANT, "Acme", now_ms(node))
        .await
        .expect("tenant");
    identity
        .keys
        .ensure(TENANT, now_ms(node))
        .await
        .expect("keys");
    let seed: [u8; 20] = rand::random();
    identity
        .factors
        .import_totp(TENANT, "alice", &base32(&seed), None, None, now_ms(node))
        .await
        .expect("factor");
    seed
}

/// The KEK ids the tenant's sealed records name.
async fn sealed_under(node: &Consensus) -> Vec<Option<KekId>> {
    let keyspace = rsp_consensus::kv::tenant_keyspace(TENANT);
    let mut ids = Vec::new();
    for (prefix, field) in [
        ("signing_key/", "sealed_private"),
        ("factor/", "sealed_secret"),
    ] {
        let (kvs, _) = node
            .range(
                &keyspace,
                prefix.as_bytes(),
                usize::MAX,
                Consistency::Linearizable,
            )
            .await
            .expect("range");
        for kv in kvs {
            let record: serde_json::Value = serde_json::from_slice(&kv.value).expect("json");
            let sealed = rsp_identity::crypto::b64url_decode(record[field].as_str().expect(field))
                .expect("base64url");
            ids.push(sealed_with(&sealed));
        }
    }
    ids
}

/// A node that holds only `kek` and reads the record: ready when the
/// record lets it work with that key alone.
async fn ring_with(node: &Consensus, kek: Kek) -> Arc<KekCell> {
    let cell = Arc::new(KekCell::default());
    cell.set(kek);
    let ring = rsp_identity::kek_ring::KekRing::new(node.clone(), cell.clone());
    ring.sync(Consistency::Linearizable).await.expect("sync");
    cell
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reseals_every_secret_and_retires_the_old_kek() {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let old = Kek::generate();
    let nodes = identities(&cluster, &old);
    follow(&nodes);
    let seed = tenant_with_secrets(&cluster, &nodes[0]).await;
    let hash_before = nodes[1]
        .kek
        .derive("client-secret")
        .expect("derive")
        .hash(b"s3cret");
    assert!(
        sealed_under(cluster.node(1))
            .await
            .iter()
            .all(|id| *id == Some(old.id())),
        "before: everything under the first KEK"
    );
    // Sealed on node 3 before the rotation, written after it.
    let (straggler, guard) = nodes[2]
        .kek_ring
        .seal(b"straggler", b"sealed before")
        .expect("seal");

    let status = nodes[1]
        .rotate_kek(None, cluster.node(2).clock(), WAIT)
        .await
        .expect("rotate");
    assert!(!status.rotating, "finished: {status:?}");
    assert_eq!(status.generation, 1);
    assert_eq!(
        status.resealed, 4,
        "3 signing keys and 1 TOTP seed: {status:?}"
    );
    let new = KekId::parse(&status.current).expect("id");
    assert_ne!(new, old.id());
    assert!(
        sealed_under(cluster.node(1))
            .await
            .iter()
            .all(|id| *id == Some(new)),
        "after: everything under the new KEK"
    );

    // Every node follows the record: same current KEK, old one dropped.
    for identity in &nodes {
        identity
            .kek_ring
            .sync(Consistency::Linearizable)
            .await
            .expect("sync");
        assert_eq!(identity.kek.current_id(), Some(new));
        assert_eq!(identity.kek.ids(), vec![new]);
    }

    // The TOTP seed opens on node 3, which never sealed it.
    let now = cluster.node(3).clock().now_secs();
    assert!(
        nodes[2]
            .factors
            .verify_totp(TENANT, "alice", &totp(&seed, now, 30, 6), now)
            .await
            .expect("verify")
    );
    // Keyed hashes made before the rotation still verify.
    assert!(
        nodes[1]
            .kek
            .derive("client-secret")
            .expect("derive")
            .verify(b"s3cret", &hash_before)
    );

    // A node given only the new KEK signs with the re-sealed keys; one
    // given only the old KEK opens nothing (the members no longer offer
    // it, and it seals nothing).
    let new_kek = nodes[0].kek.get().expect("current");
    let fresh = ring_with(cluster.node(3), new_kek).await;
    assert!(fresh.is_ready());
    let keys = KeyService::new(cluster.node(3).clone(), fresh.clone());
    keys.signer(TENANT, SigningAlg::ES256).await.expect("signs");
    assert!(
        fresh
            .derive("client-secret")
            .expect("derive")
            .verify(b"s3cret", &hash_before)
    );
    let stale = KeyService::new(
        cluster.node(3).clone(),
        Arc::new(KekCell::with(old.clone())),
    );
    assert!(stale.signer(TENANT, SigningAlg::RS256).await.is_err());

    // The straggler's guard names a KEK that is no longer current.
    let write = Txn {
        compares: vec![guard],
        success: vec![TxnOp::Put {
            key: Key::new("kv", "straggler"),
            value: straggler,
            ttl_ms: None,
        }],
        failure: vec![],
    };
    assert!(
        !cluster.node(3).txn(write).await.expect("txn").succeeded,
        "a value sealed under the old KEK must not land after the rotation"
    );

    // A second rotation starts from the first one's result.
    let again = nodes[2]
        .rotate_kek(None, cluster.node(3).clock(), WAIT)
        .await
        .expect("rotate again");
    assert_eq!((again.generation, again.rotating), (2, false));
    assert_eq!(again.resealed, 4);
    for identity in &nodes {
        identity
            .kek_ring
            .sync(Consistency::Linearizable)
            .await
            .expect("sync");
    }
    let now = cluster.node(1).clock().now_secs() + 30;
    assert!(
        nodes[0]
            .factors
            .verify_totp(TENANT, "alice", &totp(&seed, now, 30, 6), now)
            .await
            .expect("verify")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_sealing_waits_for_a_member_without_the_new_kek() {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let old = Kek::generate();
    let nodes = identities(&cluster, &old);
    follow(&nodes);
    tenant_with_secrets(&cluster, &nodes[0]).await;
    // Node 3 is gone: it cannot take the new KEK.
    cluster.stop(3).await;

    let status = nodes[0]
        .rotate_kek(None, cluster.node(1).clock(), Duration::from_secs(2))
        .await
        .expect("rotate");
    assert!(status.rotating, "{status:?}");
    assert_eq!(status.waiting_for, vec![3]);
    assert_eq!(status.resealed, 0);
    assert!(
        sealed_under(cluster.node(1))
            .await
            .iter()
            .all(|id| *id == Some(old.id())),
        "nothing re-sealed while a member could not open it"
    );
    // A second rotation is refused while this one re-seals.
    let busy = nodes[1]
        .rotate_kek(None, cluster.node(2).clock(), Duration::from_secs(1))
        .await;
    assert!(
        matches!(busy, Err(rsp_identity::kek_ring::RingError::Busy(_))),
        "{busy:?}"
    );

    // The operator removes the dead member: the next pass finishes.
    cluster.node(1).remove_node(3).await.expect("remove");
    let mut status = None;
    for _ in 0..3 {
        let pass = nodes[0]
            .reseal_pass(now_ms(cluster.node(1)))
            .await
            .expect("pass");
        if !pass.rotating {
            status = Some(pass);
            break;
        }
    }
    let status = status.expect("the rotation finished");
    let current = KekId::parse(&status.current).expect("id");
    assert!(
        sealed_under(cluster.node(1))
            .await
            .iter()
            .all(|id| *id == Some(current)),
        "re-sealed once every member held the new KEK"
    );
}

/// The node's own follower reads the record (locally, so possibly behind)
/// without pause while the same node starts rotations: a read from
/// before a rotation must never drop the KEK the rotation just added (it
/// did: the rotation then failed to find its own new KEK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reading_beside_a_rotation_never_drops_the_new_kek() {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let old = Kek::generate();
    let nodes = identities(&cluster, &old);
    follow(&nodes);
    tenant_with_secrets(&cluster, &nodes[0]).await;
    for identity in &nodes {
        let ring = identity.kek_ring.clone();
        tokio::spawn(async move {
            loop {
                let _ = ring.sync(Consistency::Local).await;
                tokio::task::yield_now().await;
            }
        });
    }
    for round in 0..6 {
        let node = &nodes[round % 3];
        let status = node
            .rotate_kek(None, cluster.node(round as u64 % 3 + 1).clock(), WAIT)
            .await
            .unwrap_or_else(|e| panic!("rotation {round}: {e}"));
        assert!(!status.rotating, "rotation {round}: {status:?}");
        let current = KekId::parse(&status.current).expect("id");
        assert_eq!(node.kek.current_id(), Some(current), "rotation {round}");
    }
}
