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
    create_private_dir(&settings.data_dir).map_err(|e| {
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

/// Create a directory (and missing parents) that only this user may read
/// (0700); an existing one is left as it is.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// The permission bits of a secret file that other users may read or
/// write, if any may.
fn shared_with_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Warn (log and stderr) when a secret file is open to other users.
pub(super) fn warn_if_shared(path: &Path, what: &str) {
    if let Some(mode) = shared_with_others(path) {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "{what} file is readable by other users");
        eprintln!(
            "rsp: WARNING: {} ({what}) has mode {mode:o}: other users can read it; run `chmod 600` on it",
            path.display()
        );
    }
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

/// Replace a private (0600) file atomically: a new file beside it, made
/// durable, renamed over it, and the directory entry made durable.
pub(super) fn replace_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
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

/// Admin tokens shorter than this are refused at start-up.
pub(super) const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// The admin token as start-up found it, before anything is written.
pub(super) enum GivenAdminToken {
    /// `RSP_ADMIN_TOKEN`.
    Env(Zeroizing<String>),
    /// Read from the admin-token file.
    File(Zeroizing<String>, PathBuf),
    /// No token yet: one is generated into this file.
    Missing(PathBuf),
}

/// Step 1 (preflight): `RSP_ADMIN_TOKEN` when set, else the token file if
/// it exists. An empty, unreadable or short token (under
/// [`MIN_ADMIN_TOKEN_LEN`] characters) stops start-up naming
/// `admin-token` (the variable) or `admin-token-file`.
pub(super) fn given_admin_token(settings: &Settings) -> Result<GivenAdminToken, StartError> {
    if let Ok(token) = std::env::var("RSP_ADMIN_TOKEN")
        && !token.trim().is_empty()
    {
        let token = Zeroizing::new(token.trim().to_string());
        check_admin_token(&token, "RSP_ADMIN_TOKEN")
            .map_err(|m| StartError::setting("admin-token", m))?;
        return Ok(GivenAdminToken::Env(token));
    }
    let path = settings.admin_token_path();
    match std::fs::read_to_string(&path).map(Zeroizing::new) {
        Ok(text) if !text.trim().is_empty() => {
            let token = Zeroizing::new(text.trim().to_string());
            check_admin_token(&token, &path.display().to_string())
                .map_err(|m| StartError::setting("admin-token-file", m))?;
            Ok(GivenAdminToken::File(token, path))
        }
        Ok(_) => Err(StartError::setting(
            "admin-token-file",
            format!("{} is empty", path.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(GivenAdminToken::Missing(path)),
        Err(e) => Err(StartError::setting(
            "admin-token-file",
            format!("{}: {e}", path.display()),
        )),
    }
}

/// Long enough to resist guessing; the message never holds the token.
fn check_admin_token(token: &str, source: &str) -> Result<(), String> {
    let len = token.chars().count();
    if len < MIN_ADMIN_TOKEN_LEN {
        return Err(format!(
            "the admin token in {source} has {len} characters; at least {MIN_ADMIN_TOKEN_LEN} are needed (e.g. `openssl rand -hex 32`)"
        ));
    }
    Ok(())
}

/// Step 6: the admin token preflight found, or a new one generated into
/// the token file (mode 0600).
pub(super) fn admin_token(
    given: GivenAdminToken,
) -> Result<(Zeroizing<String>, Option<PathBuf>), StartError> {
    match given {
        GivenAdminToken::Env(token) => Ok((token, None)),
        GivenAdminToken::File(token, path) => {
            warn_if_shared(&path, "admin token");
            Ok((token, Some(path)))
        }
        GivenAdminToken::Missing(path) => {
            let token = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
            write_private(&path, token.as_bytes())
                .map_err(|e| StartError::runtime(&format!("writing {}", path.display()), e))?;
            eprintln!("rsp: generated an admin token in {}", path.display());
            Ok((token, Some(path)))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_new_data_dir_is_private_and_an_existing_one_is_left_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a").join("data");
        create_private_dir(&dir).expect("create");
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).expect("chmod");
        create_private_dir(&dir).expect("again");
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o750, "an operator's choice is kept");
    }

    #[test]
    fn a_secret_file_open_to_others_is_noticed() {
        let root = tempfile::tempdir().expect("tempdir");
        let private = root.path().join("admin-token");
        write_private(&private, b"secret").expect("write");
        assert_eq!(shared_with_others(&private), None);
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(shared_with_others(&private), Some(0o644));
        assert_eq!(shared_with_others(&root.path().join("missing")), None);
    }

    #[test]
    fn a_short_admin_token_is_refused_without_showing_it() {
        let short = "a".repeat(MIN_ADMIN_TOKEN_LEN - 1);
        let err = check_admin_token(&short, "RSP_ADMIN_TOKEN").expect_err("too short");
        assert!(!err.contains(&short), "the message shows the token: {err}");
        assert!(check_admin_token(&"a".repeat(MIN_ADMIN_TOKEN_LEN), "f").is_ok());
    }
}
