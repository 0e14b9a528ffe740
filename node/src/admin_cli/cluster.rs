//! `rsp admin cluster|kv ...`: the membership, the key-encryption key, and
//! the operators' key-value space.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::call::insert;
use super::call::{Body, Call};
use super::exit::CliResult;
use super::http::Api;
use super::inputs::{read_json, read_text, secret_from_stdin};

#[derive(Subcommand, Debug)]
pub enum Cluster {
    /// Leader, term and members as the node reached sees them
    Status,
    /// Add a node (started with --no-bootstrap); answers once it caught up
    AddNode {
        #[arg(long)]
        id: u64,
        /// HOST:PORT of its peer listener
        #[arg(long)]
        peer_addr: String,
        #[arg(long)]
        http_addr: Option<String>,
        #[arg(long)]
        zone: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// Add it as a non-voting learner
        #[arg(long)]
        learner: bool,
    },
    /// Remove a node from the membership
    RemoveNode { id: u64 },
    /// The key-encryption key's generation and rotation state
    KekStatus,
    /// Replace the key-encryption key and re-seal every secret under it
    KekRotate {
        /// Read the new KEK (32 bytes, base64 or hex) from stdin; a fresh
        /// one is generated otherwise
        #[arg(long)]
        kek_stdin: bool,
        /// Seconds to wait for re-sealing before the server answers 202
        #[arg(long)]
        wait_secs: Option<u64>,
    },
}

#[derive(Serialize)]
struct KekRotate<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    kek: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_secs: Option<u64>,
}

impl Cluster {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Cluster::Status => Call::get(&["cluster"]),
            Cluster::AddNode {
                id,
                peer_addr,
                http_addr,
                zone,
                region,
                learner,
            } => {
                let mut body = json!({"id": id, "peer_addr": peer_addr, "voter": !learner});
                insert(&mut body, "http_addr", http_addr);
                insert(&mut body, "zone", zone);
                insert(&mut body, "region", region);
                Call::post(&["cluster", "nodes"], Some(body))
            }
            Cluster::RemoveNode { id } => Call::delete(
                &["cluster", "nodes", &id.to_string()],
                format!("removed node {id}"),
            )
            .view(super::call::View::Object),
            Cluster::KekStatus => Call::get(&["cluster", "kek"]),
            Cluster::KekRotate {
                kek_stdin,
                wait_secs,
            } => {
                let kek = match kek_stdin {
                    true => Some(secret_from_stdin("key-encryption key")?),
                    false => None,
                };
                let body = KekRotate {
                    kek: kek.as_ref().map(|k| k.trim()),
                    wait_secs,
                };
                let len = kek.as_ref().map_or(0, |k| k.len());
                Call::post(&["cluster", "kek", "rotate"], None)
                    .secret_body(Body::secret(&body, len)?)
            }
        };
        api.show(call)
    }
}

#[derive(Subcommand, Debug)]
pub enum Kv {
    /// Read a key
    Get {
        key: String,
        /// linearizable (default) or local
        #[arg(long)]
        consistency: Option<String>,
    },
    /// Write a key; VALUE `-` reads it from stdin
    Put {
        key: String,
        value: String,
        /// Delete the key after this many milliseconds
        #[arg(long)]
        ttl_ms: Option<u64>,
    },
    /// Delete a key
    Delete { key: String },
    /// Run a transaction from a JSON file (`-`: stdin)
    Txn {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Print changes under a prefix as they are applied (NDJSON)
    Watch {
        #[arg(long, default_value = "")]
        prefix: String,
        /// How long to watch, at most 300000 [default: 30000]
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
}

impl Kv {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Kv::Get { key, consistency } => {
                Call::get(&["kv", &key]).query("consistency", consistency)
            }
            Kv::Put { key, value, ttl_ms } => {
                let value = match value.as_str() {
                    "-" => read_text(std::path::Path::new("-"))?,
                    _ => value,
                };
                let mut body = json!({ "value": value });
                insert(&mut body, "ttl_ms", ttl_ms);
                Call::put(&["kv", &key], body)
            }
            Kv::Delete { key } => Call::delete(&["kv", &key], format!("deleted {key}"))
                .view(super::call::View::Object),
            Kv::Txn { file } => Call::post(&["kv", "txn"], Some(read_json(&file)?)),
            Kv::Watch { prefix, timeout_ms } => {
                let call = Call::get(&["kv", "watch"])
                    .query("prefix", Some(prefix))
                    .query("timeout_ms", timeout_ms);
                return api.stream(&call);
            }
        };
        api.show(call)
    }
}
