//! Operator sequences on a running [`Cluster`], each done as the
//! "Membership" table of docs/operations.md says: replacing a dead node,
//! moving a node to a new address, upgrading one node in place (the step
//! of a rolling upgrade). Removals go through `rsp admin cluster
//! remove-node` (the binary's own CLI), the rest through processes and the
//! admin API, as an operator's tools would.
//!
//! A node that leaves is retired ([`Cluster::retire`]) as soon as the
//! operator would stop sending it traffic: a dead node when it dies, a moved
//! node once the membership no longer holds it (its process is stopped
//! right after).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Serialize;

use super::{Cluster, PROBE_TIMEOUT};
use crate::process::ReadyInfo;
use crate::spec::NodeJoin;
use crate::wait;

/// How long each step of a sequence may take (a removal, a join, a
/// node becoming ready).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a SIGTERM'd node may take to stop (a leader hands off first;
/// in-flight requests get up to 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a replacement or a move did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replacement {
    /// The id that left the membership.
    pub old: u64,
    /// The id that joined in its place; a voter when this was returned.
    pub new: u64,
    pub zone: Option<String>,
    /// The peer addresses of the old and the new node.
    pub old_peer_addr: String,
    pub new_peer_addr: String,
    /// Whether `old` led the cluster when the sequence began.
    pub old_was_leader: bool,
}

impl Cluster {
    /// Replaces node `dead` as after losing its machine: `kill -9` it for
    /// good and wipe its data dir, `rsp admin cluster remove-node <dead>`,
    /// then start a node with a new id, an empty data dir and the same zone
    /// that `--join`s a member with the join token, and wait until it is a
    /// voter.
    pub async fn replace_node(&self, dead: u64) -> Result<Replacement> {
        let (zone, old_peer_addr, old_was_leader) = self.before_leaving(dead).await?;
        self.kill(dead).await?;
        self.retire(dead);
        let data = self.node(dead)?.process.data_dir();
        if data.exists() {
            std::fs::remove_dir_all(&data)
                .with_context(|| format!("wiping node {dead}'s data dir {}", data.display()))?;
        }
        self.remove_member(dead).await?;
        let new = self.join_voter(zone.clone()).await?;
        Ok(Replacement {
            old: dead,
            new,
            zone,
            old_peer_addr,
            new_peer_addr: self.peer_addr(new)?.to_string(),
            old_was_leader,
        })
    }

    /// Moves node `old` to a new peer address: start a node there under a
    /// new id that `--join`s the cluster, wait until it is a voter, then
    /// `rsp admin cluster remove-node <old>` and stop the old process
    /// (SIGTERM).
    pub async fn move_node(&self, old: u64) -> Result<Replacement> {
        let (zone, old_peer_addr, old_was_leader) = self.before_leaving(old).await?;
        let new = self.join_voter(zone.clone()).await?;
        let new_peer_addr = self.peer_addr(new)?.to_string();
        ensure!(
            new_peer_addr != old_peer_addr,
            "node {new} took node {old}'s peer address {old_peer_addr}"
        );
        self.remove_member(old).await?;
        self.retire(old);
        let node = self.node(old)?;
        if node.process.is_running() {
            node.process
                .terminate(STOP_TIMEOUT)
                .await
                .with_context(|| format!("stopping the moved node {old}"))?;
        }
        Ok(Replacement {
            old,
            new,
            zone,
            old_peer_addr,
            new_peer_addr,
            old_was_leader,
        })
    }

    /// One step of a rolling upgrade: SIGTERM node `id` (a leader hands
    /// leadership on), start it again on the same data dir and ports with
    /// `binary`, and wait until its `/readyz` answers 200.
    pub async fn upgrade_node(&self, id: u64, binary: &Path) -> Result<ReadyInfo> {
        let node = self.node(id)?;
        if node.process.is_running() {
            let status = node
                .process
                .terminate(STOP_TIMEOUT)
                .await
                .with_context(|| format!("stopping node {id}"))?;
            ensure!(
                status.success(),
                "node {id} exited with {status} on SIGTERM"
            );
        }
        node.process
            .update_spec(|spec| spec.binary = binary.to_path_buf());
        let ready = self.restart(id).await?;
        let client = self.client(id)?.with_timeout(PROBE_TIMEOUT);
        let what = format!("node {id} to answer /readyz with 200");
        wait::wait_until(STEP_TIMEOUT, &what, || async {
            let status = client.readyz().await?;
            ensure!(status == 200, "/readyz {status}");
            Ok(())
        })
        .await
        .with_context(|| format!("log of node {id}:\n{}", self.log_tail(id, 30)))?;
        Ok(ready)
    }

    /// The binary node `id` runs (or ran last).
    pub fn binary_of(&self, id: u64) -> Result<PathBuf> {
        Ok(self.node(id)?.process.spec().binary)
    }

    /// `rsp admin cluster remove-node <id>` through a live member (another
    /// one where there is one), repeated until the leader's view no longer
    /// holds `id`. A repeat answered "not found" means an earlier attempt
    /// went through.
    pub async fn remove_member(&self, id: u64) -> Result<()> {
        let what = format!("node {id} to leave the membership");
        wait::wait_until(STEP_TIMEOUT, &what, || async {
            let live = self.live_ids();
            let via = live
                .iter()
                .copied()
                .find(|v| *v != id)
                .or_else(|| live.first().copied())
                .ok_or_else(|| anyhow!("no live member to ask"))?;
            let (code, output) = self
                .admin_cli(via, &["cluster", "remove-node", &id.to_string()])
                .await?;
            // 0: removed; 4: not found (an earlier attempt removed it).
            if code != 0 && code != 4 {
                bail!(
                    "`rsp admin cluster remove-node {id}` via node {via} exited {code}: {output}"
                );
            }
            let view = self.leader_view().await?;
            ensure!(
                view.member(id).is_none(),
                "the leader {} still lists node {id}",
                view.this_node
            );
            Ok(())
        })
        .await
    }

    /// Waits until the leader lists `id` as a voter (role `follower` or
    /// `leader`).
    pub async fn wait_for_voter(&self, id: u64) -> Result<()> {
        let what = format!("node {id} to be a voter");
        wait::wait_until(STEP_TIMEOUT, &what, || async {
            let view = self.leader_view().await?;
            let role = view.member(id).map(|m| m.role.clone());
            ensure!(
                matches!(role.as_deref(), Some("follower" | "leader")),
                "the leader {} lists node {id} as {role:?}",
                view.this_node
            );
            Ok(())
        })
        .await
    }

    /// What a sequence that takes `id` out needs to know first.
    async fn before_leaving(&self, id: u64) -> Result<(Option<String>, String, bool)> {
        let members = self.ids();
        ensure!(members.contains(&id), "node {id} is not a member");
        ensure!(
            members.len() >= 3,
            "taking a node out of {} needs at least 3 (a quorum must remain)",
            members.len()
        );
        let leader = self.leader().await.ok().flatten();
        Ok((
            self.zone_of(id),
            self.peer_addr(id)?.to_string(),
            leader == Some(id),
        ))
    }

    /// A fresh node (new id, empty data dir) in `zone` that `--join`s a
    /// member; returns once it is a voter.
    async fn join_voter(&self, zone: Option<String>) -> Result<u64> {
        let mut join = NodeJoin::voter();
        join.zone = zone;
        let new = self.add_node(join).await?;
        self.wait_for_voter(new).await?;
        Ok(new)
    }

    /// Runs `rsp admin --url <node via> ARGS` with the admin token; its
    /// exit code and output.
    async fn admin_cli(&self, via: u64, args: &[&str]) -> Result<(i32, String)> {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.arg("admin")
            .args(["--url", &self.http(via)?, "--timeout", "30"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("RSP_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("RSP_ADMIN_TOKEN", &self.token);
        let out = cmd
            .output()
            .await
            .with_context(|| format!("running {} admin", self.binary.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.code().unwrap_or(-1), text.trim().to_string()))
    }
}
