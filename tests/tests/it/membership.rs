//! Membership changes through the admin API: removing a node, and adding a
//! node started with `--no-bootstrap`.

use anyhow::{Result, anyhow, bail, ensure};
use rsp_chaos::admin::AddNode;
use rsp_chaos::{Cluster, Consistency, NodeJoin};
use rsp_tests::{CONVERGE, put_acked, read_value, spec};

/// Waits until every node in `ask` lists exactly `want` as members.
async fn wait_members(cluster: &Cluster, ask: &[u64], want: &[u64]) -> Result<()> {
    for id in ask {
        let client = cluster.client(*id)?;
        cluster
            .wait_until(
                CONVERGE,
                &format!("node {id} to list members {want:?}"),
                || async {
                    let mut ids = client.cluster_info().await?.member_ids();
                    ids.sort_unstable();
                    ensure!(ids == want, "members {ids:?}");
                    Ok(())
                },
            )
            .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_node_leaves_the_membership_and_the_rest_keeps_committing() -> Result<()> {
    let cluster = Cluster::start(spec(4)).await?;
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    let removed = cluster
        .ids()
        .into_iter()
        .rev()
        .find(|id| *id != leader)
        .ok_or_else(|| anyhow!("no follower"))?;
    let via = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader && *id != removed)
        .ok_or_else(|| anyhow!("no third node"))?;

    // Sent to a follower: the change reaches the leader on its own.
    let resp = cluster.client(via)?.remove_node(removed).await?;
    ensure!(
        resp.status == 200,
        "DELETE node {removed}: {} {}",
        resp.status,
        resp.body
    );

    let rest: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != removed)
        .collect();
    // Answered 200 "once removed": the leader's view has no such member.
    let view = cluster.client(leader)?.cluster_info().await?;
    ensure!(
        view.member(removed).is_none(),
        "leader still lists {removed}: {view:?}"
    );
    wait_members(&cluster, &rest, &rest).await?;

    // The removed node is gone for good; the remaining three still commit.
    cluster.kill(removed).await?;
    for id in &rest {
        put_acked(
            &cluster.client(*id)?,
            &format!("membership/after-remove/{id}"),
            "ok",
        )
        .await?;
    }
    let client = cluster.client(leader)?;
    for id in &rest {
        let v = read_value(
            &client,
            &format!("membership/after-remove/{id}"),
            Consistency::Linearizable,
        )
        .await?;
        ensure!(v.as_deref() == Some("ok"), "write through node {id}: {v:?}");
    }

    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_leader_moves_leadership_and_the_cluster_keeps_committing() -> Result<()> {
    let cluster = Cluster::start(spec(3)).await?;
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    let resp = match cluster.client(leader)?.remove_node(leader).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}", cluster.logs(80));
            return Err(e);
        }
    };
    ensure!(
        resp.status == 200,
        "DELETE leader {leader}: {} {}",
        resp.status,
        resp.body
    );

    let rest: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    wait_members(&cluster, &rest, &rest).await?;
    cluster.kill(leader).await?;
    let new_leader = cluster.wait_for_leader(CONVERGE).await?;
    ensure!(rest.contains(&new_leader), "leader {new_leader}");
    put_acked(
        &cluster.client(rest[0])?,
        "membership/after-leader-removed",
        "ok",
    )
    .await?;
    // The removal is in the cluster's trail: the removed node wrote it
    // after it had left, through the remaining members.
    let trail = cluster
        .client(rest[1])?
        .get("/admin/v1/audit?type=cluster.node_removed")
        .await?
        .success()?
        .body;
    let recorded = trail["items"].as_array().is_some_and(|events| {
        events
            .iter()
            .any(|e| e["details"]["id"] == serde_json::json!(leader.to_string()))
    });
    ensure!(recorded, "the removal is not in the trail: {trail}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_bootstrap_node_joins_through_the_admin_api() -> Result<()> {
    let cluster = Cluster::start(spec(3).zones(["a", "b", "c"])).await?;
    put_acked(&cluster.client(1)?, "membership/before-join", "old").await?;

    let id = cluster.add_node(NodeJoin::no_bootstrap().zone("d")).await?;
    let newcomer = cluster.client(id)?;
    // Not a member yet: nobody lists it, and it knows no leader.
    let view = cluster.client(1)?.cluster_info().await?;
    ensure!(
        view.member(id).is_none(),
        "listed before it was added: {view:?}"
    );
    let own = newcomer.cluster_info().await?;
    ensure!(
        own.leader.is_none(),
        "an uninitialised node knows a leader: {own:?}"
    );
    ensure!(
        newcomer.readyz().await? == 503,
        "an uninitialised node is not ready"
    );

    let request = AddNode {
        id,
        peer_addr: cluster.peer_addr(id)?.to_string(),
        zone: Some("d".into()),
        region: None,
        voter: true,
    };
    // Any node takes the request; it can take a while (catch-up first).
    let resp = cluster
        .client(2)?
        .with_timeout(CONVERGE)
        .add_node(&request)
        .await?;
    ensure!(
        resp.status == 200,
        "POST /admin/v1/cluster/nodes: {} {}",
        resp.status,
        resp.body
    );

    let view = cluster.client(1)?.cluster_info().await?;
    let member = view
        .member(id)
        .ok_or_else(|| anyhow!("node {id} not listed after 200: {view:?}"))?;
    ensure!(
        member.role == "follower",
        "voter added as {:?}",
        member.role
    );
    ensure!(
        member.zone.as_deref() == Some("d"),
        "zone {:?}",
        member.zone
    );
    ensure!(
        view.member(2).and_then(|m| m.zone.as_deref()) == Some("b"),
        "zones are kept: {view:?}"
    );

    // It serves reads of old data and takes writes.
    let old = newcomer
        .kv_value("membership/before-join", Consistency::Linearizable)
        .await?;
    ensure!(old.map(|r| r.value).as_deref() == Some("old"));
    put_acked(&newcomer, "membership/through-newcomer", "new").await?;
    match read_value(
        &cluster.client(3)?,
        "membership/through-newcomer",
        Consistency::Linearizable,
    )
    .await?
    {
        Some(v) if v == "new" => Ok(()),
        other => bail!("write through the new node read back as {other:?}"),
    }
}
