//! The two threads that own one start of a child: the waiter (spawn, wait
//! without reaping, reap under the run's lock, publish the exit status) and
//! the stdout reader (copy to the log, keep the lines, spot the ready line).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::node_spec::{ReadyInfo, parse_ready_line};
use super::{lock, unix_millis};

/// State of one start of the child, shared with its waiter thread.
pub(super) struct Run {
    pub(super) pid: i32,
    /// True once the child has been reaped; signals are sent only while
    /// holding this lock and seeing `false`.
    pub(super) reaped: Mutex<bool>,
    pub(super) paused: Mutex<bool>,
    pub(super) exit: watch::Receiver<Option<ExitStatus>>,
    pub(super) ready: watch::Receiver<ReadyState>,
}

#[derive(Debug, Clone)]
pub(super) enum ReadyState {
    Waiting,
    Ready(ReadyInfo),
    Bad(String),
}

pub(super) type Spawned = (
    i32,
    std::process::ChildStdout,
    std::sync::mpsc::Sender<Arc<Run>>,
);

/// Body of the waiter thread: spawn, wait without reaping, then reap under
/// the run's lock and publish the exit status.
pub(super) fn supervise(
    mut cmd: std::process::Command,
    spawned: std::sync::mpsc::Sender<std::io::Result<Spawned>>,
    exit_tx: watch::Sender<Option<ExitStatus>>,
    log: File,
) {
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = spawned.send(Err(e));
            return;
        }
    };
    let pid = child.id() as i32;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        let _ = spawned.send(Err(std::io::Error::other("child stdout missing")));
        return;
    };
    let (run_tx, run_rx) = std::sync::mpsc::channel::<Arc<Run>>();
    if spawned.send(Ok((pid, stdout, run_tx))).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
    let run = run_rx.recv().ok();
    loop {
        // SAFETY: zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let status = {
        let mut reaped = run.as_ref().map(|r| lock(&r.reaped));
        let status = child
            .wait()
            .unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL));
        if let Some(flag) = reaped.as_deref_mut() {
            *flag = true;
        }
        status
    };
    let _ = writeln!(&log, "=== rsp-chaos {}: exited: {status}", unix_millis());
    let _ = exit_tx.send(Some(status));
}

/// Body of the stdout reader thread.
pub(super) fn read_stdout(
    stdout: std::process::ChildStdout,
    log: File,
    lines: Arc<Mutex<Vec<String>>>,
    ready: watch::Sender<ReadyState>,
) {
    let reader = BufReader::new(stdout);
    for line in reader.lines() {
        let Ok(line) = line else { break };
        let _ = (&log).write_all(format!("{line}\n").as_bytes());
        if let Some(parsed) = parse_ready_line(&line) {
            let state = match parsed {
                Ok(info) => ReadyState::Ready(info),
                Err(e) => ReadyState::Bad(format!("{e:#}")),
            };
            let _ = ready.send(state);
        }
        lock(&lines).push(line);
    }
}
