//! The key-encryption key (KEK) that seals signing keys: the same on every
//! node. It is given (the output of `kek-command`, `RSP_KEK` or the kek
//! file), kept from an earlier
//! start, fetched from the member a node joins through (or from the leader
//! once an admin adds it), or made for a new cluster. Members offer it to
//! the nodes that join through them.

use std::sync::Arc;
use std::time::Duration;

use rsp_consensus::{Consensus, Consistency};
use rsp_identity::Identity;
use rsp_identity::crypto::{Kek, KekCell};
use rsp_identity::kek_ring::KekStore;
use zeroize::Zeroizing;

use super::StartError;
use super::files::{replace_private, warn_if_shared, write_private};
use crate::config::Settings;

/// Name under which members offer the KEK to nodes that join through them.
const KEK_SECRET: &str = "kek";

/// The KEK given to this node, if any. Without one, a node that would
/// neither join nor wait to be added but already holds data is refused:
/// that data is sealed under a key it no longer has.
pub(super) fn given(settings: &Settings) -> Result<Option<Kek>, StartError> {
    let given_kek = load_kek(settings)?;
    if given_kek.is_none()
        && settings.join.is_none()
        && !settings.no_bootstrap
        && settings.data_dir.join("store").exists()
    {
        return Err(missing_kek(settings));
    }
    Ok(given_kek)
}

/// Step 5: the KEK for this node, in a cell the identity services read,
/// and offered to nodes that join through this one. A node waiting to be
/// added gets it in the background; until then the cell stays empty.
pub(super) async fn provide(
    consensus: &Consensus,
    settings: &Settings,
    given_kek: Option<Kek>,
    initialized: bool,
) -> Result<Arc<KekCell>, StartError> {
    let kek_cell = Arc::new(KekCell::default());
    match (given_kek, &settings.join, initialized) {
        (Some(kek), _, _) => kek_cell.set(kek),
        (None, Some(addr), _) => kek_cell.set(fetch_kek(consensus, settings, addr).await?),
        (None, None, false) if !settings.no_bootstrap => {
            let kek = Kek::generate();
            save_kek(settings, &kek)?;
            kek_cell.set(kek);
        }
        (None, None, _) if settings.no_bootstrap => {
            // Added later by the admin API: fetch from the leader once we are
            // a member. Until then identity features answer "unavailable".
            let (c, cell, s) = (consensus.clone(), kek_cell.clone(), settings.clone());
            tokio::spawn(async move { fetch_kek_when_added(c, cell, s).await });
        }
        (None, None, _) => return Err(missing_kek(settings)),
    }
    if let Some(next) = load_next(settings)? {
        // A rotation this node started (or took part in) before it
        // stopped: the record says whether that key is now current.
        kek_cell.add(next);
    }
    if let Ok(kek) = kek_cell.get() {
        consensus.set_secret(KEK_SECRET, kek.encode().as_bytes());
    }
    Ok(kek_cell)
}

/// `<kek-file>.next`: a KEK handed to this node by a rotation that had not
/// made it current yet.
fn next_path(settings: &Settings) -> std::path::PathBuf {
    let mut path = settings.kek_path().into_os_string();
    path.push(".next");
    path.into()
}

fn load_next(settings: &Settings) -> Result<Option<Kek>, StartError> {
    let path = next_path(settings);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            Kek::parse(&text)
                .map(Some)
                .map_err(|e| StartError::setting("kek-file", format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StartError::setting(
            "kek-file",
            format!("{}: {e}", path.display()),
        )),
    }
}

/// Whether this node's KEK lives in its kek file (rather than `RSP_KEK`
/// or `kek-command`, which rsp cannot update).
fn file_backed(settings: &Settings) -> bool {
    settings.kek_command.is_none() && std::env::var("RSP_KEK").map_or(true, |v| v.trim().is_empty())
}

/// The kek file as a [`KekStore`]: a rotation's new KEK goes to
/// `<kek-file>.next` before the rotation is committed, and replaces the kek
/// file once it is current.
struct KekFile {
    path: std::path::PathBuf,
    next: std::path::PathBuf,
}

impl KekStore for KekFile {
    fn keep_next(&self, kek: &Kek) -> std::io::Result<()> {
        replace_private(&self.next, kek.encode().as_bytes())
    }

    fn keep_current(&self, kek: &Kek) -> std::io::Result<()> {
        replace_private(&self.path, kek.encode().as_bytes())?;
        match std::fs::remove_file(&self.next) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The node's identity services with the kek file as their KEK store, when
/// the KEK lives in a file.
pub(super) fn with_store(identity: Identity, settings: &Settings) -> Identity {
    if file_backed(settings) {
        identity.with_kek_store(Arc::new(KekFile {
            path: settings.kek_path(),
            next: next_path(settings),
        }))
    } else {
        identity
    }
}

/// How often a node reads the KEK record (to follow a rotation) and, on
/// the leader, resumes a rotation's re-sealing.
const FOLLOW_PERIOD: Duration = Duration::from_secs(2);
/// How long start-up waits for the first confirmed read of the KEK record.
const FIRST_SYNC_WAIT: Duration = Duration::from_secs(5);

/// The running follower of the KEK record; it stops when dropped.
pub(super) struct KekFollower(tokio::task::JoinHandle<()>);

impl Drop for KekFollower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follow the replicated KEK record: the first read before start-up goes
/// on (bounded, so a node without quorum still starts and answers "not
/// ready"), then one every [`FOLLOW_PERIOD`]; the leader also carries on a
/// rotation's re-sealing that its coordinator left unfinished.
pub(super) async fn follow(consensus: &Consensus, identity: &Identity) -> KekFollower {
    let ring = identity.kek_ring.clone();
    let first = async {
        loop {
            if ring.cell().get().is_ok() {
                match ring.sync(Consistency::Local).await {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "KEK record not read yet"),
                }
                match ring.sync(Consistency::Linearizable).await {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "KEK record not confirmed yet"),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // A node waiting to be added has no KEK yet: nothing to wait for.
    let synced =
        ring.cell().get().is_ok() && tokio::time::timeout(FIRST_SYNC_WAIT, first).await.is_ok();
    let (consensus, identity) = (consensus.clone(), identity.clone());
    KekFollower(tokio::spawn(async move {
        let ring = identity.kek_ring.clone();
        let mut ready = synced;
        loop {
            tokio::time::sleep(if ready {
                FOLLOW_PERIOD
            } else {
                Duration::from_millis(200)
            })
            .await;
            if ring.cell().get().is_err() {
                continue; // waiting to be added: no KEK yet
            }
            let consistency = if ready {
                Consistency::Local
            } else {
                Consistency::Linearizable
            };
            match ring.sync(consistency).await {
                Ok(now_ready) => ready = ready || now_ready,
                Err(e) => {
                    tracing::warn!(error = %e, "following the KEK record failed");
                    continue;
                }
            }
            let status = consensus.status();
            if !ready || status.leader != Some(status.this_node) {
                continue;
            }
            match ring.rotating_locally().await {
                Ok(true) => match identity.reseal_pass(consensus.clock().now_ms()).await {
                    Ok(s) if s.resealed > 0 || !s.rotating => {
                        tracing::info!(
                            resealed = s.resealed,
                            rotating = s.rotating,
                            "KEK rotation re-sealing"
                        );
                    }
                    Ok(s) if !s.waiting_for.is_empty() => {
                        tracing::info!(waiting_for = ?s.waiting_for, "KEK rotation waits for members to take the new key");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "KEK rotation re-sealing failed"),
                },
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "reading the KEK record"),
            }
        }
    }))
}

/// How long `kek-command` may run before start-up gives up on it.
const KEK_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The KEK from `kek-command`, `RSP_KEK` or the kek file, if any is given.
fn load_kek(settings: &Settings) -> Result<Option<Kek>, StartError> {
    if let Some(command) = &settings.kek_command {
        return run_kek_command(command).map(Some);
    }
    if let Ok(text) = std::env::var("RSP_KEK")
        && !text.trim().is_empty()
    {
        let text = Zeroizing::new(text);
        return Kek::parse(&text)
            .map(Some)
            .map_err(|e| StartError::setting("kek", format!("RSP_KEK: {e}")));
    }
    let path = settings.kek_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            warn_if_shared(&path, "key-encryption key");
            Kek::parse(&text)
                .map(Some)
                .map_err(|e| StartError::setting("kek-file", format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StartError::setting(
            "kek-file",
            format!("{}: {e}", path.display()),
        )),
    }
}

/// Run `command` with `sh -c` and read the KEK from its standard output.
/// The last line of its standard error is quoted when it fails, so a helper
/// can say what went wrong; its standard output is never printed. Failure,
/// a timeout or output that is not a KEK stops start-up naming
/// `kek-command`.
fn run_kek_command(command: &str) -> Result<Kek, StartError> {
    use std::io::Read;
    use std::process::{Command, Stdio};

    let failed = |msg: String| StartError::setting("kek-command", msg);
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run /bin/sh: {e}")))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| failed("no standard output to read".into()))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| failed("no standard error to read".into()))?;
    let reader = std::thread::spawn(move || {
        let mut out = Zeroizing::new(Vec::new());
        // A KEK is a few dozen bytes; a helper that writes more is wrong.
        let _ = (&mut stdout).take(4096).read_to_end(&mut out);
        out
    });
    let complaint = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut text);
        let text = String::from_utf8_lossy(&text);
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        last.map(|l| l.trim().chars().take(200).collect::<String>())
    });
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < KEK_COMMAND_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "did not finish within {} s",
                    KEK_COMMAND_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(failed(format!("waiting for it: {e}"))),
        }
    };
    let out = reader
        .join()
        .map_err(|_| failed("reading its output failed".into()))?;
    if !status.success() {
        let said = match complaint.join().ok().flatten() {
            Some(line) => format!(": {line}"),
            None => String::new(),
        };
        return Err(failed(format!("exited with {status}{said}")));
    }
    let text = Zeroizing::new(String::from_utf8_lossy(&out).into_owned());
    Kek::parse(&text).map_err(|e| failed(format!("its output is not a key: {e}")))
}

fn missing_kek(settings: &Settings) -> StartError {
    StartError::setting(
        "kek-file",
        format!(
            "{} is missing but this node already holds cluster data sealed under a key-encryption key; restore it or set RSP_KEK",
            settings.kek_path().display()
        ),
    )
}

fn save_kek(settings: &Settings, kek: &Kek) -> Result<(), StartError> {
    let path = settings.kek_path();
    write_private(&path, kek.encode().as_bytes()).map_err(|e| {
        StartError::runtime(
            &format!("writing the key-encryption key to {}", path.display()),
            e,
        )
    })
}

/// Fetch the KEK from the member at `peer_addr` and keep it in the kek file.
async fn fetch_kek(
    consensus: &Consensus,
    settings: &Settings,
    peer_addr: &str,
) -> Result<Kek, StartError> {
    let bytes = consensus
        .fetch_secret(peer_addr, KEK_SECRET)
        .await
        .map_err(|e| StartError::runtime(&format!("fetching the key-encryption key from {peer_addr}"), e))?
        .ok_or_else(|| {
            StartError::Runtime(format!(
                "the member at {peer_addr} has no key-encryption key to share; give this node the cluster's KEK with --kek-file or RSP_KEK"
            ))
        })?;
    let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
    let kek =
        Kek::parse(&text).map_err(|e| StartError::runtime("the fetched key-encryption key", e))?;
    save_kek(settings, &kek)?;
    Ok(kek)
}

async fn fetch_kek_when_added(consensus: Consensus, cell: Arc<KekCell>, settings: Settings) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = consensus.status();
        let leader = status
            .leader
            .filter(|l| *l != status.this_node)
            .and_then(|l| status.members.iter().find(|m| m.id == l));
        if let Some(leader) = leader {
            let addr = consensus.transport().route(leader.id, &leader.peer_addr);
            match fetch_kek(&consensus, &settings, &addr).await {
                Ok(kek) => {
                    consensus.set_secret(KEK_SECRET, kek.encode().as_bytes());
                    cell.set(kek);
                    tracing::info!("received the cluster's key-encryption key");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "key-encryption key not received yet"),
            }
        }
    }
}
