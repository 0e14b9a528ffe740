//! [`AuthenticatedClient`]: the one way an endpoint authenticates the OAuth
//! client calling it (token, introspection, revocation, PAR, device
//! authorization). It reads the tenant, the form body and the
//! `Authorization` header, and runs the client's registered method
//! ([`rsp_identity::oauth::client_auth`]); a handler that takes it cannot
//! forget to authenticate the client or to refuse public clients where
//! they have no business. An unknown client id costs a quorum read only
//! within the caller's address budget ([`crate::miss_limit`]).

use std::marker::PhantomData;
use std::net::IpAddr;

use axum::extract::{FromRequest, FromRequestParts, Request};
use rsp_identity::clients::Client;
use rsp_identity::oauth::client_auth::Public;
use rsp_identity::oauth::params::Params;

use crate::miss_limit::peer_ip;
use crate::oidc::error::OAuthErrorResponse;
use crate::oidc::http::{OAuthForm, authorization};
use crate::oidc::tenant::TenantCtx;
use crate::state::AppState;

/// An endpoint that authenticates clients: whether public clients (method
/// `none`) may call it.
pub trait Endpoint {
    const PUBLIC_CLIENTS: bool;
}

/// The tenant, the authenticated client and the rest of the form.
pub struct AuthenticatedClient<E> {
    pub tenant: TenantCtx,
    pub client: Client,
    pub params: Params,
    /// The caller's address, for the look-ups the handler makes on its
    /// behalf (`state.misses.gate(client_ip)`).
    pub client_ip: Option<IpAddr>,
    endpoint: PhantomData<E>,
}

impl<E: Endpoint + Send> FromRequest<AppState> for AuthenticatedClient<E> {
    type Rejection = OAuthErrorResponse;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, OAuthErrorResponse> {
        let (mut parts, body) = req.into_parts();
        let tenant = TenantCtx::from_request_parts(&mut parts, state).await?;
        let header = authorization(&parts.headers).map(str::to_owned);
        let client_ip = peer_ip(&parts.extensions);
        let OAuthForm(params) =
            OAuthForm::from_request(Request::from_parts(parts, body), state).await?;
        let public = if E::PUBLIC_CLIENTS {
            Public::Allowed
        } else {
            Public::Refused
        };
        let client = state
            .oidc
            .client_auth
            .authenticate(
                &tenant.id,
                header.as_deref(),
                &params,
                public,
                &state.misses.gate(client_ip),
            )
            .await?;
        Ok(AuthenticatedClient {
            tenant,
            client,
            params,
            client_ip,
            endpoint: PhantomData,
        })
    }
}
