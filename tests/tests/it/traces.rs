//! Distributed traces and what they must never hold, against real `rsp`
//! processes exporting to an in-test OTLP/HTTP collector (see `otlp`):
//!
//! - a write sent with a W3C `traceparent` to a follower is traced in the
//!   caller's trace on the follower (its request span a child of the
//!   caller's span) and on the leader (the forwarded write, proposed,
//!   committed and applied there);
//! - a full browser login (password form, code exchange, userinfo,
//!   refresh) exports spans and JSON logs in which neither the password,
//!   the authorization code, the tokens nor the client secret appear.

use crate::otlp::{Export, collector, find};
use crate::support::{PASSWORD, WebBrowser, tenant_with_client};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use rsp_tests::rsp_chaos::Cluster;
use rsp_tests::spec;
use serde_json::json;
use tokio::sync::mpsc;

const TRACE_ID: &str = "5e1f0ace0ff1ce0000000000c0ffee18";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Exported {
    node: Option<u64>,
    trace_id: String,
    parent: String,
    name: String,
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            _ => None,
        })
}

fn spans_of(export: &Export) -> Result<Vec<Exported>> {
    let req = ExportTraceServiceRequest::decode(export.body.as_slice())
        .context("an OTLP export is an ExportTraceServiceRequest")?;
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let attrs = rs.resource.map(|r| r.attributes).unwrap_or_default();
        let node = string_attr(&attrs, "service.instance.id").and_then(|v| v.parse().ok());
        for ss in rs.scope_spans {
            for span in ss.spans {
                out.push(Exported {
                    node,
                    trace_id: hex(&span.trace_id),
                    parent: hex(&span.parent_span_id),
                    name: span.name,
                });
            }
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Receive exports until `done` holds for the spans seen so far.
async fn collect_until(
    rx: &mut mpsc::UnboundedReceiver<Export>,
    within: Duration,
    what: &str,
    mut raw: impl FnMut(&Export),
    done: impl Fn(&[Exported]) -> bool,
) -> Result<Vec<Exported>> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(export)) = tokio::time::timeout(left, rx.recv()).await else {
            let names: BTreeSet<_> = seen.iter().map(|s| (s.node, s.name.clone())).collect();
            bail!("{what} not seen within {within:?}; spans seen: {names:?}");
        };
        raw(&export);
        seen.extend(spans_of(&export)?);
    }
    Ok(seen)
}

fn traced_spec(nodes: usize, endpoint: String) -> rsp_tests::rsp_chaos::ClusterSpec {
    spec(nodes)
        .args(["--otlp-endpoint".to_string(), endpoint])
        // Export every 200 ms instead of every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_sent_to_a_follower_is_traced_on_the_follower_and_the_leader() -> Result<()> {
    let (endpoint, mut rx) = collector().await?;
    // A caller's sampled parent is followed even when the nodes sample
    // nothing of their own.
    let spec = traced_spec(3, endpoint).args(["--otlp-sampling-ratio", "0"]);
    let cluster = Cluster::start(spec).await?;
    let leader = cluster
        .wait_for_leader(rsp_tests::CONVERGE)
        .await
        .context("a leader")?;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .context("a follower")?;

    let resp = reqwest::Client::new()
        .post(format!("{}/admin/v1/tenants", cluster.http(follower)?))
        .bearer_auth(cluster.admin_token())
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .header("tracestate", "caller=1")
        .json(&json!({"id": "traced", "display_name": "Traced"}))
        .send()
        .await?;
    ensure!(
        resp.status().as_u16() == 201,
        "create tenant on follower {follower}: {} {}",
        resp.status(),
        resp.text().await.unwrap_or_default()
    );

    let ours = |s: &Exported| s.trace_id == TRACE_ID;
    let seen = collect_until(
        &mut rx,
        Duration::from_secs(30),
        "the trace's spans from the follower and the leader",
        |_| {},
        |seen| {
            let on = |node, name: &str| {
                seen.iter()
                    .any(|s| ours(s) && s.node == Some(node) && s.name == name)
            };
            on(follower, "POST /admin/v1/tenants")
                && on(follower, "raft.forward")
                && on(leader, "raft.forwarded_write")
                && on(leader, "raft.propose")
        },
    )
    .await
    .with_context(|| cluster.logs(20))?;

    let request = seen
        .iter()
        .find(|s| ours(s) && s.name == "POST /admin/v1/tenants")
        .context("request span")?;
    assert_eq!(
        request.parent, CALLER_SPAN,
        "the request span is a child of the caller's span"
    );
    let by_node: BTreeMap<u64, BTreeSet<&str>> =
        seen.iter()
            .filter(|s| ours(s))
            .fold(BTreeMap::new(), |mut m, s| {
                m.entry(s.node.unwrap_or(0))
                    .or_default()
                    .insert(s.name.as_str());
                m
            });
    assert!(
        by_node[&follower].contains("raft.write"),
        "follower spans: {by_node:?}"
    );
    // Nothing but this trace was sampled: ratio 0 keeps no trace of its own.
    let others: BTreeSet<_> = seen
        .iter()
        .filter(|s| !ours(s))
        .map(|s| s.name.clone())
        .collect();
    assert!(others.is_empty(), "spans of other traces: {others:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_login_exports_no_password_code_token_or_secret_in_spans_or_logs() -> Result<()> {
    const TENANT: &str = "scan";
    const REDIRECT: &str = "http://127.0.0.1:9/callback";
    let (endpoint, mut rx) = collector().await?;
    let spec = traced_spec(1, endpoint).args(["--log-format", "json"]).env(
        "RSP_LOG",
        "info,rsp_api=debug,rsp_identity=debug,rsp_actors=debug,rsp_consensus=debug,\
             rsp_node=debug,rsp_policies=debug,tower_http=debug",
    );
    let cluster = Cluster::start(spec).await?;
    let node = cluster
        .wait_for_leader(rsp_tests::CONVERGE)
        .await
        .context("the node leads")?;
    let base = cluster.http(node)?;
    let admin = cluster.client(node)?;
    let secret = tenant_with_client(
        &admin,
        TENANT,
        "rp",
        json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scopes": ["openid", "profile", "email"],
        }),
    )
    .await?
    .context("a confidential client gets a secret")?;

    // The browser signs in with the password form.
    let issuer = format!("{base}/t/{TENANT}");
    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    let authorize = format!(
        "{issuer}/authorize?response_type=code&client_id=rp&redirect_uri={}&scope=openid%20profile&state=s1&nonce=n1&code_challenge={}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        challenge.as_str(),
    );
    let mut browser = WebBrowser::new(&base)?;
    let back = browser.sign_in(&authorize, &base, &issuer).await?;
    let code = back.param("code").context("no code in the redirect")?;

    // The client exchanges the code, reads userinfo, refreshes.
    let http = reqwest::Client::new();
    let token = |form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let secret = secret.clone();
        let url = format!("{issuer}/token");
        async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&form)
                .finish();
            let resp = http
                .post(url)
                .basic_auth("rp", Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await?;
            ensure!(status.is_success(), "token endpoint: {status} {body}");
            Ok::<_, anyhow::Error>(body)
        }
    };
    let first = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", verifier.secret().clone()),
    ])
    .await?;
    let field = |v: &serde_json::Value, name: &str| {
        v[name]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no {name} in {v}"))
    };
    let access = field(&first, "access_token")?;
    let refresh = field(&first, "refresh_token")?;
    let id_token = field(&first, "id_token")?;
    let userinfo = http
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(&access)
        .send()
        .await?;
    ensure!(
        userinfo.status().is_success(),
        "userinfo: {}",
        userinfo.status()
    );
    let second = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.clone()),
    ])
    .await?;
    let access2 = field(&second, "access_token")?;
    let refresh2 = field(&second, "refresh_token").unwrap_or_default();

    let mut secrets: Vec<(&str, String)> = vec![
        ("password", PASSWORD.to_string()),
        ("authorization code", code),
        ("client secret", secret),
        ("refresh token", refresh),
        ("code verifier", verifier.secret().clone()),
    ];
    if !refresh2.is_empty() {
        secrets.push(("second refresh token", refresh2));
    }
    // A JWT's signature is what makes it a credential; a log that kept any
    // part of one would keep that.
    for (what, jwt) in [
        ("access token", access),
        ("ID token", id_token),
        ("second access token", access2),
    ] {
        let signature = jwt.rsplit('.').next().unwrap_or_default().to_string();
        secrets.push((what, jwt));
        secrets.push((what, signature));
    }

    // Every span the login made, scanned as raw protobuf (strings are kept
    // as plain bytes, so attribute values and names are all covered).
    let mut leaks = Vec::new();
    let scan = |bytes: &[u8], leaks: &mut Vec<String>, source: &str| {
        for (what, value) in &secrets {
            if find(bytes, value.as_bytes()).is_some() {
                leaks.push(format!("{what} in {source}"));
            }
        }
    };
    let mut raw = Vec::new();
    let seen = collect_until(
        &mut rx,
        Duration::from_secs(30),
        "the login's spans",
        |e| raw.push(e.body.clone()),
        |seen| {
            let has = |name: &str| seen.iter().any(|s| s.name == name);
            has("POST /t/{tenant}/login")
                && has("password.verify")
                && has("jwt.sign")
                && has("POST /t/{tenant}/token")
                && has("GET /t/{tenant}/userinfo")
        },
    )
    .await?;
    // Let the last batch (the refresh) arrive too.
    let settle = Instant::now() + Duration::from_secs(2);
    while let Ok(Some(e)) =
        tokio::time::timeout(settle.saturating_duration_since(Instant::now()), rx.recv()).await
    {
        raw.push(e.body);
    }
    for body in &raw {
        scan(body, &mut leaks, "an exported span");
    }
    ensure!(seen.len() > 10, "too few spans to mean anything: {seen:?}");

    // The node's log: JSON lines on stderr.
    let log = std::fs::read(cluster.node(node)?.process.log_path())?;
    let text = String::from_utf8_lossy(&log);
    let json_lines = text
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    ensure!(json_lines > 20, "the log has {json_lines} JSON lines");
    scan(&log, &mut leaks, "the log");
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
    Ok(())
}
