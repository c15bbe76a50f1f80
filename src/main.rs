//! `promlake`: the one binary. It parses the command line, wires the crates together and runs
//! the chosen subcommand; each subcommand lives in its own file under `commands/`.

mod commands;
mod flags;
mod grpc;
mod http;
mod probes;

use clap::Parser;

/// mimalloc: conversion allocates and frees many mid-sized buffers; glibc malloc spent ~5% of
/// import CPU there (callgrind), mimalloc less.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
