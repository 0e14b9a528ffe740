//! One `rsp serve` child process: start, wait for its ready line, signal it,
//! restart it on the same data dir and ports.
//!
//! The node prints exactly one line on stdout once it serves:
//! `RSP_READY {"node_id":1,"http_addr":"127.0.0.1:34567",...}`. Everything
//! the child writes (stdout and stderr) is appended to `<dir>/node.log`, and
//! stdout lines are also kept in memory.
//!
//! Each start runs on a thread of its own that spawns the child and waits for
//! it. The child asks the kernel (`PR_SET_PDEATHSIG`) to SIGKILL it when that
//! thread ends, and the thread lives exactly as long as the child, so a test
//! process that crashes or is killed leaves no orphan nodes behind. A child is
//! reaped only under a lock that signal senders also take, so a signal can
//! never reach a recycled pid.

mod child;
mod node_spec;

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::watch;

use child::{ReadyState, Run, read_stdout, supervise};
pub use node_spec::{NodeSpec, READY_PREFIX, ReadyInfo, parse_ready_line};

/// `RSP_*` variables of the caller that children still inherit.
const INHERITED_RSP_VARS: &[&str] = &["RSP_LOG", "RSP_LOG_FORMAT"];

/// A `rsp serve` child process. Dropping it SIGKILLs the child.
pub struct NodeProcess {
    spec: Mutex<NodeSpec>,
    log_path: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
    current: Mutex<Option<Arc<Run>>>,
    /// Serialises restarts.
    lifecycle: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl NodeProcess {
    /// Spawns the node and waits for its ready line. On failure the child is
    /// killed and the error carries the tail of its log.
    pub async fn start(spec: NodeSpec) -> Result<Self> {
        let node = Self::spawn(spec)?;
        match node.wait_ready().await {
            Ok(_) => Ok(node),
            Err(e) => {
                let _ = node.kill().await;
                Err(e)
            }
        }
    }

    /// Spawns the node without waiting for it to become ready (for tests of
    /// start-up failures: pair with `wait_exit`).
    pub fn spawn(spec: NodeSpec) -> Result<Self> {
        std::fs::create_dir_all(&spec.dir)
            .with_context(|| format!("creating node dir {}", spec.dir.display()))?;
        let node = Self {
            log_path: spec.log_path(),
            spec: Mutex::new(spec),
            stdout: Arc::new(Mutex::new(Vec::new())),
            current: Mutex::new(None),
            lifecycle: tokio::sync::Mutex::new(()),
        };
        node.launch()?;
        Ok(node)
    }

    fn launch(&self) -> Result<()> {
        let spec = lock(&self.spec).clone();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let args = spec.command_args();
        writeln!(
            &log,
            "=== rsp-chaos {}: starting {} {}",
            unix_millis(),
            spec.binary.display(),
            args.join(" ")
        )?;
        let mut cmd = std::process::Command::new(&spec.binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone()?));
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("RSP_") && !INHERITED_RSP_VARS.contains(&name.as_ref()) {
                cmd.env_remove(&key);
            }
        }
        // Plain logs in node.log (tracing honours NO_COLOR); the spec may
        // override it.
        cmd.env("NO_COLOR", "1");
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure only makes async-signal-safe system calls and
        // does not allocate.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }

        let (spawned_tx, spawned_rx) = std::sync::mpsc::channel();
        let (exit_tx, exit_rx) = watch::channel(None);
        let (ready_tx, ready_rx) = watch::channel(ReadyState::Waiting);
        let thread_name = format!("rsp-node-{}", spec.node_id.unwrap_or(0));
        let exit_log = log.try_clone()?;
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || supervise(cmd, spawned_tx, exit_tx, exit_log))
            .context("spawning the node's waiter thread")?;
        let (pid, stdout, run_tx) = spawned_rx
            .recv()
            .map_err(|_| anyhow!("node waiter thread ended before spawning"))?
            .with_context(|| format!("spawning {}", spec.binary.display()))?;
        let run = Arc::new(Run {
            pid,
            reaped: Mutex::new(false),
            paused: Mutex::new(false),
            exit: exit_rx,
            ready: ready_rx,
        });
        // The waiter marks the run reaped through this handle.
        let _ = run_tx.send(run.clone());
        *lock(&self.current) = Some(run);
        let lines = self.stdout.clone();
        let reader = std::thread::Builder::new()
            .name(format!("rsp-node-stdout-{pid}"))
            .spawn(move || read_stdout(stdout, log, lines, ready_tx));
        if let Err(e) = reader {
            let _ = self.signal(libc::SIGKILL);
            return Err(e).context("spawning the node's stdout reader");
        }
        Ok(())
    }

    fn run(&self) -> Option<Arc<Run>> {
        lock(&self.current).clone()
    }

    /// Waits for the current start's ready line (bounded by the spec's
    /// `ready_timeout`). The first time, learned ports are remembered so that
    /// restarts bind the same ones.
    pub async fn wait_ready(&self) -> Result<ReadyInfo> {
        let run = self
            .run()
            .ok_or_else(|| anyhow!("node was never started"))?;
        let timeout = lock(&self.spec).ready_timeout;
        let mut ready = run.ready.clone();
        let mut exit = run.exit.clone();
        let outcome = tokio::time::timeout(timeout, async {
            loop {
                match &*ready.borrow_and_update() {
                    ReadyState::Ready(info) => return Ok(info.clone()),
                    ReadyState::Bad(msg) => return Err(anyhow!("{msg}")),
                    ReadyState::Waiting => {}
                }
                if let Some(status) = *exit.borrow_and_update() {
                    return Err(anyhow!("node exited before it was ready: {status}"));
                }
                tokio::select! {
                    r = ready.changed() => if r.is_err() {
                        // Reader ended (stdout closed); the exit will follow.
                        let _ = exit.wait_for(|s| s.is_some()).await;
                    },
                    _ = exit.changed() => {}
                }
            }
        })
        .await;
        let info = match outcome {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => return Err(e.context(self.describe_failure())),
            Err(_) => {
                return Err(
                    anyhow!("no ready line within {timeout:?}").context(self.describe_failure())
                );
            }
        };
        let mut spec = lock(&self.spec);
        if spec.http_addr.port() == 0 {
            spec.http_addr = info.http_addr;
        }
        if spec.peer_addr.port() == 0 {
            spec.peer_addr = info.peer_addr;
        }
        Ok(info)
    }

    fn describe_failure(&self) -> String {
        let spec = lock(&self.spec);
        format!(
            "node {:?} ({}); last lines of {}:\n{}",
            spec.node_id,
            spec.dir.display(),
            self.log_path.display(),
            log_tail(&self.log_path, 40)
        )
    }

    /// The ready line of the current start, if it has been seen.
    pub fn ready(&self) -> Option<ReadyInfo> {
        let run = self.run()?;
        match &*run.ready.borrow() {
            ReadyState::Ready(info) => Some(info.clone()),
            _ => None,
        }
    }

    /// A copy of the spec, with learned ports filled in once ready.
    pub fn spec(&self) -> NodeSpec {
        lock(&self.spec).clone()
    }

    /// Changes the spec for the next restart (e.g. drop a `--join`).
    pub fn update_spec(&self, f: impl FnOnce(&mut NodeSpec)) {
        f(&mut lock(&self.spec));
    }

    pub fn node_id(&self) -> Option<u64> {
        self.ready()
            .map(|r| r.node_id)
            .or_else(|| lock(&self.spec).node_id)
    }

    /// The HTTP address (known after the first ready line).
    pub fn http_addr(&self) -> SocketAddr {
        lock(&self.spec).http_addr
    }

    /// The peer address (known after the first ready line).
    pub fn peer_addr(&self) -> SocketAddr {
        lock(&self.spec).peer_addr
    }

    /// `http://<http_addr>`: what tests talk to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http_addr())
    }

    pub fn data_dir(&self) -> PathBuf {
        lock(&self.spec).data_dir()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `n` lines of `node.log`.
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log_path, n)
    }

    /// Every stdout line seen so far, across restarts.
    pub fn stdout_lines(&self) -> Vec<String> {
        lock(&self.stdout).clone()
    }

    pub fn pid(&self) -> Option<i32> {
        let run = self.run()?;
        let reaped = *lock(&run.reaped);
        (!reaped).then_some(run.pid)
    }

    /// True while the child exists (also while paused).
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.run()
            .is_some_and(|run| !*lock(&run.reaped) && *lock(&run.paused))
    }

    /// The exit status of the current start, once it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.run()?.exit.borrow()
    }

    /// Sends `signal` to the child; an error when it is not running.
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        let run = self
            .run()
            .ok_or_else(|| anyhow!("node was never started"))?;
        let reaped = lock(&run.reaped);
        if *reaped {
            bail!("node (pid {}) is not running", run.pid);
        }
        // SAFETY: plain system call; the pid is ours and not yet reaped.
        if unsafe { libc::kill(run.pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("kill({}, {signal})", run.pid));
        }
        match signal {
            libc::SIGSTOP => *lock(&run.paused) = true,
            libc::SIGCONT => *lock(&run.paused) = false,
            _ => {}
        }
        Ok(())
    }

    /// Waits up to `timeout` for the current start to exit.
    pub async fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus> {
        let run = self
            .run()
            .ok_or_else(|| anyhow!("node was never started"))?;
        let mut exit = run.exit.clone();
        let waited = tokio::time::timeout(timeout, exit.wait_for(|s| s.is_some())).await;
        match waited {
            Ok(Ok(status)) => (*status).ok_or_else(|| anyhow!("exit status missing")),
            Ok(Err(_)) => bail!("node waiter ended without an exit status"),
            Err(_) => bail!("node (pid {}) still running after {timeout:?}", run.pid),
        }
    }

    /// `kill -9`, then waits for the exit. A node already gone is fine.
    pub async fn kill(&self) -> Result<()> {
        if self.signal(libc::SIGKILL).is_err() && !self.is_running() {
            return Ok(());
        }
        self.wait_exit(Duration::from_secs(10)).await.map(|_| ())
    }

    /// SIGSTOP: the process freezes with its sockets open.
    pub fn pause(&self) -> Result<()> {
        self.signal(libc::SIGSTOP)
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) -> Result<()> {
        self.signal(libc::SIGCONT)
    }

    /// SIGTERM (and SIGCONT, in case it is paused), then waits up to `timeout`
    /// for a graceful exit. If it does not exit in time it is killed and an
    /// error is returned.
    pub async fn terminate(&self, timeout: Duration) -> Result<ExitStatus> {
        self.signal(libc::SIGTERM)?;
        let _ = self.signal(libc::SIGCONT);
        match self.wait_exit(timeout).await {
            Ok(status) => Ok(status),
            Err(e) => {
                let _ = self.kill().await;
                Err(e.context("graceful shutdown did not finish; killed"))
            }
        }
    }

    /// Starts the node again on the same data dir and the same HTTP and peer
    /// ports as the first start. A still-running node is killed (`kill -9`)
    /// first.
    pub async fn restart(&self) -> Result<ReadyInfo> {
        let _guard = self.lifecycle.lock().await;
        self.kill().await?;
        self.launch()?;
        match self.wait_ready().await {
            Ok(info) => Ok(info),
            Err(e) => {
                let _ = self.kill().await;
                Err(e)
            }
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.signal(libc::SIGKILL);
    }
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// The last `n` lines of a file (empty if unreadable).
pub fn log_tail(path: &Path, n: usize) -> String {
    let Ok(text) = std::fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A fake node: a shell script that prints a ready line and sleeps.
    fn fake_node(dir: &Path, body: &str) -> NodeSpec {
        let script = dir.join("fake-rsp.sh");
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).expect("write script");
        let mut perms = std::fs::metadata(&script).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&script, perms).expect("chmod");
        // The script sees the usual `serve --data-dir ...` arguments.
        let mut spec = NodeSpec::new(script, dir.join("node"));
        spec.ready_timeout = Duration::from_secs(5);
        spec
    }

    const READY: &str = r#"echo 'RSP_READY {"node_id":7,"http_addr":"127.0.0.1:4001","peer_addr":"127.0.0.1:4002","public_url":"http://127.0.0.1:4001","data_dir":"/tmp/d"}'"#;

    #[tokio::test]
    async fn start_waits_for_ready_and_kill_reaps() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let spec = fake_node(
            tmp.path(),
            &format!("echo hello; echo oops >&2; {READY}; exec sleep 60"),
        );
        let node = NodeProcess::start(spec).await.expect("start");
        let ready = node.ready().expect("ready");
        assert_eq!(ready.node_id, 7);
        assert_eq!(node.http_addr().port(), 4001, "learned port remembered");
        assert!(node.is_running());
        node.pause().expect("pause");
        assert!(node.is_paused());
        node.resume().expect("resume");
        node.kill().await.expect("kill");
        assert!(!node.is_running());
        assert_eq!(
            node.exit_status().and_then(|s| s.signal()),
            Some(libc::SIGKILL)
        );
        assert!(node.signal(libc::SIGTERM).is_err(), "no signal after reap");
        let log = node.log_tail(100);
        assert!(log.contains("hello") && log.contains("oops"), "{log}");
        assert!(log.contains("--http-addr 127.0.0.1:0"), "{log}");
    }

    #[tokio::test]
    async fn restart_reuses_learned_ports() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let spec = fake_node(
            tmp.path(),
            &format!("echo \"args: $*\"; {READY}; exec sleep 60"),
        );
        let node = NodeProcess::start(spec).await.expect("start");
        node.restart().await.expect("restart");
        let lines = node.stdout_lines();
        let args: Vec<_> = lines.iter().filter(|l| l.starts_with("args:")).collect();
        assert_eq!(args.len(), 2, "{lines:?}");
        assert!(
            args[1].contains("--http-addr 127.0.0.1:4001"),
            "{}",
            args[1]
        );
        assert!(
            args[1].contains("--peer-addr 127.0.0.1:4002"),
            "{}",
            args[1]
        );
    }

    #[tokio::test]
    async fn exit_before_ready_is_an_error_with_the_log() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let spec = fake_node(tmp.path(), "echo 'bad setting: --zone' >&2; exit 2");
        let err = match NodeProcess::start(spec).await {
            Ok(_) => panic!("must fail"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("bad setting: --zone"), "{err}");
        assert!(err.contains("exited before it was ready"), "{err}");
    }

    #[tokio::test]
    async fn terminate_waits_for_graceful_exit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let spec = fake_node(
            tmp.path(),
            &format!("trap 'exit 0' TERM; {READY}; while :; do sleep 0.05; done"),
        );
        let node = NodeProcess::start(spec).await.expect("start");
        let status = node
            .terminate(Duration::from_secs(5))
            .await
            .expect("terminate");
        assert_eq!(status.code(), Some(0));
    }
}
