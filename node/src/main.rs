//! The `rsp` binary: `rsp serve [settings]`, `rsp admin RESOURCE VERB`,
//! `rsp backup`, `rsp restore`,
//! `rsp completions SHELL`.

use rsp_node::config;
use rsp_node::telemetry;

/// mimalloc rather than glibc's malloc: sled allocates and frees whole tree
/// nodes on every write, and glibc's bookkeeping (`_int_malloc`,
/// `malloc_consolidate`, ...) took about a quarter of the CPU of the
/// sessions benchmark (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process can only be killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn main() {
    if let Some(code) =
        rsp_node::admin_cli::dispatch(std::env::args_os().collect(), config::command)
    {
        std::process::exit(code);
    }
    let settings = config::load_or_exit();
    let telemetry = match telemetry::init(&settings) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rsp: invalid setting `otlp-endpoint`: {e}");
            std::process::exit(2);
        }
    };
    // One process-wide TLS crypto provider (see shared/DEPENDENCIES.md).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rsp: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(rsp_node::server::run(settings, shutdown_signal()));
    drop(runtime);
    telemetry.shutdown();
    if let Err(e) = result {
        eprintln!("rsp: {e}");
        std::process::exit(e.exit_code());
    }
}
