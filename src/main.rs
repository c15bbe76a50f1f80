//! `promlake`: the one binary. It parses the command line, wires the crates together and runs
//! the chosen subcommand; each subcommand lives in its own file under `commands/`.

mod commands;
mod flags;
mod grpc;
mod http;
mod probes;

use clap::Parser;

/// mimalloc (v3): conversion allocates and frees many mid-sized buffers; glibc malloc spent ~5%
/// of import CPU there (callgrind), mimalloc less. mimalloc asks for transparent huge pages, which
/// make queries ~10% faster; batch commands that care about peak memory more than speed turn them
/// off (see [`commands::Command::wants_small_pages`]).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// promlake: Thanos rewritten as a columnar lakehouse. Prometheus history as Parquet in object
/// storage, queried with PromQL and SQL.
#[derive(Debug, Parser)]
#[command(name = "promlake", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    log: flags::LogArgs,
    #[command(subcommand)]
    command: commands::Command,
}

/// Turns transparent huge pages off for this process (Linux; elsewhere a no-op). Under huge
/// pages most of the compactor's resident memory was 2 MiB pages mimalloc had barely touched.
fn disable_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!("could not disable transparent huge pages: {e}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    if cli.command.wants_small_pages() {
        disable_huge_pages();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(cli.command.run()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    // The command has finished its own shutdown; blocking work still running (a compaction
    // pass of `promlake up`) is safe to leave, so do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
