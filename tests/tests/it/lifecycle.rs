//! A node's life beyond crashes: graceful shutdown on SIGTERM, peers that
//! prove the cluster's join token, peers that speak only mutual TLS, and
//! HTTPS and peer certificates replaced without a restart.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use rsp_chaos::binary::rsp_binary;
use rsp_chaos::{Consistency, NodeProcess, NodeSpec, wait_until};
use rsp_tests::{CONVERGE, put_acked, spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_leader_exits_cleanly_and_the_cluster_moves_on() -> Result<()> {
    let cluster = rsp_chaos::Cluster::start(spec(3)).await?;
    let leader = cluster.wait_for_leader(CONVERGE).await?;
    let client = cluster.client(leader)?;
    put_acked(&client, "before", "1").await?;

    let status = cluster.terminate(leader, Duration::from_secs(20)).await?;
    assert!(
        status.success(),
        "a SIGTERM'd node must exit 0, got {status:?}"
    );

    let survivor = cluster
        .live_ids()
        .into_iter()
        .find(|id| *id != leader)
        .context("a survivor")?;
    let client = cluster.client(survivor)?;
    wait_until(CONVERGE, "a write after the leader left", || async {
        let status = client.kv_put("after", "2", None).await?.status;
        anyhow::ensure!(status == 200, "status {status}");
        Ok(())
    })
    .await?;
    let new_leader = cluster.wait_for_leader(CONVERGE).await?;
    assert_ne!(new_leader, leader);

    // The stopped node starts again from its data dir and sees both writes.
    cluster.restart(leader).await?;
    let back = cluster.client(leader)?;
    wait_until(
        CONVERGE,
        "the restarted node has the later write",
        || async {
            let seen = back.kv_value("after", Consistency::Local).await?;
            anyhow::ensure!(seen.as_ref().is_some_and(|kv| kv.value == "2"), "{seen:?}");
            Ok(())
        },
    )
    .await?;
    assert_eq!(
        back.kv_value("before", Consistency::Local)
            .await?
            .map(|kv| kv.value),
        Some("1".into())
    );
    Ok(())
}

struct Pki {
    ca_pem: String,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Result<Pki> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca_pem = ca_params.self_signed(&ca_key)?.pem();
        Ok(Pki {
            ca_pem,
            ca_params,
            ca_key,
        })
    }

    /// A node certificate for 127.0.0.1, valid as server and as client.
    fn node_cert(&self, dir: &Path, name: &str) -> Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer)?;
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok((
            cert_path.display().to_string(),
            key_path.display().to_string(),
        ))
    }
}

/// The admin token of the TLS nodes (at least 32 characters, as start-up
/// requires).
const TLS_ADMIN: &str = "tls-test-admin-token-0123456789abcdef";

/// `rsp cert ARGS`; an error unless it exits 0.
fn rsp_cert(args: &[&str]) -> Result<()> {
    let out = std::process::Command::new(rsp_binary()?)
        .arg("cert")
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "rsp cert {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

async fn tls_node(
    dir: &Path,
    id: u64,
    cert: &(String, String),
    ca: &str,
    join: Option<(String, &Path)>,
) -> Result<NodeProcess> {
    NodeProcess::start(tls_spec(dir, id, cert, ca, join)?).await
}

/// Node `id` in `dir`, presenting `cert` on peer links and trusting `ca`,
/// joining through `join` (with the join token in that file) if given.
fn tls_spec(
    dir: &Path,
    id: u64,
    cert: &(String, String),
    ca: &str,
    join: Option<(String, &Path)>,
) -> Result<NodeSpec> {
    let mut node = NodeSpec::new(rsp_binary()?, dir.join(format!("n{id}")));
    node.node_id = Some(id);
    node.args = vec![
        "--tls-cert".into(),
        cert.0.clone(),
        "--tls-key".into(),
        cert.1.clone(),
        "--peer-tls-ca".into(),
        ca.into(),
    ];
    node.args.extend([
        "--heartbeat-ms".into(),
        "50".into(),
        "--election-timeout-ms".into(),
        "300".into(),
    ]);
    if let Some((addr, join_token)) = join {
        node.args.extend(["--join".into(), addr]);
        node.args
            .extend(["--join-token-file".into(), join_token.display().to_string()]);
    }
    node.env = vec![("RSP_ADMIN_TOKEN".into(), TLS_ADMIN.into())];
    node.ready_timeout = Duration::from_secs(20);
    Ok(node)
}

/// A client trusting the CA certificates in `ca_pem` (one or more).
fn https_client(ca_pem: &str) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())?)
        .timeout(Duration::from_secs(10))
        .build()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_mutual_tls_form_a_cluster_and_a_stranger_cannot_join() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    // The cluster's PKI as docs/operations.md makes it: `rsp cert`.
    let ca_dir = dir.path().join("ca");
    let ca_dir_arg = ca_dir.display().to_string();
    let out_arg = dir.path().display().to_string();
    rsp_cert(&["ca", "--out", &ca_dir_arg])?;
    rsp_cert(&[
        "node",
        "--ca",
        &ca_dir_arg,
        "--name",
        "node",
        "--san",
        "127.0.0.1",
        "--san",
        "localhost",
        "--out",
        &out_arg,
    ])?;
    let ca_path = ca_dir.join("ca.pem");
    let ca = ca_path.display().to_string();
    let ca_pem = std::fs::read_to_string(&ca_path)?;
    let cert = (
        dir.path().join("node.pem").display().to_string(),
        dir.path().join("node.key").display().to_string(),
    );
    let key_mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cert.1)?.permissions());
    ensure!(key_mode & 0o077 == 0, "the node key is readable by others");
    ensure!(
        rsp_cert(&["ca", "--out", &ca_dir_arg]).is_err(),
        "a second CA over the first"
    );

    let n1 = tls_node(dir.path(), 1, &cert, &ca, None).await?;
    let r1 = n1.ready().context("ready")?;
    assert!(r1.public_url.starts_with("https://"), "{}", r1.public_url);
    let join_token = r1
        .join_token_file
        .clone()
        .context("node 1 made a join token")?;
    let join = Some((r1.peer_addr.to_string(), join_token.as_path()));
    let n2 = tls_node(dir.path(), 2, &cert, &ca, join).await?;
    let r2 = n2.ready().context("ready")?;

    let http = https_client(&ca_pem)?;
    let put = http
        .put(format!("{}/admin/v1/kv/tls", r2.public_url))
        .bearer_auth(TLS_ADMIN)
        .json(&serde_json::json!({"value": "over mTLS"}))
        .send()
        .await?;
    assert_eq!(
        put.status(),
        200,
        "a write forwarded between TLS peers: {:?}",
        put.text().await
    );
    let read = http
        .get(format!("{}/admin/v1/kv/tls", r1.public_url))
        .bearer_auth(TLS_ADMIN)
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    assert_eq!(read["value"], "over mTLS");

    // A node whose certificate another CA signed is refused at the TLS layer
    // even with the join token: it never gets to join.
    let stranger_pki = Pki::new("another CA")?;
    let stranger_dir = dir.path().join("stranger");
    std::fs::create_dir_all(&stranger_dir)?;
    let stranger_ca = stranger_dir.join("ca.pem");
    std::fs::write(&stranger_ca, &stranger_pki.ca_pem)?;
    let stranger_cert = stranger_pki.node_cert(&stranger_dir, "node")?;
    let join = Some((r1.peer_addr.to_string(), join_token.as_path()));
    let stranger_ca = stranger_ca.display().to_string();
    let mut spec = tls_spec(&stranger_dir, 3, &stranger_cert, &stranger_ca, join)?;
    spec.ready_timeout = Duration::from_secs(3);
    let stranger = NodeProcess::spawn(spec)?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ids = member_ids(&http, &r1.public_url).await?;
    assert_eq!(ids, vec![1, 2], "the stranger must not be a member");
    drop(stranger);
    Ok(())
}

async fn member_ids(http: &reqwest::Client, url: &str) -> Result<Vec<u64>> {
    let members = http
        .get(format!("{url}/admin/v1/cluster"))
        .bearer_auth(TLS_ADMIN)
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    Ok(members["members"]
        .as_array()
        .context("members")?
        .iter()
        .filter_map(|m| m["id"].as_u64())
        .collect())
}

/// On SIGHUP a member's peer links use the certificate, key and CA now in
/// its files, both as listener and as dialler: after both members move to
/// a new CA, a node with a certificate from the new CA joins (through
/// member 2, which then has member 1 dial it) and one from the old CA
/// cannot. A CA file that does not load is refused and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_tls_moves_to_a_new_ca_on_sighup_without_a_restart() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let old = Pki::new("rsp old CA")?;
    let new = Pki::new("rsp new CA")?;
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &old.ca_pem)?;
    let ca = ca_path.display().to_string();
    let cert = old.node_cert(dir.path(), "node")?;

    let n1 = tls_node(dir.path(), 1, &cert, &ca, None).await?;
    let r1 = n1.ready().context("ready")?;
    let join_token = r1
        .join_token_file
        .clone()
        .context("node 1 made a join token")?;
    let join = Some((r1.peer_addr.to_string(), join_token.as_path()));
    let n2 = tls_node(dir.path(), 2, &cert, &ca, join).await?;
    let r2 = n2.ready().context("ready")?;

    // A CA file that does not load: refused, logged, the node keeps going.
    std::fs::write(&ca_path, "not a CA")?;
    n1.signal(libc::SIGHUP)?;
    wait_until(
        CONVERGE,
        "the bad CA file is refused in the log",
        || async {
            let log = n1.log_tail(50);
            anyhow::ensure!(
                log.contains("peer TLS material was not loaded"),
                "log: {log}"
            );
            Ok(())
        },
    )
    .await?;
    assert!(n1.is_running(), "SIGHUP stopped the node");

    // Both members move to a new CA, with new certificates and keys.
    std::fs::write(&ca_path, &new.ca_pem)?;
    new.node_cert(dir.path(), "node")?;
    n1.signal(libc::SIGHUP)?;
    n2.signal(libc::SIGHUP)?;

    let fresh_dir = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh_dir)?;
    let fresh_ca = fresh_dir.join("ca.pem");
    std::fs::write(&fresh_ca, &new.ca_pem)?;
    let fresh_cert = new.node_cert(&fresh_dir, "node")?;
    let join = Some((r2.peer_addr.to_string(), join_token.as_path()));
    let n3 = tls_node(
        &fresh_dir,
        3,
        &fresh_cert,
        &fresh_ca.display().to_string(),
        join,
    )
    .await
    .context("a node from the new CA joins")?;
    let r3 = n3.ready().context("ready")?;

    let http = https_client(&format!("{}{}", old.ca_pem, new.ca_pem))?;
    let put = http
        .put(format!("{}/admin/v1/kv/rotated", r3.public_url))
        .bearer_auth(TLS_ADMIN)
        .json(&serde_json::json!({"value": "new CA"}))
        .send()
        .await?;
    assert_eq!(put.status(), 200, "a write: {:?}", put.text().await);
    let read = http
        .get(format!("{}/admin/v1/kv/rotated", r2.public_url))
        .bearer_auth(TLS_ADMIN)
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    assert_eq!(read["value"], "new CA");

    // A node from the old CA is refused at the TLS layer now.
    let stale_dir = dir.path().join("stale");
    std::fs::create_dir_all(&stale_dir)?;
    let stale_ca = stale_dir.join("ca.pem");
    std::fs::write(&stale_ca, &old.ca_pem)?;
    let stale_cert = old.node_cert(&stale_dir, "node")?;
    let join = Some((r1.peer_addr.to_string(), join_token.as_path()));
    let mut spec = tls_spec(
        &stale_dir,
        4,
        &stale_cert,
        &stale_ca.display().to_string(),
        join,
    )?;
    spec.ready_timeout = Duration::from_secs(3);
    let stale = NodeProcess::spawn(spec)?;
    wait_until(CONVERGE, "the old-CA node's join is refused", || async {
        let log = stale.log_tail(50);
        anyhow::ensure!(log.contains("member not reachable yet"), "log: {log}");
        Ok(())
    })
    .await?;
    let ids = member_ids(&http, &r1.public_url).await?;
    assert_eq!(ids, vec![1, 2, 3], "the old-CA node must not be a member");
    drop(stale);
    Ok(())
}

const ADMIN: &str = "join-test-admin-token-0123456789abcdef";

fn plain_node(dir: &Path, id: u64, args: &[&str], env: &[(&str, &str)]) -> Result<NodeSpec> {
    let mut node = NodeSpec::new(rsp_binary()?, dir.join(format!("n{id}")));
    node.node_id = Some(id);
    node.args = ["--heartbeat-ms", "50", "--election-timeout-ms", "300"]
        .iter()
        .chain(args)
        .map(|a| a.to_string())
        .collect();
    node.env = [("RSP_ADMIN_TOKEN", ADMIN)]
        .iter()
        .chain(env)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    node.ready_timeout = Duration::from_secs(20);
    Ok(node)
}

/// Start-up that must fail: exit code 2 and the setting named on stderr.
async fn refused(spec: NodeSpec, setting: &str) -> Result<()> {
    let node = NodeProcess::spawn(spec)?;
    let status = node.wait_exit(Duration::from_secs(20)).await?;
    let log = node.log_tail(20);
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains(setting), "{setting} not named: {log}");
    Ok(())
}

/// The node that bootstraps writes the join token (0600); a node joins only
/// by presenting it, keeps a copy, and restarts without being given it
/// again. A node with no token or another cluster's token stops at once
/// with exit 2 naming `join-token`, and is not a member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_only_with_the_join_token_and_keeps_it() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir()?;
    let n1 = NodeProcess::start(plain_node(dir.path(), 1, &[], &[])?).await?;
    let r1 = n1.ready().context("ready")?;
    let token_file = r1.join_token_file.clone().context("a join token file")?;
    let mode = std::fs::metadata(&token_file)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the join token is private");
    let peer = r1.peer_addr.to_string();

    let no_token = plain_node(dir.path(), 2, &["--join", &peer], &[])?;
    refused(no_token, "join-token").await?;
    let wrong = [("RSP_JOIN_TOKEN", "another-clusters-token-0123456789abcdef")];
    let wrong_token = plain_node(dir.path(), 3, &["--join", &peer], &wrong)?;
    refused(wrong_token, "join-token").await?;

    let token_arg = token_file.display().to_string();
    let joiner = plain_node(
        dir.path(),
        4,
        &["--join", &peer, "--join-token-file", &token_arg],
        &[],
    )?;
    let n4 = NodeProcess::start(joiner).await?;
    let kept = n4
        .ready()
        .and_then(|r| r.join_token_file)
        .context("the joiner keeps a copy")?;
    assert_eq!(std::fs::read(&kept)?, std::fs::read(&token_file)?);

    let http = reqwest::Client::new();
    let members = || async {
        let body: serde_json::Value = http
            .get(format!("{}/admin/v1/cluster", r1.public_url))
            .bearer_auth(ADMIN)
            .send()
            .await?
            .json()
            .await?;
        let mut ids: Vec<u64> = body["members"]
            .as_array()
            .context("members")?
            .iter()
            .filter_map(|m| m["id"].as_u64())
            .collect();
        ids.sort();
        anyhow::Ok(ids)
    };
    assert_eq!(members().await?, vec![1, 4]);

    // A restart without --join or a token flag uses the kept copy.
    n4.update_spec(|s| s.args.truncate(4));
    n4.terminate(Duration::from_secs(20)).await?;
    n4.restart().await?;
    let url = n4.base_url();
    wait_until(CONVERGE, "the restarted joiner serves writes", || async {
        let put = http
            .put(format!("{url}/admin/v1/kv/after-restart"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"value": "1"}))
            .send()
            .await?;
        anyhow::ensure!(put.status() == 200, "status {}", put.status());
        Ok(())
    })
    .await?;
    assert_eq!(members().await?, vec![1, 4]);
    Ok(())
}

/// The DER of the first certificate in a PEM file.
fn cert_der(path: &str) -> Result<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    Ok(CertificateDer::from_pem_file(path)?.to_vec())
}

/// The certificate a new HTTPS connection to `url` is served, and the
/// answer's `Strict-Transport-Security` header.
async fn served_certificate(ca_pem: &str, url: &str) -> Result<(Vec<u8>, Option<String>)> {
    // A new client each time: a pooled connection keeps its old certificate.
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes())?])
        .tls_info(true)
        .timeout(Duration::from_secs(10))
        .build()?;
    let resp = client.get(format!("{url}/healthz")).send().await?;
    let info = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .context("TLS info")?;
    let der = info
        .peer_certificate()
        .context("a peer certificate")?
        .to_vec();
    let hsts = resp
        .headers()
        .get("strict-transport-security")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    Ok((der, hsts))
}

/// Over HTTPS every answer carries HSTS; over plain HTTP none does. On
/// SIGHUP the node serves the certificate now in its files; files that do
/// not load leave the one in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_certificate_is_replaced_on_sighup_and_a_bad_one_is_refused() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let pki = Pki::new("rsp reload CA")?;
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &pki.ca_pem)?;
    let ca = ca_path.display().to_string();
    let cert = pki.node_cert(dir.path(), "node")?;
    let first = cert_der(&cert.0)?;

    let n1 = tls_node(dir.path(), 1, &cert, &ca, None).await?;
    let url = n1.ready().context("ready")?.public_url;
    let (served, hsts) = served_certificate(&pki.ca_pem, &url).await?;
    assert!(served == first, "the node serves its first certificate");
    assert_eq!(hsts.as_deref(), Some("max-age=31536000"));

    // A certificate file that is not PEM: logged and refused, the old one stays.
    std::fs::write(&cert.0, "not a certificate")?;
    n1.signal(libc::SIGHUP)?;
    wait_until(
        CONVERGE,
        "the bad certificate is refused in the log",
        || async {
            let log = n1.log_tail(50);
            anyhow::ensure!(log.contains("keeping the one in use"), "log: {log}");
            Ok(())
        },
    )
    .await?;
    assert!(n1.is_running(), "SIGHUP stopped the node");
    let (served, _) = served_certificate(&pki.ca_pem, &url).await?;
    assert!(served == first, "a bad file replaced the certificate");

    // A new pair (new key too): served after SIGHUP, without a restart.
    let renewed = pki.node_cert(dir.path(), "node")?;
    let second = cert_der(&renewed.0)?;
    assert!(second != first);
    n1.signal(libc::SIGHUP)?;
    wait_until(
        CONVERGE,
        "new connections see the new certificate",
        || async {
            let (served, _) = served_certificate(&pki.ca_pem, &url).await?;
            anyhow::ensure!(served == second, "still the certificate before");
            Ok(())
        },
    )
    .await?;

    // Plain HTTP carries no HSTS.
    let plain = NodeProcess::start(plain_node(dir.path(), 2, &[], &[])?).await?;
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("{}/healthz", plain.base_url()))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("strict-transport-security").is_none());
    Ok(())
}
