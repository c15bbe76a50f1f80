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

/// glibc malloc's tunables for `compact`, read when the process starts, each kept when the user
/// set it: one arena (threads keep their small-block caches; 1.5-3 MB less than glibc's 8 arenas
/// per core); blocks up to 32 MiB from the heap instead of fresh mappings, and free memory at the
/// heap's top returned above 8 MiB (the Parquet encoders' page buffers are allocated and freed
/// constantly: as fresh mappings they cost page faults and zeroing). Measured on the 5x24h
/// benchmark lake: 0.38 -> 0.29 CPU-seconds at the same ~47 MiB peak RSS.
#[cfg(target_os = "linux")]
const MALLOC_TUNING: [(&str, &str); 3] = [
    ("MALLOC_ARENA_MAX", "1"),
    ("MALLOC_MMAP_THRESHOLD_", "33554432"),
    ("MALLOC_TRIM_THRESHOLD_", "8388608"),
];

/// Transparent huge pages off for this process (Linux; every command). With THP set to
/// `always`, a heap page touched for the first time, or again after the allocator returned it, is
/// a 2 MiB page the kernel zeroes whole: a query server spent ~70% of its first queries' CPU in
/// `clear_page_erms`. Measured on the 5x24h benchmark lake with the samples cache off: the first
/// dozen `node_load1` 1h queries went from ~6.5 to ~2 ms, resident memory after them from 120 to
/// 68 MB, a cold 24h `sum by (instance) (rate(...))` from 62 to 48 ms; warm-cache queries are
/// unchanged. The setting survives the re-exec of [`lean_memory`].
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: could not turn transparent huge pages off: {e}");
    }
}

/// Memory settings for batch commands whose peak memory matters more than the last percent of
/// speed (`compact`; Linux only): the C library's malloc instead of mimalloc (see [`alloc`])
/// with [`MALLOC_TUNING`]. They are read when the process starts, so the command re-executes
/// itself once with `PROMLAKE_ALLOCATOR=system` unless that variable is set (`mimalloc` keeps
/// mimalloc); the PID stays the same.
fn lean_memory() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(alloc::ALLOCATOR_ENV).is_none()
            && let Ok(exe) = std::env::current_exe()
        {
            let mut cmd = std::process::Command::new(exe);
            cmd.args(std::env::args_os().skip(1)).env(alloc::ALLOCATOR_ENV, "system");
            for (name, value) in MALLOC_TUNING {
                if std::env::var_os(name).is_none() {
                    cmd.env(name, value);
                }
            }
            let err = cmd.exec();
            eprintln!("warning: could not re-execute with {}=system: {err}", alloc::ALLOCATOR_ENV);
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    no_huge_pages();
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
