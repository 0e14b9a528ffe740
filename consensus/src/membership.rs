//! Cluster membership: status for operators, adding and removing nodes (on
//! the leader, forwarded there from any node), and joining as a new node.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use openraft::error::{ChangeMembershipError, ClientWriteError as CWE, RaftError as RE};
use openraft::{ChangeMembers, ServerState};

use crate::error::ConsensusError;
use crate::node::{ClusterStatus, Consensus, MemberStatus, Role};
use crate::rpc::{PeerBody, PeerError, PeerResponse};
use crate::transport::TransportError;
use crate::types::*;

/// How long adding a node may take (it must catch up first).
const ADD_NODE_TIMEOUT: Duration = Duration::from_secs(60);

/// The leader this node knows of, with its member record.
pub(crate) fn known_leader(m: &RaftMetrics) -> Option<(NodeId, Member)> {
    let leader = m.current_leader?;
    let member = m.membership_config.membership().get_node(&leader)?.clone();
    Some((leader, member))
}

/// The voter that has replicated the most, to take over from a leader that
/// is leaving.
pub(crate) fn best_successor(m: &RaftMetrics) -> Option<(NodeId, Member)> {
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let replication = m.replication.as_ref()?;
    replication
        .iter()
        .filter(|(id, _)| **id != m.id && voters.contains(id))
        .max_by_key(|(_, matched)| matched.map(|l| l.index))
        .and_then(|(id, _)| membership.get_node(id).map(|n| (*id, n.clone())))
}

fn membership_error(
    e: RE<NodeId, CWE<NodeId, Member>>,
) -> Result<Option<(NodeId, Member)>, ConsensusError> {
    match e {
        RE::APIError(CWE::ForwardToLeader(f)) => Ok(f.leader_id.zip(f.leader_node)),
        RE::APIError(CWE::ChangeMembershipError(ChangeMembershipError::InProgress(_))) => Err(
            ConsensusError::Unavailable("another membership change is in progress".into()),
        ),
        RE::APIError(CWE::ChangeMembershipError(ChangeMembershipError::LearnerNotFound(l))) => {
            Err(ConsensusError::UnknownNode(l.node_id))
        }
        RE::APIError(CWE::ChangeMembershipError(e)) => {
            Err(ConsensusError::BadRequest(e.to_string()))
        }
        RE::Fatal(_) => Err(ConsensusError::ShuttingDown),
    }
}

impl Consensus {
    /// The cluster as this node sees it.
    pub fn status(&self) -> ClusterStatus {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| MemberStatus {
                id: *id,
                peer_addr: node.peer_addr.clone(),
                http_addr: node.http_addr.clone(),
                zone: node.zone.clone(),
                region: node.region.clone(),
                role: if m.current_leader == Some(*id) {
                    Role::Leader
                } else if voters.contains(id) {
                    Role::Follower
                } else {
                    Role::Learner
                },
            })
            .collect();
        ClusterStatus {
            leader: m.current_leader,
            term: m.current_term,
            this_node: m.id,
            last_applied: m.last_applied.map(|l| l.index),
            last_log_index: m.last_log_index,
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            members,
        }
    }

    /// Leader side of adding a node: learner first (blocks until it caught
    /// up), then voter if asked. Idempotent.
    pub(crate) async fn add_node_here(
        &self,
        id: NodeId,
        member: Member,
        voter: bool,
    ) -> Result<Option<(NodeId, Member)>, ConsensusError> {
        let raft = self.raft();
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let known = membership.get_node(&id).cloned();
        let is_voter = membership.voter_ids().any(|v| v == id);
        if known.as_ref() != Some(&member) || !is_voter {
            if is_voter && known.is_some() {
                // Already a voter with other details: nothing safe to change here.
                return Err(ConsensusError::BadRequest(format!(
                    "node {id} is already a voter with peer address {}",
                    known.map(|k| k.peer_addr).unwrap_or_default()
                )));
            }
            if let Err(e) = raft.add_learner(id, member, true).await {
                return membership_error(e);
            }
        }
        if voter && !is_voter {
            let add = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
            if let Err(e) = raft.change_membership(add, false).await {
                return membership_error(e);
            }
        }
        Ok(None)
    }

    pub(crate) async fn remove_node_here(
        &self,
        id: NodeId,
    ) -> Result<Option<(NodeId, Member)>, ConsensusError> {
        let raft = self.raft();
        let m = self.metrics();
        let membership = m.membership_config.membership();
        if membership.get_node(&id).is_none() {
            if m.state != ServerState::Leader {
                // Only the leader's view is authoritative.
                return Ok(known_leader(&m));
            }
            return Err(ConsensusError::UnknownNode(id));
        }
        if membership.voter_ids().any(|v| v == id) {
            let remove = ChangeMembers::RemoveVoters(BTreeSet::from([id]));
            if let Err(e) = raft.change_membership(remove, false).await {
                return membership_error(e);
            }
        }
        let m = self.metrics();
        if m.membership_config.membership().get_node(&id).is_some() {
            let remove = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
            if let Err(e) = raft.change_membership(remove, false).await {
                return membership_error(e);
            }
        }
        Ok(None)
    }

    /// Send a membership request to `leader`, retrying while leadership moves.
    async fn membership_via(
        &self,
        body: impl Fn() -> PeerBody,
        first: Option<(NodeId, Member)>,
        deadline: Instant,
    ) -> Result<(), ConsensusError> {
        let mut target = first;
        loop {
            if let Some((leader, member)) = target.take() {
                let timeout = deadline
                    .checked_duration_since(Instant::now())
                    .ok_or(ConsensusError::Timeout)?;
                let addr = self.transport().route(leader, &member.peer_addr);
                match self
                    .transport()
                    .call(&addr, self.group(), body(), timeout)
                    .await
                {
                    Ok(PeerResponse::Membership(Ok(()))) => return Ok(()),
                    Ok(PeerResponse::Membership(Err(
                        PeerError::NotLeader(_) | PeerError::NoLeader,
                    ))) => {}
                    Ok(PeerResponse::Membership(Err(PeerError::BadRequest(m)))) => {
                        return Err(ConsensusError::BadRequest(m));
                    }
                    Ok(PeerResponse::Membership(Err(e))) => {
                        return Err(ConsensusError::Unavailable(e.to_string()));
                    }
                    Ok(_) => {
                        return Err(ConsensusError::Internal(
                            "unexpected membership answer".into(),
                        ));
                    }
                    Err(TransportError::Connect { .. }) => {}
                    Err(e) => return Err(ConsensusError::Unavailable(e.to_string())),
                }
            }
            if Instant::now() >= deadline {
                return Err(ConsensusError::Unavailable(
                    "no leader could be reached".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let m = self.metrics();
            target = known_leader(&m);
            if target.as_ref().is_some_and(|(l, _)| *l == self.id()) {
                return Err(ConsensusError::Internal(
                    "leadership moved here mid-request; retry".into(),
                ));
            }
        }
    }

    /// Add a node to the cluster from any member; returns once it has caught
    /// up and (for a voter) joined the voters.
    pub async fn add_node(
        &self,
        id: NodeId,
        member: Member,
        voter: bool,
    ) -> Result<(), ConsensusError> {
        if id == 0 {
            return Err(ConsensusError::BadRequest("node ids start at 1".into()));
        }
        let deadline = Instant::now() + ADD_NODE_TIMEOUT;
        let forward = match tokio::time::timeout(
            ADD_NODE_TIMEOUT,
            self.add_node_here(id, member.clone(), voter),
        )
        .await
        {
            Err(_) => return Err(ConsensusError::Timeout),
            Ok(r) => r?,
        };
        match forward {
            None if self.metrics().state == ServerState::Leader => Ok(()),
            None => {
                let m = self.metrics();
                let leader = known_leader(&m);
                self.membership_via(
                    || PeerBody::AddNode {
                        id,
                        member: member.clone(),
                        voter,
                    },
                    leader,
                    deadline,
                )
                .await
            }
            Some(leader) => {
                self.membership_via(
                    || PeerBody::AddNode {
                        id,
                        member: member.clone(),
                        voter,
                    },
                    Some(leader),
                    deadline,
                )
                .await
            }
        }
    }

    /// Remove a node from the membership, from any member.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), ConsensusError> {
        let deadline = Instant::now() + ADD_NODE_TIMEOUT;
        match self.remove_node_here(id).await? {
            None => Ok(()),
            Some(leader) => {
                self.membership_via(|| PeerBody::RemoveNode { id }, Some(leader), deadline)
                    .await
            }
        }
    }

    /// As a new node: ask the member at `peer_addr` to add us, retrying until
    /// it answers. Harmless when we are already a member.
    pub async fn join(
        &self,
        peer_addr: &str,
        voter: bool,
        timeout: Duration,
    ) -> Result<(), ConsensusError> {
        let deadline = Instant::now() + timeout;
        let member = self.inner.config.member.clone();
        loop {
            let remaining = deadline
                .checked_duration_since(Instant::now())
                .ok_or_else(|| {
                    ConsensusError::Unavailable(format!(
                        "could not join through {peer_addr} in time"
                    ))
                })?;
            let body = PeerBody::AddNode {
                id: self.id(),
                member: member.clone(),
                voter,
            };
            match self
                .transport()
                .call(peer_addr, self.group(), body, remaining)
                .await
            {
                Ok(PeerResponse::Membership(Ok(()))) => return Ok(()),
                Ok(PeerResponse::Membership(Err(PeerError::BadRequest(m)))) => {
                    return Err(ConsensusError::BadRequest(m));
                }
                Ok(other) => tracing::info!(answer = ?other, "join not accepted yet; retrying"),
                Err(e @ TransportError::Unauthenticated { .. }) => {
                    return Err(ConsensusError::Config(format!(
                        "{e}: this node's join token is not the cluster's"
                    )));
                }
                Err(e) => tracing::info!(error = %e, "join: member not reachable yet; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Which members confirmed having applied an index in time.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AppliedReport {
    pub confirmed: Vec<NodeId>,
    /// Members that did not confirm: unreachable, paused or behind.
    pub missing: Vec<NodeId>,
}

impl AppliedReport {
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

impl Consensus {
    /// Wait until every member (voters and learners) has applied the log up
    /// to `index`, or `timeout` passes. Used where a change must be in force
    /// on every node before the caller is answered (e.g. a revocation).
    pub async fn wait_applied_everywhere(&self, index: u64, timeout: Duration) -> AppliedReport {
        let m = self.metrics();
        let members: Vec<(NodeId, Member)> = m
            .membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        let timeout_ms = timeout.as_millis() as u64;
        let checks = members.into_iter().map(|(id, member)| async move {
            let ok = if id == self.id() {
                self.raft()
                    .wait(Some(timeout))
                    .applied_index_at_least(Some(index), "wait applied")
                    .await
                    .is_ok()
            } else {
                let addr = self.transport().route(id, &member.peer_addr);
                matches!(
                    self.transport()
                        .call(
                            &addr,
                            self.group(),
                            PeerBody::WaitApplied { index, timeout_ms },
                            timeout + Duration::from_millis(200),
                        )
                        .await,
                    Ok(PeerResponse::Applied(Ok(_)))
                )
            };
            (id, ok)
        });
        let mut report = AppliedReport::default();
        for (id, ok) in futures::future::join_all(checks).await {
            if ok {
                report.confirmed.push(id);
            } else {
                report.missing.push(id);
            }
        }
        report
    }
}
