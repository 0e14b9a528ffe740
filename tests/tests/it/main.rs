//! tests's integration tests, linked as one test binary: one link
//! (instead of one per file) keeps the build's disk use and link time
//! down. Each file is a module; nextest still runs every test in its
//! own process.

#[path = "support/oidc.rs"]
mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

mod audit_usage;
mod backup;
mod browser_chromium;
mod browser_console;
mod browser_passkeys;
mod deploy;
mod failover;
mod fuzz_corpus;
mod kek_rotation;
mod lifecycle;
mod membership;
mod observability;
mod oidc_e2e;
mod otlp;
mod partition;
mod replication;
mod saml_fuzz_seeds;
mod saml_pysaml2;
mod snapshot_join;
mod traces;
mod ttl;
mod upgrade;
