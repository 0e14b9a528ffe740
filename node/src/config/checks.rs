//! Checks that read the disk, once every value is parsed: the data
//! directory and token files can be used or created, the PEM files hold
//! what they should, and TLS settings come in working pairs. They only look:
//! nothing is created or changed.

use std::fs;
use std::io;
use std::path::Path;

use rustls::pki_types::pem::{PemObject, SectionKind};
use zeroize::Zeroizing;

use super::spec::{
    ADMIN_TOKEN_FILE, DATA_DIR, JOIN_TOKEN_FILE, KEK_FILE, PEER_TLS_CA, TLS_CERT, TLS_KEY,
};
use super::{ConfigError, Settings};

/// Checks that read the disk, after every value parsed.
pub(super) fn check_files(s: &Settings) -> Result<(), ConfigError> {
    check_data_dir(&s.data_dir).map_err(|msg| ConfigError::new(DATA_DIR.flag, msg))?;
    if let Some(path) = &s.admin_token_file {
        check_token_file(path, &s.data_dir)
            .map_err(|msg| ConfigError::new(ADMIN_TOKEN_FILE.flag, msg))?;
    }
    if let Some(path) = &s.kek_file {
        check_token_file(path, &s.data_dir).map_err(|msg| ConfigError::new(KEK_FILE.flag, msg))?;
    }
    if let Some(path) = &s.join_token_file {
        match fs::metadata(path) {
            Ok(m) if m.is_file() && permitted(path, READ) => {}
            Ok(_) => {
                let msg = format!("{path:?} is not a readable file");
                return Err(ConfigError::new(JOIN_TOKEN_FILE.flag, msg));
            }
            Err(e) => {
                let msg = format!("{path:?}: {e}");
                return Err(ConfigError::new(JOIN_TOKEN_FILE.flag, msg));
            }
        }
    }
    let pem_files = [
        (TLS_CERT, &s.tls_cert, Pem::Certificate),
        (TLS_KEY, &s.tls_key, Pem::PrivateKey),
        (PEER_TLS_CA, &s.peer_tls_ca, Pem::Certificate),
    ];
    for (spec, path, want) in pem_files {
        if let Some(path) = path {
            check_pem(path, want).map_err(|msg| ConfigError::new(spec.flag, msg))?;
        }
    }
    match (&s.tls_cert, &s.tls_key) {
        (Some(_), None) => return Err(ConfigError::new(TLS_KEY.flag, "is needed with tls-cert")),
        (None, Some(_)) => return Err(ConfigError::new(TLS_CERT.flag, "is needed with tls-key")),
        _ => {}
    }
    if s.peer_tls_ca.is_some() && s.tls_cert.is_none() {
        let msg = "needs tls-cert and tls-key: mutual TLS presents this node's certificate";
        return Err(ConfigError::new(PEER_TLS_CA.flag, msg));
    }
    if s.peer_tls_ca.is_none() && !s.peer_addr.ip().is_loopback() {
        let msg = format!(
            "is required: peer-addr {} is not a loopback address, and peer links that leave this host need mutual TLS (the join token alone could be sniffed)",
            s.peer_addr
        );
        return Err(ConfigError::new(PEER_TLS_CA.flag, msg));
    }
    Ok(())
}

const READ: u8 = 1;
const WRITE: u8 = 2;
const ENTER: u8 = 4;

/// Whether this process may use `path` as `want` says, asked without opening it.
#[cfg(unix)]
fn permitted(path: &Path, want: u8) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut mode = 0;
    for (bit, flag) in [(READ, libc::R_OK), (WRITE, libc::W_OK), (ENTER, libc::X_OK)] {
        if want & bit != 0 {
            mode |= flag;
        }
    }
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call;
    // access(2) only reads it.
    unsafe { libc::access(c_path.as_ptr(), mode) == 0 }
}

#[cfg(not(unix))]
fn permitted(path: &Path, want: u8) -> bool {
    fs::metadata(path).is_ok_and(|m| want & WRITE == 0 || !m.permissions().readonly())
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// An existing, usable directory, or a missing one whose parent lets us create it.
fn check_data_dir(dir: &Path) -> Result<(), String> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => match permitted(dir, READ | WRITE | ENTER) {
            true => Ok(()),
            false => Err(format!("{dir:?} is not readable and writable")),
        },
        Ok(_) => Err(format!("{dir:?} exists but is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(dir).is_ok() {
                return Err(format!("{dir:?} is a symbolic link to nothing"));
            }
            let parent = parent_of(dir);
            match fs::metadata(parent) {
                Ok(m) if m.is_dir() && permitted(parent, WRITE | ENTER) => Ok(()),
                Ok(m) if m.is_dir() => Err(format!("cannot create {dir:?} in {parent:?}")),
                _ => Err(format!(
                    "parent directory {parent:?} of {dir:?} does not exist"
                )),
            }
        }
        Err(e) => Err(format!("cannot inspect {dir:?}: {e}")),
    }
}

/// A readable file, or a missing one that can be created (in the data dir or elsewhere).
fn check_token_file(path: &Path, data_dir: &Path) -> Result<(), String> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() && permitted(path, READ) => Ok(()),
        Ok(m) if m.is_file() => Err(format!("{path:?} is not readable")),
        Ok(_) => Err(format!("{path:?} exists but is not a regular file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = parent_of(path);
            let parent_ok = parent == data_dir
                || fs::metadata(parent).is_ok_and(|m| m.is_dir())
                    && permitted(parent, WRITE | ENTER);
            match parent_ok {
                true => Ok(()),
                false => Err(format!(
                    "cannot create {path:?}: {parent:?} is not a writable directory"
                )),
            }
        }
        Err(e) => Err(format!("cannot inspect {path:?}: {e}")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pem {
    Certificate,
    PrivateKey,
}

/// A readable file holding at least one PEM block of the wanted kind.
fn check_pem(path: &Path, want: Pem) -> Result<(), String> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| format!("cannot read {path:?}: {e}"))?);
    let mut found = false;
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(&bytes) {
        let (kind, der) = item.map_err(|e| match want {
            Pem::Certificate => format!("{path:?} holds malformed PEM: {e}"),
            // The parser's detail may quote key material.
            Pem::PrivateKey => format!("{path:?} holds malformed PEM"),
        })?;
        drop(Zeroizing::new(der));
        found |= match want {
            Pem::Certificate => kind == SectionKind::Certificate,
            Pem::PrivateKey => matches!(
                kind,
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
            ),
        };
    }
    match (found, want) {
        (true, _) => Ok(()),
        (false, Pem::Certificate) => Err(format!("{path:?} holds no PEM CERTIFICATE block")),
        (false, Pem::PrivateKey) => Err(format!("{path:?} holds no PEM private key block")),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::super::test_support::{Scratch, failing_setting, run};

    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
    const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";

    #[test]
    fn unusable_data_dir_is_named() {
        let scratch = Scratch::new();
        let file = scratch.write("file", "not a dir");
        assert_eq!(
            failing_setting(run(&["--data-dir", &file], &[])),
            "data-dir"
        );
        let orphan = scratch.path("missing/data");
        assert_eq!(
            failing_setting(run(&["--data-dir", &orphan], &[])),
            "data-dir"
        );
        let under_file = format!("{file}/data");
        assert_eq!(
            failing_setting(run(&["--data-dir", &under_file], &[])),
            "data-dir"
        );
    }

    #[cfg(unix)]
    #[test]
    fn read_only_data_dir_is_named() {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("skipped: permissions do not bind root");
            return;
        }
        let scratch = Scratch::new();
        let dir = scratch.path("data");
        fs::create_dir(&dir).expect("create dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).expect("chmod");
        assert_eq!(failing_setting(run(&["--data-dir", &dir], &[])), "data-dir");
    }

    #[test]
    fn validation_creates_nothing() {
        let scratch = Scratch::new();
        let data = scratch.path("data");
        let token = scratch.path("data/admin-token");
        let s = run(&["--data-dir", &data, "--admin-token-file", &token], &[]).expect("valid");
        assert_eq!(s.admin_token_path(), PathBuf::from(&token));
        assert!(!Path::new(&data).exists());
    }

    #[test]
    fn tls_files_and_their_pairing_are_checked() {
        let scratch = Scratch::new();
        let cert = scratch.write("cert.pem", CERT_PEM);
        let key = scratch.write("key.pem", KEY_PEM);
        let junk = scratch.write("junk.pem", "no pem here\n");
        let missing = scratch.path("missing.pem");
        let cases: &[(&[&str], &str)] = &[
            (&["--tls-cert", &missing], "tls-cert"),
            (&["--tls-cert", &junk, "--tls-key", &key], "tls-cert"),
            (&["--tls-cert", &key, "--tls-key", &key], "tls-cert"),
            (&["--tls-cert", &cert, "--tls-key", &missing], "tls-key"),
            (&["--tls-cert", &cert, "--tls-key", &cert], "tls-key"),
            (&["--tls-cert", &cert], "tls-key"),
            (&["--tls-key", &key], "tls-cert"),
            (&["--peer-tls-ca", &cert], "peer-tls-ca"),
            (
                &[
                    "--tls-cert",
                    &cert,
                    "--tls-key",
                    &key,
                    "--peer-tls-ca",
                    &junk,
                ],
                "peer-tls-ca",
            ),
        ];
        for (flags, setting) in cases {
            assert_eq!(&failing_setting(run(flags, &[])), setting, "{flags:?}");
        }
        // Peer links off this host need mutual TLS; loopback ones do not.
        for addr in ["0.0.0.0:7080", "10.1.2.3:7080", "[::]:7080"] {
            assert_eq!(
                failing_setting(run(&["--peer-addr", addr], &[])),
                "peer-tls-ca",
                "{addr}"
            );
        }
        run(&["--peer-addr", "[::1]:7080"], &[]).expect("loopback v6");
        run(&["--peer-addr", "127.0.0.2:7080"], &[]).expect("loopback v4");
        run(
            &[
                "--peer-addr",
                "10.1.2.3:7080",
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--peer-tls-ca",
                &cert,
            ],
            &[],
        )
        .expect("mutual TLS off loopback");
        let missing_token = scratch.path("no-such-token");
        assert_eq!(
            failing_setting(run(&["--join-token-file", &missing_token], &[])),
            "join-token-file"
        );
        let s = run(
            &[
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--peer-tls-ca",
                &cert,
            ],
            &[],
        )
        .expect("complete TLS settings");
        assert_eq!(s.peer_tls_ca, Some(PathBuf::from(&cert)));
    }
}
