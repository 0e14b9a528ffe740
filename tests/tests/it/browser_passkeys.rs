//! Passkeys in a real browser: headless Debian `chromium` with a virtual
//! WebAuthn authenticator (CTAP2, discoverable credentials, user
//! verification), driven over WebDriver. A user signs in with the
//! password, registers a passkey on `{issuer}/account/passkeys` (the page's
//! script calls `navigator.credentials.create`), then, with no cookies
//! left, signs in with "Sign in with a passkey" alone
//! (`navigator.credentials.get`, no username) and lands on the client's
//! callback with a code whose ID token has `amr` `hwk`.
//!
//! WebAuthn needs a domain (an IP address cannot be a relying party ID), so
//! the node's public URL is `http://localhost:<port>`, served by a small
//! TCP forwarder in front of the node. Skips, saying so, without
//! `/usr/bin/chromium` or `/usr/bin/chromedriver`.

use crate::support;

use crate::webdriver;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use openidconnect::PkceCodeChallenge;
use rsp_tests::rsp_chaos::Cluster;
use rsp_tests::spec;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use webdriver::{Driver, browser_available, callback_listener};

const TENANT: &str = "pk";
const CLIENT: &str = "passkey-app";

/// Forward every connection to `listener` to `target` (until the test
/// ends and the runtime drops the task).
fn forward(listener: TcpListener, target: SocketAddr) {
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

/// The claims of a JWT (not verified: the token came straight from the
/// token endpoint over the test's own connection).
fn claims(jwt: &str) -> Result<Value> {
    let payload = jwt.split('.').nth(1).context("jwt payload")?;
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in payload.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => bail!("not base64url"),
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Ok(serde_json::from_slice(&out)?)
}

fn authorize_url(public: &str, redirect: &str, challenge: &str, state: &str) -> Result<String> {
    let mut url = url::Url::parse(&format!("{public}/t/{TENANT}/authorize"))?;
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", state)
        .append_pair("nonce", "passkey-nonce")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url.into())
}

async fn next_callback(driver: &Driver, callbacks: &mut mpsc::Receiver<String>) -> Result<String> {
    match tokio::time::timeout(Duration::from_secs(30), callbacks.recv()).await {
        Ok(Some(q)) => Ok(q),
        _ => bail!("no callback; the browser shows:\n{}", driver.source().await),
    }
}

#[tokio::test]
async fn chromium_registers_a_passkey_and_signs_in_with_it_without_a_password() -> Result<()> {
    if !browser_available("browser_passkeys") {
        return Ok(());
    }
    let front = TcpListener::bind("127.0.0.1:0").await?;
    let public = format!("http://localhost:{}", front.local_addr()?.port());
    let (redirect, mut callbacks) = callback_listener().await?;
    let cluster =
        Cluster::start(spec(1).args(["--public-url".to_string(), public.clone()])).await?;
    let node: SocketAddr = cluster
        .http(1)?
        .trim_start_matches("http://")
        .parse()
        .context("node address")?;
    forward(front, node);
    let admin = cluster.client(1)?;
    let secret = support::tenant_with_client(
        &admin,
        TENANT,
        CLIENT,
        json!({
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await?
    .context("client secret")?;

    let driver = Driver::start().await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let outcome = async {
        let authenticator = driver.add_virtual_authenticator().await?;

        // 1. The password, to reach the account pages.
        let (first, _) = PkceCodeChallenge::new_random_sha256();
        driver
            .goto(&authorize_url(&public, &redirect, first.as_str(), "pwd")?)
            .await?;
        driver.type_into("input[name=username]", "erin").await?;
        driver
            .type_into("input[name=password]", support::PASSWORD)
            .await?;
        driver.click("#submit").await?;
        next_callback(&driver, &mut callbacks).await?;

        // 2. Register a passkey.
        driver
            .goto(&format!("{public}/t/{TENANT}/account/passkeys"))
            .await?;
        driver.wait_for("#name", Duration::from_secs(10)).await?;
        driver.type_into("#name", "Chromium laptop").await?;
        driver.click("#add-passkey").await?;
        driver
            .wait_for("#passkey-start", Duration::from_secs(10))
            .await?;
        driver.click("#passkey-start").await?;
        driver
            .wait_for("#passkeys", Duration::from_secs(20))
            .await?;
        let page = driver.source().await;
        ensure!(page.contains("Chromium laptop"), "not listed:\n{page}");
        let held = driver.credentials(&authenticator).await?;
        ensure!(held.len() == 1, "{held:?}");
        ensure!(held[0]["isResidentCredential"] == json!(true), "{held:?}");

        // 3. No cookies (no session): sign in with the passkey alone.
        driver.delete_cookies().await?;
        driver
            .goto(&authorize_url(
                &public,
                &redirect,
                challenge.as_str(),
                "passkey",
            )?)
            .await?;
        driver
            .wait_for("#passkey-login", Duration::from_secs(10))
            .await?;
        driver.click("#passkey-login").await?;
        driver
            .wait_for("#passkey-start", Duration::from_secs(10))
            .await?;
        driver.click("#passkey-start").await?;
        let query = next_callback(&driver, &mut callbacks).await?;
        let held = driver.credentials(&authenticator).await?;
        ensure!(
            held.first().and_then(|c| c["signCount"].as_u64()) >= Some(1),
            "the authenticator counted the assertion: {held:?}"
        );
        Ok::<_, anyhow::Error>(query)
    }
    .await;
    driver.quit().await;
    let query = outcome?;
    let tokens = webdriver::redeem_callback(
        &query,
        "passkey",
        &format!("{public}/t/{TENANT}/token"),
        (CLIENT, &secret),
        &redirect,
        verifier.secret(),
    )
    .await?;
    let id_token = tokens["id_token"].as_str().context("no id_token")?;
    let claims = claims(id_token)?;
    ensure!(claims["amr"] == json!(["hwk", "user"]), "{claims}");
    ensure!(claims["acr"] == "urn:rsp:acr:mfa", "{claims}");
    Ok(())
}
