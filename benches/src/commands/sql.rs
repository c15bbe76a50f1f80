//! `promlake-bench sql`: the same SQL aggregations over all history through promlake's SQL
//! session (DataFusion, in-process, as `promlake sql` runs them) and through DuckDB reading the
//! same series.parquet / samples.parquet files.
//!
//! ```text
//! convert (--reuse) ──► DIR/lake ──► promlake_sql::SqlSession (target_partitions = --threads)
//!                                └─► python sql_duckdb.py (DuckDB, SET threads = --threads):
//!                                    views samples / series / metrics over the same files
//! ```
//!
//! Each query runs once on each engine as a warm-up (their answers are compared: same rows,
//! numbers within 1e-9 relative), then `--runs` times alternately (promlake, DuckDB, promlake,
//! ...). promlake's time is planning + execution + collecting the batches; DuckDB's is
//! `execute(sql).fetchall()`, timed inside the child. The report is the median per query and
//! the geometric mean of the promlake/DuckDB ratios.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use promlake_engine::{Bucket, BucketConfig};
use promlake_sql::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use promlake_sql::datafusion::arrow::compute::cast;
use promlake_sql::datafusion::arrow::datatypes::{DataType, Float64Type};
use promlake_sql::{SqlOptions, SqlSession};
use serde::Serialize;

use super::convert;
use super::dataset::{Dataset, DatasetArgs};
use super::query::median;

/// Geometric mean of promlake/DuckDB time ratios must be at most this.
pub const TARGET_GEOMEAN_RATIO: f64 = 1.0;
/// Relative tolerance when comparing the two engines' numbers.
const REL_TOLERANCE: f64 = 1e-9;
/// The DuckDB child.
const DUCKDB_SCRIPT: &str = include_str!("sql_duckdb.py");

/// A benchmarked query: the same text on both engines unless `duckdb` differs.
#[derive(Debug, Clone, Copy)]
pub struct SqlQuery {
    /// Short name.
    pub name: &'static str,
    /// The SQL promlake runs.
    pub promlake: &'static str,
    /// The SQL DuckDB runs, when its dialect needs another spelling.
    pub duckdb: Option<&'static str>,
}

impl SqlQuery {
    fn duckdb_sql(&self) -> &'static str {
        self.duckdb.unwrap_or(self.promlake)
    }
}

/// The benchmarked queries.
pub const QUERIES: &[SqlQuery] = &[
    SqlQuery { name: "count", promlake: "SELECT count(*) AS n FROM samples", duckdb: None },
    SqlQuery {
        name: "per-metric-join",
        promlake: "SELECT se.__name__, count(*) AS n, sum(s.value) AS total, avg(s.value) AS mean \
                   FROM series se JOIN samples s ON s.block = se.block AND s.series_id = se.series_id \
                   GROUP BY se.__name__ ORDER BY se.__name__",
        duckdb: None,
    },
    SqlQuery {
        name: "per-metric-view",
        promlake: "SELECT __name__, count(*) AS n, sum(value) AS total, avg(value) AS mean \
                   FROM metrics GROUP BY __name__ ORDER BY __name__",
        duckdb: None,
    },
    SqlQuery {
        name: "by-instance",
        promlake: "SELECT instance, count(*) AS n, avg(value) AS mean FROM metrics \
                   WHERE __name__ = 'node_load1' GROUP BY instance ORDER BY instance",
        duckdb: None,
    },
    SqlQuery {
        name: "5m-buckets",
        promlake: "SELECT to_unixtime(date_bin(INTERVAL '5 minutes', timestamp)) * 1000 AS t, \
                   count(*) AS n, avg(value) AS mean FROM samples GROUP BY 1 ORDER BY 1",
        duckdb: Some(
            "SELECT epoch_ms(time_bucket(INTERVAL '5 minutes', timestamp)) AS t, \
             count(*) AS n, avg(value) AS mean FROM samples GROUP BY 1 ORDER BY 1",
        ),
    },
    SqlQuery {
        name: "topk-series",
        promlake: "SELECT se.block, se.series_id, se.__name__, max(s.value) AS peak \
                   FROM series se JOIN samples s ON s.block = se.block AND s.series_id = se.series_id \
                   GROUP BY se.block, se.series_id, se.__name__ \
                   ORDER BY peak DESC, se.block, se.series_id LIMIT 10",
        duckdb: None,
    },
];

/// Flags of `sql`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// A Python with the `duckdb` package.
    #[arg(long, env = "PROMLAKE_PYTHON", default_value = "python3")]
    pub python: PathBuf,
    /// Threads of both engines (DataFusion target_partitions and Tokio workers; DuckDB threads).
    #[arg(long, env = "PROMLAKE_BENCH_THREADS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: u32,
    /// Timed runs per query and engine (after one warm-up each).
    #[arg(long, env = "PROMLAKE_BENCH_RUNS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Run only the queries with these names (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Print the report as JSON instead of text.
    #[arg(long, env = "PROMLAKE_BENCH_JSON", default_value_t = false)]
    pub json: bool,
}

/// One query.
#[derive(Debug, Clone, Serialize)]
pub struct SqlResult {
    pub name: String,
    pub sql: String,
    pub promlake_ms: f64,
    pub duckdb_ms: f64,
    /// `promlake_ms / duckdb_ms`.
    pub ratio: f64,
    pub rows: usize,
}

/// The whole benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct SqlReport {
    pub hosts: u32,
    pub hours: f64,
    pub series: u64,
    pub samples: u64,
    pub blocks: usize,
    pub threads: u32,
    pub runs: u32,
    pub duckdb_version: String,
    pub results: Vec<SqlResult>,
    pub geomean_ratio: f64,
    pub geomean_target: f64,
    pub geomean_target_met: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.dataset.data().config()?;
    let queries: Vec<SqlQuery> = if args.only.is_empty() {
        QUERIES.to_vec()
    } else {
        let known: Vec<&str> = QUERIES.iter().map(|q| q.name).collect();
        for o in &args.only {
            ensure!(known.contains(&o.as_str()), "--only: unknown query {o:?} (known: {})", known.join(", "));
        }
        QUERIES.iter().copied().filter(|q| args.only.iter().any(|o| o == q.name)).collect()
    };
    let Dataset { convert: convert_args, promlake, temp: _temp } = args.dataset.dataset("sql")?;
    let lake_ready = convert_args.work_dir.as_ref().is_some_and(|w| w.join("lake").is_dir());
    ensure!(
        lake_ready || promlake.is_file(),
        "promlake binary not found at {} (needed to import the blocks); build it with `cargo build --release -p promlake` or pass --promlake",
        promlake.display()
    );
    let ds = convert::ensure_dataset(&convert_args, &promlake)?;

    let threads = args.threads as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    let bucket = Bucket::open(&BucketConfig::from_url(format!("file://{}", ds.lake.display())))?;
    let opts = SqlOptions { target_partitions: Some(threads), ..SqlOptions::default() };
    let session = SqlSession::new(bucket, opts)?;
    let blocks = rt.block_on(session.lake().snapshot())?.blocks.len();

    let mut duck = Duck::start(&args.python, &ds.lake, args.threads)?;
    eprintln!(
        "SQL over {} blocks ({} series, {} samples): promlake (DataFusion) vs DuckDB {}, {} threads",
        blocks, ds.series, ds.samples, duck.version, args.threads
    );
    let mut results = Vec::new();
    for q in &queries {
        let (lake_rows, _) = promlake_run(&rt, &session, q.promlake)?;
        let (duck_rows, _) = duck.run(q.duckdb_sql())?;
        compare(q.name, &lake_rows, &duck_rows)?;
        let (mut l, mut d) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            l.push(promlake_run(&rt, &session, q.promlake)?.1);
            d.push(duck.run(q.duckdb_sql())?.1);
        }
        let (promlake_ms, duckdb_ms) = (median(&mut l), median(&mut d));
        eprintln!("{}: promlake {promlake_ms:.1} ms, duckdb {duckdb_ms:.1} ms", q.name);
        results.push(SqlResult {
            name: q.name.to_string(),
            sql: q.promlake.to_string(),
            promlake_ms,
            duckdb_ms,
            ratio: promlake_ms / duckdb_ms.max(1e-6),
            rows: lake_rows.len(),
        });
    }
    let n = results.len().max(1) as f64;
    let geomean_ratio = (results.iter().map(|r| r.ratio.max(1e-9).ln()).sum::<f64>() / n).exp();
    let report = SqlReport {
        hosts: args.dataset.hosts,
        hours: args.dataset.hours,
        series: ds.series,
        samples: ds.samples,
        blocks,
        threads: args.threads,
        runs: args.runs,
        duckdb_version: duck.version.clone(),
        results,
        geomean_ratio,
        geomean_target: TARGET_GEOMEAN_RATIO,
        geomean_target_met: geomean_ratio <= TARGET_GEOMEAN_RATIO,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn render(r: &SqlReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "SQL over all history: {} hosts x {}h, {} blocks, {} series, {} samples; {} threads; median of {} runs; DuckDB {}",
        r.hosts, r.hours, r.blocks, r.series, r.samples, r.threads, r.runs, r.duckdb_version
    );
    let _ =
        writeln!(s, "{:<16} {:>12} {:>10} {:>7} {:>6}", "query", "promlake ms", "duckdb ms", "ratio", "rows");
    for q in &r.results {
        let _ = writeln!(
            s,
            "{:<16} {:>12.1} {:>10.1} {:>7.2} {:>6}",
            q.name, q.promlake_ms, q.duckdb_ms, q.ratio, q.rows
        );
    }
    let ok = if r.geomean_target_met { "met" } else { "NOT met" };
    let _ = writeln!(s, "geometric mean ratio {:.3} (target <= {}: {ok})", r.geomean_ratio, r.geomean_target);
    s
}

/// A result cell as both engines' answers are compared.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Num(f64),
    Str(String),
}

fn promlake_run(
    rt: &tokio::runtime::Runtime,
    session: &SqlSession,
    sql: &str,
) -> anyhow::Result<(Vec<Vec<Cell>>, f64)> {
    let t = Instant::now();
    let batches = rt.block_on(session.query(sql)).with_context(|| format!("promlake: {sql}"))?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    Ok((rows(&batches)?, ms))
}

/// Batches as rows: numbers (and timestamps, as their i64) become f64, the rest strings.
fn rows(batches: &[RecordBatch]) -> anyhow::Result<Vec<Vec<Cell>>> {
    let mut out = Vec::new();
    for b in batches {
        let mut cols: Vec<Vec<Cell>> = Vec::with_capacity(b.num_columns());
        for c in b.columns() {
            let t = c.data_type();
            let col = if t.is_numeric() || matches!(t, DataType::Timestamp(..)) {
                let c =
                    if matches!(t, DataType::Timestamp(..)) { cast(c, &DataType::Int64)? } else { c.clone() };
                let f = cast(&c, &DataType::Float64)?;
                let f = f.as_primitive::<Float64Type>();
                (0..f.len()).map(|i| if f.is_null(i) { Cell::Null } else { num(f.value(i)) }).collect()
            } else {
                let s = cast(c, &DataType::Utf8)?;
                let s = s.as_string::<i32>();
                (0..s.len())
                    .map(|i| if s.is_null(i) { Cell::Null } else { Cell::Str(s.value(i).to_string()) })
                    .collect()
            };
            cols.push(col);
        }
        for r in 0..b.num_rows() {
            out.push(cols.iter().map(|c| c.get(r).cloned().unwrap_or(Cell::Null)).collect());
        }
    }
    Ok(out)
}

/// Non-finite numbers are spelled as strings on both sides (JSON has no NaN).
fn num(v: f64) -> Cell {
    if v.is_finite() { Cell::Num(v) } else { Cell::Str(format!("{v}")) }
}

fn json_cell(v: &serde_json::Value) -> Cell {
    match v {
        serde_json::Value::Null => Cell::Null,
        serde_json::Value::Number(n) => n.as_f64().map_or(Cell::Null, num),
        serde_json::Value::String(s) => Cell::Str(s.clone()),
        other => Cell::Str(other.to_string()),
    }
}

fn compare(name: &str, lake: &[Vec<Cell>], duck: &[Vec<Cell>]) -> anyhow::Result<()> {
    ensure!(lake.len() == duck.len(), "{name}: promlake returned {} rows, DuckDB {}", lake.len(), duck.len());
    for (i, (a, b)) in lake.iter().zip(duck).enumerate() {
        ensure!(a.len() == b.len(), "{name}: row {i}: {} columns against DuckDB's {}", a.len(), b.len());
        for (j, (x, y)) in a.iter().zip(b).enumerate() {
            let same = match (x, y) {
                (Cell::Num(x), Cell::Num(y)) => {
                    x == y || (x - y).abs() <= REL_TOLERANCE * x.abs().max(y.abs())
                }
                _ => x == y,
            };
            ensure!(same, "{name}: row {i} column {j}: promlake {x:?}, DuckDB {y:?}");
        }
    }
    Ok(())
}

/// The DuckDB child, killed on drop.
struct Duck {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    version: String,
    _script: tempfile::NamedTempFile,
}

impl Duck {
    fn start(python: &Path, lake: &Path, threads: u32) -> anyhow::Result<Duck> {
        let mut script =
            tempfile::Builder::new().prefix("promlake-bench-duckdb-").suffix(".py").tempfile()?;
        script.write_all(DUCKDB_SCRIPT.as_bytes())?;
        script.flush()?;
        let mut child = Command::new(python)
            .arg(script.path())
            .arg(lake)
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} (set PROMLAKE_PYTHON or --python)", python.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            bail!("the DuckDB child has no pipes");
        };
        let mut duck =
            Duck { child, stdin, stdout: BufReader::new(stdout), version: String::new(), _script: script };
        let ready = duck.read().context("the DuckDB child did not start (is `duckdb` installed?)")?;
        duck.version = ready.get("version").and_then(|v| v.as_str()).unwrap_or("?").to_string();
        Ok(duck)
    }

    fn read(&mut self) -> anyhow::Result<serde_json::Value> {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line)?;
        ensure!(n > 0, "the DuckDB child exited");
        serde_json::from_str(&line).with_context(|| format!("DuckDB child answered {line:?}"))
    }

    fn run(&mut self, sql: &str) -> anyhow::Result<(Vec<Vec<Cell>>, f64)> {
        writeln!(self.stdin, "{}", serde_json::json!({ "sql": sql }))?;
        self.stdin.flush()?;
        let v = self.read()?;
        if let Some(e) = v.get("error") {
            bail!("DuckDB: {e}: {sql}");
        }
        let ms = v.get("ms").and_then(|m| m.as_f64()).context("DuckDB child: no time")?;
        let rows = v
            .get("rows")
            .and_then(|r| r.as_array())
            .context("DuckDB child: no rows")?
            .iter()
            .map(|r| r.as_array().map(|c| c.iter().map(json_cell).collect()).unwrap_or_default())
            .collect();
        Ok((rows, ms))
    }
}

impl Drop for Duck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
