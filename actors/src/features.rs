//! Cluster features: formats a node may write only once every member can
//! read them, so nodes one release apart can serve together during a
//! rolling upgrade.
//!
//! Each node's runtime records what its release understands under
//! `sys / node_features/<node id>` (a comma-separated list, written through
//! Raft when the runtime starts, retried until it is committed). Every
//! second each node reads those records from its applied state and turns a
//! feature on when every member of the current membership (voters and
//! learners) lists it. A node of an earlier release writes no record, so
//! while one is a member the feature stays off everywhere; once the last
//! one is upgraded and restarted, it turns on by itself within about a
//! second. A feature that turns off again (a new member that has not
//! written its record yet) only means the earlier format is written for a
//! moment, which every node still reads.
//!
//! Features:
//! - `session-user-tag`: session ids and handles that start with the user's
//!   tag, stored as one key (see [`crate::session`]). Off: sessions are made
//!   as before (22-character ids, with a user index key).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus::IntGaugeVec;
use rsp_consensus::kv::{Key, SYSTEM_KEYSPACE, Txn, TxnOp};
use rsp_consensus::{Consensus, Consistency};
use tokio::task::JoinHandle;

const PREFIX: &str = "node_features/";
/// Session ids and handles that start with the user's tag.
pub const SESSION_USER_TAG: &str = "session-user-tag";
/// What this release understands.
const UNDERSTOOD: &[&str] = &[SESSION_USER_TAG];
const REFRESH: Duration = Duration::from_secs(1);
const RETRY: Duration = Duration::from_millis(500);

/// The features in force on this node's view of the cluster.
pub(crate) struct ClusterFeatures {
    session_user_tag: AtomicBool,
}

impl ClusterFeatures {
    /// Record this node's features and keep the flags current, until the
    /// returned task is aborted.
    pub fn start(
        consensus: Consensus,
        gauge: IntGaugeVec,
    ) -> (Arc<ClusterFeatures>, JoinHandle<()>) {
        let features = Arc::new(ClusterFeatures {
            session_user_tag: AtomicBool::new(false),
        });
        gauge.with_label_values(&[SESSION_USER_TAG]).set(0);
        let task = tokio::spawn(run(consensus, features.clone(), gauge));
        (features, task)
    }

    /// Whether new sessions may use the user-tagged format.
    pub fn session_user_tag(&self) -> bool {
        self.session_user_tag.load(Ordering::Relaxed)
    }
}

fn node_key(id: u64) -> Key {
    Key::new(SYSTEM_KEYSPACE, format!("{PREFIX}{id}"))
}

async fn run(consensus: Consensus, features: Arc<ClusterFeatures>, gauge: IntGaugeVec) {
    let mine = UNDERSTOOD.join(",");
    let key = node_key(consensus.id());
    let mut recorded = false;
    loop {
        if !recorded {
            recorded = record(&consensus, &key, &mine).await;
        }
        let on = in_force(&consensus, SESSION_USER_TAG).await;
        let was = features.session_user_tag.swap(on, Ordering::Relaxed);
        gauge
            .with_label_values(&[SESSION_USER_TAG])
            .set(i64::from(on));
        if on != was {
            tracing::info!(
                feature = SESSION_USER_TAG,
                on,
                "cluster feature {}",
                if on { "in force" } else { "off" }
            );
        }
        tokio::time::sleep(if recorded { REFRESH } else { RETRY }).await;
    }
}

/// Write this node's record unless it already says `mine`.
async fn record(consensus: &Consensus, key: &Key, mine: &str) -> bool {
    if let Ok((Some(kv), _)) = consensus.get(key, Consistency::Local).await
        && kv.value == mine.as_bytes()
    {
        return true;
    }
    let put = TxnOp::Put {
        key: key.clone(),
        value: mine.as_bytes().to_vec(),
        ttl_ms: None,
    };
    match consensus.txn(Txn::ops(vec![put])).await {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, "node features not recorded yet");
            false
        }
    }
}

/// Whether every member lists `feature`, in this node's applied state.
async fn in_force(consensus: &Consensus, feature: &str) -> bool {
    let members: Vec<u64> = consensus
        .metrics()
        .membership_config
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .collect();
    let Ok((records, _)) = consensus
        .range(
            SYSTEM_KEYSPACE,
            PREFIX.as_bytes(),
            usize::MAX,
            Consistency::Local,
        )
        .await
    else {
        return false;
    };
    let listing: HashSet<u64> = records
        .iter()
        .filter(|kv| {
            std::str::from_utf8(&kv.value).is_ok_and(|v| v.split(',').any(|f| f == feature))
        })
        .filter_map(|kv| {
            std::str::from_utf8(kv.key.key.get(PREFIX.len()..)?)
                .ok()?
                .parse()
                .ok()
        })
        .collect();
    !members.is_empty() && members.iter().all(|id| listing.contains(id))
}
