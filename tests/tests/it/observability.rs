//! `deploy/observability/`: the Prometheus rule files load in `promtool
//! check rules`, their alerts pass the cases of `rules-tests/` (`promtool
//! test rules`), and every metric the rules and the Grafana dashboards use
//! exists in what real `rsp` nodes export after a little traffic (admin
//! calls, a client-credentials token, a failed and a successful sign-in,
//! an account locked, a Cedar decision, a user's sessions revoked). A
//! dashboard or rule naming a metric no node exports fails here.
//!
//! `promtool` comes with the Debian package `prometheus` (`scripts/test`
//! installs it); without it this test fails rather than skips.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use rsp_tests::rsp_chaos::{AdminClient, Cluster};
use rsp_tests::{CONVERGE, spec};
use serde_json::{Value, json};
use support::{PASSWORD, WebBrowser, tenant_with_client};

const PUBLIC: &str = "http://rsp.obs.test";
const TENANT: &str = "obs";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// RFC 7636's example challenge: the sign-ins here never redeem the code.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Families that only appear once their event happened, which this test's
/// traffic does not cause (a SAML answer, a second factor enrolled, a
/// rate-limit or quota refusal, an actor restart). Dashboards may use them;
/// each must be a documented family (docs/observability.md).
const RARE: &[&str] = &[
    "rsp_mfa_enrolments_total",
    "rsp_saml_responses_total",
    "rsp_tenant_rate_limited_total",
    "rsp_tenant_quota_rejections_total",
    "rsp_tenant_actor_restarts_total",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

fn files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    out.retain(|p| p.extension().is_some_and(|e| e == ext));
    out.sort();
    ensure!(!out.is_empty(), "no .{ext} files in {}", dir.display());
    Ok(out)
}

/// `promtool <args> <files>`, which must succeed.
fn promtool(args: &[&str], files: &[PathBuf]) -> Result<()> {
    let out = match Command::new("promtool").args(args).args(files).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "promtool is not installed: install the Debian package `prometheus` \
             (./scripts/install-packages prometheus; scripts/test does)"
        ),
        Err(e) => return Err(e).context("running promtool"),
    };
    ensure!(
        out.status.success(),
        "promtool {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The expressions and recorded names of a rule file. A small reader for
/// the shapes the files use: `expr:` and `record:` keys whose value is a
/// plain or double-quoted scalar on the same line, or a `|`/`>` block.
fn rule_file(text: &str) -> Result<(Vec<String>, Vec<String>)> {
    let (mut exprs, mut records) = (Vec::new(), Vec::new());
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start().trim_start_matches("- ");
        i += 1;
        if let Some(name) = line.strip_prefix("record:") {
            records.push(name.trim().trim_matches('"').to_string());
        } else if let Some(value) = line.strip_prefix("expr:") {
            let value = value.trim();
            if value.starts_with('"') {
                exprs.push(serde_json::from_str(value).context("a quoted expr")?);
            } else if value.starts_with('|') || value.starts_with('>') {
                let indent = |l: &str| l.len() - l.trim_start().len();
                let key_indent = indent(lines[i - 1]);
                let mut block = String::new();
                while i < lines.len()
                    && (lines[i].trim().is_empty() || indent(lines[i]) > key_indent)
                {
                    block.push_str(lines[i].trim());
                    block.push('\n');
                    i += 1;
                }
                exprs.push(block);
            } else {
                exprs.push(value.trim_matches('\'').to_string());
            }
        }
    }
    Ok((exprs, records))
}

/// Every `expr` of a dashboard's panels and every query of its variables.
fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) if s.contains("rsp_") => out.push(s.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// The metric and recording-rule names an expression refers to: its
/// identifiers outside string literals that contain `rsp_`.
fn names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if word.contains("rsp_") {
            out.push(std::mem::take(word));
        }
        word.clear();
    };
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' || c == '`' {
            flush(&mut word, &mut out);
            while let Some(d) = chars.next() {
                if d == '\\' {
                    chars.next();
                } else if d == c {
                    break;
                }
            }
        } else if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The families of a scrape (its `# TYPE` lines).
fn families(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn exists(name: &str, scraped: &BTreeSet<String>, recorded: &BTreeSet<String>) -> bool {
    if recorded.contains(name) || scraped.contains(name) {
        return true;
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .any(|s| name.strip_suffix(s).is_some_and(|f| scraped.contains(f)))
}

#[test]
fn the_names_of_an_expression_skip_strings_and_keep_recorded_names() {
    let e =
        r#"sum by (le) (rate(rsp_a_bucket{route=~"/t/rsp_not_this"}[5m])) / class:rsp_b:rate5m"#;
    assert_eq!(names(e), vec!["rsp_a_bucket", "class:rsp_b:rate5m"]);
    let scraped = BTreeSet::from(["rsp_a".to_string()]);
    let recorded = BTreeSet::from(["class:rsp_b:rate5m".to_string()]);
    assert!(exists("rsp_a_bucket", &scraped, &recorded));
    assert!(exists("class:rsp_b:rate5m", &scraped, &recorded));
    assert!(!exists("rsp_c_total", &scraped, &recorded));
}

/// Traffic that makes the families the dashboards use appear.
async fn traffic(cluster: &Cluster, admin: &AdminClient) -> Result<()> {
    let secret = tenant_with_client(
        admin,
        TENANT,
        "rp",
        json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scopes": ["profile", "api:read"],
        }),
    )
    .await?
    .context("a confidential client gets a secret")?;
    admin
        .post(
            &format!("/admin/v1/tenants/{TENANT}/users"),
            &json!({"username": "mallory", "password": PASSWORD}),
        )
        .await?
        .success()?;
    let base = cluster.http(1)?;

    let token = reqwest::Client::new()
        .post(format!("{base}/t/{TENANT}/token"))
        .basic_auth("rp", Some(&secret))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body("grant_type=client_credentials&scope=api%3Aread")
        .send()
        .await?;
    ensure!(token.status() == 200, "token: {}", token.text().await?);

    let authorize = format!(
        "{PUBLIC}/t/{TENANT}/authorize?response_type=code&client_id=rp&scope=openid\
         &state=st&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let issuer = format!("{PUBLIC}/t/{TENANT}");
    // Wrong passwords until mallory is locked out (the default limit is 5).
    for _ in 0..6 {
        let mut browser = WebBrowser::new(PUBLIC)?;
        let wrong = browser
            .sign_in_as(&authorize, &base, &issuer, "mallory", "not the password")
            .await;
        ensure!(wrong.is_err(), "a wrong password signed in");
    }
    let mut browser = WebBrowser::new(PUBLIC)?;
    browser.sign_in(&authorize, &base, &issuer).await?;

    let decision = admin
        .post(
            &format!("/t/{TENANT}/authz/v1/is_authorized"),
            &json!({"principal": "User::\"erin\"", "action": "Action::\"view\"",
                    "resource": "Doc::\"1\""}),
        )
        .await?
        .success()?;
    ensure!(decision.body["decision"] == "Deny", "{}", decision.body);

    let users = admin
        .get(&format!("/admin/v1/tenants/{TENANT}/users"))
        .await?
        .success()?;
    let erin = find_user(&users.body, "erin").context("erin in the user list")?;
    admin
        .delete(&format!("/admin/v1/tenants/{TENANT}/users/{erin}/sessions"))
        .await?
        .success()?;
    Ok(())
}

/// The `id` of the object whose `username` is `name`, anywhere in `v`.
fn find_user(v: &Value, name: &str) -> Option<String> {
    match v {
        Value::Object(map) if map.get("username").and_then(Value::as_str) == Some(name) => {
            map.get("id").and_then(Value::as_str).map(str::to_string)
        }
        Value::Object(map) => map.values().find_map(|v| find_user(v, name)),
        Value::Array(items) => items.iter().find_map(|v| find_user(v, name)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_rules_use_only_metrics_a_node_exports() -> Result<()> {
    let deploy = repo().join("deploy/observability");
    let rule_files = files(&deploy.join("rules"), "yml")?;
    promtool(&["check", "rules"], &rule_files)?;
    // The alerts fire on the series that should raise them.
    promtool(
        &["test", "rules"],
        &files(&deploy.join("rules-tests"), "yml")?,
    )?;

    let mut used: Vec<(String, String)> = Vec::new();
    let mut recorded = BTreeSet::new();
    for path in &rule_files {
        let (exprs, records) = rule_file(&std::fs::read_to_string(path)?)?;
        ensure!(!exprs.is_empty(), "no expr read from {}", path.display());
        recorded.extend(records);
        for e in exprs {
            used.extend(
                names(&e)
                    .into_iter()
                    .map(|n| (n, path.display().to_string())),
            );
        }
    }
    let boards = files(&deploy.join("dashboards"), "json")?;
    ensure!(boards.len() >= 4, "four dashboards, found {boards:?}");
    for path in &boards {
        let board: Value = serde_json::from_str(&std::fs::read_to_string(path)?)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let mut exprs = Vec::new();
        dashboard_exprs(&board, &mut exprs);
        ensure!(!exprs.is_empty(), "no expr in {}", path.display());
        for e in exprs {
            used.extend(
                names(&e)
                    .into_iter()
                    .map(|n| (n, path.display().to_string())),
            );
        }
    }

    let cluster = Cluster::start(spec(3).args(["--public-url", PUBLIC])).await?;
    cluster.wait_for_leader(CONVERGE).await?;
    let admin = cluster.client(1)?;
    traffic(&cluster, &admin).await?;
    let mut scraped = BTreeSet::new();
    for id in cluster.ids() {
        scraped.extend(families(&cluster.client(id)?.metrics().await?));
    }
    // Replication lag exists on the leader once it has heard from its
    // followers; every node has its Raft families.
    ensure!(
        scraped.contains("rsp_raft_replication_lag_entries"),
        "no replication lag in the scrapes: {scraped:?}"
    );

    let documented = std::fs::read_to_string(repo().join("docs/observability.md"))?;
    for rare in RARE {
        ensure!(
            documented.contains(&format!("| `{rare}` |")),
            "{rare} is not a documented family"
        );
        scraped.insert(rare.to_string());
    }
    let missing: BTreeSet<String> = used
        .iter()
        .filter(|(n, _)| !exists(n, &scraped, &recorded))
        .map(|(n, file)| format!("{n} (in {file})"))
        .collect();
    ensure!(
        missing.is_empty(),
        "metrics used by dashboards or rules that no node exports:\n  {}\nexported: {scraped:?}",
        missing.into_iter().collect::<Vec<_>>().join("\n  ")
    );
    Ok(())
}
