//! `promql(query, start, end, step)`: a PromQL range query as a SQL table, one row per point
//! (`timestamp`, `value`, then one column per label of the result), evaluated by
//! [`promlake_engine::promql::Engine`] over [`BucketSource`] (every raw block of the bucket).
//!
//! `start` and `end` are unix seconds (integer or fractional), timestamps, or RFC 3339
//! strings; `step` is a duration string (`'60s'`, `'5m'`) or seconds. Any constant SQL
//! expression works (`now() - interval '1 hour'`).
//!
//! DataFusion plans table functions synchronously and needs the result's columns (the
//! labels) up front, so the query is evaluated while planning, on a small runtime of its own
//! (the planning thread waits for it).

use crate::lake::label_column;
use crate::{Error, Result};
use arrow::array::{
    ArrayRef, Float64Array, RecordBatch, RecordBatchOptions, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, DataFusionError, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::ColumnarValue;
use promlake_engine::Bucket;
use promlake_engine::catalog::BucketSource;
use promlake_engine::promql::{Engine, QueryOptions, Series, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Runs PromQL range queries over every raw block of a bucket, re-listing blocks at most
/// once per TTL.
#[derive(Debug)]
pub struct PromqlRunner {
    bucket: Bucket,
    engine: Engine,
    ttl: Duration,
    source: Mutex<Option<(Instant, Arc<BucketSource>)>>,
    evaluations: AtomicU64,
}

/// A PromQL range query.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    /// The PromQL expression.
    pub query: String,
    /// First evaluation time (ms).
    pub start_ms: i64,
    /// Last evaluation time (ms, inclusive).
    pub end_ms: i64,
    /// Step (ms).
    pub step_ms: i64,
}

impl PromqlRunner {
    /// A runner over `bucket`.
    pub fn new(bucket: Bucket, opts: QueryOptions, ttl: Duration) -> Self {
        PromqlRunner {
            bucket,
            engine: Engine::new(opts),
            ttl,
            source: Mutex::new(None),
            evaluations: AtomicU64::new(0),
        }
    }

    /// How many range queries this runner has evaluated (each `promql()` call, each ticket).
    pub fn evaluations(&self) -> u64 {
        self.evaluations.load(Ordering::Relaxed)
    }

    async fn source(&self) -> Result<Arc<BucketSource>> {
        let mut guard = self.source.lock().await;
        match guard.as_mut() {
            Some((at, src)) if at.elapsed() < self.ttl => Ok(src.clone()),
            Some((at, src)) => {
                src.refresh().await?;
                *at = Instant::now();
                Ok(src.clone())
            }
            None => {
                let src = Arc::new(BucketSource::open(self.bucket.clone()).await?);
                *guard = Some((Instant::now(), src.clone()));
                Ok(src)
            }
        }
    }

    /// Evaluates `q`, one row per point: `timestamp`, `value`, then the labels as columns.
    pub async fn range(&self, q: &RangeQuery) -> Result<RecordBatch> {
        let source = self.source().await?;
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let value = self
            .engine
            .range(source.as_ref(), &q.query, q.start_ms, q.end_ms, q.step_ms)
            .await
            .map_err(|e| Error::InvalidArgument(format!("promql: {e}")))?;
        match value {
            Value::Matrix(series) => matrix_batch(&series),
            _ => Err(Error::InvalidArgument("promql: a range query returned no matrix".into())),
        }
    }

    /// [`Self::range`] from synchronous code running inside or outside a Tokio runtime.
    pub fn range_blocking(self: &Arc<Self>, q: RangeQuery) -> Result<RecordBatch> {
        let rt = helper_runtime()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let me = self.clone();
        rt.spawn(async move {
            let _ = tx.send(me.range(&q).await);
        });
        let wait =
            || rx.recv().map_err(|_| Error::InvalidArgument("promql: evaluation was cancelled".into()));
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi { tokio::task::block_in_place(wait)? } else { wait()? }
    }
}

fn helper_runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("promql-udtf")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::InvalidArgument(format!("promql: cannot start its runtime: {e}")))
}

/// A matrix as rows: `timestamp`, `value`, then one nullable string column per label name
/// (`__name__` first, then by name).
pub fn matrix_batch(series: &[Series]) -> Result<RecordBatch> {
    let metric = promlake_engine::labels::METRIC_NAME;
    let mut names: BTreeSet<&str> =
        series.iter().flat_map(|s| s.labels.iter().map(|l| l.name.as_str())).collect();
    let has_metric = names.remove(metric);
    let names: Vec<&str> = has_metric.then_some(metric).into_iter().chain(names).collect();
    let n: usize = series.iter().map(|s| s.points.len()).sum();
    let mut ts = Vec::with_capacity(n);
    let mut vals = Vec::with_capacity(n);
    for s in series {
        for (t, v) in &s.points {
            ts.push(*t);
            vals.push(*v);
        }
    }
    let mut fields = vec![
        Field::new("timestamp", crate::tables::timestamp_type(), false),
        Field::new("value", DataType::Float64, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
        Arc::new(Float64Array::from(vals)),
    ];
    for name in names {
        fields.push(Field::new(label_column(name), DataType::Utf8, true));
        let values: StringArray =
            series.iter().flat_map(|s| std::iter::repeat_n(s.labels.get(name), s.points.len())).collect();
        cols.push(Arc::new(values));
    }
    let opts = RecordBatchOptions::new().with_row_count(Some(n));
    Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), cols, &opts)?)
}

/// The `promql` table function.
#[derive(Debug)]
pub struct PromqlFunction {
    runner: Arc<PromqlRunner>,
}

impl PromqlFunction {
    /// The function over `runner`'s bucket.
    pub fn new(runner: Arc<PromqlRunner>) -> Self {
        PromqlFunction { runner }
    }
}

const USAGE: &str = "promql(query, start, end, step)";

fn bad(msg: String) -> DataFusionError {
    DataFusionError::Plan(format!("{USAGE}: {msg}"))
}

impl TableFunctionImpl for PromqlFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> datafusion::common::Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() != 4 {
            return Err(bad(format!("expected 4 arguments, got {}", exprs.len())));
        }
        let empty = DFSchema::empty();
        let one_row = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        let mut values = Vec::with_capacity(4);
        for e in exprs {
            let p = args.session().create_physical_expr(e.clone(), &empty)?;
            values.push(match p.evaluate(&one_row)? {
                ColumnarValue::Scalar(s) => s,
                ColumnarValue::Array(a) => ScalarValue::try_from_array(&a, 0)?,
            });
        }
        let q = RangeQuery {
            query: string_arg(&values[0])
                .ok_or_else(|| bad(format!("query must be a string, got {}", values[0])))?,
            start_ms: time_arg(&values[1]).map_err(|m| bad(format!("start: {m}")))?,
            end_ms: time_arg(&values[2]).map_err(|m| bad(format!("end: {m}")))?,
            step_ms: step_arg(&values[3]).map_err(|m| bad(format!("step: {m}")))?,
        };
        let batch = self.runner.range_blocking(q).map_err(|e| DataFusionError::Plan(e.to_string()))?;
        Ok(Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?))
    }
}

fn string_arg(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
            Some(s.clone())
        }
        _ => None,
    }
}

fn seconds_to_ms(s: f64) -> Result<i64, String> {
    if !s.is_finite() || s.abs() > 9.2e15 {
        return Err(format!("{s} is out of range"));
    }
    Ok((s * 1000.0).round() as i64)
}

/// Unix seconds, a timestamp, or an RFC 3339 string → ms.
pub fn time_arg(v: &ScalarValue) -> Result<i64, String> {
    match v {
        ScalarValue::TimestampSecond(Some(s), _) => Ok(s.saturating_mul(1000)),
        ScalarValue::TimestampMillisecond(Some(ms), _) => Ok(*ms),
        ScalarValue::TimestampMicrosecond(Some(us), _) => Ok(us.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(ns), _) => Ok(ns.div_euclid(1_000_000)),
        v if v.data_type().is_numeric() && !v.is_null() => {
            let f = v.cast_to(&DataType::Float64).map_err(|e| e.to_string())?;
            match f {
                ScalarValue::Float64(Some(s)) => seconds_to_ms(s),
                _ => Err(format!("cannot read {v} as seconds")),
            }
        }
        v => match string_arg(v) {
            Some(s) => match s.trim().parse::<f64>() {
                Ok(secs) => seconds_to_ms(secs),
                Err(_) => arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(s.trim())
                    .map(|ns| ns.div_euclid(1_000_000))
                    .map_err(|_| format!("cannot parse {s:?} as unix seconds or an RFC 3339 timestamp")),
            },
            None => Err(format!("expected unix seconds or a timestamp, got {v}")),
        },
    }
}

/// A duration string (`'60s'`), seconds, or an interval → ms (positive).
pub fn step_arg(v: &ScalarValue) -> Result<i64, String> {
    let ms = match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            i64::from(i.days) * 86_400_000 + i.nanoseconds / 1_000_000
        }
        ScalarValue::IntervalDayTime(Some(i)) => i64::from(i.days) * 86_400_000 + i64::from(i.milliseconds),
        v if v.data_type().is_numeric() && !v.is_null() => match v.cast_to(&DataType::Float64) {
            Ok(ScalarValue::Float64(Some(s))) => seconds_to_ms(s)?,
            _ => return Err(format!("cannot read {v} as seconds")),
        },
        v => match string_arg(v) {
            Some(s) => match s.trim().parse::<f64>() {
                Ok(secs) => seconds_to_ms(secs)?,
                Err(_) => promql_parser::util::parse_duration(s.trim())
                    .map_err(|e| format!("cannot parse {s:?} as a duration: {e}"))?
                    .as_millis()
                    .try_into()
                    .map_err(|_| format!("{s:?} is too long"))?,
            },
            None => return Err(format!("expected a duration like '60s' or seconds, got {v}")),
        },
    };
    if ms <= 0 {
        return Err("must be positive".into());
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_forms() {
        assert_eq!(time_arg(&ScalarValue::Int64(Some(1_700_000_000))), Ok(1_700_000_000_000));
        assert_eq!(time_arg(&ScalarValue::Float64(Some(1.5))), Ok(1500));
        assert_eq!(time_arg(&ScalarValue::Utf8(Some("2023-11-14T22:13:20Z".into()))), Ok(1_700_000_000_000));
        assert!(time_arg(&ScalarValue::Utf8(Some("yesterday".into()))).is_err());
        assert_eq!(step_arg(&ScalarValue::Utf8(Some("60s".into()))), Ok(60_000));
        assert_eq!(step_arg(&ScalarValue::Utf8(Some("1m30s".into()))), Ok(90_000));
        assert_eq!(step_arg(&ScalarValue::Int64(Some(15))), Ok(15_000));
        assert!(step_arg(&ScalarValue::Int64(Some(0))).is_err());
    }
}
