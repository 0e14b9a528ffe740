//! Prometheus metrics of the HTTP surface: requests and latency by route
//! template ([`track`], a middleware on the whole router), tokens issued,
//! sign-ins by result and by factor, MFA enrolments, lockouts, SAML answers,
//! and Cedar decisions by result with their evaluation time. Registered in the
//! node's registry (no global registry, so several nodes share a process in
//! tests).
//!
//! Labels never carry raw input: the route is axum's template (`/t/{tenant}/token`,
//! `unmatched` when no route matched), the method one of the standard ones
//! or `other`, and the tenant folds into [`OTHER_TENANT`] past
//! [`TENANT_LABEL_CAP`] distinct tenants ([`TenantLabels`]).

pub mod audit;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

pub use rsp_actors::metrics::{OTHER_TENANT, TENANT_LABEL_CAP, TenantLabels};
/// The route label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// How a sign-in ended, as `rsp_logins_total` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginResult {
    Success,
    /// A wrong password, or a name no account has (the two are one answer).
    BadPassword,
    /// The account was locked: nothing was checked.
    Locked,
    /// A wrong TOTP code, recovery code or passkey assertion after the
    /// password.
    MfaFailed,
}

impl LoginResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginResult::Success => "success",
            LoginResult::BadPassword => "bad_password",
            LoginResult::Locked => "locked",
            LoginResult::MfaFailed => "mfa_failed",
        }
    }
}

/// What a Cedar decision asked through the authorization API came to, as
/// `rsp_authz_decisions_total` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionResult {
    Allow,
    Deny,
    /// The request could not be decided (a bad entity, an unknown type).
    Error,
}

impl DecisionResult {
    fn as_str(self) -> &'static str {
        match self {
            DecisionResult::Allow => "allow",
            DecisionResult::Deny => "deny",
            DecisionResult::Error => "error",
        }
    }
}

/// The families of this crate, with the tenant label cap.
#[derive(Clone)]
pub struct ApiMetrics {
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
    tokens_issued: IntCounterVec,
    logins: IntCounterVec,
    logins_by_factor: IntCounterVec,
    saml_responses: IntCounterVec,
    lockouts: IntCounterVec,
    mfa_enrolments: IntCounterVec,
    decisions: IntCounterVec,
    decision_seconds: HistogramVec,
    tenants: TenantLabels,
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

impl ApiMetrics {
    /// The families, registered in `registry`. A registry that already
    /// holds them (a second [`crate::AppState`] on one registry) is logged
    /// and left as it is: the families still count, unexported.
    pub fn in_registry(registry: &Registry) -> Self {
        let metrics = Self::build().expect("the families' names and labels are valid");
        if let Err(e) = metrics.register(registry) {
            tracing::warn!(error = %e, "the HTTP metric families are not registered");
        }
        metrics
    }

    fn build() -> prometheus::Result<Self> {
        Ok(ApiMetrics {
            http_requests: counter_vec(
                "rsp_http_requests_total",
                "HTTP requests answered, by route template, method and status",
                &["route", "method", "status"],
            )?,
            http_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "rsp_http_request_duration_seconds",
                    "Time to answer an HTTP request, by route template and method",
                )
                .buckets(prometheus::exponential_buckets(0.0005, 2.5, 12)?),
                &["route", "method"],
            )?,
            tokens_issued: counter_vec(
                "rsp_tokens_issued_total",
                "Token responses issued by the token endpoint, by grant type and client type (public or confidential)",
                &["tenant", "grant_type", "client_type"],
            )?,
            logins: counter_vec(
                "rsp_logins_total",
                "Browser sign-in attempts, by result (success, bad_password, locked, mfa_failed)",
                &["tenant", "result"],
            )?,
            logins_by_factor: counter_vec(
                "rsp_logins_by_factor_total",
                "Finished sign-ins, once for each factor used (password, totp, recovery_code, passkey)",
                &["tenant", "factor"],
            )?,
            saml_responses: counter_vec(
                "rsp_saml_responses_total",
                "SAML Responses sent to service providers, by result (success or error status)",
                &["tenant", "result"],
            )?,
            lockouts: counter_vec(
                "rsp_lockouts_total",
                "Accounts locked after too many wrong secrets (the failure that started each lock)",
                &["tenant"],
            )?,
            mfa_enrolments: counter_vec(
                "rsp_mfa_enrolments_total",
                "Second factors enrolled, by factor (totp, passkey, recovery_codes)",
                &["tenant", "factor"],
            )?,
            decisions: counter_vec(
                "rsp_authz_decisions_total",
                "Cedar decisions asked through the authorization API, by result (allow, deny, error)",
                &["tenant", "result"],
            )?,
            decision_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "rsp_authz_decision_duration_seconds",
                    "Time to evaluate one Cedar decision on the tenant's snapshot, by result",
                )
                .buckets(prometheus::exponential_buckets(0.00001, 2.5, 12)?),
                &["result"],
            )?,
            tenants: TenantLabels::new(TENANT_LABEL_CAP),
        })
    }

    fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.http_requests.clone()))?;
        registry.register(Box::new(self.http_seconds.clone()))?;
        registry.register(Box::new(self.tokens_issued.clone()))?;
        registry.register(Box::new(self.logins.clone()))?;
        registry.register(Box::new(self.logins_by_factor.clone()))?;
        registry.register(Box::new(self.saml_responses.clone()))?;
        registry.register(Box::new(self.lockouts.clone()))?;
        registry.register(Box::new(self.mfa_enrolments.clone()))?;
        registry.register(Box::new(self.decisions.clone()))?;
        registry.register(Box::new(self.decision_seconds.clone()))
    }

    /// One HTTP request answered.
    fn request(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let method = method_label(method);
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http_seconds
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    /// A token response issued for `grant_type` to a public or confidential
    /// client.
    pub fn token_issued(&self, tenant: &str, grant_type: &str, public_client: bool) {
        let client_type = if public_client {
            "public"
        } else {
            "confidential"
        };
        self.tokens_issued
            .with_label_values(&[&self.tenants.label(tenant), grant_type, client_type])
            .inc();
    }

    /// A sign-in attempt ended with `result`.
    pub fn login(&self, tenant: &str, result: LoginResult) {
        self.logins
            .with_label_values(&[&self.tenants.label(tenant), result.as_str()])
            .inc();
    }

    /// A finished sign-in used `factor`.
    pub fn login_factor(&self, tenant: &str, factor: &str) {
        self.logins_by_factor
            .with_label_values(&[&self.tenants.label(tenant), factor])
            .inc();
    }

    /// A wrong secret locked the account.
    pub fn lockout(&self, tenant: &str) {
        self.lockouts
            .with_label_values(&[&self.tenants.label(tenant)])
            .inc();
    }

    /// A second factor enrolled: `totp`, `passkey`, or a new set of
    /// `recovery_codes`.
    pub fn mfa_enrolment(&self, tenant: &str, factor: &str) {
        self.mfa_enrolments
            .with_label_values(&[&self.tenants.label(tenant), factor])
            .inc();
    }

    /// A Cedar decision came to `result` after `seconds` of evaluation.
    pub fn decision(&self, tenant: &str, result: DecisionResult, seconds: f64) {
        self.decisions
            .with_label_values(&[&self.tenants.label(tenant), result.as_str()])
            .inc();
        self.decision_seconds
            .with_label_values(&[result.as_str()])
            .observe(seconds);
    }

    /// A SAML Response sent: an assertion (`success`) or an error status.
    pub fn saml_response(&self, tenant: &str, success: bool) {
        let result = if success { "success" } else { "error" };
        self.saml_responses
            .with_label_values(&[&self.tenants.label(tenant), result])
            .inc();
    }
}

/// The standard methods by name; anything else is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: count and time every request by its route template.
pub async fn track(State(metrics): State<ApiMetrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_string();
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_are_other() {
        let odd = Method::from_bytes(b"BREW").expect("method");
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::POST), "POST");
    }
}
