//! `promlake sql`: SQL over every block of the bucket (DataFusion; tables `series`,
//! `samples`, `samples_5m`, `samples_1h`, view `metrics`, function `promql()`).
//!
//! Three modes: `-c STATEMENT` runs one statement and exits (non-zero on failure); no `-c`
//! reads statements (ending with `;`) from stdin, an interactive shell on a terminal;
//! `--grpc-address` serves Arrow Flight SQL (and `/api/v1/sql` plus the Prometheus API on
//! `--http-address`) until interrupted.

use crate::flags::BucketArgs;
use crate::http::{ApiState, router};
use anyhow::{Context, Result, bail};
use clap::Args;
use promlake_engine::catalog::BucketSource;
use promlake_engine::dedup::DedupFunc;
use promlake_engine::fanout::{Fanout, FanoutOptions, StaticMembers};
use promlake_engine::promql::QueryOptions;
use promlake_sql::format::{Format, pretty};
use promlake_sql::{SqlOptions, SqlSession};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Flags of `promlake sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    #[command(flatten)]
    bucket: BucketArgs,
    /// Run this one statement, print the result and exit (non-zero exit when it fails).
    #[arg(short = 'c', long = "command", env = "PROMLAKE_SQL_COMMAND", value_name = "STATEMENT")]
    command: Option<String>,
    /// How results are printed: table (readable), csv or json.
    #[arg(long = "format", env = "PROMLAKE_SQL_FORMAT", default_value = "table")]
    format: String,
    /// Serve Arrow Flight SQL on this gRPC address (host:port) instead of running the shell.
    #[arg(long = "grpc-address", env = "PROMLAKE_SQL_GRPC_ADDRESS", value_name = "ADDR")]
    grpc_address: Option<String>,
    /// With --grpc-address: the HTTP address of /api/v1/sql, the Prometheus API, /metrics, /-/healthy and /-/ready.
    #[arg(long = "http-address", env = "PROMLAKE_SQL_HTTP_ADDRESS", default_value = "127.0.0.1:10902")]
    http_address: String,
}

enum Output {
    Table,
    Encoded(Format),
}

impl SqlArgs {
    /// Runs the chosen mode.
    pub async fn run(self) -> Result<ExitCode> {
        let output = match self.format.as_str() {
            "table" => Output::Table,
            "csv" => Output::Encoded(Format::Csv),
            "json" => Output::Encoded(Format::Json),
            other => bail!("--format {other:?}: use table, csv or json"),
        };
        let bucket = self.bucket.open()?;
        let session = SqlSession::new(bucket.clone(), SqlOptions::default())?;
        if let Some(addr) = &self.grpc_address {
            return serve(session, bucket, addr, &self.http_address).await;
        }
        if let Some(sql) = &self.command {
            run_one(&session, sql, &output).await?;
            return Ok(ExitCode::SUCCESS);
        }
        shell(&session, &output).await
    }
}

async fn run_one(session: &SqlSession, sql: &str, output: &Output) -> Result<()> {
    let started = Instant::now();
    let df = session.plan(sql).await?;
    let schema = df.schema().inner().clone();
    let batches = df.collect().await.map_err(promlake_sql::Error::from)?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut out = std::io::stdout().lock();
    match output {
        Output::Table => writeln!(out, "{}", pretty(&batches)?)?,
        Output::Encoded(f) => {
            out.write_all(&f.encode(&schema, &batches)?)?;
            if matches!(f, Format::Json) {
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "{rows} row{} in {:.3}s",
            if rows == 1 { "" } else { "s" },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Reads statements ending with `;` from stdin. On a terminal: prompts, and errors do not
/// change the exit code; from a pipe: the exit code is non-zero if any statement failed.
async fn shell(session: &SqlSession, output: &Output) -> Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "promlake sql: statements end with ';'. Tables: series, samples, samples_5m, samples_1h, metrics. \\q quits."
        );
    }
    let mut failed = false;
    let mut buf = String::new();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!("{}", if buf.is_empty() { "promlake> " } else { "       -> " });
        }
        let line = match lines.next() {
            Some(l) => l.context("reading stdin")?,
            None => break,
        };
        let trimmed = line.trim();
        if buf.is_empty() && matches!(trimmed, "\\q" | "quit" | "exit") {
            break;
        }
        buf.push_str(&line);
        buf.push('\n');
        if trimmed.ends_with(';') {
            let sql = std::mem::take(&mut buf);
            if let Err(e) = run_one(session, &sql, output).await {
                eprintln!("error: {e:#}");
                failed = true;
            }
        }
    }
    if !buf.trim().is_empty()
        && let Err(e) = run_one(session, &buf, output).await
    {
        eprintln!("error: {e:#}");
        failed = true;
    }
    Ok(if failed && !interactive { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Serves Flight SQL on `grpc` and the HTTP API (with `/api/v1/sql`) on `http`.
async fn serve(
    session: SqlSession,
    bucket: promlake_engine::Bucket,
    grpc: &str,
    http: &str,
) -> Result<ExitCode> {
    let grpc_listener = tokio::net::TcpListener::bind(grpc)
        .await
        .with_context(|| format!("listening on --grpc-address {grpc}"))?;
    let http_listener = tokio::net::TcpListener::bind(http)
        .await
        .with_context(|| format!("listening on --http-address {http}"))?;
    tracing::info!(grpc = %grpc_listener.local_addr()?, http = %http_listener.local_addr()?, "serving Flight SQL and /api/v1/sql");
    let flight =
        tonic::service::Routes::new(promlake_sql::flight::service(session.clone())).into_axum_router();
    let state = ApiState::new(QueryOptions::default(), Vec::new(), DedupFunc::default());
    let api = router(state.clone()).layer(axum::Extension(session));
    let loader = async move {
        let source: Arc<dyn promlake_engine::SeriesSource> =
            Arc::new(BucketSource::open(bucket).await.context("loading the bucket")?);
        let members = StaticMembers(vec![("bucket".into(), source)]);
        state.set_view(Fanout::new(Arc::new(members), FanoutOptions::default()));
        std::future::pending::<anyhow::Result<()>>().await
    };
    tokio::select! {
        r = axum::serve(grpc_listener, flight) => r.context("gRPC server")?,
        r = axum::serve(http_listener, api) => r.context("HTTP server")?,
        r = loader => r?,
        () = crate::probes::shutdown_signal() => {}
    }
    Ok(ExitCode::SUCCESS)
}
