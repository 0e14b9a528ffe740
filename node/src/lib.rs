//! rsp-node

pub mod config;
pub mod server;
