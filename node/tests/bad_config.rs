//! A bad setting stops the real `rsp serve` before it touches the disk: exit
//! code 2, exactly one line on stderr naming the setting, and the data dir
//! as it was (still missing, or with the same files and bytes).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A bad setting is rejected long before this; a node that starts instead is killed.
const DEADLINE: Duration = Duration::from_secs(60);

struct Run {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

/// Runs `rsp serve ARGS` in `cwd` with an empty environment, so no `RSP_*`
/// variable of the test's own environment leaks in.
fn rsp_serve(cwd: &Path, args: &[&str]) -> Run {
    rsp_serve_env(cwd, args, &[])
}

/// [`rsp_serve`] with some environment variables set.
fn rsp_serve_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rsp"))
        .arg("serve")
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rsp");
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rsp") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Reads a child's pipe to its end on a thread of its own, so a chatty
/// child cannot block on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

#[track_caller]
fn assert_rejected(run: &Run, setting: &str) {
    let Some(status) = run.status else {
        panic!(
            "rsp kept running with a bad `{setting}`; stderr: {}",
            run.stderr
        );
    };
    assert_eq!(status.code(), Some(2), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr is not one line: {:?}", run.stderr);
    let prefix = format!("rsp: invalid setting `{setting}`: ");
    assert!(
        lines[0].starts_with(&prefix),
        "{:?} does not start with {prefix:?}",
        lines[0]
    );
}

/// Every file and directory under `root` (or `root` itself if it is a file),
/// with the bytes of each file; empty if `root` does not exist.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut seen = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            for entry in fs::read_dir(&path).expect("list dir") {
                stack.push(entry.expect("dir entry").path());
            }
            seen.insert(path, None);
        } else {
            seen.insert(path.clone(), Some(fs::read(&path).expect("read file")));
        }
    }
    seen
}

/// A scratch working directory holding a data dir with one file in it.
fn scratch_with_data_dir() -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().expect("temp dir");
    let data = scratch.path().join("data");
    fs::create_dir(&data).expect("create data dir");
    fs::write(data.join("keep.bin"), [0u8, 1, 2, 254, 255]).expect("write data file");
    (scratch, data)
}

fn text(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn unparsable_http_addr_leaves_a_missing_data_dir_missing() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let data = scratch.path().join("data");
    let run = rsp_serve(
        scratch.path(),
        &["--data-dir", text(&data), "--http-addr", "nope:80:x"],
    );
    assert_rejected(&run, "http-addr");
    assert!(!data.exists(), "the data dir was created");
    assert!(
        !scratch.path().join("rsp-data").exists(),
        "the default data dir was created"
    );
}

#[test]
fn unknown_config_key_leaves_the_data_dir_as_it_was() {
    let (scratch, data) = scratch_with_data_dir();
    let config = scratch.path().join("rsp.toml");
    let toml = format!("data_dir = {:?}\nhttp_adr = \"127.0.0.1:0\"\n", text(&data));
    fs::write(&config, toml).expect("write config");
    let before = snapshot(&data);
    let run = rsp_serve(scratch.path(), &["--config", text(&config)]);
    assert_rejected(&run, "http_adr");
    assert_eq!(snapshot(&data), before);
}

#[test]
fn missing_tls_cert_leaves_the_data_dir_as_it_was() {
    let (scratch, data) = scratch_with_data_dir();
    let cert = scratch.path().join("missing-cert.pem");
    let before = snapshot(&data);
    let run = rsp_serve(
        scratch.path(),
        &["--data-dir", text(&data), "--tls-cert", text(&cert)],
    );
    assert_rejected(&run, "tls-cert");
    assert_eq!(snapshot(&data), before);
}

#[test]
fn data_dir_that_is_a_file_is_left_as_it_was() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let data = scratch.path().join("data");
    fs::write(&data, b"not a directory\n").expect("write file");
    let run = rsp_serve(scratch.path(), &["--data-dir", text(&data)]);
    assert_rejected(&run, "data-dir");
    assert_eq!(fs::read(&data).expect("read file"), b"not a directory\n");
}

#[test]
fn unknown_flag_is_a_one_line_usage_error() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let run = rsp_serve(scratch.path(), &["--no-such-flag"]);
    assert_eq!(
        run.status.and_then(|s| s.code()),
        Some(2),
        "stderr: {}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "stderr: {:?}", run.stderr);
    assert!(
        run.stderr.contains("--no-such-flag"),
        "stderr: {:?}",
        run.stderr
    );
    assert!(
        !scratch.path().join("rsp-data").exists(),
        "the default data dir was created"
    );
}

#[test]
fn help_lists_every_flag_and_exits_zero() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let run = rsp_serve(scratch.path(), &["--help"]);
    assert_eq!(
        run.status.and_then(|s| s.code()),
        Some(0),
        "stderr: {}",
        run.stderr
    );
    for flag in [
        "--data-dir",
        "--http-addr",
        "--peer-route",
        "RSP_DATA_DIR",
        "--config",
    ] {
        assert!(
            run.stdout.contains(flag),
            "help lacks {flag}: {}",
            run.stdout
        );
    }
    assert!(
        !scratch.path().join("rsp-data").exists(),
        "the default data dir was created"
    );
}

#[test]
fn a_node_id_that_disagrees_with_the_data_dir_is_refused_and_changes_nothing() {
    let (scratch, data) = scratch_with_data_dir();
    std::fs::write(data.join("node-id"), "5\n").expect("write node-id");
    let before = snapshot(&data);
    let data_arg = data.display().to_string();
    let run = rsp_serve(
        scratch.path(),
        &[
            "--data-dir",
            &data_arg,
            "--node-id",
            "6",
            "--http-addr",
            "127.0.0.1:0",
            "--peer-addr",
            "127.0.0.1:0",
        ],
    );
    assert_rejected(&run, "node-id");
    assert_eq!(snapshot(&data), before, "the data dir changed");
}

#[test]
fn an_unknown_injected_bug_or_a_malformed_kek_is_refused() {
    let (scratch, data) = scratch_with_data_dir();
    let before = snapshot(&data);
    let data_arg = data.display().to_string();
    let args = [
        "--data-dir",
        data_arg.as_str(),
        "--http-addr",
        "127.0.0.1:0",
        "--peer-addr",
        "127.0.0.1:0",
    ];
    let run = rsp_serve_env(scratch.path(), &args, &[("RSP_INJECT_BUGS", "eat-data")]);
    assert_rejected(&run, "inject-bugs");
    let run = rsp_serve_env(scratch.path(), &args, &[("RSP_KEK", "not a key")]);
    assert_rejected(&run, "kek");
    assert_eq!(snapshot(&data), before, "the data dir changed");
}

#[test]
fn a_data_dir_whose_kek_went_missing_is_refused_before_it_is_opened() {
    let (scratch, data) = scratch_with_data_dir();
    std::fs::create_dir_all(data.join("store")).expect("store dir");
    std::fs::write(data.join("store").join("marker"), "x").expect("marker");
    let before = snapshot(&data);
    let data_arg = data.display().to_string();
    let run = rsp_serve(
        scratch.path(),
        &[
            "--data-dir",
            &data_arg,
            "--http-addr",
            "127.0.0.1:0",
            "--peer-addr",
            "127.0.0.1:0",
        ],
    );
    assert_rejected(&run, "kek-file");
    assert_eq!(snapshot(&data), before, "the data dir changed");
}

#[test]
fn a_failing_kek_command_or_one_that_prints_no_key_is_refused() {
    let (scratch, data) = scratch_with_data_dir();
    let before = snapshot(&data);
    let data_arg = data.display().to_string();
    for command in ["echo 'vault is sealed' >&2; exit 3", "echo not-a-key"] {
        let run = rsp_serve(
            scratch.path(),
            &[
                "--data-dir",
                &data_arg,
                "--http-addr",
                "127.0.0.1:0",
                "--peer-addr",
                "127.0.0.1:0",
                "--kek-command",
                command,
            ],
        );
        assert_rejected(&run, "kek-command");
        assert!(
            !run.stderr.contains("not-a-key"),
            "the command's output was printed: {}",
            run.stderr
        );
    }
    let run = rsp_serve_env(
        scratch.path(),
        &[
            "--data-dir",
            &data_arg,
            "--http-addr",
            "127.0.0.1:0",
            "--peer-addr",
            "127.0.0.1:0",
        ],
        &[("RSP_KEK_COMMAND", "exit 1")],
    );
    assert_rejected(&run, "kek-command");
    assert_eq!(snapshot(&data), before, "the data dir changed");
}

/// Starts `rsp serve ARGS` and waits for its ready line; the node is
/// killed before this returns. Whether it became ready, and its stderr.
fn rsp_serve_until_ready(cwd: &Path, args: &[&str]) -> (bool, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rsp"))
        .arg("serve")
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rsp");
    let stderr = drain(child.stderr.take());
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            match line {
                Ok(line) if line.starts_with("RSP_READY ") => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let ready = rx.recv_timeout(DEADLINE).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    (ready, stderr.join().unwrap_or_default())
}

#[test]
fn a_kek_command_gives_the_key_and_the_key_is_not_written_down() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let data = scratch.path().join("data");
    let data_arg = data.display().to_string();
    let kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let command = format!("printf '%s\\n' {kek}");
    let base = [
        "--data-dir",
        data_arg.as_str(),
        "--http-addr",
        "127.0.0.1:0",
        "--peer-addr",
        "127.0.0.1:0",
    ];
    let mut args = base.to_vec();
    args.extend(["--kek-command", command.as_str()]);
    let (ready, stderr) = rsp_serve_until_ready(scratch.path(), &args);
    assert!(
        ready,
        "rsp did not start with a working kek-command: {stderr}"
    );
    assert!(data.join("store").exists(), "the node kept no data");
    assert!(
        !data.join("kek").exists(),
        "the key from kek-command was written to the data dir"
    );
    assert!(!stderr.contains(kek), "the key was printed: {stderr}");
    // Without the command the node has no key for its sealed data.
    let run = rsp_serve(scratch.path(), &base);
    assert_rejected(&run, "kek-file");
}

#[test]
fn an_admin_token_shorter_than_32_characters_is_refused_before_the_data_dir_is_made() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let data = scratch.path().join("data");
    let args = [
        "--data-dir",
        text(&data),
        "--http-addr",
        "127.0.0.1:0",
        "--peer-addr",
        "127.0.0.1:0",
    ];
    let short = "0123456789abcdef0123456789abcde"; // 31 characters
    let run = rsp_serve_env(scratch.path(), &args, &[("RSP_ADMIN_TOKEN", short)]);
    assert_rejected(&run, "admin-token");
    assert!(!run.stderr.contains(short), "the token was printed");

    let file = scratch.path().join("admin-token");
    fs::write(&file, format!("{short}\n")).expect("write token file");
    let with_file = [&args[..], &["--admin-token-file", text(&file)]].concat();
    let run = rsp_serve(scratch.path(), &with_file);
    assert_rejected(&run, "admin-token-file");
    assert!(!run.stderr.contains(short), "the token was printed");
    assert!(!data.exists(), "the data dir was created");
}
