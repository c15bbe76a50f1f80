//! Handlers of Prometheus's HTTP API (`/api/v1/...`), with Prometheus's parameter names,
//! validation order and error messages.
//!
//! Thanos's extra parameters `dedup`, `partial_response` and `replicaLabels[]` shape the
//! request's view of the sources (see `view`); problems a partial response tolerated are
//! answered in the envelope's `warnings`; `max_source_resolution` picks the downsampled data
//! the view reads (see `view`).

use super::error::{ApiError, Result};
use super::params::{Params, now_ms, parse_duration, parse_time};
use super::{ApiState, json, view};
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use promlake_engine::downsampled;
use promlake_engine::promql::{Engine, PromqlError, QueryOptions, Value};
use promlake_engine::{Labels, MatchOp, Matcher, Warnings};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::Expr;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

/// Most points a range query may return per series.
const MAX_POINTS_PER_SERIES: i128 = 11_000;

/// Slack past the engine's own deadline before the handler gives up on an evaluation.
const TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// The request's API parameters: the query string, plus the body when it is a form.
pub struct ApiParams(Params);

impl<S: Send + Sync> FromRequest<S> for ApiParams {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> std::result::Result<Self, Response> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let query = req.uri().query().map(str::to_owned);
        let body = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        Ok(ApiParams(Params::new(is_form.then_some(body.as_ref()), query.as_deref())))
    }
}

/// Runs one API call with a fresh warnings sink and answers with its envelope.
async fn answer(
    st: &ApiState,
    p: &Params,
    call: impl AsyncFnOnce(&ApiState, &Params, &Warnings) -> Result<String>,
) -> Response {
    let w = Warnings::default();
    let r = call(st, p, &w).await;
    respond(st, r, &w)
}

/// The success envelope around `data` with the request's warnings, or the error.
fn respond(st: &ApiState, r: Result<String>, warnings: &Warnings) -> Response {
    match r {
        Ok(data) => {
            let warnings = warnings.get();
            if !warnings.is_empty() {
                st.metrics.partial_response();
            }
            (
                [(header::CONTENT_TYPE, "application/json")],
                json::success_envelope_with_warnings(&data, &warnings),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The success envelope around `data`.
fn ok_json(data: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json::success_envelope(&data)).into_response()
}

/// `GET|POST /api/v1/query`: `query`, `time`, `timeout`, `lookback_delta`.
pub async fn query(State(st): State<ApiState>, ApiParams(p): ApiParams) -> Response {
    answer(&st, &p, instant_query).await
}

async fn instant_query(st: &ApiState, p: &Params, w: &Warnings) -> Result<String> {
    let time = p.time_or("time", now_ms())?;
    let opts = query_options(st, p, 0)?;
    let query = p.get("query").to_owned();
    check_query(&query)?;
    let src = view::source(st, p, w)?;
    let engine = Engine::new(opts.clone()).with_warnings(w.clone());
    let v = evaluate(st, &opts, async move { engine.instant(&*src, &query, time).await }).await?;
    Ok(json::query_data(&v))
}

/// `GET|POST /api/v1/query_range`: `query`, `start`, `end`, `step`, `timeout`, `lookback_delta`.
pub async fn query_range(State(st): State<ApiState>, ApiParams(p): ApiParams) -> Response {
    answer(&st, &p, range_query).await
}

async fn range_query(st: &ApiState, p: &Params, w: &Warnings) -> Result<String> {
    let start = parse_time(p.get("start")).map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time(p.get("end")).map_err(|e| ApiError::invalid_param("end", e))?;
    check_order(start, end)?;
    let step = parse_duration(p.get("step")).map_err(|e| ApiError::invalid_param("step", e))?;
    let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
    if step_ms <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (i128::from(end) - i128::from(start)) / i128::from(step_ms) > MAX_POINTS_PER_SERIES {
        return Err(ApiError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                .into(),
        ));
    }
    let opts = query_options(st, p, step_ms)?;
    let query = p.get("query").to_owned();
    check_query(&query)?;
    let src = view::source(st, p, w)?;
    let engine = Engine::new(opts.clone()).with_warnings(w.clone());
    let v =
        evaluate(st, &opts, async move { engine.range(&*src, &query, start, end, step_ms).await }).await?;
    Ok(json::query_data(&v))
}

/// The flag defaults narrowed by the request's `timeout`, `lookback_delta` and Thanos's
/// `max_source_resolution` (the lookback grows to the resolution read, as in Thanos).
fn query_options(st: &ApiState, p: &Params, step_ms: i64) -> Result<QueryOptions> {
    let mut opts = st.opts.clone();
    if let Some(t) = p.duration("timeout")? {
        opts.timeout = opts.timeout.min(t);
    }
    if let Some(d) = p.duration("lookback_delta")?.filter(|d| !d.is_zero()) {
        opts.lookback_delta_ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    }
    opts.max_resolution_ms =
        downsampled::max_source_resolution(p.get("max_source_resolution"), step_ms, opts.auto_downsampling)
            .map_err(|e| ApiError::invalid_param("max_source_resolution", e))?;
    opts.lookback_delta_ms = downsampled::lookback_for(opts.lookback_delta_ms, opts.max_resolution_ms);
    Ok(opts)
}

/// Prometheus's check of a `start`/`end` pair.
fn check_order(start: i64, end: i64) -> Result<()> {
    if end < start {
        return Err(ApiError::invalid_param("end", "end timestamp must not be before start time"));
    }
    Ok(())
}

/// Parse errors are the caller's (`bad_data` on parameter `query`), before anything runs.
fn check_query(query: &str) -> Result<()> {
    promlake_engine::promql::parse(query).map(|_| ()).map_err(|e| ApiError::invalid_param("query", e))
}

/// Runs an evaluation on its own task (it is CPU-bound), bounded by the query timeout.
async fn evaluate(
    st: &ApiState,
    opts: &QueryOptions,
    eval: impl Future<Output = std::result::Result<Value, PromqlError>> + Send + 'static,
) -> Result<Value> {
    let started = Instant::now();
    let mut task = tokio::spawn(eval);
    let out = match tokio::time::timeout(opts.timeout + TIMEOUT_GRACE, &mut task).await {
        Ok(Ok(r)) => r.map_err(ApiError::from),
        Ok(Err(e)) => Err(ApiError::Internal(format!("query evaluation failed: {e}"))),
        Err(_) => {
            task.abort();
            Err(ApiError::Timeout("query timed out in query execution".into()))
        }
    };
    st.metrics.query(started.elapsed());
    out
}

/// `GET|POST /api/v1/series`: `match[]` (required), `start`, `end`.
pub async fn series(State(st): State<ApiState>, ApiParams(p): ApiParams) -> Response {
    answer(&st, &p, find_series).await
}

async fn find_series(st: &ApiState, p: &Params, w: &Warnings) -> Result<String> {
    let selectors = p.all("match[]");
    if selectors.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let start = p.time_or("start", i64::MIN)?;
    let end = p.time_or("end", i64::MAX)?;
    let sets = matcher_sets(&selectors)?;
    let src = view::source(st, p, w)?;
    let mut found: BTreeMap<Vec<(String, String)>, Labels> = BTreeMap::new();
    for matchers in sets {
        for l in src.series_between(&matchers, start, end, w).await? {
            found.entry(l.iter().map(|l| (l.name.clone(), l.value.clone())).collect()).or_insert(l);
        }
    }
    Ok(json::label_sets(&found.into_values().collect::<Vec<_>>()))
}

/// `GET|POST /api/v1/labels`: optional `match[]`, `start`, `end` (names from the blocks, heads
/// and stores whose data overlaps `[start, end]`, as Prometheus and Thanos answer).
pub async fn labels(State(st): State<ApiState>, ApiParams(p): ApiParams) -> Response {
    answer(&st, &p, label_names).await
}

async fn label_names(st: &ApiState, p: &Params, w: &Warnings) -> Result<String> {
    let (start, end) = (p.time_or("start", i64::MIN)?, p.time_or("end", i64::MAX)?);
    let sets = matcher_sets(&p.all("match[]"))?;
    let src = view::source(st, p, w)?;
    let mut names = std::collections::BTreeSet::new();
    if sets.is_empty() {
        names.extend(src.label_names_between(&[], start, end).await?);
    }
    for m in sets {
        names.extend(src.label_names_between(&m, start, end).await?);
    }
    Ok(json::string_array(&names.into_iter().collect::<Vec<_>>()))
}

/// `GET /api/v1/label/{name}/values`: optional `match[]`, `start`, `end` (as `/api/v1/labels`).
pub async fn label_values(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    ApiParams(p): ApiParams,
) -> Response {
    answer(&st, &p, async |st, p, w| values_of(st, &name, p, w).await).await
}

async fn values_of(st: &ApiState, name: &str, p: &Params, w: &Warnings) -> Result<String> {
    let valid = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !valid {
        return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
    }
    let (start, end) = (p.time_or("start", i64::MIN)?, p.time_or("end", i64::MAX)?);
    let sets = matcher_sets(&p.all("match[]"))?;
    let src = view::source(st, p, w)?;
    let mut values = std::collections::BTreeSet::new();
    if sets.is_empty() {
        values.extend(src.label_values_between(name, &[], start, end).await?);
    }
    for m in sets {
        values.extend(src.label_values_between(name, &m, start, end).await?);
    }
    Ok(json::string_array(&values.into_iter().collect::<Vec<_>>()))
}

/// `GET|POST /api/v1/query_exemplars`: `query`, `start`, `end` are checked as Prometheus checks
/// them; exemplars are not stored, so the answer is an empty list (what Prometheus answers
/// for series without exemplars). Grafana asks for exemplars beside range queries.
pub async fn query_exemplars(State(st): State<ApiState>, ApiParams(p): ApiParams) -> Response {
    answer(&st, &p, exemplars).await
}

async fn exemplars(_st: &ApiState, p: &Params, _w: &Warnings) -> Result<String> {
    let start = p.time_or("start", i64::MIN)?;
    let end = p.time_or("end", i64::MAX)?;
    check_order(start, end)?;
    check_query(p.get("query"))?;
    Ok("[]".into())
}

/// `GET /api/v1/metadata`: no metric metadata is stored; an empty object.
pub async fn metadata() -> Response {
    ok_json("{}".into())
}

/// `GET /api/v1/status/buildinfo`.
pub async fn buildinfo() -> Response {
    let mut data = String::from(r#"{"version":"#);
    json::string(&mut data, env!("CARGO_PKG_VERSION"));
    data.push_str(r#","revision":"","branch":"","buildUser":"","buildDate":"","goVersion":"""#);
    data.push('}');
    ok_json(data)
}

/// Each `match[]` selector as matcher sets (an `or` inside braces gives one set per branch).
fn matcher_sets(selectors: &[&str]) -> Result<Vec<Vec<Matcher>>> {
    let mut out = Vec::new();
    for s in selectors {
        let bad = |e: String| ApiError::invalid_param("match[]", e);
        let vs = match promlake_engine::promql::parse(s).map_err(bad)? {
            Expr::VectorSelector(vs) => vs,
            _ => return Err(bad(format!("{s:?} is not a series selector"))),
        };
        let name: Vec<Matcher> =
            vs.name.iter().map(|n| Matcher::equal(promlake_engine::labels::METRIC_NAME, n.clone())).collect();
        let groups: Vec<&Vec<promql_parser::label::Matcher>> = if vs.matchers.or_matchers.is_empty() {
            vec![&vs.matchers.matchers]
        } else {
            vs.matchers.or_matchers.iter().collect()
        };
        for g in groups {
            let mut set = name.clone();
            for m in g {
                let op = match m.op {
                    PMatchOp::Equal => MatchOp::Equal,
                    PMatchOp::NotEqual => MatchOp::NotEqual,
                    PMatchOp::Re(_) => MatchOp::Regex,
                    PMatchOp::NotRe(_) => MatchOp::NotRegex,
                };
                set.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| bad(e.to_string()))?);
            }
            out.push(set);
        }
    }
    Ok(out)
}
