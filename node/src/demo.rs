//! `rsp serve --demo`: a tenant to try rsp with, made once.
//!
//! Creates (each only if missing, so restarts and several nodes started
//! with `--demo` are harmless) tenant `demo`; the confidential client
//! `demo-client` (authorization code with PKCE, client credentials,
//! refresh; `client_secret_basic`); the public client `demo-spa`
//! (authorization code with PKCE, refresh); both redirecting to
//! `http://127.0.0.1:8089/callback`; user `alice` with a generated
//! password; and a sample Cedar policy set (when the tenant has none). The
//! secrets it generates are printed once, on stdout, never logged; a later
//! start says they were printed before.

use std::io::Write as _;
use std::time::{Duration, Instant};

use rsp_api::AppState;
use rsp_identity::clients::{ClientError, NewClient};
use rsp_identity::crypto::random_token;
use rsp_identity::tenants::TenantError;
use rsp_identity::users::{NewUser, UserError};
use zeroize::Zeroizing;

pub const TENANT: &str = "demo";
pub const REDIRECT_URI: &str = "http://127.0.0.1:8089/callback";
pub const POST_LOGOUT_URI: &str = "http://127.0.0.1:8089/";
/// The sample policy set: alice may view and edit the documents she owns;
/// anyone may view public ones.
pub const SAMPLE_POLICIES: &str = r#"// rsp --demo sample policies
@id("owners-view-and-edit")
permit (
  principal,
  action in [Action::"view", Action::"edit"],
  resource
)
when { resource has owner && resource.owner == principal };

@id("public-documents")
permit (principal, action == Action::"view", resource)
when { resource has public && resource.public == true };
"#;

/// How long the demo set-up retries while the cluster elects a leader.
const SETUP_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("demo set-up: {0}")]
pub struct DemoError(String);

/// What one run of the set-up did.
#[derive(Default)]
struct Outcome {
    lines: Vec<String>,
}

impl Outcome {
    fn say(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

/// Make the demo tenant, clients and user where missing, and print what
/// was generated. Retries while writes are not possible yet (no leader).
pub async fn ensure(state: &AppState) -> Result<(), DemoError> {
    let start = Instant::now();
    let mut outcome = Outcome::default();
    let mut step = 0;
    loop {
        match run(state, &mut outcome, &mut step).await {
            Ok(()) => break,
            Err(Retry::Later(why)) if start.elapsed() < SETUP_DEADLINE => {
                tracing::info!(%why, "demo set-up waits for the cluster");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(Retry::Later(why)) | Err(Retry::Never(why)) => return Err(DemoError(why)),
        }
    }
    let issuer = format!("{}/t/{TENANT}", state.public_url);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "rsp demo: issuer {issuer}");
    let _ = writeln!(
        out,
        "rsp demo: discovery {issuer}/.well-known/openid-configuration"
    );
    for line in outcome.lines {
        let _ = writeln!(out, "rsp demo: {line}");
    }
    let _ = out.flush();
    Ok(())
}

enum Retry {
    /// The cluster is not ready (no leader yet, node joining): try again.
    Later(String),
    Never(String),
}

fn consensus_retry(e: rsp_consensus::ConsensusError) -> Retry {
    use rsp_consensus::ConsensusError as C;
    match e {
        C::Unavailable(_) | C::Timeout | C::ShuttingDown => Retry::Later(e.to_string()),
        other => Retry::Never(other.to_string()),
    }
}

/// One pass; `step` remembers what is done, so a retry resumes.
async fn run(state: &AppState, out: &mut Outcome, step: &mut u8) -> Result<(), Retry> {
    let now = state.clock().now_ms();
    if *step == 0 {
        match state.tenants.create(TENANT, "Demo", now).await {
            Ok(_) => out.say("created tenant `demo`"),
            Err(TenantError::Exists(_)) => out.say("tenant `demo` exists already"),
            Err(TenantError::Consensus(e)) => return Err(consensus_retry(e)),
            Err(e) => return Err(Retry::Never(e.to_string())),
        }
        *step = 1;
    }
    if *step == 1 {
        let client = NewClient {
            client_id: Some("demo-client".into()),
            client_name: Some("Demo confidential client".into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            post_logout_redirect_uris: vec![POST_LOGOUT_URI.into()],
            grant_types: vec![
                "authorization_code".into(),
                "client_credentials".into(),
                "refresh_token".into(),
            ],
            token_endpoint_auth_method: "client_secret_basic".into(),
            scopes: [
                "profile",
                "email",
                "address",
                "phone",
                "offline_access",
                "authz:check",
            ]
            .map(String::from)
            .to_vec(),
            require_consent: Some(false),
            jwks: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
            refresh_token_absolute_lifetime_secs: None,
            access_token_lifetime_secs: None,
            id_token_lifetime_secs: None,
        };
        match state.identity.clients.create(TENANT, client, now).await {
            Ok((_, Some(secret))) => out.say(format!(
                "client `demo-client` (client_secret_basic), secret: {}",
                secret.as_str()
            )),
            Ok((_, None)) => out.say("client `demo-client` created"),
            Err(ClientError::Exists(_)) => out.say(
                "client `demo-client` exists already (its secret was printed when it was made)",
            ),
            Err(ClientError::Consensus(e)) => return Err(consensus_retry(e)),
            Err(ClientError::Crypto(e)) => return Err(Retry::Later(e.to_string())),
            Err(e) => return Err(Retry::Never(e.to_string())),
        }
        *step = 2;
    }
    if *step == 2 {
        let spa = NewClient {
            client_id: Some("demo-spa".into()),
            client_name: Some("Demo single-page app".into()),
            redirect_uris: vec![REDIRECT_URI.into()],
            post_logout_redirect_uris: vec![POST_LOGOUT_URI.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            token_endpoint_auth_method: "none".into(),
            scopes: Vec::new(),
            require_consent: Some(false),
            jwks: None,
            id_token_signed_response_alg: None,
            access_token_signed_response_alg: None,
            refresh_token_absolute_lifetime_secs: None,
            access_token_lifetime_secs: None,
            id_token_lifetime_secs: None,
        };
        match state.identity.clients.create(TENANT, spa, now).await {
            Ok(_) => out.say("public client `demo-spa` (PKCE, no secret)"),
            Err(ClientError::Exists(_)) => out.say("client `demo-spa` exists already"),
            Err(ClientError::Consensus(e)) => return Err(consensus_retry(e)),
            Err(ClientError::Crypto(e)) => return Err(Retry::Later(e.to_string())),
            Err(e) => return Err(Retry::Never(e.to_string())),
        }
        *step = 3;
    }
    if *step == 3 {
        let password = Zeroizing::new(random_token(12));
        let mut attributes = serde_json::Map::new();
        attributes.insert("name".into(), "Alice Demo".into());
        attributes.insert("given_name".into(), "Alice".into());
        attributes.insert("family_name".into(), "Demo".into());
        let alice = NewUser {
            username: "alice".into(),
            password: password.clone(),
            email: Some("alice@example.com".into()),
            attributes,
        };
        match state.identity.users.create(TENANT, alice, now).await {
            Ok(_) => out.say(format!("user `alice`, password: {}", password.as_str())),
            Err(UserError::Exists(_)) => {
                out.say("user `alice` exists already (her password was printed when she was made)")
            }
            Err(UserError::Consensus(e)) => return Err(consensus_retry(e)),
            Err(e) => return Err(Retry::Never(e.to_string())),
        }
        *step = 4;
    }
    if *step == 4 {
        let store = state.authz.policies.store();
        let current = store
            .read(TENANT)
            .await
            .map_err(|e| Retry::Later(e.to_string()))?;
        if current.head_rev == 0 {
            let receipt = store
                .put_policies(TENANT, SAMPLE_POLICIES.to_string(), None, "rsp --demo")
                .await
                .map_err(|e| Retry::Later(e.to_string()))?;
            out.say(format!(
                "sample Cedar policies installed (version {}): owners view and edit, anyone views public documents",
                receipt.version
            ));
        } else {
            out.say("tenant `demo` has Cedar policies already; left as they are");
        }
        *step = 5;
    }
    Ok(())
}
