//! The OAuth 2.0 / OpenID Connect domain: what the provider's endpoints
//! decide, without their HTTP wrapping (that is `rsp-api`).
//!
//! - [`services`]: [`OidcServices`], what a node carries; [`config`]: the
//!   lifetimes of protocol objects ([`OidcConfig`]); [`context`]: what the
//!   services share;
//! - [`grants`]: the token endpoint's grant types, one file each;
//! - [`codes`]: authorization codes and PKCE; [`tokens`]: access, ID and
//!   refresh tokens with their families and the verified-token cache;
//! - [`client_auth`]: the four client authentication methods;
//! - [`device`]: the device authorization grant; [`par`]: pushed
//!   authorization requests;
//! - [`claims`]: scopes and claims; [`request`]: the checks of an
//!   authorization request shared by the authorization endpoint and PAR;
//! - [`params`]: request parameters and `Authorization` credentials;
//!   [`error`]: [`OAuthError`], the protocols' error codes as data.

pub mod claims;
pub mod client_auth;
pub mod codes;
pub mod config;
pub mod context;
pub mod device;
pub mod error;
pub mod grants;
pub mod par;
pub mod params;
pub mod request;
pub mod services;
pub mod tokens;

pub use config::{InjectedOAuthBugs, OidcConfig};
pub use error::{OAuthError, OAuthErrorCode, OAuthResult};
pub use services::OidcServices;
