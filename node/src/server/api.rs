//! Steps 5 and 6 of start-up, above consensus: the identity services and
//! tenant actors, and the HTTP API that serves them.

use std::sync::Arc;

use rsp_actors::{KIND_LOGIN, KIND_TOKEN, RateRule, RuntimeConfig, TenantRuntime};
use rsp_api::{AdminToken, AppState};
use rsp_consensus::Consensus;
use rsp_identity::Identity;
use rsp_identity::crypto::KekCell;
use rsp_identity::oauth::{InjectedOAuthBugs, OidcConfig, OidcServices};
use rsp_identity::passwords::PasswordHasher;
use zeroize::Zeroizing;

use super::StartError;
use crate::config::Settings;

/// The identity services (sealing keys with the KEK in `kek_cell`) and the
/// tenant actors, rate-limited as the settings say.
pub(super) async fn start_services(
    consensus: &Consensus,
    settings: &Settings,
    kek_cell: Arc<KekCell>,
    public_url: &str,
    registry: &prometheus::Registry,
) -> Result<(Identity, TenantRuntime), StartError> {
    let hasher = PasswordHasher::new().map_err(|e| StartError::runtime("password hasher", e))?;
    let identity = Identity::new(consensus.clone(), kek_cell, hasher, public_url);
    let runtime = TenantRuntime::start(consensus.clone(), runtime_config(settings), registry)
        .await
        .map_err(|e| StartError::runtime("starting the tenant actors", e))?;
    Ok((identity, runtime))
}

/// What every HTTP handler shares.
pub(super) fn app_state(
    consensus: &Consensus,
    token: Zeroizing<String>,
    registry: Arc<prometheus::Registry>,
    identity: Identity,
    public_url: &str,
    runtime: TenantRuntime,
    bugs: InjectedOAuthBugs,
) -> AppState {
    let mut state = AppState::new(
        consensus.clone(),
        AdminToken::new(token),
        registry,
        identity.clone(),
        public_url,
    )
    .with_runtime(runtime);
    if bugs.any() {
        let config = OidcConfig {
            bugs,
            ..OidcConfig::default()
        };
        state.oidc = OidcServices::new(consensus.clone(), identity, public_url, config);
    }
    state
}

/// The HTTP API with a span and a status per request (the request metrics
/// are counted inside [`rsp_api::app`], where the route template is known);
/// served over HTTPS, every answer carries [`HSTS`].
pub(super) fn router(state: &AppState, https: bool) -> axum::Router {
    let app = rsp_api::app(state.clone());
    let app = match https {
        true => app.layer(axum::middleware::map_response(strict_transport_security)),
        false => app,
    };
    app.layer(
        tower_http::trace::TraceLayer::new_for_http()
            .make_span_with(crate::telemetry::request_span)
            .on_response(crate::telemetry::record_status),
    )
}

/// `Strict-Transport-Security` on HTTPS answers: a browser that saw it
/// uses only HTTPS for this host for a year. Without `includeSubDomains`:
/// the node speaks for its own host name, not for the names under it.
pub(super) const HSTS: &str = "max-age=31536000";

async fn strict_transport_security(
    mut response: axum::response::Response,
) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static(HSTS),
    );
    response
}

/// The tenant runtime's settings: defaults, with the rate limits of
/// `token-rate-limit`, `login-rate-limit` and `tenant-rate-limit` (0 turns
/// a limit off).
fn runtime_config(settings: &Settings) -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    let per_sec = settings.tenant_rate_limit as f64;
    config.limits.requests_per_sec = per_sec;
    config.limits.request_burst = per_sec * 2.0;
    let limits = &mut config.rate_limits;
    for (kind, per_sec, burst) in [
        (KIND_TOKEN, settings.token_rate_limit, 2),
        (KIND_LOGIN, settings.login_rate_limit, 4),
    ] {
        if per_sec == 0 {
            limits.rules.remove(kind);
            limits.unlimited.insert(kind.to_string());
        } else {
            let per_sec = per_sec as f64;
            let rule = RateRule {
                per_sec,
                burst: per_sec * burst as f64,
            };
            limits.rules.insert(kind.to_string(), rule);
        }
    }
    config
}
