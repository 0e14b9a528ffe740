//! Online rotation of the key-encryption key on a cluster of `rsp`
//! processes, with a member down when it starts: re-sealing waits for it,
//! the restarted member takes the new KEK from the others, the leader's
//! background job finishes the rotation, every node's kek file then holds
//! the new KEK, and restarted nodes (caches gone) issue tokens with the
//! re-sealed signing keys and the client secret stored before.

use crate::support;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rsp_identity::crypto::Kek;
use rsp_tests::rsp_chaos::{AdminClient, Cluster};
use rsp_tests::{CONVERGE, spec};
use serde_json::{Value, json};
use support::tenant_with_client;

const TENANT: &str = "rot";
const CLIENT: &str = "svc";

const FORM: &str = "application/x-www-form-urlencoded";

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A client-credentials token from node `base`.
async fn token(base: &str, secret: &str) -> Result<String> {
    let resp = reqwest::Client::new()
        .post(format!("{base}/t/{TENANT}/token"))
        .basic_auth(CLIENT, Some(secret))
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("scope", "api:read"),
        ]))
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    ensure!(status == 200, "token on {base}: {status} {body}");
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .context("no access_token")
}

async fn introspect(base: &str, secret: &str, token: &str) -> Result<bool> {
    let body = introspection(base, secret, token).await?;
    Ok(body["active"] == json!(true))
}

async fn introspection(base: &str, secret: &str, token: &str) -> Result<Value> {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/t/{TENANT}/introspect"))
        .basic_auth(CLIENT, Some(secret))
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(form(&[("token", token)]))
        .send()
        .await?
        .json()
        .await?;
    Ok(body)
}

/// The id of the KEK in node `id`'s kek file.
fn kek_file_id(cluster: &Cluster, id: u64) -> Result<String> {
    let dir = cluster.node(id)?.process.data_dir();
    let text = std::fs::read_to_string(dir.join("kek"))?;
    ensure!(
        !dir.join("kek.next").exists(),
        "node {id} still has kek.next"
    );
    Ok(Kek::parse(&text)?.id().to_string())
}

async fn kek_status(admin: &AdminClient) -> Result<Value> {
    Ok(admin.get("/admin/v1/cluster/kek").await?.success()?.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kek_rotation_with_a_member_down_finishes_when_it_returns() -> Result<()> {
    // One public URL (as behind a load balancer): a token from one node is
    // the cluster's.
    let cluster = Cluster::start(spec(3).args(["--public-url", "http://rsp.kek.test"])).await?;
    cluster.wait_for_leader(CONVERGE).await?;
    let admin = cluster.client(1)?;
    let secret = tenant_with_client(
        &admin,
        TENANT,
        CLIENT,
        json!({"grant_types": ["client_credentials"],
               "token_endpoint_auth_method": "client_secret_basic",
               "scopes": ["api:read"]}),
    )
    .await?
    .context("a confidential client gets a secret")?;
    let before = token(&cluster.http(2)?, &secret).await?;
    let seen = introspection(&cluster.http(1)?, &secret, &before).await?;
    ensure!(seen["active"] == json!(true), "active before: {seen}");
    let first = kek_status(&admin).await?;
    ensure!(first["generation"] == json!(0), "{first}");
    ensure!(kek_file_id(&cluster, 1)? == first["current"].as_str().unwrap_or_default());

    // Node 3 is down when the rotation starts: nothing is re-sealed under a
    // KEK it could not open.
    cluster.kill(3).await?;
    let rotated = cluster
        .client(2)?
        .post("/admin/v1/cluster/kek/rotate", &json!({"wait_secs": 2}))
        .await?;
    ensure!(rotated.status == 202, "{} {}", rotated.status, rotated.body);
    ensure!(rotated.body["resealed"] == json!(0), "{}", rotated.body);
    // The live members take the new KEK (under load, node 1 may take more
    // than the 2 s the call waited); node 3 cannot, and nothing is
    // re-sealed while it is down.
    cluster
        .wait_until(CONVERGE, "only the down node to be waited for", || async {
            let status = kek_status(&admin).await?;
            ensure!(status["waiting_for"] == json!([3]), "{status}");
            ensure!(status["resealed"] == json!(0), "{status}");
            Ok(())
        })
        .await?;
    let new = rotated.body["current"]
        .as_str()
        .context("current")?
        .to_string();
    ensure!(new != first["current"].as_str().unwrap_or_default());
    let busy = admin
        .post("/admin/v1/cluster/kek/rotate", &json!({}))
        .await?;
    ensure!(
        busy.status == 409 && busy.error_code() == Some("rotation_in_progress"),
        "{} {}",
        busy.status,
        busy.body
    );
    // Tokens still work meanwhile, and the new KEK is in force.
    token(&cluster.http(1)?, &secret).await?;

    // Node 3 comes back with the old KEK in its file and takes the new one
    // from the members; the leader's job then finishes the rotation.
    cluster.restart(3).await?;
    let done = cluster
        .wait_until(
            Duration::from_secs(60),
            "the rotation to finish",
            || async {
                let status = kek_status(&admin).await?;
                ensure!(status["rotating"] == json!(false), "{status}");
                Ok(status)
            },
        )
        .await?;
    ensure!(
        done["generation"] == json!(1) && done["current"] == json!(new),
        "{done}"
    );
    ensure!(done["previous"] == json!([]), "{done}");
    for id in cluster.ids() {
        ensure!(kek_file_id(&cluster, id)? == new, "node {id}'s kek file");
    }

    // Restarted nodes have nothing cached: they open the re-sealed signing
    // keys with the KEK from their file, and the client secret hashed
    // before the rotation still verifies.
    for id in [1, 3] {
        cluster.restart(id).await?;
    }
    cluster
        .wait_until(CONVERGE, "every node to be ready", || async {
            for id in cluster.ids() {
                ensure!(cluster.client(id)?.readyz().await? == 200, "node {id}");
            }
            Ok(())
        })
        .await?;
    for id in cluster.ids() {
        let fresh = token(&cluster.http(id)?, &secret).await?;
        ensure!(introspect(&cluster.http(id)?, &secret, &fresh).await?);
        ensure!(
            introspect(&cluster.http(id)?, &secret, &before).await?,
            "a token signed before the rotation verifies on node {id}"
        );
    }
    Ok(())
}
