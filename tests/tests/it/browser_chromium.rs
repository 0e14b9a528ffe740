//! The login page in a real browser: Debian's headless `chromium`, driven
//! through `chromedriver` with a few WebDriver calls over reqwest, opens the
//! authorization URL of a one-node cluster, fills the form, submits it and
//! lands on the client's callback (a tiny HTTP listener on 127.0.0.1, port
//! 0, registered as the redirect URI) with a code, which the test then
//! exchanges at the token endpoint.
//!
//! Skips, saying so, when `/usr/bin/chromium` or `/usr/bin/chromedriver` is
//! absent (`apt-get install -y chromium chromium-driver`).

use crate::support;

use crate::webdriver;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use openidconnect::PkceCodeChallenge;
use rsp_tests::rsp_chaos::Cluster;
use rsp_tests::spec;
use serde_json::json;
use webdriver::{Driver, browser_available, callback_listener};

#[tokio::test]
async fn chromium_fills_the_login_form_and_lands_on_the_callback_with_a_code() -> Result<()> {
    if !browser_available("browser_chromium") {
        return Ok(());
    }
    let (redirect, mut callbacks) = callback_listener().await?;
    let cluster = Cluster::start(spec(1)).await?;
    let admin = cluster.client(1)?;
    let secret = support::tenant_with_client(
        &admin,
        "web",
        "chrome-app",
        json!({
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await?
    .context("client secret")?;
    let base = cluster.http(1)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut authorize = url::Url::parse(&format!("{base}/t/web/authorize"))?;
    authorize
        .query_pairs_mut()
        .append_pair("client_id", "chrome-app")
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", "chromium-state")
        .append_pair("nonce", "chromium-nonce")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");

    let driver = Driver::start().await?;
    let outcome = async {
        driver.goto(authorize.as_str()).await?;
        driver.type_into("input[name=username]", "erin").await?;
        driver
            .type_into("input[name=password]", support::PASSWORD)
            .await?;
        driver.click("button[type=submit]").await?;
        let query = tokio::time::timeout(Duration::from_secs(30), callbacks.recv())
            .await
            .ok()
            .flatten();
        match query {
            Some(q) => Ok(q),
            None => bail!("no callback; the browser shows:\n{}", driver.source().await),
        }
    }
    .await;
    driver.quit().await;
    let query = outcome?;
    let tokens = webdriver::redeem_callback(
        &query,
        "chromium-state",
        &format!("{base}/t/web/token"),
        ("chrome-app", &secret),
        &redirect,
        verifier.secret(),
    )
    .await?;
    ensure!(tokens["id_token"].is_string(), "{tokens}");
    Ok(())
}
