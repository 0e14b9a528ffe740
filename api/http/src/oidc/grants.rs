//! The grant types of the token endpoint, one file each. Each takes the
//! authenticated client and the request's parameters, and answers a
//! [`crate::oidc::tokens::TokenSet`] or an RFC 6749 error.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
