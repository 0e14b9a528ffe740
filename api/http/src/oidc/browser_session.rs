//! What the browser pages share: the [`Browser`] extractor (tenant,
//! cookies, client address), the session cookie, the session a request
//! carries ([`ActiveSession`], [`current_session`]) and starting one
//! ([`start_session`]).
//!
//! Sessions live in the tenant actors (`rsp-actors`), replicated through
//! Raft: one made on node 1 validates on node 2, and a revocation is in
//! force on every node when it returns. The cookie holds only the session's
//! random id: `HttpOnly`, `SameSite=Lax`, `Path=/t/{tenant}`, `Secure`
//! when the public URL is https.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use rsp_actors::{ActorError, SessionId, SessionInfo, TenantHandle};

use crate::oidc::pages::PageError;
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;
use rsp_identity::users::User;

pub const SESSION_COOKIE: &str = "rsp_session";

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
    browser: &Browser,
    actors: &TenantHandle,
) -> Result<Option<ActiveSession>, PageError> {
    let Some(id) = browser
        .cookie(SESSION_COOKIE)
        .and_then(|c| SessionId::parse(c).ok())
    else {
        return Ok(None);
    };
    let info = match actors.sessions().validate(&id).await {
        Ok(info) => info,
        Err(ActorError::SessionNotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let user = state
        .oidc
        .tokens
        .load_user(&browser.tenant.id, &info.user_id)
        .await?
        .filter(|u| !u.disabled);
    Ok(user.map(|u| ActiveSession::from_info(id, info, u)))
}

/// Start a session for `user` authenticated by `amr` now, ending the one
/// the browser had (a fresh id on every login: no session fixation).
/// Returns the session and its cookie.
pub async fn start_session(
    state: &AppState,
    browser: &Browser,
    actors: &TenantHandle,
    user: User,
    amr: &[&str],
    acr: &str,
) -> Result<(ActiveSession, String), PageError> {
    if let Some(old) = browser
        .cookie(SESSION_COOKIE)
        .and_then(|c| SessionId::parse(c).ok())
        && let Err(e) = actors.sessions().revoke(&old).await
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
    let config = &state.tenant_runtime.config;
    let session = actors
        .sessions()
        .create(
            &user.id,
            attrs,
            config.session_idle,
            config.session_lifetime,
        )
        .await?;
    let cookie = browser.set_cookie(SESSION_COOKIE, session.id.expose(), None);
    Ok((
        ActiveSession::from_info(session.id, session.info, user),
        cookie,
    ))
}
