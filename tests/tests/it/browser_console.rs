//! The web console in a real browser: headless `chromium` (through
//! `chromedriver`, as in `browser_chromium.rs`) signs in to `/admin/` of a
//! one-node cluster with the admin token, creates a tenant and a user
//! (and a client) through the forms, and the admin API then has them.
//! Screenshots of each page (PNG) are the test's artifacts, kept in
//! `target/tmp/console-screenshots/` (replaced by every run; the test
//! prints the path) and copied to `RSP_SCREENSHOT_DIR` when it is set.
//!
//! Skips, saying so, when chromium or chromedriver is absent.

use crate::webdriver;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine;
use rsp_tests::rsp_chaos::Cluster;
use rsp_tests::spec;
use serde_json::json;
use webdriver::{Driver, browser_available};

const WAIT: Duration = Duration::from_secs(30);

/// Save the browser's viewport as `dir/name` (and in
/// `RSP_SCREENSHOT_DIR`, if set).
async fn screenshot(driver: &Driver, dir: &Path, name: &str) -> Result<PathBuf> {
    let b64 = driver
        .cmd(reqwest::Method::GET, "/screenshot", None)
        .await?
        .as_str()
        .context("no screenshot")?
        .to_string();
    let png = base64::engine::general_purpose::STANDARD.decode(b64)?;
    ensure!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = dir.join(name);
    std::fs::write(&path, &png)?;
    if let Some(out) = std::env::var_os("RSP_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&out)?;
        std::fs::copy(&path, Path::new(&out).join(name))?;
    }
    Ok(path)
}

#[tokio::test]
async fn chromium_signs_in_to_the_console_and_creates_a_tenant_and_a_user() -> Result<()> {
    if !browser_available("browser_console") {
        return Ok(());
    }
    let cluster = Cluster::start(spec(1)).await?;
    let admin = cluster.client(1)?;
    let base = cluster.http(1)?;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots)?;
    eprintln!("console screenshots in {}", shots.display());

    let driver = Driver::start().await?;
    let outcome = async {
        driver
            .cmd(
                reqwest::Method::POST,
                "/window/rect",
                Some(json!({"width": 1280, "height": 900})),
            )
            .await?;
        driver.goto(&format!("{base}/admin/")).await?;
        driver.wait_for("input[name=admin_token]", WAIT).await?;
        screenshot(&driver, &shots, "console-1-sign-in.png").await?;
        driver
            .type_into("input[name=admin_token]", cluster.admin_token())
            .await?;
        driver.click("#sign-in").await?;
        driver.wait_for("#create-tenant", WAIT).await?;

        driver.type_into("input[name=id]", "console-e2e").await?;
        driver
            .type_into("input[name=display_name]", "Console End-to-End")
            .await?;
        driver.click("#create-tenant").await?;
        driver.wait_for("#rename", WAIT).await?;
        screenshot(&driver, &shots, "console-2-tenant.png").await?;

        driver
            .goto(&format!("{base}/admin/tenants/console-e2e/users"))
            .await?;
        driver.wait_for("#create-user", WAIT).await?;
        driver.type_into("input[name=username]", "frank").await?;
        driver
            .type_into("input[name=email]", "frank@example.com")
            .await?;
        driver
            .type_into("input[name=password]", "console password 1234")
            .await?;
        driver.click("#create-user").await?;
        driver.wait_for("#disable-user", WAIT).await?;
        screenshot(&driver, &shots, "console-3-user.png").await?;

        driver
            .goto(&format!("{base}/admin/tenants/console-e2e/users"))
            .await?;
        driver.wait_for("#create-user", WAIT).await?;
        screenshot(&driver, &shots, "console-4-users.png").await?;

        driver
            .goto(&format!("{base}/admin/tenants/console-e2e/policies"))
            .await?;
        driver.wait_for("#save-policies", WAIT).await?;
        driver
            .type_into(
                "textarea[name=policies]",
                "permit(principal, action, resource) when { principal.level > };",
            )
            .await?;
        driver.click("#save-policies").await?;
        driver.wait_for(".diagnostics", WAIT).await?;
        screenshot(&driver, &shots, "console-5-policies.png").await?;

        driver
            .goto(&format!("{base}/admin/tenants/console-e2e/clients"))
            .await?;
        driver.wait_for("#create-client", WAIT).await?;
        driver.type_into("input[name=client_id]", "portal").await?;
        driver
            .type_into(
                "textarea[name=redirect_uris]",
                "https://portal.example.com/cb",
            )
            .await?;
        driver.click("#create-client").await?;
        driver.wait_for("#client-secret", WAIT).await?;
        screenshot(&driver, &shots, "console-6-client-secret.png").await?;

        driver
            .goto(&format!("{base}/admin/tenants/console-e2e/clients"))
            .await?;
        driver.wait_for("#create-client", WAIT).await?;
        screenshot(&driver, &shots, "console-8-clients.png").await?;
        driver
            .goto(&format!("{base}/admin/tenants/console-e2e/clients/portal"))
            .await?;
        driver.wait_for("#rotate-secret", WAIT).await?;
        screenshot(&driver, &shots, "console-9-client.png").await?;
        driver.goto(&format!("{base}/admin/tenants")).await?;
        driver.wait_for("#create-tenant", WAIT).await?;
        screenshot(&driver, &shots, "console-10-tenants.png").await?;

        driver.goto(&format!("{base}/admin/cluster")).await?;
        driver.wait_for("#readiness", WAIT).await?;
        screenshot(&driver, &shots, "console-7-cluster.png").await?;
        anyhow::Ok(())
    }
    .await;
    let source = match &outcome {
        Ok(()) => String::new(),
        Err(_) => driver.source().await,
    };
    driver.quit().await;
    outcome.with_context(|| format!("the browser shows:\n{source}"))?;

    let tenant = admin
        .get("/admin/v1/tenants/console-e2e")
        .await?
        .success()?;
    let tenant: serde_json::Value = tenant.json()?;
    ensure!(tenant["display_name"] == "Console End-to-End", "{tenant}");
    let users: serde_json::Value = admin
        .get("/admin/v1/tenants/console-e2e/users?username=frank")
        .await?
        .success()?
        .json()?;
    ensure!(users["items"][0]["email"] == "frank@example.com", "{users}");
    let portal = admin
        .get("/admin/v1/tenants/console-e2e/clients/portal")
        .await?;
    ensure!(portal.is_success(), "{}", portal.body);
    for shot in std::fs::read_dir(&shots)? {
        ensure!(shot?.metadata()?.len() > 1000, "an empty screenshot");
    }
    Ok(())
}
