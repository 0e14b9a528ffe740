//! The cluster's join token, which every peer message proves
//! (`rsp_consensus::peer_auth`). It is given (`RSP_JOIN_TOKEN` or
//! `--join-token-file`), kept from an earlier start in
//! `<data-dir>/join-token`, or made by the node that bootstraps a new
//! cluster. A node that joins with a token from a file keeps a copy, so a
//! restart needs nothing. A node that would join, wait to be added, or
//! already holds cluster data, and has no token, is refused: it could not
//! talk to its peers.

use std::path::PathBuf;

use rsp_consensus::peer_auth::JoinToken;
use zeroize::Zeroizing;

use super::StartError;
use super::files::{replace_private, warn_if_shared, write_private};
use crate::config::Settings;

/// Where this node's token came from, and so whether to keep a copy.
pub(super) enum Origin {
    /// `RSP_JOIN_TOKEN`: given on every start, like `RSP_KEK`; not copied.
    Environment,
    /// `--join-token-file`: copied into the data dir if it has none.
    File,
    /// `<data-dir>/join-token`, from an earlier start.
    Stored,
    /// Made now for a new cluster; written to the data dir.
    Generated,
    /// Made now by `--force-new-cluster`; replaces the stored one, so the
    /// old members' messages are refused.
    Forced,
}

pub(super) struct Resolved {
    pub(super) token: JoinToken,
    pub(super) origin: Origin,
}

/// Step 1: the join token, read before anything is written.
pub(super) fn resolve(settings: &Settings) -> Result<Resolved, StartError> {
    if settings.force_new_cluster {
        return forced(settings);
    }
    if let Ok(text) = std::env::var("RSP_JOIN_TOKEN")
        && !text.trim().is_empty()
    {
        let text = Zeroizing::new(text);
        let token = JoinToken::parse(&text)
            .map_err(|e| StartError::setting("join-token", format!("RSP_JOIN_TOKEN: {e}")))?;
        return Ok(Resolved {
            token,
            origin: Origin::Environment,
        });
    }
    if let Some(path) = &settings.join_token_file {
        let token = read(path).map_err(|e| StartError::setting("join-token-file", e))?;
        return Ok(Resolved {
            token,
            origin: Origin::File,
        });
    }
    let stored = settings.stored_join_token_path();
    if stored.exists() {
        let token = read(&stored).map_err(|e| StartError::setting("join-token", e))?;
        return Ok(Resolved {
            token,
            origin: Origin::Stored,
        });
    }
    let bootstraps = settings.join.is_none()
        && !settings.no_bootstrap
        && !settings.data_dir.join("store").exists();
    if !bootstraps {
        return Err(StartError::setting(
            "join-token",
            "this node joins a cluster, waits to be added to one, or already holds cluster data, but has no join token: give it the cluster's token with --join-token-file or RSP_JOIN_TOKEN (the node that bootstrapped wrote it to <data-dir>/join-token)",
        ));
    }
    Ok(Resolved {
        token: JoinToken::generate(),
        origin: Origin::Generated,
    })
}

/// `--force-new-cluster`: a new token for the new cluster, so the members
/// of the old one (which may come back with its token and its membership)
/// are refused on the peer port.
fn forced(settings: &Settings) -> Result<Resolved, StartError> {
    let refuse = |m: &str| Err(StartError::setting("force-new-cluster", m));
    if settings.join.is_some() {
        return refuse("a node forced into a new cluster joins none: drop --join");
    }
    if !settings.data_dir.join("store").exists() {
        return refuse(
            "this data dir holds no cluster data to keep; force-new-cluster is for a surviving member",
        );
    }
    let env_token = std::env::var("RSP_JOIN_TOKEN").is_ok_and(|t| !t.trim().is_empty());
    if env_token || settings.join_token_file.is_some() {
        return refuse(
            "the new cluster gets a new join token (written to <data-dir>/join-token), so the old members are refused: start it without RSP_JOIN_TOKEN and --join-token-file",
        );
    }
    Ok(Resolved {
        token: JoinToken::generate(),
        origin: Origin::Forced,
    })
}

fn read(path: &std::path::Path) -> Result<JoinToken, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    warn_if_shared(path, "join token");
    JoinToken::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Step 2, once the data dir exists: keep a generated token, or a copy of
/// one given by file, in `<data-dir>/join-token`. Returns that path when it
/// holds this cluster's token.
pub(super) fn keep(
    settings: &Settings,
    resolved: &Resolved,
) -> Result<Option<PathBuf>, StartError> {
    let path = settings.stored_join_token_path();
    match resolved.origin {
        Origin::Environment => return Ok(None),
        Origin::Stored => return Ok(Some(path)),
        Origin::File if path.exists() => return Ok(None),
        Origin::File | Origin::Generated => {}
        Origin::Forced => {
            replace_private(&path, resolved.token.expose().as_bytes())
                .map_err(|e| StartError::runtime(&format!("writing {}", path.display()), e))?;
            eprintln!(
                "rsp: force-new-cluster: the new cluster's join token is in {}; nodes that join it need it (--join-token-file or RSP_JOIN_TOKEN)",
                path.display()
            );
            return Ok(Some(path));
        }
    }
    write_private(&path, resolved.token.expose().as_bytes())
        .map_err(|e| StartError::runtime(&format!("writing {}", path.display()), e))?;
    if matches!(resolved.origin, Origin::Generated) {
        eprintln!(
            "rsp: generated the cluster's join token in {}; nodes that join need it (--join-token-file or RSP_JOIN_TOKEN)",
            path.display()
        );
    }
    Ok(Some(path))
}
