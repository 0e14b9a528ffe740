//! The key-encryption key (KEK) that seals signing keys: the same on every
//! node. It is given (the output of `kek-command`, `RSP_KEK` or the kek
//! file), kept from an earlier
//! start, fetched from the member a node joins through (or from the leader
//! once an admin adds it), or made for a new cluster. Members offer it to
//! the nodes that join through them.

use std::sync::Arc;
use std::time::Duration;

use rsp_consensus::Consensus;
use rsp_identity::crypto::{Kek, KekCell};
use zeroize::Zeroizing;

use super::StartError;
use super::files::{warn_if_shared, write_private};
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
    if let Ok(kek) = kek_cell.get() {
        consensus.set_secret(KEK_SECRET, kek.encode().as_bytes());
    }
    Ok(kek_cell)
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
