//! A test process that dies (here: `kill -9`) must not leave `rsp` nodes
//! behind. The test re-runs its own binary as a child that starts a fake node
//! and then waits to be killed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rsp_chaos::{NodeProcess, NodeSpec};

const CHILD_ENV: &str = "RSP_CHAOS_ORPHAN_CHILD_DIR";

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 is the state; a zombie is dead already.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn child(dir: &Path) {
    let script = dir.join("fake-rsp.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'RSP_READY {\"node_id\":1,\"http_addr\":\"127.0.0.1:1\",\"peer_addr\":\"127.0.0.1:2\",\"public_url\":\"http://127.0.0.1:1\",\"data_dir\":\"/tmp/d\"}'\nexec sleep 120\n",
    )
    .expect("write script");
    let mut perms = std::fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let node = NodeProcess::start(NodeSpec::new(&script, dir.join("node")))
            .await
            .expect("start fake node");
        println!("NODE_PID {}", node.pid().expect("running"));
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

#[test]
fn nodes_die_when_the_test_process_is_killed() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let mut test_proc = Command::new(exe)
        .args([
            "--exact",
            // The name inside the `it` test binary (module path).
            "orphans::nodes_die_when_the_test_process_is_killed",
            "--nocapture",
        ])
        .env(CHILD_ENV, tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child test");
    let stdout = test_proc.stdout.take().expect("stdout");
    let pid = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("NODE_PID ")
                .and_then(|p| p.trim().parse::<i32>().ok())
        })
        .expect("child printed the node pid");
    assert!(alive(pid), "fake node runs while its parent lives");

    test_proc.kill().expect("kill -9 the test process");
    test_proc.wait().expect("reap");

    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "node {pid} outlived its test process"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
