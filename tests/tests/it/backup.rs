//! `rsp backup` and `rsp restore` as an operator runs them, and
//! `rsp serve --force-new-cluster` on the survivor of a lost quorum.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rsp_tests::rsp_chaos::binary::rsp_binary;
use rsp_tests::rsp_chaos::{AdminClient, Cluster, ClusterSpec, Consistency};
use serde_json::{Value, json};

use crate::support::{WebBrowser, tenant_with_client};

const CONVERGE: Duration = Duration::from_secs(30);
/// The same key-encryption key on both clusters (base64 of 32 bytes).
const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// One public URL for both clusters, as for an operator's restore: tokens
/// name it as their issuer.
const PUBLIC: &str = "http://rsp.backup.test";

fn spec(n: usize) -> ClusterSpec {
    ClusterSpec::new(n)
        .fast_raft()
        .env("RSP_KEK", KEK)
        .args(["--public-url", PUBLIC])
}

/// `rsp ARGS` with `env`, to completion within a minute.
async fn rsp(args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let mut cmd = tokio::process::Command::new(rsp_binary()?);
    cmd.args(args)
        .env_remove("RSP_ADMIN_TOKEN")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .context("rsp did not finish in a minute")?
        .context("running rsp")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn client_credentials(base: &str, tenant: &str, secret: &str) -> Result<Value> {
    let resp = reqwest::Client::new()
        .post(format!("{base}/t/{tenant}/token"))
        .basic_auth("web", Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    ensure!(status == 200, "token: {status} {body}");
    Ok(body)
}

async fn introspect(base: &str, tenant: &str, secret: &str, token: &str) -> Result<Value> {
    let resp = reqwest::Client::new()
        .post(format!("{base}/t/{tenant}/introspect"))
        .basic_auth("web", Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", urlencode(token)))
        .send()
        .await?;
    ensure!(resp.status() == 200, "introspect: {}", resp.status());
    Ok(resp.json().await?)
}

/// Sign in as erin through the browser pages of `base`; the redirect to
/// the client carries a code.
async fn sign_in(base: &str, tenant: &str) -> Result<()> {
    let issuer = format!("{PUBLIC}/t/{tenant}");
    let url = format!(
        "{issuer}/authorize?response_type=code&client_id=web&redirect_uri={}&scope=openid&state=s1&nonce=n1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        urlencode(REDIRECT)
    );
    let mut browser = WebBrowser::new(PUBLIC)?;
    let back = browser.sign_in(&url, base, &issuer).await?;
    let location = back.location.clone().unwrap_or_default();
    ensure!(
        location.starts_with(REDIRECT) && back.param("code").is_some(),
        "sign-in ended at {location:?}"
    );
    Ok(())
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Writers on every node, each its own key sequence; the keys acknowledged
/// before `mark` is read are those a backup started after it must hold.
struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<std::sync::Mutex<BTreeMap<String, String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    fn start(clients: Vec<AdminClient>) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let tasks = clients
            .into_iter()
            .enumerate()
            .map(|(w, client)| {
                let (stop, acked) = (stop.clone(), acked.clone());
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("backup/w{w}/{i:06}");
                        let value = format!("v{i}");
                        if let Ok(r) = client.kv_put(&key, &value, None).await
                            && r.status == 200
                        {
                            acked.lock().unwrap().insert(key, value);
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        Writers { stop, acked, tasks }
    }

    fn acked_so_far(&self) -> BTreeMap<String, String> {
        self.acked.lock().unwrap().clone()
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_restores_into_a_new_cluster_that_serves_it() -> Result<()> {
    let old = Cluster::start(spec(3)).await?;
    let admin = old.client(1)?;
    let secret = tenant_with_client(
        &admin,
        "acme",
        "web",
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic",
               "grant_types": ["authorization_code", "client_credentials"], "scopes": ["openid"]}),
    )
    .await?
    .context("a client secret")?;
    let before = client_credentials(&old.http(2)?, "acme", &secret).await?;
    let token = before["access_token"].as_str().context("access_token")?;

    let writers = Writers::start(vec![old.client(1)?, old.client(2)?, old.client(3)?]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let must_hold = writers.acked_so_far();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("rsp.backup");
    let file_arg = file.to_str().context("path")?;
    let out = rsp(
        &["backup", "--url", &old.http(3)?, "--out", file_arg],
        &[("RSP_ADMIN_TOKEN", old.admin_token())],
    )
    .await?;
    ensure!(out.status.success(), "backup: {}", text(&out));
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("backup of revision"),
        "{}",
        text(&out)
    );
    writers.stop().await;
    ensure!(
        must_hold.len() > 10,
        "only {} writes before the backup",
        must_hold.len()
    );
    ensure!(
        !dir.path().join("rsp.backup.partial").exists(),
        "the partial file was left"
    );

    // Bad files are refused with a clear error and write nothing.
    let bytes = std::fs::read(&file)?;
    let half = &bytes[..bytes.len() / 2];
    check_refused(dir.path(), "truncated", half, &["truncated"]).await?;
    let mut corrupt = bytes.clone();
    let at = corrupt.len() / 3;
    corrupt[at] ^= 0x40;
    // A flipped length reads as a cut file; any other byte fails the sum.
    check_refused(dir.path(), "corrupt", &corrupt, &["corrupt", "truncated"]).await?;
    let mut sum = bytes.clone();
    let last = sum.len() - 1;
    sum[last] ^= 0x01;
    check_refused(dir.path(), "checksum", &sum, &["checksum does not match"]).await?;
    let mut newer = bytes.clone();
    // The header's first field is the format (bincode varint, one byte).
    newer[14] = 9;
    check_refused(dir.path(), "newer", &newer, &["newer than this build"]).await?;

    // Restore into node 1 of a new cluster, which a second node joins.
    let base = tempfile::tempdir()?;
    let data = base.path().join("n1").join("data");
    let data_arg = data.to_str().context("path")?;
    let restore = ["restore", "--backup", file_arg, "--data-dir", data_arg];
    let out = rsp(&restore, &[]).await?;
    ensure!(out.status.success(), "restore: {}", text(&out));
    let out = rsp(&restore, &[]).await?;
    ensure!(
        out.status.code() == Some(2),
        "a second restore into the same dir: {}",
        text(&out)
    );
    drop(old);

    let new = Cluster::start(spec(2).base_dir(base.path())).await?;
    let reader = new.client(2)?;
    let mut missing = Vec::new();
    for (key, value) in &must_hold {
        let got = reader.kv_value(key, Consistency::Linearizable).await?;
        if got.map(|kv| kv.value) != Some(value.clone()) {
            missing.push(key.clone());
        }
    }
    ensure!(
        missing.is_empty(),
        "{} of {} acknowledged writes missing after restore, e.g. {:?}",
        missing.len(),
        must_hold.len(),
        missing.first()
    );
    // Signed before the backup, verified by the restored keys; the client
    // secret and erin's password still work, on the node that joined too.
    let seen = introspect(&new.http(2)?, "acme", &secret, token).await?;
    ensure!(
        seen["active"] == json!(true),
        "old token after restore: {seen}"
    );
    client_credentials(&new.http(2)?, "acme", &secret).await?;
    sign_in(&new.http(2)?, "acme").await?;
    let info = new.client(1)?.cluster_info().await?;
    ensure!(info.members.len() == 2, "{info:?}");
    Ok(())
}

async fn check_refused(dir: &Path, name: &str, bytes: &[u8], says: &[&str]) -> Result<()> {
    let file = dir.join(format!("{name}.backup"));
    std::fs::write(&file, bytes)?;
    let target = dir.join(format!("{name}-data"));
    let out = rsp(
        &[
            "restore",
            "--backup",
            file.to_str().context("path")?,
            "--data-dir",
            target.to_str().context("path")?,
        ],
        &[],
    )
    .await?;
    ensure!(
        out.status.code() == Some(2)
            && says
                .iter()
                .any(|s| String::from_utf8_lossy(&out.stderr).contains(s)),
        "{name} backup: {}",
        text(&out)
    );
    ensure!(
        !target.exists(),
        "a {name} backup wrote {}",
        target.display()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_new_cluster_keeps_the_survivors_data_and_the_old_members_stay_out() -> Result<()> {
    let cluster = Cluster::start(spec(3)).await?;
    let admin = cluster.client(1)?;
    for i in 0..20 {
        let r = admin.kv_put(&format!("force/{i}"), "before", None).await?;
        ensure!(r.status == 200, "write {i}: {}", r.status);
    }
    let survivor = 1;
    cluster.kill(2).await?;
    cluster.kill(3).await?;
    cluster
        .terminate(survivor, Duration::from_secs(10))
        .await
        .ok();

    // Restarted with the flag: a one-node cluster with its data.
    let node = cluster.node(survivor)?;
    node.process.update_spec(|spec| {
        spec.args.push("--force-new-cluster".into());
        spec.env.retain(|(k, _)| k != "RSP_JOIN_TOKEN");
    });
    cluster.restart(survivor).await?;
    let client = cluster.client(survivor)?;
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        if let Ok(r) = client.kv_put("force/after", "yes", None).await
            && r.status == 200
        {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no write after the force"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..20 {
        let got = client
            .kv_value(&format!("force/{i}"), Consistency::Linearizable)
            .await?;
        ensure!(
            got.map(|kv| kv.value).as_deref() == Some("before"),
            "force/{i}"
        );
    }
    let info = client.cluster_info().await?;
    ensure!(
        info.members.len() == 1 && info.leader == Some(survivor),
        "{info:?}"
    );
    let token = std::fs::read_to_string(node.process.data_dir().join("join-token"))?;
    ensure!(
        token.trim() != cluster.join_token(),
        "the join token was not replaced"
    );

    // An old member restarted with its old data and token is refused: it
    // neither joins nor disturbs the new cluster, and never sees its writes.
    let returning = cluster.node(2)?;
    let back = tokio::spawn(async move { returning.process.restart().await });
    for i in 0..20 {
        let r = client.kv_put(&format!("force/new/{i}"), "x", None).await?;
        ensure!(
            r.status == 200,
            "write with an old member back: {}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let info = client.cluster_info().await?;
    ensure!(
        info.members.len() == 1 && info.leader == Some(survivor),
        "{info:?}"
    );
    let old = cluster
        .client(2)?
        .kv_value("force/after", Consistency::Local)
        .await;
    ensure!(
        !matches!(&old, Ok(Some(kv)) if kv.value == "yes"),
        "the old member got the new cluster's write: {old:?}"
    );
    back.abort();
    Ok(())
}
