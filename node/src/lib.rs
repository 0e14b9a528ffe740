//! rsp-node

pub mod config;
pub mod demo;
pub mod server;
pub mod telemetry;
