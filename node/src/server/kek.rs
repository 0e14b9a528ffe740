//! The key-encryption key (KEK) that seals signing keys: the same on every
//! node. It is given (`RSP_KEK` or the kek file), kept from an earlier
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

/// The KEK from `RSP_KEK` or the kek file, if either exists.
fn load_kek(settings: &Settings) -> Result<Option<Kek>, StartError> {
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
