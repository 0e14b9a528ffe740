//! Observing a [`Cluster`]: every node's view of the membership, the leader,
//! and waiting until the cluster agrees or is ready.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use tokio::task::JoinSet;

use super::{Cluster, PROBE_TIMEOUT};
use crate::admin::ClusterInfo;
use crate::wait;

impl Cluster {
    /// `GET /admin/v1/cluster` on every live node, concurrently.
    pub async fn views(&self) -> BTreeMap<u64, Result<ClusterInfo>> {
        let mut set = JoinSet::new();
        for id in self.live_ids() {
            if let Ok(client) = self.client(id) {
                let client = client.with_timeout(PROBE_TIMEOUT);
                set.spawn(async move { (id, client.cluster_info().await) });
            }
        }
        let mut views = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            if let Ok((id, view)) = joined {
                views.insert(id, view);
            }
        }
        views
    }

    /// The node that a live node claims to lead as, the highest term winning;
    /// `None` when no live node claims leadership.
    pub async fn leader(&self) -> Result<Option<u64>> {
        let views = self.views().await;
        Ok(best_claim(&views).map(|info| info.this_node))
    }

    /// The view of the live node that claims leadership in the highest term
    /// (the authoritative membership); an error when none claims it.
    pub async fn leader_view(&self) -> Result<ClusterInfo> {
        let views = self.views().await;
        best_claim(&views)
            .cloned()
            .ok_or_else(|| anyhow!("no live node claims leadership: {}", describe(&views)))
    }

    /// Waits until a live node claims leadership and a majority of its voters
    /// name it as leader; returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        wait::wait_until(timeout, "an agreed leader", || async {
            let views = self.views().await;
            let claim = best_claim(&views)
                .ok_or_else(|| anyhow!("no live node claims leadership: {}", describe(&views)))?;
            let leader = claim.this_node;
            let voters: Vec<u64> = claim
                .members
                .iter()
                .filter(|m| m.role != "learner")
                .map(|m| m.id)
                .collect();
            let agree = views
                .iter()
                .filter(|(id, v)| {
                    voters.contains(id) && v.as_ref().is_ok_and(|v| v.leader == Some(leader))
                })
                .count();
            ensure!(
                agree * 2 > voters.len(),
                "node {leader} claims leadership but only {agree} of voters {voters:?} agree: {}",
                describe(&views)
            );
            Ok(leader)
        })
        .await
    }

    /// Waits until every live node answers `/readyz` with 200.
    pub async fn wait_all_ready(&self, timeout: Duration) -> Result<()> {
        wait::wait_until(timeout, "every live node to be ready", || async {
            let mut not_ready = Vec::new();
            for id in self.live_ids() {
                let client = self.client(id)?.with_timeout(PROBE_TIMEOUT);
                match client.readyz().await {
                    Ok(200) => {}
                    Ok(status) => not_ready.push(format!("node {id}: {status}")),
                    Err(e) => not_ready.push(format!("node {id}: {e:#}")),
                }
            }
            ensure!(not_ready.is_empty(), "/readyz: {}", not_ready.join(", "));
            Ok(())
        })
        .await
    }

    /// Polls `check` until it returns `Ok` (see [`wait::wait_until`]).
    pub async fn wait_until<T, F, Fut>(&self, timeout: Duration, what: &str, check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        wait::wait_until(timeout, what, check).await
    }
}

fn best_claim(views: &BTreeMap<u64, Result<ClusterInfo>>) -> Option<&ClusterInfo> {
    views
        .values()
        .filter_map(|v| v.as_ref().ok())
        .filter(|info| info.is_leader())
        .max_by_key(|info| info.term)
}

fn describe(views: &BTreeMap<u64, Result<ClusterInfo>>) -> String {
    views
        .iter()
        .map(|(id, v)| match v {
            Ok(info) => format!("node {id}: leader {:?} term {}", info.leader, info.term),
            Err(e) => format!("node {id}: {e:#}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_claim_prefers_the_highest_term() {
        let info = |node: u64, leader: u64, term: u64| ClusterInfo {
            leader: Some(leader),
            term,
            this_node: node,
            last_applied: None,
            members: Vec::new(),
        };
        let mut views = BTreeMap::new();
        views.insert(1, Ok(info(1, 1, 3)));
        views.insert(2, Ok(info(2, 2, 4)));
        views.insert(3, Ok(info(3, 2, 4)));
        views.insert(4, Err(anyhow!("down")));
        assert_eq!(best_claim(&views).map(|i| i.this_node), Some(2));
        views.remove(&2);
        assert_eq!(best_claim(&views).map(|i| i.this_node), Some(1));
    }
}
