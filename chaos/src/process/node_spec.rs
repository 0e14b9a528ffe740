//! What to run ([`NodeSpec`]: the command line of `rsp serve`) and what the
//! node announces once it serves ([`ReadyInfo`], the `RSP_READY` line).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

/// What the node announced in its `RSP_READY` line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReadyInfo {
    pub node_id: u64,
    pub http_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
    /// `<data-dir>/join-token` when the node keeps the cluster's join token.
    #[serde(default)]
    pub join_token_file: Option<PathBuf>,
}

/// The prefix of the ready line on the node's stdout.
pub const READY_PREFIX: &str = "RSP_READY ";

/// Parses a stdout line; `None` when it is not a ready line.
pub fn parse_ready_line(line: &str) -> Option<Result<ReadyInfo>> {
    let json = line.trim_end().strip_prefix(READY_PREFIX)?;
    Some(serde_json::from_str(json).with_context(|| format!("unparsable ready line: {line}")))
}

/// How to run one node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub binary: PathBuf,
    /// Passed as `--node-id` when set.
    pub node_id: Option<u64>,
    /// Working directory of the harness for this node: `node.log` lives here
    /// and the node's data dir is `<dir>/data`.
    pub dir: PathBuf,
    /// `--http-addr`; port 0 picks one on first start, and restarts reuse it.
    pub http_addr: SocketAddr,
    /// `--peer-addr`; port 0 picks one on first start, and restarts reuse it.
    pub peer_addr: SocketAddr,
    /// Further arguments after `serve` and the flags above.
    pub args: Vec<String>,
    /// Environment for the child. Inherited `RSP_*` settings are removed so
    /// the caller's shell cannot change what a test runs; only the logging
    /// ones (`RSP_LOG`, `RSP_LOG_FORMAT`) pass through.
    pub env: Vec<(String, String)>,
    /// How long `start`/`restart` wait for the ready line.
    pub ready_timeout: Duration,
}

impl NodeSpec {
    pub fn new(binary: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            binary: binary.into(),
            node_id: None,
            dir: dir.into(),
            http_addr: any,
            peer_addr: any,
            args: Vec::new(),
            env: Vec::new(),
            ready_timeout: Duration::from_secs(30),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// The full argument list after the binary name.
    pub fn command_args(&self) -> Vec<String> {
        let mut args = vec![
            "serve".to_string(),
            "--data-dir".to_string(),
            self.data_dir().display().to_string(),
            "--http-addr".to_string(),
            self.http_addr.to_string(),
            "--peer-addr".to_string(),
            self.peer_addr.to_string(),
        ];
        if let Some(id) = self.node_id {
            args.push("--node-id".to_string());
            args.push(id.to_string());
        }
        args.extend(self.args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parses() {
        let line = r#"RSP_READY {"node_id":1,"http_addr":"127.0.0.1:34567","peer_addr":"127.0.0.1:34568","public_url":"http://127.0.0.1:34567","data_dir":"/tmp/x","admin_token_file":"/tmp/x/admin-token"}"#;
        let info = parse_ready_line(line)
            .expect("is a ready line")
            .expect("parses");
        assert_eq!(info.node_id, 1);
        assert_eq!(info.http_addr.port(), 34567);
        assert_eq!(info.peer_addr.port(), 34568);
        assert_eq!(
            info.admin_token_file,
            Some(PathBuf::from("/tmp/x/admin-token"))
        );
        assert!(parse_ready_line("listening on 127.0.0.1:8080").is_none());
        assert!(
            parse_ready_line("RSP_READY {not json")
                .expect("ready line")
                .is_err()
        );
    }

    #[test]
    fn command_line_names_data_dir_ports_and_id() {
        let mut spec = NodeSpec::new("/bin/rsp", "/tmp/n1");
        spec.node_id = Some(3);
        spec.args = vec!["--zone".into(), "a".into()];
        let args = spec.command_args().join(" ");
        assert_eq!(
            args,
            "serve --data-dir /tmp/n1/data --http-addr 127.0.0.1:0 --peer-addr 127.0.0.1:0 --node-id 3 --zone a"
        );
    }
}
