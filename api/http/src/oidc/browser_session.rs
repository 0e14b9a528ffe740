//! What the browser pages share: the services they call
//! ([`BrowserServices`]: the tenant actor runtime for sessions, lockout and
//! rate limits, and the second-factor seam), the [`Browser`] extractor
//! (tenant, cookies, client address), the session cookie, and the session
//! a request carries ([`ActiveSession`]).
//!
//! Sessions live in the tenant actors (`rsp-actors`), replicated through
//! Raft: one made on node 1 validates on node 2, and a revocation is in
//! force on every node when it returns. The cookie holds only the session's
//! random id: `HttpOnly`, `SameSite=Lax`, `Path=/t/{tenant}`, `Secure`
//! when the public URL is https.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use futures::future::BoxFuture;
use rsp_actors::{ActorError, SessionId, SessionInfo, TenantHandle, TenantRuntime};

use crate::oidc::pages::PageError;
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;
use rsp_identity::factors::FactorService;
use rsp_identity::users::User;

pub const SESSION_COOKIE: &str = "rsp_session";
/// `acr` of a password login, and of one with a second factor.
pub const ACR_PASSWORD: &str = "urn:rsp:acr:pwd";
pub const ACR_MFA: &str = "urn:rsp:acr:mfa";

/// Lifetimes of browser sessions and of the signed state a form carries.
#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// A session ends after this long without use.
    pub session_idle: Duration,
    /// ... and after this long in any case.
    pub session_lifetime: Duration,
    /// How long a rendered form (login, consent, second factor) stays usable.
    pub form_ttl: Duration,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            session_idle: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(10 * 3600),
            form_ttl: Duration::from_secs(30 * 60),
        }
    }
}

/// A second factor a user has enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    Totp,
}

/// The outcome of checking a TOTP code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    Valid,
    Invalid,
    /// This build cannot verify the factor: the login must be refused.
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("the factor store is unavailable: {0}")]
    Unavailable(String),
}

/// The seam where multi-factor authentication plugs in: which factors a
/// user has, and checking a code. The login page asks for a `totp` code
/// when [`SecondFactors::enrolled`] names one, and refuses the login when
/// the check answers [`TotpCheck::Unavailable`]; it never skips a factor.
pub trait SecondFactors: Send + Sync {
    fn enrolled<'a>(
        &'a self,
        tenant: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<FactorKind>, FactorError>>;

    fn verify_totp<'a>(
        &'a self,
        tenant: &'a str,
        user_id: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<TotpCheck, FactorError>>;
}

/// No factor store in this build: nobody has a factor enrolled, and any
/// verification is unavailable.
pub struct NoSecondFactors;

impl SecondFactors for NoSecondFactors {
    fn enrolled<'a>(
        &'a self,
        _tenant: &'a str,
        _user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<FactorKind>, FactorError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn verify_totp<'a>(
        &'a self,
        _tenant: &'a str,
        _user_id: &'a str,
        _code: &'a str,
    ) -> BoxFuture<'a, Result<TotpCheck, FactorError>> {
        Box::pin(async { Ok(TotpCheck::Unavailable) })
    }
}

/// The identity store's factors ([`FactorService`]: TOTP, each code
/// accepted once cluster-wide): what a node uses.
pub struct StoredFactors(pub FactorService);

fn store_error(e: rsp_identity::factors::FactorError) -> FactorError {
    FactorError::Unavailable(e.to_string())
}

impl SecondFactors for StoredFactors {
    fn enrolled<'a>(
        &'a self,
        tenant: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<FactorKind>, FactorError>> {
        Box::pin(async move {
            // A linearizable read: a factor added a moment ago on another
            // node must not be missed (that would skip it).
            let totp = self
                .0
                .list(tenant, user_id)
                .await
                .map_err(store_error)?
                .iter()
                .any(|f| f.kind == "totp");
            Ok(if totp {
                vec![FactorKind::Totp]
            } else {
                Vec::new()
            })
        })
    }

    fn verify_totp<'a>(
        &'a self,
        tenant: &'a str,
        user_id: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<TotpCheck, FactorError>> {
        Box::pin(async move {
            let ok = self
                .0
                .verify_totp(tenant, user_id, code, self.0.clock().now_secs())
                .await
                .map_err(store_error)?;
            Ok(if ok {
                TotpCheck::Valid
            } else {
                TotpCheck::Invalid
            })
        })
    }
}

/// What the browser pages call besides the OAuth services.
#[derive(Clone)]
pub struct BrowserServices {
    runtime: Option<TenantRuntime>,
    pub factors: Arc<dyn SecondFactors>,
    pub config: Arc<BrowserConfig>,
}

impl Default for BrowserServices {
    fn default() -> Self {
        BrowserServices {
            runtime: None,
            factors: Arc::new(NoSecondFactors),
            config: Arc::new(BrowserConfig::default()),
        }
    }
}

impl BrowserServices {
    pub fn new(
        runtime: Option<TenantRuntime>,
        factors: Arc<dyn SecondFactors>,
        config: BrowserConfig,
    ) -> Self {
        BrowserServices {
            runtime,
            factors,
            config: Arc::new(config),
        }
    }

    /// No runtime yet, second factors from `factors`.
    pub fn with_factors(factors: FactorService) -> Self {
        BrowserServices {
            factors: Arc::new(StoredFactors(factors)),
            ..BrowserServices::default()
        }
    }

    pub fn runtime(&self) -> Option<&TenantRuntime> {
        self.runtime.as_ref()
    }

    /// The tenant's actors on this node; without a runtime the pages answer
    /// 503 rather than pretend.
    pub async fn tenant(&self, tenant: &str) -> Result<TenantHandle, PageError> {
        let runtime = self.runtime.as_ref().ok_or_else(|| {
            PageError::unavailable("Sign-in is not available on this node.", None)
        })?;
        Ok(runtime.tenant(tenant).await?)
    }
}

/// A browser request to a tenant's pages: the tenant (unknown ones get a
/// 404 page), its cookies and the peer address.
pub struct Browser {
    pub tenant: TenantCtx,
    cookies: BTreeMap<String, String>,
    pub client_ip: Option<IpAddr>,
    /// Cookies get `Secure` (the public URL is https).
    pub secure: bool,
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let tenant = TenantCtx::from_request_parts(parts, state)
            .await
            .map_err(PageError::from)?;
        let mut cookies = BTreeMap::new();
        for value in parts.headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for pair in text.split(';') {
                if let Some((name, value)) = pair.trim().split_once('=') {
                    // The first of two same-named cookies is the one with the
                    // longest path (RFC 6265 section 5.4): keep it.
                    cookies
                        .entry(name.trim().to_string())
                        .or_insert_with(|| value.trim().to_string());
                }
            }
        }
        Ok(Browser {
            tenant,
            cookies,
            client_ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            secure: state.public_url.starts_with("https://"),
        })
    }
}

impl Browser {
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Every cookie of a tenant is scoped to its issuer path.
    pub fn cookie_path(&self) -> String {
        format!("/t/{}", self.tenant.id)
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, the tenant's path,
    /// `Secure` on https. `None` for `max_age`: until the browser closes.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut c = format!(
            "{name}={value}; Path={}; HttpOnly; SameSite=Lax",
            self.cookie_path()
        );
        if self.secure {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        c
    }

    pub fn clear_cookie(&self, name: &str) -> String {
        self.set_cookie(name, "", Some(0))
    }
}

/// The live session a request carries, with its user.
pub struct ActiveSession {
    pub id: SessionId,
    pub info: SessionInfo,
    pub user: User,
    /// Seconds since the epoch.
    pub auth_time: u64,
    pub amr: Vec<String>,
    pub acr: Option<String>,
}

impl ActiveSession {
    pub fn handle(&self) -> String {
        self.info.handle.as_str().to_string()
    }

    fn from_info(id: SessionId, info: SessionInfo, user: User) -> Self {
        let auth_time = info
            .attrs
            .get("auth_time")
            .and_then(|t| t.parse().ok())
            .unwrap_or(info.created_ms / 1000);
        let amr = info
            .attrs
            .get("amr")
            .map(|a| a.split(' ').map(str::to_string).collect())
            .unwrap_or_default();
        let acr = info.attrs.get("acr").cloned();
        ActiveSession {
            id,
            info,
            user,
            auth_time,
            amr,
            acr,
        }
    }
}

/// The session of the request's cookie, if it is live and its user still
/// exists and is enabled.
pub async fn current_session(
    state: &AppState,
    b: &Browser,
    h: &TenantHandle,
) -> Result<Option<ActiveSession>, PageError> {
    let Some(id) = b
        .cookie(SESSION_COOKIE)
        .and_then(|c| SessionId::parse(c).ok())
    else {
        return Ok(None);
    };
    let info = match h.sessions().validate(&id).await {
        Ok(info) => info,
        Err(ActorError::SessionNotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let user = state
        .oidc
        .tokens
        .load_user(&b.tenant.id, &info.user_id)
        .await?
        .filter(|u| !u.disabled);
    Ok(user.map(|u| ActiveSession::from_info(id, info, u)))
}

/// Start a session for `user` authenticated by `amr` now, ending the one
/// the browser had (a fresh id on every login: no session fixation).
/// Returns the session and its cookie.
pub async fn start_session(
    state: &AppState,
    b: &Browser,
    h: &TenantHandle,
    user: User,
    amr: &[&str],
    acr: &str,
) -> Result<(ActiveSession, String), PageError> {
    if let Some(old) = b
        .cookie(SESSION_COOKIE)
        .and_then(|c| SessionId::parse(c).ok())
        && let Err(e) = h.sessions().revoke(&old).await
    {
        tracing::warn!(error = %e, "could not end the previous session at login");
    }
    let attrs = BTreeMap::from([
        (
            "auth_time".to_string(),
            state.clock().now_secs().to_string(),
        ),
        ("amr".to_string(), amr.join(" ")),
        ("acr".to_string(), acr.to_string()),
    ]);
    let config = &state.browser.config;
    let session = h
        .sessions()
        .create(
            &user.id,
            attrs,
            config.session_idle,
            config.session_lifetime,
        )
        .await?;
    let cookie = b.set_cookie(SESSION_COOKIE, session.id.expose(), None);
    Ok((
        ActiveSession::from_info(session.id, session.info, user),
        cookie,
    ))
}
