//! `deploy/`: the files operators install, checked the way their own
//! tools check them. The systemd units pass `systemd-analyze verify` with
//! no complaint about them; the Kubernetes manifests pass the Kubernetes
//! JSON schemas (`kubernetes-validate --strict`, pinned in
//! `tests/deploy/requirements.txt`) and the cross-checks of
//! `tests/deploy/manifests.py` (names, selectors, ports, Secrets, the
//! ServiceMonitor's shape); every example TOML loads with `rsp serve`'s own
//! settings parser (so an unknown key or a bad value fails); and
//! `install.sh --dry-run` prints its actions. Each check is first shown to
//! fail on a deliberately broken copy.
//!
//! Without `systemd-analyze` the unit check is skipped with a note; the
//! schema check needs python3 with venv and PyPI once (as the pysaml2 test).

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use rsp_tests::rsp_chaos::binary::{rsp_binary_path, workspace_dir};

/// The Kubernetes release whose schemas the manifests must pass: the
/// oldest the README supports.
const KUBERNETES: &str = "1.30.0";

/// Where the units and install.sh expect the binary.
const INSTALLED_RSP: &str = "/usr/local/bin/rsp";

fn deploy() -> PathBuf {
    workspace_dir().join("deploy")
}

/// The files of `dir` whose names end in one of `exts`, sorted.
fn files(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    out.retain(|p| p.extension().is_some_and(|e| exts.iter().any(|x| e == *x)));
    out.sort();
    ensure!(!out.is_empty(), "no {exts:?} files in {}", dir.display());
    Ok(out)
}

/// Runs `cmd` to its end, killed after `limit`; `None` when the program is
/// not installed.
fn run(cmd: &mut Command, limit: Duration) -> Result<Option<Output>> {
    let shown = format!("{cmd:?}");
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("starting {shown}")),
    };
    let stdout = drain(child.stdout.take().context("stdout")?);
    let stderr = drain(child.stderr.take().context("stderr")?);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown} ran over {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Some(Output {
        status,
        stdout: joined(stdout)?,
        stderr: joined(stderr)?,
    }))
}

/// Reads a pipe to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<std::io::Result<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).map(|_| bytes)
    })
}

fn joined(reader: JoinHandle<std::io::Result<Vec<u8>>>) -> Result<Vec<u8>> {
    let bytes = reader
        .join()
        .map_err(|_| anyhow!("output reader panicked"))??;
    Ok(bytes)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// --- systemd units ---------------------------------------------------------

/// Copies the units of deploy/systemd into `dir` with the binary path
/// rewritten to `exe` (verify checks that ExecStart's program exists),
/// applying `edit` to each unit's text.
fn staged_units(
    dir: &Path,
    exe: &Path,
    edit: impl Fn(&str, String) -> String,
) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for unit in files(&deploy().join("systemd"), &["service", "timer"])? {
        let name = unit
            .file_name()
            .context("unit name")?
            .to_string_lossy()
            .into_owned();
        let body = std::fs::read_to_string(unit)?;
        ensure!(
            !name.ends_with(".service") || body.contains(INSTALLED_RSP),
            "{name} does not run {INSTALLED_RSP}"
        );
        let body = edit(
            name.as_str(),
            body.replace(INSTALLED_RSP, &exe.to_string_lossy()),
        );
        let path = dir.join(&name);
        std::fs::write(&path, body)?;
        out.push(path);
    }
    Ok(out)
}

/// `systemd-analyze verify` of `units`: the lines it printed about them
/// (an empty list when they are fine), or `None` when it is not installed.
fn verify(dir: &Path, units: &[PathBuf]) -> Result<Option<Vec<String>>> {
    let out = run(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(units),
        Duration::from_secs(30),
    )?;
    let Some(out) = out else { return Ok(None) };
    let stderr = text(&out.stderr);
    let mut about_ours: Vec<String> = stderr
        .lines()
        .filter(|l| {
            l.contains(&*dir.to_string_lossy())
                || units.iter().any(|u| {
                    u.file_name()
                        .is_some_and(|n| l.contains(&*n.to_string_lossy()))
                })
        })
        .map(str::to_string)
        .collect();
    if !out.status.success() && about_ours.is_empty() {
        about_ours.push(format!("exit {}: {stderr}", out.status));
    }
    Ok(Some(about_ours))
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() -> Result<()> {
    let work = tempfile::tempdir()?;
    let rsp = rsp_binary_path();
    let exe = if rsp.is_file() {
        rsp
    } else {
        PathBuf::from("/bin/true")
    };

    // The check fails on a unit with a misspelt directive or a bad value.
    let broken_dir = work.path().join("broken");
    std::fs::create_dir(&broken_dir)?;
    let broken = staged_units(&broken_dir, &exe, |name, body| match name {
        "rsp.service" => body.replace("\nProtectHome=yes", "\nProtectHom=yes"),
        "rsp-backup.timer" => body.replace("OnCalendar=*-*-* 02:00:00", "OnCalendar=at two"),
        _ => body,
    })?;
    let Some(complaints) = verify(&broken_dir, &broken)? else {
        eprintln!("skipped: systemd-analyze is not installed (Debian package systemd)");
        return Ok(());
    };
    for want in ["ProtectHom", "calendar"] {
        ensure!(
            complaints.iter().any(|l| l.contains(want)),
            "systemd-analyze verify did not catch the broken {want}: {complaints:?}"
        );
    }

    let good_dir = work.path().join("good");
    std::fs::create_dir(&good_dir)?;
    let units = staged_units(&good_dir, &exe, |_, body| body)?;
    let complaints = verify(&good_dir, &units)?.context("systemd-analyze went away")?;
    ensure!(
        complaints.is_empty(),
        "systemd-analyze verify complains about deploy/systemd:\n{}",
        complaints.join("\n")
    );
    Ok(())
}

// --- Kubernetes manifests --------------------------------------------------

/// The venv with kubernetes-validate (tests/deploy/setup-venv).
fn deploy_venv() -> Result<PathBuf> {
    let root = workspace_dir();
    let out = run(
        Command::new("bash").arg(root.join("tests/deploy/setup-venv")),
        Duration::from_secs(600),
    )?
    .context("bash is not installed")?;
    ensure!(
        out.status.success(),
        "tests/deploy/setup-venv failed:\n{}",
        text(&out.stderr)
    );
    let venv = std::env::var_os("DEPLOY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/deploy-venv"));
    Ok(venv.join("bin"))
}

/// The problems kubernetes-validate and manifests.py find in `dir`.
fn manifest_problems(bin: &Path, dir: &Path) -> Result<Vec<String>> {
    // Kustomization and ServiceMonitor have no schema there: the
    // cross-checks below cover them.
    let manifests: Vec<PathBuf> = files(dir, &["yaml"])?
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n == "kustomization.yaml" || n == "servicemonitor.yaml")
        })
        .collect();
    let schemas = run(
        Command::new(bin.join("kubernetes-validate"))
            .args(["--strict", "--quiet", "--kubernetes-version", KUBERNETES])
            .args(manifests),
        Duration::from_secs(60),
    )?
    .context("kubernetes-validate is missing from the venv")?;
    // A kind or apiVersion it has no schema for is only a warning there.
    let mut problems: Vec<String> = text(&schemas.stdout)
        .lines()
        .chain(text(&schemas.stderr).lines())
        .filter(|l| l.starts_with("WARN") || l.starts_with("ERROR"))
        .map(str::to_string)
        .collect();
    if !schemas.status.success() && problems.is_empty() {
        problems.push(format!("kubernetes-validate exited {}", schemas.status));
    }
    let cross = run(
        Command::new(bin.join("python"))
            .arg(workspace_dir().join("tests/deploy/manifests.py"))
            .arg(dir),
        Duration::from_secs(30),
    )?
    .context("python is missing from the venv")?;
    problems.extend(text(&cross.stdout).lines().map(str::to_string));
    if !cross.status.success() && cross.stdout.is_empty() {
        problems.push(format!("manifests.py: {}", text(&cross.stderr)));
    }
    Ok(problems)
}

#[test]
fn kubernetes_manifests_pass_the_kubernetes_schemas_and_agree_with_each_other() -> Result<()> {
    let bin = deploy_venv()?;
    let source = deploy().join("kubernetes");

    // The checks fail on a wrong apiVersion, a misspelt field, a port no
    // Service has, and a Secret key nobody provides.
    let work = tempfile::tempdir()?;
    for path in files(&source, &["yaml"])? {
        let name = path.file_name().context("name")?;
        let body = std::fs::read_to_string(&path)?;
        let body = match &*name.to_string_lossy() {
            "pdb.yaml" => body.replace("policy/v1", "policy/v1beta9"),
            "statefulset.yaml" => body
                .replace("podManagementPolicy:", "podManagementPolcy:")
                .replace("key: join-token", "key: join-tokn"),
            "servicemonitor.yaml" => body.replace("- port: https", "- port: httpz"),
            _ => body,
        };
        std::fs::write(work.path().join(name), body)?;
    }
    let problems = manifest_problems(&bin, work.path())?;
    for want in ["policy/v1beta9", "podManagementPolcy", "join-tokn", "httpz"] {
        ensure!(
            problems.iter().any(|p| p.contains(want)),
            "the manifest checks missed the broken {want}: {problems:#?}"
        );
    }

    let problems = manifest_problems(&bin, &source)?;
    ensure!(
        problems.is_empty(),
        "deploy/kubernetes:\n{}",
        problems.join("\n")
    );
    Ok(())
}

// --- example configuration files -------------------------------------------

/// `rsp serve --config FILE` as the node would read it, with the file's
/// paths (data dir, TLS files) pointed at `scratch`, where they exist.
fn load_example(file: &Path, scratch: &Path) -> Result<rsp_node::config::Settings> {
    let path = |name: &str| scratch.join(name).into_os_string();
    let mut args: Vec<OsString> = vec!["rsp".into(), "serve".into(), "--config".into()];
    args.push(file.as_os_str().to_owned());
    for (flag, name) in [
        ("--data-dir", "data"),
        ("--tls-cert", "node.crt"),
        ("--tls-key", "node.key"),
        ("--peer-tls-ca", "ca.crt"),
    ] {
        args.push(OsString::from(flag));
        args.push(path(name));
    }
    // The test's own environment must not leak RSP_* settings in.
    let no_env = |_: &str| -> Option<String> { None };
    rsp_node::config::load_from(args, &no_env).map_err(|e| anyhow!("{}: {e}", file.display()))
}

#[test]
fn example_configs_load_with_the_nodes_own_settings_parser() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let cert = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";
    std::fs::write(scratch.path().join("node.crt"), cert)?;
    std::fs::write(scratch.path().join("ca.crt"), cert)?;
    std::fs::write(scratch.path().join("node.key"), key)?;

    // An unknown key fails the load.
    let examples = deploy().join("systemd/examples");
    let one = examples.join("3-node/node1.toml");
    let typo = scratch.path().join("typo.toml");
    std::fs::write(
        &typo,
        std::fs::read_to_string(one)?.replace("\nzone =", "\nzonne ="),
    )?;
    let refused = load_example(&typo, scratch.path());
    ensure!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("zonne")),
        "a config with an unknown key loaded: {refused:?}"
    );

    for (layout, nodes, zones) in [("3-node", 3, 3), ("5-node", 5, 3)] {
        let dir = examples.join(layout);
        let tomls = files(&dir, &["toml"])?;
        ensure!(tomls.len() == nodes, "{layout}: {} files", tomls.len());
        let mut seen_zones = std::collections::BTreeMap::<String, usize>::new();
        for (i, file) in tomls.iter().enumerate() {
            let settings = load_example(file, scratch.path())?;
            *seen_zones.entry(settings.zone.clone()).or_default() += 1;
            let first = i == 0;
            ensure!(
                settings.join.is_none() == first,
                "{}: only node 1 bootstraps, the others join (join = {:?})",
                file.display(),
                settings.join
            );
            if let Some(join) = &settings.join {
                let node1 = load_example(&tomls[0], scratch.path())?;
                ensure!(
                    node1.peer_advertise_addr.as_ref() == Some(join),
                    "{}: joins {join}, not node 1's peer address {:?}",
                    file.display(),
                    node1.peer_advertise_addr
                );
            }
        }
        // No zone holds a majority of the voters.
        ensure!(
            seen_zones.len() == zones && seen_zones.values().all(|&n| n * 2 < nodes),
            "{layout}: zones {seen_zones:?}"
        );
    }
    Ok(())
}

// --- install.sh ------------------------------------------------------------

#[test]
fn install_sh_dry_run_prints_its_actions() -> Result<()> {
    let script = deploy().join("systemd/install.sh");
    let scratch = tempfile::tempdir()?;
    let binary = scratch.path().join("rsp");
    std::fs::write(&binary, "#!/bin/sh\n")?;
    let binary = binary.to_string_lossy().into_owned();

    for shell in ["bash", "sh"] {
        // A binary that is not there stops it, dry run or not.
        let missing = run(
            Command::new(shell)
                .arg(&script)
                .args(["--dry-run", "--binary", "/nonexistent/rsp"]),
            Duration::from_secs(30),
        )?
        .with_context(|| format!("{shell} is not installed"))?;
        ensure!(
            !missing.status.success() && text(&missing.stderr).contains("/nonexistent/rsp"),
            "{shell}: install.sh accepted a missing binary: {}",
            text(&missing.stderr)
        );

        let out = run(
            Command::new(shell)
                .arg(&script)
                .args(["--dry-run", "--binary", binary.as_str()]),
            Duration::from_secs(30),
        )?
        .with_context(|| format!("{shell} is not installed"))?;
        let stdout = text(&out.stdout);
        ensure!(
            out.status.success(),
            "{shell} install.sh --dry-run failed:\n{stdout}{}",
            text(&out.stderr)
        );
        let expected = [
            "+ install -d -m 0750 -o root -g rsp /etc/rsp".to_string(),
            "+ install -d -m 0750 -o root -g rsp /etc/rsp/tls".to_string(),
            "+ install -d -m 0700 -o rsp -g rsp /var/lib/rsp".to_string(),
            "+ install -d -m 0700 -o rsp -g rsp /var/backups/rsp".to_string(),
            format!("+ install -m 0755 -o root -g root {binary} {INSTALLED_RSP}"),
            "/etc/systemd/system/rsp.service".to_string(),
            "/etc/systemd/system/rsp-backup.service".to_string(),
            "/etc/systemd/system/rsp-backup.timer".to_string(),
            "+ systemctl daemon-reload".to_string(),
        ];
        for line in &expected {
            ensure!(
                stdout.contains(line.as_str()),
                "{shell} install.sh --dry-run did not print {line:?}:\n{stdout}"
            );
        }
        // Depending on the machine: made, or found and kept.
        for (made, kept) in [
            ("+ useradd --system", "= user rsp exists"),
            (
                "+ install -m 0640 -o root -g rsp",
                "= keeping /etc/rsp/rsp.toml",
            ),
            (
                "+ install -m 0600 -o root -g root",
                "= keeping /etc/rsp/rsp.env",
            ),
        ] {
            ensure!(
                stdout.contains(made) || stdout.contains(kept),
                "{shell} install.sh --dry-run printed neither {made:?} nor {kept:?}:\n{stdout}"
            );
        }
        let ran: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+ ")).collect();
        ensure!(ran.len() >= expected.len(), "{stdout}");
    }
    Ok(())
}
