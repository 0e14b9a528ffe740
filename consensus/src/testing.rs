//! An in-process cluster for tests of the crates above consensus (feature
//! `testing`): N nodes in one process, each with its own sled directory and a
//! peer listener on 127.0.0.1:0. Faster than child processes, and enough
//! where a test needs several nodes but not `kill -9`.

use std::sync::Arc;
use std::time::Duration;

use crate::error::ConsensusError;
use crate::node::{Consensus, ConsensusConfig};
use crate::peer_auth::JoinToken;
use crate::peer_server::PeerService;
use crate::types::{Member, NodeId};

pub struct TestNode {
    pub id: NodeId,
    pub consensus: Consensus,
    pub registry: Arc<prometheus::Registry>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// A running in-process cluster; dropping it stops every node's listener.
pub struct TestCluster {
    pub nodes: Vec<TestNode>,
}

async fn start_node(
    id: NodeId,
    token: &JoinToken,
    tune: &dyn Fn(&mut ConsensusConfig),
) -> Result<TestNode, ConsensusError> {
    let dir = tempfile::tempdir().map_err(|e| ConsensusError::Internal(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| ConsensusError::Internal(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ConsensusError::Internal(e.to_string()))?;
    let member = Member {
        peer_addr: addr.to_string(),
        http_addr: String::new(),
        zone: format!("z{id}"),
        region: "test".into(),
    };
    let mut config = ConsensusConfig::new(id, member, dir.path().join("store"));
    config.heartbeat_ms = 50;
    config.election_timeout_ms = 300;
    config.join_token = token.clone();
    tune(&mut config);
    let registry = Arc::new(prometheus::Registry::new());
    let consensus = Consensus::start(config, &registry).await?;
    let router = PeerService::new(consensus.peer_auth().clone(), [consensus.clone()]).router();
    let server = tokio::spawn(async move {
        use axum::serve::ListenerExt as _;
        // As `rsp serve` does: answers leave at once (no Nagle delay).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, router).await;
    });
    Ok(TestNode {
        id,
        consensus,
        registry,
        server,
        _dir: dir,
    })
}

impl TestCluster {
    /// Start `n` voters (ids 1..=n) and wait until all of them are members.
    pub async fn start(n: usize) -> Result<TestCluster, ConsensusError> {
        Self::start_with(n, &|_| {}).await
    }

    /// Like [`TestCluster::start`], with a hook to change each node's config.
    pub async fn start_with(
        n: usize,
        tune: &dyn Fn(&mut ConsensusConfig),
    ) -> Result<TestCluster, ConsensusError> {
        let mut nodes = Vec::new();
        let token = JoinToken::generate();
        for id in 1..=n as NodeId {
            nodes.push(start_node(id, &token, tune).await?);
        }
        let first = nodes[0].consensus.clone();
        first.bootstrap().await?;
        first
            .raft()
            .wait(Some(Duration::from_secs(10)))
            .current_leader(1, "first node leads")
            .await
            .map_err(|e| ConsensusError::Internal(e.to_string()))?;
        for node in &nodes[1..] {
            let member = node.consensus.status_self_member();
            first.add_node(node.id, member, true).await?;
        }
        Ok(TestCluster { nodes })
    }

    pub fn node(&self, id: NodeId) -> &Consensus {
        &self.nodes[(id - 1) as usize].consensus
    }

    /// Stop a node abruptly: its peer listener goes away and Raft stops.
    pub async fn stop(&self, id: NodeId) {
        let node = &self.nodes[(id - 1) as usize];
        node.server.abort();
        node.consensus.raft().shutdown().await.ok();
    }

    /// The current leader, waiting up to `timeout` for one.
    pub async fn leader(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            for n in &self.nodes {
                let m = n.consensus.metrics();
                if m.current_leader == Some(m.id) {
                    return Some(m.id);
                }
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &self.nodes {
            n.server.abort();
        }
    }
}

impl Consensus {
    /// How this node describes itself (its configured member record).
    pub fn status_self_member(&self) -> Member {
        self.inner.config.member.clone()
    }
}
