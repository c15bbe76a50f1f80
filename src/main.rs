//! `promlake`: the one binary. It parses the command line, wires the crates together and runs
//! the chosen subcommand; each subcommand lives in its own file under `commands/`.

mod alloc;
mod commands;
mod flags;
mod grpc;
mod http;
mod probes;

use clap::Parser;

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

/// glibc malloc's limit on its arenas, read when the process starts.
const ARENA_MAX_ENV: &str = "MALLOC_ARENA_MAX";

/// Memory settings for batch commands whose peak memory matters more than the last percent of
/// speed (`compact`; Linux only): transparent huge pages off (most of the compactor's resident
/// memory was 2 MiB pages barely touched), and the C library's malloc instead of mimalloc (see
/// [`alloc`]) with at most two arenas (`MALLOC_ARENA_MAX=2`, 1.5 MB less than glibc's
/// 8 per core at the same CPU time). Both are read when the process starts, so the command
/// re-executes itself once with `PROMLAKE_ALLOCATOR=system` unless that variable is set
/// (`mimalloc` keeps mimalloc; a `MALLOC_ARENA_MAX` of the user's is kept too); the THP setting
/// survives the exec, and the PID stays the same.
fn lean_memory() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
            eprintln!("warning: could not turn transparent huge pages off: {e}");
        }
        if std::env::var_os(alloc::ALLOCATOR_ENV).is_none()
            && let Ok(exe) = std::env::current_exe()
        {
            let mut cmd = std::process::Command::new(exe);
            cmd.args(std::env::args_os().skip(1)).env(alloc::ALLOCATOR_ENV, "system");
            if std::env::var_os(ARENA_MAX_ENV).is_none() {
                cmd.env(ARENA_MAX_ENV, "2");
            }
            let err = cmd.exec();
            eprintln!("warning: could not re-execute with {}=system: {err}", alloc::ALLOCATOR_ENV);
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
