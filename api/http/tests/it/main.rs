//! api's integration tests, linked as one test binary: one link
//! (instead of one per file) keeps the build's disk use and link time
//! down. Each file is a module; nextest still runs every test in its
//! own process.

#[path = "support/authz.rs"]
mod authz;
#[path = "support/browser.rs"]
mod browser;
#[path = "support/oauth.rs"]
mod support;

mod account_totp_writes;
mod admin_api;
mod admin_bodies;
mod admin_consistency;
mod admin_grant;
mod admin_lifecycle;
mod admin_openapi;
mod attacks;
mod audit_usage;
mod authz_admin;
mod authz_admin_routes;
mod authz_authzen;
mod authz_cluster;
mod authz_decisions;
mod authz_property;
mod authz_runtime;
mod browser_consent;
mod browser_cookies;
mod browser_device;
mod browser_login;
mod browser_logout;
mod browser_mfa;
mod browser_mfa_flows;
mod browser_mfa_lockout;
mod console;
mod console_tenant_admin;
mod kek_rotation;
mod metrics;
mod oauth_client_auth;
mod oauth_cluster;
mod oauth_code;
mod oauth_device_par;
mod oauth_rate_limits;
mod oauth_tokens;
mod passkeys;
mod recovery_codes;
mod refresh_sessions;
mod saml_attacks;
mod saml_sso;
mod signing_keys;
mod tenant_settings;
mod totp_factors;
mod unknown_lookups;
