//! What the browser pages share: the [`Browser`] extractor (tenant,
//! cookies, client address), the session cookie, the session a request
//! carries ([`ActiveSession`], [`current_session`]) and starting one
//! ([`start_session`]).
//!
//! Sessions live in the tenant actors (`rsp-actors`), replicated through
//! Raft: one made on node 1 validates on node 2, and a revocation is in
//! force on every node when it returns. The cookie holds only the session's
//! random id.
//!
//! Cookies ([`Browser::set_cookie`]) are `HttpOnly` and `SameSite=Lax`. When
//! the public URL is https they are `__Host-` cookies (`Secure`, `Path=/`,
//! no `Domain`), named `__Host-{name}-{tenant}`: a sibling domain can
//! neither set nor overwrite them. On plain http they are `{name}` with
//! `Path=/t/{tenant}`. A request carrying two cookies of one name (one of
//! them tossed in by a sibling domain, with a longer path) gets neither:
//! [`Browser::cookie`] refuses to guess.

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
#[derive(Clone)]
pub struct Browser {
    pub tenant: TenantCtx,
    /// Every value sent under each name, in order.
    cookies: BTreeMap<String, Vec<String>>,
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
        let mut cookies: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for value in parts.headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for pair in text.split(';') {
                if let Some((name, value)) = pair.trim().split_once('=') {
                    cookies
                        .entry(name.trim().to_string())
                        .or_default()
                        .push(value.trim().to_string());
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
    /// The value of this tenant's cookie `name`, if the browser sent
    /// exactly one: of two same-named cookies one was planted (by a
    /// sibling domain, or for a longer path), and neither is trusted.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        match self.cookies.get(&self.cookie_name(name))?.as_slice() {
            [one] => Some(one),
            _ => {
                tracing::info!(cookie = name, "several cookies of one name: none used");
                None
            }
        }
    }

    /// Whether the browser sent this tenant's cookie `name` at all (once or
    /// more).
    pub fn sent_cookie(&self, name: &str) -> bool {
        self.cookies.contains_key(&self.cookie_name(name))
    }

    /// This browser as it will be once `value` is set for cookie `name`
    /// (a page rendered in the answer that signs the user in).
    pub fn with_cookie(&self, name: &str, value: &str) -> Browser {
        let mut next = self.clone();
        next.cookies
            .insert(self.cookie_name(name), vec![value.to_string()]);
        next
    }

    /// What cookie `name` of this tenant is called on the wire:
    /// `__Host-{name}-{tenant}` on https, `{name}` otherwise.
    pub fn cookie_name(&self, name: &str) -> String {
        if self.secure {
            format!("__Host-{name}-{}", self.tenant.id)
        } else {
            name.to_string()
        }
    }

    /// `/` for `__Host-` cookies (https), else the tenant's issuer path.
    pub fn cookie_path(&self) -> String {
        if self.secure {
            "/".to_string()
        } else {
            format!("/t/{}", self.tenant.id)
        }
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`; on https a
    /// `__Host-` cookie (`Secure`, `Path=/`, no `Domain`), else the
    /// tenant's path. `None` for `max_age`: until the browser closes.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut c = format!(
            "{}={value}; Path={}; HttpOnly; SameSite=Lax",
            self.cookie_name(name),
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
    let (idle, lifetime) = session_lifetimes(state, &browser.tenant.settings);
    let session = actors
        .sessions()
        .create(&user.id, attrs, idle, lifetime)
        .await?;
    let cookie = browser.set_cookie(SESSION_COOKIE, session.id.expose(), None);
    Ok((
        ActiveSession::from_info(session.id, session.info, user),
        cookie,
    ))
}

/// A new session's idle timeout and absolute lifetime: the tenant's
/// settings, or the node's defaults (an absolute lifetime never below the
/// idle timeout).
pub fn session_lifetimes(
    state: &AppState,
    settings: &rsp_identity::tenants::TenantSettings,
) -> (std::time::Duration, std::time::Duration) {
    use std::time::Duration;
    let config = &state.tenant_runtime.config;
    let idle = settings
        .session_idle_timeout_secs
        .map_or(config.session_idle, Duration::from_secs);
    let lifetime = settings
        .session_absolute_lifetime_secs
        .map_or(config.session_lifetime, Duration::from_secs);
    (idle, lifetime.max(idle))
}
