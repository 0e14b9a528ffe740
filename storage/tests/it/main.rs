//! storage's integration tests, linked as one test binary: one link
//! (instead of one per file) keeps the build's disk use and link time
//! down. Each file is a module; nextest still runs every test in its
//! own process.

mod copies;
mod crash;
mod kv_batch;
mod kv_model;
mod log_model;
mod snapshots;
