//! Test support: a 3-node in-process cluster with a tenant, seen from a
//! follower, for the tests that kill the leader under a service.

use std::time::Duration;

use rsp_consensus::Consensus;
use rsp_consensus::testing::TestCluster;

use crate::tenants::TenantService;

/// The cluster, the leader's id, a follower's consensus, and the id of the
/// third node (to read from); tenant `tenant` exists.
pub async fn follower_with_tenant(tenant: &str) -> (TestCluster, u64, Consensus, u64) {
    let cluster = TestCluster::start(3).await.expect("cluster");
    let leader = cluster
        .leader(Duration::from_secs(10))
        .await
        .expect("a leader");
    let follower = if leader == 1 { 2 } else { 1 };
    let other = 6 - leader - follower;
    let consensus = cluster.node(follower).clone();
    TenantService::new(consensus.clone())
        .create(tenant, tenant, 0)
        .await
        .expect("tenant");
    (cluster, leader, consensus, other)
}
