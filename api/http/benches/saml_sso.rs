//! SAML single sign-on: answers per second of SP-initiated sign-on for
//! browsers already signed in (a fresh AuthnRequest by the HTTP-Redirect
//! binding, answered by the HTTP-POST page with a signed Response), on an
//! in-process cluster of 1 node and of 3, beside the RSA-2048 signing
//! ceiling of this machine measured in the same run.
//!
//! Not a test: it prints figures and asserts nothing about speed. Run it
//! with `cargo bench -p rsp-api --bench saml_sso`.
//!
//! What it does:
//! 1. starts a 1-node and a 3-node `TestCluster` (sled on a temp dir,
//!    synced), an `AppState` with a tenant runtime per node (as `rsp
//!    serve` builds it, tenant quota off as in the OAuth benchmark), each
//!    node's app on a socket of its own on 127.0.0.1; creates tenant
//!    `bench`, registers an SP by the admin API (`entity_id` and `acs_url`
//!    only: persistent NameID, the default attributes, only the assertion
//!    signed) and signs `BENCH_CLIENTS` browsers in through the login page
//!    (one user each);
//! 2. round by round (`BENCH_ROUNDS`): the **ceiling**, RSA-2048 PKCS#1
//!    v1.5 SHA-256 signatures/s over a canonical SignedInfo by the tenant's
//!    key as the answer signs with it (`keys::Signer::sign`, aws-lc, parsed
//!    once), one thread per core; the same with OpenSSL, to compare the
//!    libraries; the **answer in process**,
//!    `rsp_identity::saml::response::success` (XML, signature, base64; no
//!    HTTP, Raft or session) on one thread per core; then the **answers
//!    over HTTP**, 1 node and 3 (in turn, the first alternating by round):
//!    `BENCH_CLIENTS` workers, each with a keep-alive HTTP/1.1 connection
//!    per node (worker `w` sends its `i`-th request to node
//!    `(w + i) % nodes`), loop `GET
//!    /t/bench/saml/sso?SAMLRequest=...&RelayState=...` with a browser's
//!    session cookie. Each request has a new ID (spent through Raft when
//!    answered); the requests are built before the run, so the load
//!    generator does not deflate them on the cores it measures. Only a 200
//!    page whose SAMLResponse is a Success with `InResponseTo` the
//!    request's ID and a filled-in signature counts;
//! 3. prints each figure as a share of its round's ceiling, per second and
//!    per CPU second of this process (`/proc/self/stat`; the load
//!    generator's CPU counts against the answers), with the cores the
//!    process and the machine's other processes had meanwhile
//!    (`/proc/stat`): on a shared machine the per-second share follows
//!    what the other jobs take in each phase, the per-CPU-second one much
//!    less; then the medians.
//!
//! Settings (environment): `BENCH_SECS` (measured seconds per run, default
//! 5), `BENCH_WARMUP_SECS` (1), `BENCH_CLIENTS` (64), `BENCH_ROUNDS` (3),
//! `BENCH_NODES` (`1`, `3` or `1,3`). A short run:
//! `BENCH_SECS=1 BENCH_ROUNDS=1`.

#[path = "support/inproc.rs"]
mod inproc;
#[path = "support/load.rs"]
mod load;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::Full;
use hyper::body::Bytes;
use rsp_api::{AdminToken, AppState};
use rsp_consensus::testing::TestCluster;
use rsp_identity::Identity;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::passwords::PasswordHasher;
use rsp_identity::saml::Signing;
use rsp_identity::saml::metadata::IdpEndpoints;
use rsp_identity::saml::providers::{NameIdFormat, Registration};
use rsp_identity::saml::response::{self, Answer, Subject};
use rsp_identity::users::NewUser;
use serde_json::json;
use zeroize::Zeroizing;

use inproc::{field, oneshot_with_headers};
use load::{
    LoadResult, Rate, Settings, Workload, cores, env_u64, median, per_core_rate_cpu, run_load,
};

const TENANT: &str = "bench";
const PUBLIC_URL: &str = "https://id.bench.invalid";
const SP: &str = "https://sp.bench.invalid/metadata";
const ACS: &str = "https://sp.bench.invalid/acs";
const PASSWORD: &str = "correct horse battery staple";

fn sso_url() -> String {
    format!("{PUBLIC_URL}/t/{TENANT}/saml/sso")
}

// --- the cluster under test ----------------------------------------------------

/// An in-process cluster whose nodes serve their apps on sockets.
struct SsoCluster {
    name: String,
    targets: Vec<String>,
    states: Vec<AppState>,
    /// Session cookies, one `Cookie` header per signed-in browser.
    browsers: Arc<Vec<String>>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    _cluster: TestCluster,
}

impl Drop for SsoCluster {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

async fn start(nodes: usize, browsers: usize) -> Result<SsoCluster> {
    let cluster = TestCluster::start(nodes)
        .await
        .map_err(|e| anyhow!("in-process cluster: {e}"))?;
    let kek = Kek::generate();
    // The login is not measured: a cheap hash.
    let hasher = PasswordHasher::with(
        argon2::Params::new(1024, 1, 1, None).map_err(|e| anyhow!("{e}"))?,
        2,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let mut states = Vec::new();
    let mut apps = Vec::new();
    let mut targets = Vec::new();
    let mut servers = Vec::new();
    for node in &cluster.nodes {
        let identity = Identity::new(
            node.consensus.clone(),
            Arc::new(KekCell::with(kek.clone())),
            hasher.clone(),
            PUBLIC_URL,
        );
        let mut config = rsp_actors::RuntimeConfig::default();
        // Like the OAuth benchmark: no tenant quota, the bench measures
        // capacity.
        config.limits.requests_per_sec = 0.0;
        let runtime =
            rsp_actors::TenantRuntime::start(node.consensus.clone(), config, &node.registry)
                .await
                .map_err(|e| anyhow!("tenant runtime: {e}"))?;
        let state = AppState::new(
            node.consensus.clone(),
            AdminToken::new(Zeroizing::new("admin".to_string())),
            node.registry.clone(),
            identity,
            PUBLIC_URL,
        )
        .with_runtime(runtime);
        let app = rsp_api::app(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        targets.push(format!("http://{}", listener.local_addr()?));
        let service = app
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        servers.push(tokio::spawn(async move {
            use axum::serve::ListenerExt as _;
            // As `rsp serve` does: answers leave at once (no Nagle delay).
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, service).await;
        }));
        states.push(state);
        apps.push(app);
    }
    states[0]
        .tenants
        .create(TENANT, TENANT, 0)
        .await
        .map_err(|e| anyhow!("tenant: {e}"))?;
    let (status, body) = oneshot(
        &apps[0],
        Request::post(format!("/admin/v1/tenants/{TENANT}/saml/service-providers"))
            .header(header::AUTHORIZATION, "Bearer admin")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"entity_id": SP, "acs_url": ACS}).to_string(),
            ))?,
    )
    .await?;
    if status != StatusCode::CREATED {
        bail!("registering the SP: {status} {body}");
    }
    let mut cookies = Vec::new();
    for k in 0..browsers {
        let username = format!("user{k}");
        states[0]
            .identity
            .users
            .create(
                TENANT,
                NewUser {
                    username: username.clone(),
                    password: Zeroizing::new(PASSWORD.into()),
                    email: Some(format!("{username}@example.com")),
                    attributes: Default::default(),
                },
                0,
            )
            .await
            .map_err(|e| anyhow!("creating {username}: {e}"))?;
        cookies.push(sign_in(&apps[0], &username).await?);
    }
    // Every node has applied the sessions before it is asked.
    for node in &cluster.nodes {
        node.consensus
            .linearizable_barrier()
            .await
            .map_err(|e| anyhow!("barrier: {e}"))?;
    }
    Ok(SsoCluster {
        name: format!("rsp {nodes}n"),
        targets,
        states,
        browsers: Arc::new(cookies),
        servers,
        _cluster: cluster,
    })
}

/// A request through `app` without a socket: the status and the body.
async fn oneshot(app: &axum::Router, req: Request<Body>) -> Result<(StatusCode, String)> {
    let (status, _, body) = oneshot_with_headers(app, req).await?;
    Ok((status, body))
}

/// Sign `username` in through the login page of an SP-initiated request
/// (in process, so the per-address login limit does not apply): the
/// browser's `Cookie` header.
async fn sign_in(app: &axum::Router, username: &str) -> Result<String> {
    let (path, id) = sso_request(&format!("_login_{username}"))?;
    let (status, cookies, page) =
        oneshot_with_headers(app, Request::get(path).body(Body::empty())?).await?;
    if status != StatusCode::OK || !page.contains("name=\"password\"") {
        bail!("expected the login page, got {status}: {page}");
    }
    let field = |name| field(&page, name).with_context(|| format!("no {name} in the login page"));
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf_token", &field("csrf_token")?)
        .append_pair("flow", &field("flow")?)
        .append_pair("username", username)
        .append_pair("password", PASSWORD)
        .finish();
    let (status, more, page) = oneshot_with_headers(
        app,
        Request::post(format!("/t/{TENANT}/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookies.join("; "))
            .body(Body::from(form))?,
    )
    .await?;
    check_answer(&id, status, page.as_bytes()).map_err(|e| anyhow!("signing in: {e}"))?;
    let mut jar = std::collections::BTreeMap::new();
    for pair in cookies.iter().chain(&more) {
        if let Some((k, v)) = pair.split_once('=') {
            jar.insert(k.to_string(), v.to_string());
        }
    }
    Ok(jar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; "))
}

// --- requests and answers ------------------------------------------------------

/// The path and query of a fresh AuthnRequest `id` by the HTTP-Redirect
/// binding, as an SP sends it (DEFLATE, base64, URL-encoded), and its ID.
fn sso_request(id: &str) -> Result<(String, String)> {
    let issued = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{issued}" Destination="{dest}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" AssertionConsumerServiceURL="{ACS}"><saml:Issuer>{SP}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/></samlp:AuthnRequest>"#,
        dest = sso_url()
    );
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "SAMLRequest",
            &rsp_identity::saml::wire::encode_redirect(&xml),
        )
        .append_pair("RelayState", "/after/sign-in")
        .finish();
    Ok((format!("/t/{TENANT}/saml/sso?{query}"), id.to_string()))
}

/// `Ok` when `page` is the HTTP-POST page of a successful, signed Response
/// to request `id`.
fn check_answer(id: &str, status: StatusCode, page: &[u8]) -> Result<(), String> {
    let page = String::from_utf8_lossy(page);
    let short = || page.chars().take(300).collect::<String>();
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}: {}", short()));
    }
    let message =
        field(&page, "SAMLResponse").ok_or_else(|| format!("no SAMLResponse: {}", short()))?;
    let xml = STANDARD
        .decode(message)
        .map_err(|e| format!("SAMLResponse is not base64: {e}"))?;
    let xml = String::from_utf8_lossy(&xml);
    let signed = xml
        .split("<ds:SignatureValue>")
        .nth(1)
        .is_some_and(|rest| !rest.starts_with('<'));
    if xml.contains(&format!(r#"InResponseTo="{id}""#))
        && xml.contains(response::STATUS_SUCCESS)
        && signed
    {
        Ok(())
    } else {
        Err(format!("not a signed Success to {id}: {xml}"))
    }
}

/// Requests built before a run, taken in turn by every worker (built on
/// the spot, and counted, if the run outlasts them).
struct Prepared {
    requests: Vec<(String, String)>,
    next: AtomicUsize,
    late: AtomicUsize,
    /// Distinguishes the IDs of this run from every other's.
    run: String,
}

impl Prepared {
    fn build(run: &str, n: usize) -> Result<Prepared> {
        let requests = (0..n)
            .map(|i| sso_request(&format!("_{run}_{i}")))
            .collect::<Result<_>>()?;
        Ok(Prepared {
            requests,
            next: AtomicUsize::new(0),
            late: AtomicUsize::new(0),
            run: run.to_string(),
        })
    }
}

#[derive(Clone)]
struct Sso {
    prepared: Arc<Prepared>,
    browsers: Arc<Vec<String>>,
}

impl Workload for Sso {
    type Sent = String;

    fn request(&self) -> Result<(hyper::Request<Full<Bytes>>, String)> {
        let p = &self.prepared;
        let i = p.next.fetch_add(1, Ordering::Relaxed);
        let (path, id) = match p.requests.get(i) {
            Some((path, id)) => (path.clone(), id.clone()),
            None => {
                p.late.fetch_add(1, Ordering::Relaxed);
                sso_request(&format!("_{}_{i}", p.run))?
            }
        };
        let cookie = &self.browsers[i % self.browsers.len()];
        let request = hyper::Request::get(path)
            .header(hyper::header::COOKIE, cookie.as_str())
            .body(Full::new(Bytes::new()))?;
        Ok((request, id))
    }

    fn check(&self, id: String, status: hyper::StatusCode, body: &[u8]) -> Result<(), String> {
        check_answer(&id, status, body)
    }
}

// --- what the machine allows ---------------------------------------------------

/// A SignedInfo in the canonical form that is signed (exclusive C14N,
/// RSA-SHA256, one reference with a SHA-256 digest).
fn signed_info() -> String {
    concat!(
        r#"<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#,
        r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"></ds:CanonicalizationMethod>"#,
        r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"></ds:SignatureMethod>"#,
        r##"<ds:Reference URI="#_0123456789abcdef0123456789abcdef"><ds:Transforms>"##,
        r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"></ds:Transform>"#,
        r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"></ds:Transform>"#,
        r#"</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"></ds:DigestMethod>"#,
        r#"<ds:DigestValue>q5eXmsnOPr7L7GLtmW4VR2vXe8Mzpkfyx4g1GvXbJ1c=</ds:DigestValue></ds:Reference></ds:SignedInfo>"#
    )
    .to_string()
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures/s over a SignedInfo, one
/// thread per core, by the tenant's key as the answer signs with it
/// ([`rsp_identity::keys::Signer::sign`], aws-lc, parsed once): the most a
/// node answering with one signature each can give.
fn signing_ceiling(signing: &Signing, secs: Duration) -> Result<Rate> {
    let message = signed_info();
    let signer = signing.signer.clone();
    let len = signer
        .sign(message.as_bytes())
        .map_err(|e| anyhow!("{e}"))?
        .len();
    if len != 256 {
        bail!("the tenant's SAML key makes {len}-byte signatures, not RSA-2048's 256");
    }
    per_core_rate_cpu(secs, "signing", || {
        let (signer, message) = (signer.clone(), message.clone());
        move || {
            assert!(
                signer.sign(message.as_bytes()).is_ok(),
                "RSA signing failed"
            );
        }
    })
}

/// The same with OpenSSL (the library libxmlsec1 signs with), the key
/// loaded once: shown beside the ceiling, to compare the libraries.
fn openssl_rate(pkcs8: &[u8], secs: Duration) -> Result<Rate> {
    let key = openssl::pkey::PKey::private_key_from_pkcs8(pkcs8)?;
    let message = signed_info();
    per_core_rate_cpu(secs, "signing", || {
        let (key, message) = (key.clone(), message.clone());
        move || {
            let signed = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)
                .and_then(|mut s| s.sign_oneshot_to_vec(message.as_bytes()));
            assert!(signed.is_ok_and(|s| s.len() == 256), "RSA signing failed");
        }
    })
}

/// `response::success` (the Response XML, its assertion signed, base64)
/// per second, one thread per core: the answer without HTTP, Raft or the
/// session.
fn answers_in_process(signing: &Signing, secs: Duration) -> Result<Rate> {
    let sp = Registration {
        entity_id: Some(SP.into()),
        acs_url: Some(ACS.into()),
        ..Registration::default()
    }
    .into_provider(0)
    .map_err(|e| anyhow!("{e}"))?;
    let signer = signing.signer.clone();
    let certificate = signing.certificate.clone();
    let idp = IdpEndpoints::of(&format!("{PUBLIC_URL}/t/{TENANT}"));
    per_core_rate_cpu(secs, "answering", || {
        let (sp, idp, signer, certificate) =
            (sp.clone(), idp.clone(), signer.clone(), certificate.clone());
        let attributes = serde_json::Map::new();
        move || {
            let answer = Answer {
                idp: &idp,
                sp: &sp,
                in_response_to: Some("_0123456789abcdef0123456789abcdef"),
                destination: ACS,
                now_ms: 1_800_000_000_000,
            };
            let subject = Subject {
                name_id: "0123456789abcdef0123456789abcdef01234567",
                name_id_format: NameIdFormat::Persistent,
                user_id: "0123456789abcdef",
                username: "user0",
                email: Some("user0@example.com"),
                attributes: &attributes,
                authn_instant_ms: 1_800_000_000_000,
                session_index: "_0123456789abcdef0123456789abcdef01234567",
                mfa: false,
            };
            let key = response::SigningMaterial {
                signer: &signer,
                certificate: &certificate,
            };
            assert!(
                response::success(&answer, &subject, &key).is_ok(),
                "answering failed"
            );
        }
    })
}

// --- main ----------------------------------------------------------------------

/// One row's figures: a rate, the cores this process had meanwhile, and
/// for a load run its latencies and counts.
struct Figure {
    what: String,
    per_sec: f64,
    cores_used: f64,
    /// Cores the machine's other processes used meanwhile.
    others: f64,
    load: Option<LoadResult>,
}

impl Figure {
    fn of(what: String, rate: Rate) -> Figure {
        Figure {
            what,
            per_sec: rate.per_sec,
            cores_used: rate.cores_used,
            others: rate.machine_cores - rate.cores_used,
            load: None,
        }
    }

    /// Per CPU second of this process.
    fn per_cpu_sec(&self) -> f64 {
        self.per_sec / self.cores_used
    }
}

fn print_header() {
    println!(
        "{:>5}  {:<26}  {:>8}  {:>7}  {:>7}  {:>6}  {:>6}  {:>5}  {:>6}  {:>10}  {:>10}",
        "round",
        "what",
        "per sec",
        "p50 ms",
        "p99 ms",
        "ok",
        "errors",
        "cores",
        "others",
        "of ceiling",
        "per CPU-s"
    );
}

/// A row, as a share of `ceiling` per second and per CPU second.
fn print_row(round: usize, f: &Figure, ceiling: &Figure) {
    let (p50, p99, ok, errors) = match &f.load {
        Some(l) => (
            format!("{:.1}", l.p50_ms),
            format!("{:.1}", l.p99_ms),
            l.ok.to_string(),
            l.errors.to_string(),
        ),
        None => Default::default(),
    };
    println!(
        "{round:>5}  {:<26}  {:>8.0}  {p50:>7}  {p99:>7}  {ok:>6}  {errors:>6}  {:>5.2}  {:>6.2}  {:>9.0}%  {:>9.0}%",
        f.what,
        f.per_sec,
        f.cores_used,
        f.others,
        100.0 * f.per_sec / ceiling.per_sec,
        100.0 * f.per_cpu_sec() / ceiling.per_cpu_sec(),
    );
    if let Some(e) = f.load.as_ref().and_then(|l| l.first_error.as_ref()) {
        let e: String = e.chars().take(300).collect();
        println!("       first error: {e}");
    }
}

async fn run() -> Result<()> {
    let s = Settings::from_env(5, 1, 64)?;
    let rounds = env_u64("BENCH_ROUNDS", 3)?.max(1) as usize;
    println!(
        "SAML SSO benchmark: {} browsers signed in, {}s measured (+{}s warm-up) per run, {rounds} rounds, {} cores",
        s.clients,
        s.measure.as_secs(),
        s.warmup.as_secs(),
        cores()
    );
    let mut subjects = Vec::new();
    for nodes in [1, 3] {
        if load::selected("BENCH_NODES", &nodes.to_string()) {
            let t = Instant::now();
            subjects.push(start(nodes, s.clients).await?);
            println!(
                "{nodes} node(s) up, {} browsers signed in ({:.1}s)",
                s.clients,
                t.elapsed().as_secs_f64()
            );
        }
    }
    let first = subjects.first().context("BENCH_NODES selects no cluster")?;
    let signing = first.states[0]
        .identity
        .saml
        .signing(TENANT)
        .await
        .map_err(|e| anyhow!("the tenant's SAML key: {e}"))?;
    let (_, pkcs8) = first.states[0]
        .identity
        .keys
        .private_pkcs8(TENANT, &signing.kid)
        .await
        .map_err(|e| anyhow!("the tenant's SAML key: {e}"))?;
    let secs = s.measure.min(Duration::from_secs(3));

    println!(
        "\ncores: CPU seconds per second of this process (load generator included), others: of the machine's other processes; 'of ceiling': per second, 'per CPU-s': per CPU second of this process, as a share of the ceiling's"
    );
    print_header();
    // Round by round: (the ceiling, every other row).
    let mut all: Vec<(Figure, Vec<Figure>)> = Vec::new();
    for round in 1..=rounds {
        let ceiling = Figure::of(
            format!("ceiling: RSA-2048 x{}", cores()),
            tokio::task::block_in_place(|| signing_ceiling(&signing, secs))?,
        );
        print_row(round, &ceiling, &ceiling);
        let mut rows = Vec::new();
        for (what, rate) in [
            (
                format!("  the same, OpenSSL x{}", cores()),
                tokio::task::block_in_place(|| openssl_rate(&pkcs8, secs))?,
            ),
            (
                format!("response::success x{}", cores()),
                tokio::task::block_in_place(|| answers_in_process(&signing, secs))?,
            ),
        ] {
            let f = Figure::of(what, rate);
            print_row(round, &f, &ceiling);
            rows.push(f);
        }
        // Odd rounds 1 node first, even rounds 3 nodes first: what one run
        // leaves behind (or the machine's drift) falls on both alike.
        let order: Vec<&SsoCluster> = if round % 2 == 1 {
            subjects.iter().collect()
        } else {
            subjects.iter().rev().collect()
        };
        for subject in order {
            // Enough requests for the run at the ceiling's rate, and some.
            let expected =
                (ceiling.per_sec * 1.3 * (s.warmup + s.measure).as_secs_f64()) as usize + 1000;
            let run_id = format!("r{round}n{}", subject.targets.len());
            let prepared = Arc::new(Prepared::build(&run_id, expected)?);
            let work = Sso {
                prepared: prepared.clone(),
                browsers: subject.browsers.clone(),
            };
            let r = run_load(&work, &subject.targets, &s).await?;
            let f = Figure {
                what: format!("{} SSO over HTTP", subject.name),
                per_sec: r.per_sec,
                cores_used: r.cores_used,
                others: r.machine_cores - r.cores_used,
                load: Some(r),
            };
            print_row(round, &f, &ceiling);
            let late = prepared.late.load(Ordering::Relaxed);
            if late > 0 {
                println!("       {late} requests were built during the run");
            }
            rows.push(f);
        }
        all.push((ceiling, rows));
    }

    println!("\n=== summary: median of {rounds} rounds (each round's share of its ceiling) ===");
    let median_of = |f: &dyn Fn(&Figure, &Figure) -> f64, what: &str| -> (f64, Vec<f64>) {
        let each: Vec<f64> = all
            .iter()
            .flat_map(|(c, rows)| {
                std::iter::once(c)
                    .chain(rows)
                    .filter(|r| r.what == what)
                    .map(|r| f(r, c))
                    .collect::<Vec<_>>()
            })
            .collect();
        (median(each.clone()), each)
    };
    let names: Vec<String> = all
        .first()
        .map(|(c, rows)| {
            std::iter::once(c)
                .chain(rows)
                .map(|r| r.what.clone())
                .collect()
        })
        .unwrap_or_default();
    for what in &names {
        let (per_sec, _) = median_of(&|r, _| r.per_sec, what);
        let (share, each) = median_of(&|r, c| 100.0 * r.per_sec / c.per_sec, what);
        let (cpu_share, _) = median_of(&|r, c| 100.0 * r.per_cpu_sec() / c.per_cpu_sec(), what);
        let (cores_used, _) = median_of(&|r, _| r.cores_used, what);
        let (others, _) = median_of(&|r, _| r.others, what);
        let each: Vec<String> = each.iter().map(|e| format!("{e:.0}%")).collect();
        let latency = match median_of(&|r, _| r.load.as_ref().map_or(f64::NAN, |l| l.p50_ms), what)
        {
            (p50, _) if !p50.is_nan() => {
                let (p99, _) =
                    median_of(&|r, _| r.load.as_ref().map_or(f64::NAN, |l| l.p99_ms), what);
                let (_, errors) = median_of(
                    &|r, _| r.load.as_ref().map_or(0.0, |l| l.errors as f64),
                    what,
                );
                let errors: f64 = errors.iter().sum();
                format!(", p50 {p50:.1} ms, p99 {p99:.1} ms (medians), {errors:.0} errors")
            }
            _ => String::new(),
        };
        println!(
            "{:<26} {per_sec:>6.0}/s = {share:>3.0}% of the ceiling ({}), {cpu_share:.0}% per CPU second, {cores_used:.2} cores (others {others:.2}){latency}",
            what.trim(),
            each.join(", ")
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
