//! Downsampled data through `promlake store` + `promlake query --endpoint`: over a compacted
//! bucket (raw + 5m blocks, made by tests/cli/compact.rs), the querier reading the store over
//! the StoreAPI answers exactly what `promlake query --bucket` answers in-process, at
//! `max_source_resolution` 0s, 5m and auto; the store's Info covers every resolution.

use crate::harness::*;
use crate::query::{Server, enc};
use promlake_engine::storeapi::{ClientOptions, StoreClient};
use serde_json::Value as Json;
use std::process::{Command, Stdio};

fn spawn(args: &[&str], http: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(args)
        .args(["--http-address", &format!("127.0.0.1:{http}")])
        .env("PROMLAKE_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Server { child, port: http, _dirs: Vec::new() }.wait_ready(&args.join(" "))
}

/// The metric value `name` on a server's /metrics.
fn metric(server: &Server, name: &str) -> f64 {
    let (code, body) = server.get("/metrics");
    assert_eq!(code, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
        .parse()
        .unwrap()
}

/// Runs the comparison over the compacted bucket at `url`, whose blocks are `blocks`
/// (`tools bucket ls -o json`); `t0` is the data's start (unix seconds).
pub(crate) fn store_and_querier_agree_with_bucket(url: &str, blocks: &[Json], t0: i64) {
    let grpc = free_port();
    let store =
        spawn(&["store", "--bucket", url, "--grpc-address", &format!("127.0.0.1:{grpc}")], free_port());
    let via_store = spawn(
        &[
            "query",
            "--endpoint",
            &format!("127.0.0.1:{grpc}"),
            "--grpc-address",
            &format!("127.0.0.1:{}", free_port()),
        ],
        free_port(),
    );
    let in_process = spawn(
        &["query", "--bucket", url, "--grpc-address", &format!("127.0.0.1:{}", free_port())],
        free_port(),
    );

    // Info: every block, every resolution, in the time range.
    assert_eq!(metric(&store, "promlake_store_blocks_loaded") as usize, blocks.len());
    let min = blocks.iter().map(|b| b["minTime"].as_i64().unwrap()).min().unwrap();
    let max = blocks.iter().map(|b| b["maxTime"].as_i64().unwrap()).max().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let info = rt
        .block_on(StoreClient::connect(&format!("127.0.0.1:{grpc}"), ClientOptions::default()))
        .unwrap()
        .cached_info()
        .unwrap();
    assert_eq!((info.min_time, info.max_time, info.component_type.as_str()), (min, max, "store"));

    let (start, end) = (t0 + 3600, t0 + 60 * 3600);
    let range = |server: &Server, q: &str, res: &str, step: i64| -> Json {
        let path = format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={step}&max_source_resolution={res}",
            enc(q)
        );
        let body = server.json(&path);
        assert_eq!(body["status"], "success", "{q}: {body}");
        body["data"]["result"].clone()
    };
    let mut checked = 0;
    for (res, step) in [("0s", 3600), ("5m", 3600), ("auto", 3600), ("auto", 600)] {
        for q in [
            "count_over_time(app_temp[1h])",
            "min_over_time(app_temp[2h])",
            "max_over_time(app_temp[1h])",
            "rate(app_requests_total[1h])",
            "increase(app_requests_total[3h])",
            "app_temp",
        ] {
            let (a, b) = (range(&via_store, q, res, step), range(&in_process, q, res, step));
            assert!(a.as_array().is_some_and(|s| !s.is_empty()), "{q} at {res}: {a}");
            assert_eq!(a, b, "{q} at max_source_resolution={res}, step {step}s");
            checked += 1;
        }
        // The answers come from the 5m block where the request allows it (12 windows an hour
        // in the first 2d; 60 raw samples an hour with raw data or a 10m step's auto = 2m).
        let counts = range(&via_store, r#"count_over_time(app_temp{room="x"}[1h])"#, res, step);
        let at = |t: i64| -> f64 {
            let pts = counts[0]["values"].as_array().unwrap();
            let p = pts.iter().find(|p| p[0].as_i64() == Some(t)).unwrap();
            p[1].as_str().unwrap().parse().unwrap()
        };
        let want = if res == "0s" || step == 600 { 60.0 } else { 12.0 };
        assert_eq!(at(t0 + 24 * 3600), want, "count_over_time at {res}, step {step}");
        assert_eq!(at(t0 + 52 * 3600), 60.0, "raw data fills the gap after the 5m block at {res}");
    }
    assert_eq!(checked, 24);
    // The store answered Series requests (the querier did not read the bucket itself).
    assert!(metric(&store, "promlake_store_series_requests_total") >= 24.0);
}
