//! What each experiment does during its fault window: hold one fault, or
//! run a short script (rolling restart, flapping link, repeated leader
//! kills, membership change, snapshot catch-up).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::catalog::Action;
use super::faults::{Fault, Targets};
use super::report::Check;
use super::{CONVERGE, Ctx};
use crate::NodeJoin;

/// Applies the action for `duration`; it is healed when this returns.
pub(crate) async fn act(ctx: &mut Ctx<'_>, action: &Action, duration: Duration) -> Result<()> {
    let cluster = ctx.cluster;
    match action {
        Action::Kill(targets) => {
            let nodes = targets.resolve(cluster, &mut ctx.rng).await?;
            ctx.hold(Fault::Kill(nodes), duration).await
        }
        Action::PowerCut(targets) => {
            let nodes = targets.resolve(cluster, &mut ctx.rng).await?;
            ctx.hold(Fault::PowerCut(nodes), duration).await
        }
        Action::Pause(targets) => {
            let nodes = targets.resolve(cluster, &mut ctx.rng).await?;
            ctx.hold(Fault::Pause(nodes), duration).await
        }
        Action::Partition(shape) => {
            let fault = shape.resolve(cluster, &mut ctx.rng).await?;
            ctx.hold(fault, duration).await
        }
        Action::Links {
            latency,
            jitter,
            loss,
        } => {
            let fault = Fault::Links {
                latency: *latency,
                jitter: *jitter,
                loss: *loss,
            };
            ctx.hold(fault, duration).await
        }
        Action::LeaderOutgoing(link_faults) => {
            let leader = cluster.wait_for_leader(CONVERGE).await?;
            let links = cluster
                .ids()
                .into_iter()
                .filter(|id| *id != leader)
                .map(|id| (leader, id))
                .collect();
            let fault = Fault::SomeLinks {
                links,
                faults: link_faults.clone(),
            };
            ctx.hold(fault, duration).await
        }
        Action::ZoneOutage(zone) => {
            let nodes = cluster.nodes_in_zone(zone);
            ensure!(!nodes.is_empty(), "no node in zone {zone}");
            ctx.hold(Fault::Kill(nodes), duration).await
        }
        Action::RollingRestart => {
            for id in cluster.ids() {
                cluster
                    .terminate(id, Duration::from_secs(15))
                    .await
                    .with_context(|| format!("stopping node {id}"))?;
                ctx.event(format!("SIGTERM node {id}"));
                cluster.restart(id).await?;
                cluster.wait_all_ready(CONVERGE).await?;
                ctx.event(format!("node {id} restarted and ready"));
            }
            Ok(())
        }
        Action::FlappingLink { period } => {
            let leader = cluster.wait_for_leader(CONVERGE).await?;
            let other = Targets::Follower.resolve(cluster, &mut ctx.rng).await?;
            let follower = other.first().copied().unwrap_or(leader);
            // Only the leader-follower pair flaps.
            let pair = Fault::SomeLinks {
                links: vec![(leader, follower), (follower, leader)],
                faults: crate::LinkFaults::down(),
            };
            ctx.event(format!(
                "flapping links {leader} <-> {follower} every {} ms",
                period.as_millis()
            ));
            let until = Instant::now() + duration;
            let mut flaps = 0u32;
            while Instant::now() < until {
                pair.inject(cluster).await?;
                tokio::time::sleep(*period).await;
                pair.heal(cluster).await?;
                tokio::time::sleep(*period).await;
                flaps += 1;
            }
            ctx.event(format!("{flaps} flaps; links up"));
            Ok(())
        }
        Action::RepeatedLeaderKills { every } => {
            let until = Instant::now() + duration;
            while Instant::now() < until {
                let victim = Targets::Leader.resolve(cluster, &mut ctx.rng).await?;
                let fault = Fault::Kill(victim);
                ctx.hold(fault, *every).await?;
                // Let the restarted node rejoin before the next kill.
                cluster.wait_for_leader(CONVERGE).await?;
            }
            Ok(())
        }
        Action::MembershipChange => membership_change(ctx, duration).await,
        Action::SnapshotCatchUp => snapshot_catch_up(ctx, duration).await,
        Action::ClockSkew { offset, ahead } => {
            let leader = cluster.wait_for_leader(CONVERGE).await?;
            let ms = offset.as_millis() as i64;
            let fault = Fault::ClockSkew {
                nodes: vec![leader],
                offset_ms: if *ahead { ms } else { -ms },
            };
            ctx.hold(fault, duration).await
        }
    }
}

async fn membership_change(ctx: &mut Ctx<'_>, duration: Duration) -> Result<()> {
    let cluster = ctx.cluster;
    let started = Instant::now();
    let new = cluster.add_node(NodeJoin::voter()).await?;
    ctx.event(format!("node {new} joined"));
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    let client = cluster.client(leader)?;
    let voter = cluster
        .wait_until(CONVERGE, "the new node to be a voter", || async {
            let view = client.cluster_info().await?;
            let role = view.member(new).map(|m| m.role.clone());
            ensure!(
                matches!(role.as_deref(), Some("follower" | "leader")),
                "role {role:?}"
            );
            Ok(())
        })
        .await;
    ctx.acted.checks.push(Check::new(
        "new node became a voter",
        "yes",
        format!("{voter:?}"),
        voter.is_ok(),
    ));
    let old = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != new)
        .ok_or_else(|| anyhow::anyhow!("no follower to remove"))?;
    let removed = cluster
        .wait_until(CONVERGE, "the removal to be accepted", || async {
            let leader = cluster.wait_for_leader(CONVERGE).await?;
            let r = cluster.client(leader)?.remove_node(old).await?;
            ensure!(r.status == 200, "HTTP {}: {}", r.status, r.body);
            Ok(())
        })
        .await;
    ctx.event(format!(
        "node {old} removed: {}",
        if removed.is_ok() { "ok" } else { "failed" }
    ));
    ctx.acted.checks.push(Check::new(
        format!("node {old} removed"),
        "200",
        format!("{removed:?}"),
        removed.is_ok(),
    ));
    cluster.retire(old);
    cluster.kill(old).await?;
    ctx.event(format!("node {old} stopped"));
    tokio::time::sleep(duration.saturating_sub(started.elapsed())).await;
    Ok(())
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

async fn snapshot_catch_up(ctx: &mut Ctx<'_>, duration: Duration) -> Result<()> {
    let cluster = ctx.cluster;
    let follower = Targets::Follower.resolve(cluster, &mut ctx.rng).await?[0];
    let behind = {
        let m = cluster.client(follower)?.metrics().await?;
        metric(&m, "rsp_raft_applied_index").unwrap_or(0.0)
    };
    let isolate = Fault::Partition(vec![
        cluster
            .ids()
            .into_iter()
            .filter(|id| *id != follower)
            .collect(),
        vec![follower],
    ]);
    isolate.inject(cluster).await?;
    ctx.event(format!("isolate follower {follower} (applied {behind})"));
    // Hold at least the window, and until the leader purged past it.
    let started = Instant::now();
    let purged = cluster
        .wait_until(
            duration.max(Duration::from_secs(5)) + CONVERGE,
            "the leader to purge its log",
            || async {
                let leader = cluster.wait_for_leader(CONVERGE).await?;
                let m = cluster.client(leader)?.metrics().await?;
                let purged = metric(&m, "rsp_raft_purged_index").unwrap_or(0.0);
                ensure!(purged > behind, "purged {purged}, follower at {behind}");
                Ok(purged)
            },
        )
        .await;
    tokio::time::sleep(duration.saturating_sub(started.elapsed())).await;
    isolate.heal(cluster).await?;
    ctx.event(format!("heal; leader purged up to {purged:?}"));
    let purged = purged?;
    let client = cluster.client(follower)?;
    let caught_up = cluster
        .wait_until(
            CONVERGE,
            "the follower to catch up from a snapshot",
            || async {
                ensure!(client.readyz().await? == 200, "not ready");
                let m = client.metrics().await?;
                let snap = metric(&m, "rsp_raft_snapshot_index").unwrap_or(0.0);
                if snap < purged {
                    bail!("snapshot index {snap} < purged {purged}");
                }
                Ok(snap)
            },
        )
        .await;
    ctx.acted.checks.push(Check::new(
        format!("node {follower} caught up from a snapshot"),
        format!("snapshot index ≥ {purged}"),
        match &caught_up {
            Ok(s) => format!("snapshot index {s}"),
            Err(e) => format!("{e:#}"),
        },
        caught_up.is_ok(),
    ));
    Ok(())
}
