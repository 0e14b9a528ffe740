//! What the `rsp admin` tests run: a one-node cluster as a child process,
//! and the CLI itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The admin token the node is started with (at least 32 characters).
pub const TOKEN: &str = "test-admin-token-0123456789abcdef-xyz";

/// How long a node may take to start and know a leader, and a CLI to answer.
const DEADLINE: Duration = Duration::from_secs(60);

const RSP: &str = env!("CARGO_BIN_EXE_rsp");

/// A finished CLI run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn expect(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `rsp ARGS` with an empty environment plus `env`, in a fresh empty
/// directory (so no `./rsp-data/admin-token` is found), `stdin` piped.
pub fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let cwd = TempDir::new().expect("temp dir");
    let mut child = Command::new(RSP)
        .args(args)
        .current_dir(cwd.path())
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rsp");
    let input = stdin.unwrap_or("").to_owned();
    let mut pipe = child.stdin.take().expect("stdin");
    let writer = thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for rsp") {
            break status.code();
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Run {
        code,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// `rsp ARGS` without any `RSP_*` setting.
pub fn rsp(args: &[&str], stdin: Option<&str>) -> Run {
    run(args, &[], stdin)
}

/// `rsp admin --url URL ARGS`, the token in `RSP_ADMIN_TOKEN` when given.
pub fn rsp_admin(url: &str, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Run {
    let mut all = vec!["admin", "--url", url];
    all.extend_from_slice(args);
    let env: Vec<(&str, &str)> = token.map(|t| ("RSP_ADMIN_TOKEN", t)).into_iter().collect();
    run(&all, &env, stdin)
}

/// A URL on which nothing listens: a port the kernel gave and took back.
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// `rsp serve` on port 0 in a temp dir, killed on drop.
pub struct Node {
    child: Child,
    pub url: String,
    pub dir: TempDir,
}

impl Node {
    /// Starts the node and waits, within [`DEADLINE`], for its ready line and
    /// then for `cluster status` to name a leader.
    pub fn start() -> Node {
        let dir = TempDir::new().expect("temp dir");
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("node.log")).expect("log file");
        let mut child = Command::new(RSP)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .args(["--http-addr", "127.0.0.1:0", "--peer-addr", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env_clear()
            .env("RSP_ADMIN_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start rsp serve");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            // Keeps reading to the end so the node never blocks on stdout.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(ready) = line.strip_prefix("RSP_READY ") {
                    let _ = tx.send(ready.to_owned());
                }
            }
        });
        let mut node = Node {
            child,
            url: String::new(),
            dir,
        };
        let ready = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no RSP_READY line; log:\n{}", node.log()));
        let ready: Value = serde_json::from_str(&ready).expect("ready line JSON");
        node.url = format!("http://{}", ready["http_addr"].as_str().expect("http_addr"));
        node.wait_for_leader();
        node
    }

    fn wait_for_leader(&self) {
        let started = Instant::now();
        loop {
            let out = self.admin(&["cluster", "status", "--output", "json"], None);
            let leader = serde_json::from_str::<Value>(&out.stdout)
                .ok()
                .is_some_and(|s| s["leader"].is_u64());
            if out.code == Some(0) && leader {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "no leader in time: {}\nlog:\n{}",
                out.stderr,
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    /// `rsp admin ARGS` against this node with the right token.
    pub fn admin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        rsp_admin(&self.url, Some(TOKEN), args, stdin)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
