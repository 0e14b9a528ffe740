//! Which node each client talks to, as the membership changes under it.
//!
//! A worker keeps its node while that node is in the roster (as Jepsen
//! binds a client to a node); when the node leaves (retired from the
//! `rsp-chaos` cluster after a replacement or a move) or is drained (taken
//! out of rotation for an upgrade step, as a load balancer would on
//! SIGTERM), the worker moves to `available[w % n]`. An operation already
//! in flight on a node that leaves ends as its answer says (a broken
//! connection is indeterminate, see `client`).
//!
//! A fixed roster (etcd, an existing cluster) never changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rsp_chaos::Cluster;

use crate::client::KvClient;

/// The nodes clients may talk to.
pub struct Roster {
    source: Source,
    drained: Mutex<BTreeSet<u64>>,
}

enum Source {
    Fixed(Vec<KvClient>),
    Cluster {
        cluster: Arc<Cluster>,
        timeout: Duration,
        clients: Mutex<BTreeMap<u64, KvClient>>,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Roster {
    /// Always these clients.
    pub fn fixed(clients: Vec<KvClient>) -> Self {
        Self {
            source: Source::Fixed(clients),
            drained: Mutex::new(BTreeSet::new()),
        }
    }

    /// The members of `cluster` (its [`Cluster::ids`]), each reached with
    /// requests of `timeout`.
    pub fn of_cluster(cluster: Arc<Cluster>, timeout: Duration) -> Self {
        Self {
            source: Source::Cluster {
                cluster,
                timeout,
                clients: Mutex::new(BTreeMap::new()),
            },
            drained: Mutex::new(BTreeSet::new()),
        }
    }

    /// Takes `id` out of rotation: workers on it move at their next
    /// operation.
    pub fn drain(&self, id: u64) {
        lock(&self.drained).insert(id);
    }

    /// Puts `id` back in rotation (workers that moved stay where they are).
    pub fn restore(&self, id: u64) {
        lock(&self.drained).remove(&id);
    }

    /// Every member's client, drained or not, in id order.
    pub fn members(&self) -> Vec<KvClient> {
        match &self.source {
            Source::Fixed(clients) => clients.clone(),
            Source::Cluster { cluster, .. } => cluster
                .ids()
                .into_iter()
                .filter_map(|id| self.cluster_client(id))
                .collect(),
        }
    }

    /// The clients in rotation, in id order.
    pub fn available(&self) -> Vec<KvClient> {
        let drained = lock(&self.drained).clone();
        self.members()
            .into_iter()
            .filter(|c| !drained.contains(&c.node))
            .collect()
    }

    /// Worker `w`'s client: `current` while its node is in rotation, else
    /// `available[w % n]` (`current` again when nothing is available).
    pub fn client_for(&self, w: usize, current: Option<&KvClient>) -> Option<KvClient> {
        let available = self.available();
        if let Some(c) = current
            && available.iter().any(|a| a.node == c.node)
        {
            return Some(c.clone());
        }
        match available.len() {
            0 => current
                .cloned()
                .or_else(|| self.members().into_iter().next()),
            n => Some(available[w % n].clone()),
        }
    }

    fn cluster_client(&self, id: u64) -> Option<KvClient> {
        let Source::Cluster {
            cluster,
            timeout,
            clients,
        } = &self.source
        else {
            return None;
        };
        let mut clients = lock(clients);
        if let Some(c) = clients.get(&id) {
            return Some(c.clone());
        }
        let client = KvClient::new(id, cluster.client(id).ok()?, *timeout);
        clients.insert(id, client.clone());
        Some(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsp_chaos::AdminClient;

    fn client(id: u64) -> KvClient {
        let admin =
            AdminClient::new(format!("http://127.0.0.1:{}", 9000 + id), "t").expect("client");
        KvClient::new(id, admin, Duration::from_secs(1))
    }

    #[test]
    fn a_worker_keeps_its_node_until_it_is_drained_then_moves() {
        let roster = Roster::fixed(vec![client(1), client(2), client(3)]);
        let first = roster.client_for(0, None).expect("a client");
        assert_eq!(first.node, 1);
        let same = roster.client_for(1, Some(&first)).expect("a client");
        assert_eq!(same.node, 1, "kept while in rotation");

        roster.drain(1);
        let moved = roster.client_for(1, Some(&first)).expect("a client");
        assert_eq!(moved.node, 3, "available [2, 3], worker 1 takes index 1");
        roster.restore(1);
        let stays = roster.client_for(1, Some(&moved)).expect("a client");
        assert_eq!(stays.node, 3, "no move back after the restore");
    }

    #[test]
    fn with_everything_drained_a_worker_stays_put() {
        let roster = Roster::fixed(vec![client(1), client(2)]);
        roster.drain(1);
        roster.drain(2);
        let c = client(2);
        assert_eq!(roster.client_for(0, Some(&c)).map(|c| c.node), Some(2));
        assert_eq!(roster.client_for(0, None).map(|c| c.node), Some(1));
        assert_eq!(roster.members().len(), 2);
        assert!(roster.available().is_empty());
    }
}
