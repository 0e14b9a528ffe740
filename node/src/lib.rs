//! rsp-node: the `rsp` binary (`src/main.rs`) and what it is made of.
//!
//! Parts:
//! - [`config`]: every setting as a flag, a TOML key and an `RSP_*`
//!   variable (flag > env > file > default), checked before anything
//!   touches the disk;
//! - [`server`]: `rsp serve`'s start-up as a list of steps (preflight
//!   checks, the data dir, consensus and the peer listener, forming or
//!   joining a cluster, the key-encryption key, the services and the HTTP
//!   API), and the ordered shutdown;
//! - [`bugs`]: `RSP_INJECT_BUGS`, only in a build with the `bug-injection`
//!   feature;
//! - [`demo`]: `--demo`'s tenant, clients, user and policies;
//! - [`telemetry`]: logs, OTLP traces and the request span;
//! - [`process_metrics`]: the process's memory and descriptors at scrape
//!   time;
//! - [`admin_cli`]: `rsp admin` (the admin API from a shell) and
//!   `rsp completions`.
//!
//! Not for: protocol logic (that is `rsp-api` and `rsp-identity`), or
//! storage (reached only through `rsp-consensus`).

pub mod admin_cli;
pub mod bugs;
pub mod config;
pub mod demo;
pub mod process_metrics;
pub mod server;
pub mod telemetry;
