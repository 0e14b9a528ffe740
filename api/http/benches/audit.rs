//! Audit overhead: browser logins/s, client-credentials tokens/s and admin
//! user creations/s with the audit trail on, beside the same node with a
//! recorder that records nothing (`AuditLog::disabled`), in the same run.
//!
//! Not a test: it prints figures and asserts nothing. Run it with
//!
//! ```text
//! cargo bench -p rsp-api --bench audit
//! ```
//!
//! One in-process node (`TestCluster`, sled on a temp dir, synced) serves
//! two apps over the same consensus: one with the node's audit recorder,
//! one with a disabled one, so the two differ in nothing else. Round by
//! round (`BENCH_ROUNDS`, default 3), mode after mode (the first
//! alternating by round), `BENCH_CLIENTS` (32) tasks loop for `BENCH_SECS`
//! (5) after `BENCH_WARMUP_SECS` (1), through the app in process (no
//! sockets):
//! - **login**: `GET /authorize` (the login page), then `POST /login` with
//!   the right password, answered 303 with a code. Each success queues a
//!   `login.succeeded` event. The password hash is cheap here (argon2id
//!   m=1 MiB, t=1): with the production parameters a login costs about
//!   35 ms of one core and any audit cost disappears in it; the cheap hash
//!   shows it against the rest of the login (the session's Raft writes);
//! - **token**: `POST /token` (client_credentials, ES256); tokens are not
//!   audited (only counted for usage): the two modes should be the same;
//! - **admin**: `POST /admin/v1/tenants/{t}/users`: each answer waits for
//!   its event's Raft write.
//!
//! Last, the median of each workload and mode and the difference.

#[path = "support/inproc.rs"]
mod inproc;
#[path = "support/load.rs"]
mod load;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsp_api::{AdminToken, AppState};
use rsp_consensus::testing::TestCluster;
use rsp_identity::Identity;
use rsp_identity::audit::AuditLog;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::passwords::PasswordHasher;
use rsp_identity::tenants::TenantService;
use rsp_identity::users::NewUser;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use inproc::{field, oneshot_with_headers};
use load::{Settings, env_u64, median};

const TENANT: &str = "bench";
const PUBLIC_URL: &str = "https://id.bench.invalid";
const PASSWORD: &str = "correct horse battery staple";
const REDIRECT: &str = "https://app.bench.invalid/cb";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Subject {
    mode: &'static str,
    app: axum::Router,
    state: AppState,
}

/// One browser login: the login page, then the password; Ok on a 303 with
/// a code.
async fn login(app: &axum::Router, username: &str) -> Result<()> {
    let path = format!(
        "/t/{TENANT}/authorize?response_type=code&client_id=web&redirect_uri={}&scope=openid&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let (status, cookies, page) =
        oneshot_with_headers(app, Request::get(path).body(Body::empty())?).await?;
    if status != StatusCode::OK {
        bail!("login page: {status}");
    }
    let csrf = field(&page, "csrf_token").context("csrf_token")?;
    let flow = field(&page, "flow").context("flow")?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf_token", &csrf)
        .append_pair("flow", &flow)
        .append_pair("username", username)
        .append_pair("password", PASSWORD)
        .finish();
    let (status, _, page) = oneshot_with_headers(
        app,
        Request::post(format!("/t/{TENANT}/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookies.join("; "))
            .body(Body::from(form))?,
    )
    .await?;
    if status != StatusCode::SEE_OTHER {
        bail!("login: {status}: {}", &page[..page.len().min(200)]);
    }
    Ok(())
}

async fn token(app: &axum::Router, basic: &str) -> Result<()> {
    let (status, _, body) = oneshot_with_headers(
        app,
        Request::post(format!("/t/{TENANT}/token"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic)
            .body(Body::from("grant_type=client_credentials"))?,
    )
    .await?;
    if status != StatusCode::OK || !body.contains("access_token") {
        bail!("token: {status}: {body}");
    }
    Ok(())
}

static NEXT_USER: AtomicU64 = AtomicU64::new(0);

async fn create_user(app: &axum::Router) -> Result<()> {
    let n = NEXT_USER.fetch_add(1, Ordering::Relaxed);
    let body = json!({"username": format!("made{n}"), "password": PASSWORD}).to_string();
    let (status, _, answer) = oneshot_with_headers(
        app,
        Request::post(format!("/admin/v1/tenants/{TENANT}/users"))
            .header(header::AUTHORIZATION, "Bearer admin")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))?,
    )
    .await?;
    if status != StatusCode::CREATED {
        bail!("create user: {status}: {answer}");
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Login,
    Token,
    Admin,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::Login => "login",
            Work::Token => "token",
            Work::Admin => "admin create user",
        }
    }
}

/// Figures of one run: per second, p50 and p99 in ms, errors.
struct Run {
    rate: f64,
    p50: f64,
    p99: f64,
    errors: u64,
}

async fn run(
    subject: &Subject,
    work: Work,
    s: &Settings,
    clients: usize,
    basic: &str,
) -> Result<Run> {
    let stop_at = Instant::now() + s.warmup + s.measure;
    let measure_from = Instant::now() + s.warmup;
    let mut tasks = Vec::new();
    for w in 0..clients {
        let app = subject.app.clone();
        let basic = basic.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            let user = format!("user{w}");
            while Instant::now() < stop_at {
                let t = Instant::now();
                let r = match work {
                    Work::Login => login(&app, &user).await,
                    Work::Token => token(&app, &basic).await,
                    Work::Admin => create_user(&app).await,
                };
                if t >= measure_from {
                    match r {
                        Ok(()) => lat.push(t.elapsed().as_micros() as u64),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e.to_string());
                        }
                    }
                }
            }
            (lat, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first = None;
    for t in tasks {
        let (lat, e, f) = t.await?;
        all.extend(lat);
        errors += e;
        first = first.or(f);
    }
    if let Some(e) = first {
        eprintln!("{} / {}: first error: {e}", work.name(), subject.mode);
    }
    all.sort_unstable();
    let pct = |q: f64| load::percentile(&all, q);
    Ok(Run {
        rate: all.len() as f64 / s.measure.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
    })
}

async fn start(clients: usize) -> Result<(TestCluster, Vec<Subject>, String)> {
    let cluster = TestCluster::start(1)
        .await
        .map_err(|e| anyhow!("in-process cluster: {e}"))?;
    let node = &cluster.nodes[0];
    let kek = Kek::generate();
    let hasher = PasswordHasher::with(
        argon2::Params::new(1024, 1, 1, None).map_err(|e| anyhow!("{e}"))?,
        2,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let mut config = rsp_actors::RuntimeConfig::default();
    config.limits.requests_per_sec = 0.0;
    // Rate limits off, as `rsp serve` with `--token-rate-limit 0`.
    for kind in [rsp_actors::KIND_TOKEN, rsp_actors::KIND_LOGIN] {
        config.rate_limits.rules.remove(kind);
        config.rate_limits.unlimited.insert(kind.to_string());
    }
    let runtime = rsp_actors::TenantRuntime::start(node.consensus.clone(), config, &node.registry)
        .await
        .map_err(|e| anyhow!("tenant runtime: {e}"))?;
    let mut subjects = Vec::new();
    for mode in ["audit on", "audit off"] {
        let mut identity = Identity::new(
            node.consensus.clone(),
            Arc::new(KekCell::with(kek.clone())),
            hasher.clone(),
            PUBLIC_URL,
        );
        if mode == "audit off" {
            identity = identity.with_audit(AuditLog::disabled(
                node.consensus.clone(),
                TenantService::new(node.consensus.clone()),
            ));
        }
        let state = AppState::new(
            node.consensus.clone(),
            AdminToken::new(Zeroizing::new("admin".to_string())),
            node.registry.clone(),
            identity,
            PUBLIC_URL,
        )
        .with_runtime(runtime.clone());
        subjects.push(Subject {
            mode,
            app: rsp_api::app(state.clone()),
            state,
        });
    }
    let state = &subjects[0].state;
    state
        .tenants
        .create(TENANT, TENANT, 0)
        .await
        .map_err(|e| anyhow!("tenant: {e}"))?;
    for k in 0..clients {
        state
            .identity
            .users
            .create(
                TENANT,
                NewUser {
                    username: format!("user{k}"),
                    password: Zeroizing::new(PASSWORD.into()),
                    email: None,
                    attributes: Default::default(),
                },
                0,
            )
            .await
            .map_err(|e| anyhow!("user: {e}"))?;
    }
    let app = &subjects[0].app;
    let mut secret = String::new();
    for (id, body) in [
        (
            "web",
            json!({"client_id": "web", "redirect_uris": [REDIRECT], "grant_types": ["authorization_code"], "token_endpoint_auth_method": "client_secret_basic"}),
        ),
        (
            "svc",
            json!({"client_id": "svc", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"}),
        ),
    ] {
        let (status, _, answer) = oneshot_with_headers(
            app,
            Request::post(format!("/admin/v1/tenants/{TENANT}/clients"))
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))?,
        )
        .await?;
        if status != StatusCode::CREATED {
            bail!("client {id}: {status}: {answer}");
        }
        if id == "svc" {
            let v: Value = serde_json::from_str(&answer)?;
            secret = v["client_secret"].as_str().context("secret")?.to_string();
        }
    }
    let basic = format!("Basic {}", STANDARD.encode(format!("svc:{secret}")));
    Ok((cluster, subjects, basic))
}

async fn bench() -> Result<()> {
    let s = Settings::from_env(5, 1, 32)?;
    let rounds = env_u64("BENCH_ROUNDS", 3)?.max(1) as usize;
    println!(
        "Audit overhead: {} clients, {}s measured (+{}s warm-up) per run, {rounds} rounds, {} cores",
        s.clients,
        s.measure.as_secs(),
        s.warmup.as_secs(),
        load::cores()
    );
    let (_cluster, subjects, basic) = start(s.clients).await?;
    let works = [Work::Login, Work::Token, Work::Admin];
    // (work, mode) -> per-round figures
    let mut figures: Vec<(Work, &'static str, Vec<Run>)> = Vec::new();
    for w in works {
        for sub in &subjects {
            figures.push((w, sub.mode, Vec::new()));
        }
    }
    println!(
        "\n{:<6} {:<18} {:<10} {:>9} {:>8} {:>8} {:>7}",
        "round", "workload", "mode", "per s", "p50 ms", "p99 ms", "errors"
    );
    for round in 1..=rounds {
        for w in works {
            let mut order: Vec<&Subject> = subjects.iter().collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for sub in order {
                let r = run(sub, w, &s, s.clients, &basic).await?;
                println!(
                    "{round:<6} {:<18} {:<10} {:>9.1} {:>8.2} {:>8.2} {:>7}",
                    w.name(),
                    sub.mode,
                    r.rate,
                    r.p50,
                    r.p99,
                    r.errors
                );
                if let Some(f) = figures
                    .iter_mut()
                    .find(|(fw, m, _)| *fw == w && *m == sub.mode)
                {
                    f.2.push(r);
                }
            }
        }
    }
    let stats = subjects[0].state.identity.audit.stats();
    println!(
        "\naudit recorder (mode on): {} events recorded in {} writes, {} dropped, {} failed",
        stats.recorded.load(Ordering::Relaxed),
        stats.writes.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed)
    );
    println!("\nmedians:");
    println!(
        "{:<18} {:>12} {:>12} {:>9} {:>12} {:>12}",
        "workload", "on per s", "off per s", "overhead", "on p99 ms", "off p99 ms"
    );
    for w in works {
        let med = |mode: &str, f: fn(&Run) -> f64| {
            let runs = &figures
                .iter()
                .find(|(fw, m, _)| *fw == w && *m == mode)
                .expect("figures")
                .2;
            median(runs.iter().map(f).collect())
        };
        let (on, off) = (med("audit on", |r| r.rate), med("audit off", |r| r.rate));
        println!(
            "{:<18} {:>12.1} {:>12.1} {:>8.1}% {:>12.2} {:>12.2}",
            w.name(),
            on,
            off,
            (off - on) / off * 100.0,
            med("audit on", |r| r.p99),
            med("audit off", |r| r.p99)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}
