//! The small files a node keeps in its data directory: its node id and the
//! admin token (the key-encryption key file is written by `kek`), and how
//! they are written durably and privately.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::StartError;
use crate::config::Settings;

/// Step 2: create the data dir and, for a new id, record the node id in it.
pub(super) fn prepare_data_dir(
    settings: &Settings,
    id: u64,
    fresh_id: bool,
) -> Result<(), StartError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        StartError::setting("data-dir", format!("{}: {e}", settings.data_dir.display()))
    })?;
    if fresh_id {
        write_synced(
            &settings.data_dir.join("node-id"),
            format!("{id}\n").as_bytes(),
        )
        .map_err(|e| StartError::runtime("writing node-id", e))?;
    }
    Ok(())
}

/// Write a small file and make it (and its directory entry) durable.
fn write_synced(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(contents)?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub(super) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// `RSP_ADMIN_TOKEN` when set, else the token file (generated on first start).
pub(super) fn admin_token(
    settings: &Settings,
) -> Result<(Zeroizing<String>, Option<PathBuf>), StartError> {
    if let Ok(token) = std::env::var("RSP_ADMIN_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok((Zeroizing::new(token.trim().to_string()), None));
    }
    let path = settings.admin_token_path();
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            Ok((Zeroizing::new(text.trim().to_string()), Some(path)))
        }
        Ok(_) => Err(StartError::setting(
            "admin-token-file",
            format!("{} is empty", path.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
            write_private(&path, token.as_bytes())
                .map_err(|e| StartError::runtime(&format!("writing {}", path.display()), e))?;
            eprintln!("rsp: generated an admin token in {}", path.display());
            Ok((token, Some(path)))
        }
        Err(e) => Err(StartError::setting(
            "admin-token-file",
            format!("{}: {e}", path.display()),
        )),
    }
}
