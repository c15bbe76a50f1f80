//! `promlake`: the one binary. It parses the command line, wires the crates together and runs
//! the chosen subcommand; each subcommand lives in its own file under `commands/`.

mod commands;
mod flags;
mod grpc;
mod http;
mod probes;

use clap::Parser;

/// mimalloc (v3): conversion allocates and frees many mid-sized buffers; glibc malloc spent ~5%
/// of import CPU there (callgrind), mimalloc less. Its defaults (transparent huge pages, freed
/// memory kept for a second) make queries ~10% faster than mimalloc v2 did; `compact` trades that
/// for peak memory (see [`lean_memory`]).
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

/// mimalloc's delay (ms) before freed memory goes back to the OS, read from the environment
/// when the process starts.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Memory settings for batch commands whose peak memory matters more than the last percent of
/// speed (`compact`; Linux only): transparent huge pages off (most of the compactor's resident
/// memory was 2 MiB pages barely touched), and freed memory returned after 10 ms instead of
/// mimalloc v3's 1 s (compaction frees and re-allocates Parquet page buffers at a high rate:
/// peak RSS ~110 MiB with the default, ~70-75 MiB with 10 ms, at the same CPU time). mimalloc
/// reads that option when the process starts, so the command re-executes itself once with
/// `MIMALLOC_PURGE_DELAY=10` unless the user set it; the THP setting survives the exec.
fn lean_memory() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
            eprintln!("warning: could not turn transparent huge pages off: {e}");
        }
        if std::env::var_os(PURGE_DELAY_ENV).is_none()
            && let Ok(exe) = std::env::current_exe()
        {
            let err = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env(PURGE_DELAY_ENV, "10")
                .exec();
            eprintln!("warning: could not re-execute with {PURGE_DELAY_ENV}=10: {err}");
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.wants_lean_memory() {
        lean_memory();
    }
    cli.log.init();
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
