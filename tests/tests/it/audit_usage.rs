//! The audit trail and usage on a cluster of real `rsp` processes: an admin
//! change made on node 2 is in the trail read from node 3 when it is
//! answered; a failed sign-in is audited with the caller's address and
//! without the password; and usage counts stay exact across a node's
//! graceful restart (its counts are merged before it stops, and it counts
//! on after it starts).

use crate::support;

use anyhow::{Context, Result, ensure};
use rsp_tests::rsp_chaos::Cluster;
use rsp_tests::{CONVERGE, spec};
use serde_json::{Value, json};
use std::time::Duration;
use support::{PASSWORD, WebBrowser, tenant_with_client};

const PUBLIC: &str = "http://rsp.audit.test";
const TENANT: &str = "aud";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn tokens(base: &str, secret: &str, n: usize) -> Result<()> {
    for _ in 0..n {
        let answer = reqwest::Client::new()
            .post(format!("{base}/t/{TENANT}/token"))
            .basic_auth("rp", Some(secret))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body("grant_type=client_credentials")
            .send()
            .await?;
        ensure!(answer.status() == 200, "token: {}", answer.text().await?);
    }
    Ok(())
}

/// Today's usage as node `id` answers it.
async fn today(cluster: &Cluster, id: u64) -> Result<Value> {
    let usage = cluster
        .client(id)?
        .get(&format!("/admin/v1/tenants/{TENANT}/usage"))
        .await?
        .success()?;
    usage.body["days"]
        .as_array()
        .and_then(|d| d.last())
        .cloned()
        .context("today's figures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_and_usage_hold_across_nodes_and_a_restart() -> Result<()> {
    let cluster = Cluster::start(spec(3).args(["--public-url", PUBLIC])).await?;
    cluster.wait_for_leader(CONVERGE).await?;
    let secret = tenant_with_client(
        &cluster.client(1)?,
        TENANT,
        "rp",
        json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await?
    .context("a confidential client gets a secret")?;

    // An admin change on node 2, read at once from node 3.
    let made = cluster
        .client(2)?
        .post(
            &format!("/admin/v1/tenants/{TENANT}/users"),
            &json!({"username": "frank", "password": PASSWORD}),
        )
        .await?
        .success()?;
    let frank = made.body["id"].as_str().context("frank's id")?.to_string();
    let trail = cluster
        .client(3)?
        .get(&format!(
            "/admin/v1/tenants/{TENANT}/audit?type=user.created&limit=10"
        ))
        .await?
        .success()?;
    let found = trail.body["items"].as_array().context("items")?;
    ensure!(
        found.iter().any(|e| e["details"]["id"] == frank.as_str()),
        "frank's creation on node 3's trail: {}",
        trail.body
    );

    // A failed sign-in on node 1, audited with the address, never the
    // password.
    let base1 = cluster.http(1)?;
    let authorize = format!(
        "{PUBLIC}/t/{TENANT}/authorize?response_type=code&client_id=rp&scope=openid\
         &state=st&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let issuer = format!("{PUBLIC}/t/{TENANT}");
    let wrong = "not-frank's-password-42";
    let mut browser = WebBrowser::new(PUBLIC)?;
    let refused = browser
        .sign_in_as(&authorize, &base1, &issuer, "frank", wrong)
        .await;
    ensure!(refused.is_err(), "a wrong password signed in");
    let admin3 = cluster.client(3)?;
    let failed = rsp_tests::rsp_chaos::wait_until(CONVERGE, "login.failed on the trail", || {
        let admin3 = admin3.clone();
        async move {
            let trail = admin3
                .get(&format!(
                    "/admin/v1/tenants/{TENANT}/audit?type=login.failed"
                ))
                .await?
                .success()?;
            let first = trail.body["items"][0].clone();
            ensure!(first.is_object(), "not yet: {}", trail.body);
            ensure!(!trail.body.to_string().contains(wrong), "{}", trail.body);
            Ok(first)
        }
    })
    .await?;
    ensure!(failed["ip"] == "127.0.0.1", "{failed}");
    ensure!(failed["details"]["username"] == "frank", "{failed}");

    // Usage: tokens on nodes 1 and 2, a good sign-in on node 1.
    let mut browser = WebBrowser::new(PUBLIC)?;
    browser.sign_in(&authorize, &base1, &issuer).await?;
    tokens(&base1, &secret, 3).await?;
    tokens(&cluster.http(2)?, &secret, 2).await?;
    let merged = |want_tokens: u64, want_logins: u64| {
        let cluster = &cluster;
        async move {
            rsp_tests::rsp_chaos::wait_until(CONVERGE, "usage merged", || async move {
                let day = today(cluster, 3).await?;
                ensure!(
                    day["tokens_issued"] == want_tokens
                        && day["logins"] == want_logins
                        && day["active_users"] == 1,
                    "{day}"
                );
                Ok(day)
            })
            .await
        }
    };
    merged(5, 1).await?;

    // Node 2 counts two more, stops gracefully (merging them), starts
    // again and counts one more: nothing is lost or counted twice.
    tokens(&cluster.http(2)?, &secret, 2).await?;
    let status = cluster.terminate(2, Duration::from_secs(20)).await?;
    ensure!(status.success(), "node 2 exits 0: {status:?}");
    let day = today(&cluster, 3).await?;
    ensure!(day["tokens_issued"] == 7, "merged at shutdown: {day}");
    cluster.restart(2).await?;
    cluster.wait_for_leader(CONVERGE).await?;
    tokens(&cluster.http(2)?, &secret, 1).await?;
    merged(8, 1).await?;
    Ok(())
}
