//! Locating the `rsp` binary under test.
//!
//! Order: the `RSP_BIN` environment variable when set, else
//! `<target>/debug/rsp` (`release/` when this crate was built without debug
//! assertions), where `<target>` is `CARGO_TARGET_DIR` (relative to the
//! workspace when relative) or `<workspace>/target`. The workspace is the
//! parent of this crate's manifest directory.
//!
//! Cargo does not rebuild the binary for a test run of another package:
//! build it first (`cargo build -p rsp-node`) or the tests run a stale one.
//!
//! The previous release (for upgrade tests): `RSP_PREVIOUS_BIN` when set,
//! else `<target>/previous-release/rsp`, which `scripts/build-previous-release`
//! builds from the commit pinned in `deploy/previous-release` and labels
//! with that commit (`<target>/previous-release/commit`).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Environment variable that names the `rsp` binary explicitly.
pub const RSP_BIN_ENV: &str = "RSP_BIN";

/// The workspace root this crate was built in.
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// Environment variable that names the previous release's `rsp` binary.
pub const RSP_PREVIOUS_BIN_ENV: &str = "RSP_PREVIOUS_BIN";

/// The path `rsp_binary` would use, without checking that it exists.
pub fn rsp_binary_path() -> PathBuf {
    if let Some(explicit) = std::env::var_os(RSP_BIN_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(explicit);
    }
    target_dir().join(PROFILE_DIR).join("rsp")
}

/// `CARGO_TARGET_DIR` (relative to the workspace when relative), or
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    let workspace = workspace_dir();
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace.join(dir)
            }
        }
        None => workspace.join("target"),
    }
}

/// The profile directory matching how this crate was built, so a
/// `--release` test run uses the release binary.
const PROFILE_DIR: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// The `rsp` binary to run, or a clear error when it has not been built.
pub fn rsp_binary() -> Result<PathBuf> {
    let path = rsp_binary_path();
    if path.is_file() {
        return Ok(path);
    }
    if std::env::var_os(RSP_BIN_ENV).is_some_and(|v| !v.is_empty()) {
        bail!(
            "{RSP_BIN_ENV} points at {}, which is not a file",
            path.display()
        );
    }
    bail!(
        "rsp binary not found at {}: run `cargo build -p rsp-node` first (or set {RSP_BIN_ENV})",
        path.display()
    )
}

/// The previous release's `rsp` (see the module docs), checked to be
/// built from the commit `deploy/previous-release` pins now.
pub fn previous_release_binary() -> Result<PathBuf> {
    if let Some(explicit) = std::env::var_os(RSP_PREVIOUS_BIN_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(explicit);
        if !path.is_file() {
            bail!(
                "{RSP_PREVIOUS_BIN_ENV} points at {}, which is not a file",
                path.display()
            );
        }
        return Ok(path);
    }
    let pin = workspace_dir().join("deploy").join("previous-release");
    let pinned = std::fs::read_to_string(&pin)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", pin.display()))?;
    let dir = target_dir().join("previous-release");
    let path = dir.join("rsp");
    let built = std::fs::read_to_string(dir.join("commit")).unwrap_or_default();
    if !path.is_file() || built.trim() != pinned.trim() {
        bail!(
            "no previous-release rsp for commit {} at {} (found {:?}): run scripts/build-previous-release first (or set {RSP_PREVIOUS_BIN_ENV})",
            pinned.trim(),
            path.display(),
            built.trim()
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_parent_of_the_chaos_crate() {
        let ws = workspace_dir();
        assert!(
            ws.join("chaos").join("Cargo.toml").is_file(),
            "{}",
            ws.display()
        );
    }

    #[test]
    fn default_path_ends_in_debug_rsp() {
        // Only meaningful when the environment does not override it.
        if std::env::var_os(RSP_BIN_ENV).is_none() {
            let path = rsp_binary_path();
            assert!(
                path.ends_with(format!("{PROFILE_DIR}/rsp")),
                "{}",
                path.display()
            );
        }
    }
}
