//! The web UI of `promlake query` in a real headless Chromium driven over WebDriver
//! (chromedriver, raw W3C WebDriver HTTP calls): the query page draws one line per series with
//! a legend, its table matches `/api/v1/query`, API errors show as text, the URL reproduces
//! the view; `/stores` lists the StoreAPI endpoint and the bucket; `/blocks` lists the
//! bucket's blocks; a screenshot is a real PNG. Also `promlake tools bucket web`.
//!
//! Fixture: promtool writes blocks of `webui_temp{room}` over 3h; bucket A (rooms a, b,
//! external label site="lab") is the querier's `--bucket`, bucket B (room c, site="annex") is
//! served by `promlake store` as an `--endpoint`.

use crate::harness::*;
use crate::query::{Server, enc};
use serde_json::{Value as Json, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// 2024-01-01 00:00:00 UTC, the first sample (seconds).
const T0: i64 = 1_704_067_200;
/// Samples every minute for 3 hours.
const POINTS: i64 = 180;

/// OpenMetrics text of `webui_temp` for these rooms.
fn openmetrics(rooms: &[&str]) -> String {
    let mut out = String::from("# TYPE webui_temp gauge\n");
    for room in rooms {
        // Room a starts at 10, b at 20, c at 30: apart on the graph.
        let base = 10.0 * f64::from(room.as_bytes()[0] - b'a' + 1);
        for i in 0..POINTS {
            let v = base + (i % 30) as f64 * 0.25;
            out.push_str(&format!("webui_temp{{room=\"{room}\"}} {v} {}\n", T0 + i * 60));
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A local bucket of promtool-written blocks of `rooms`, imported with external label `label`.
fn lake(rooms: &[&str], label: &str) -> (tempfile::TempDir, String) {
    let blocks = tempfile::tempdir().unwrap();
    promtool_create_blocks(&openmetrics(rooms), blocks.path());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    promlake_ok(
        &["tools", "import", "--bucket", &url, "--label", label, blocks.path().to_str().unwrap()],
        &[],
    );
    (dir, url)
}

/// Starts `promlake ARGS... --http-address` and waits until ready.
fn start(args: &[String], dirs: Vec<tempfile::TempDir>) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_promlake"))
        .args(args)
        .args(["--http-address", &format!("127.0.0.1:{port}")])
        .env("PROMLAKE_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Server { child, port, _dirs: dirs }.wait_ready(&args[0])
}

/// A JSON HTTP call to chromedriver: (status, body).
fn call(port: u16, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(Json::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut reader = std::io::BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0,
            "chromedriver closed early"
        );
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Json::Null))
}

/// chromedriver with one headless Chromium session; both stopped on drop.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver not found: run scripts/test.sh, which installs Debian's chromium-driver");
        let profile = tempfile::tempdir().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen within 30s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut b = Browser { driver, port, session: String::new(), _profile: profile };
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", b._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let (code, body) = call(port, "POST", "/session", Some(&caps));
        assert_eq!(code, 200, "new session: {body}");
        b.session = body["value"]["sessionId"].as_str().unwrap().to_string();
        b
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Json>) -> Json {
        let (code, out) = call(self.port, method, &format!("/session/{}{path}", self.session), body.as_ref());
        assert_eq!(code, 200, "{method} {path}: {out}");
        out["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        v.as_object().and_then(|o| o.values().next()).and_then(Json::as_str).unwrap().to_string()
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Replaces the text of an input or textarea by typing.
    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.cmd("POST", &format!("/element/{id}/value"), Some(json!({ "text": text })));
    }

    /// Runs `script` (a function body) in the page.
    fn js(&self, script: &str) -> Json {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
    }

    /// Polls `script` until it returns something truthy (not null/false/0/""/[]).
    fn wait_for(&self, what: &str, script: &str) -> Json {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.js(script);
            let truthy = match &v {
                Json::Null | Json::Bool(false) => false,
                Json::Number(n) => n.as_f64() != Some(0.0),
                Json::String(s) => !s.is_empty(),
                Json::Array(a) => !a.is_empty(),
                Json::Object(_) => true,
                Json::Bool(true) => true,
            };
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; page: {}",
                self.js("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&self) -> Vec<u8> {
        base64_decode(self.cmd("GET", "/screenshot", None).as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = call(self.port, "DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (the screenshot).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64 byte {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= u32::from(val(*c)) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        out.extend(&acc.to_be_bytes()[1..=n]);
    }
    out
}

/// `{k="v", ...}` of a result's metric as the page writes it.
fn promql_labels(metric: &Json) -> String {
    let m = metric.as_object().unwrap();
    let name = m.get("__name__").and_then(Json::as_str).unwrap_or("");
    let pairs: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", Json::String(v.as_str().unwrap().into())))
        .collect();
    format!("{name}{{{}}}", pairs.join(", "))
}

#[test]
fn query_stores_and_bucket_pages_in_headless_chromium() {
    let (store_dir, store_url) = lake(&["c"], "site=annex");
    let (lake_dir, lake_url) = lake(&["a", "b"], "site=lab");
    let store_grpc = free_port();
    let _store = start(
        &[
            "store".into(),
            "--bucket".into(),
            store_url,
            "--grpc-address".into(),
            format!("127.0.0.1:{store_grpc}"),
        ],
        vec![store_dir],
    );
    let endpoint = format!("127.0.0.1:{store_grpc}");
    let q = start(
        &[
            "query".into(),
            "--bucket".into(),
            lake_url.clone(),
            "--endpoint".into(),
            endpoint.clone(),
            "--grpc-address".into(),
            format!("127.0.0.1:{}", free_port()),
        ],
        Vec::new(),
    );
    let base = format!("http://127.0.0.1:{}", q.port);
    let end = T0 + (POINTS - 1) * 60;
    let b = Browser::start();

    // `/` redirects to the query page; type, Execute, one line per series and a legend.
    b.goto(&format!("{base}/?x=1"));
    b.wait_for("the query page", "return location.pathname === '/graph' && document.querySelector('#expr')");
    b.goto(&format!("{base}/graph?g0.range_input=3h&g0.end_input={}", enc("2024-01-01 02:59:00")));
    b.type_into("#expr", "webui_temp");
    b.click("#execute");
    let legend = b.wait_for(
        "three lines",
        "const p = document.querySelectorAll('#chart path.series');\
         return p.length === 3 ? [...document.querySelectorAll('#legend li')].map(li => li.textContent) : null",
    );
    let range =
        q.json(&format!("/api/v1/query_range?query=webui_temp&start={}&end={end}&step=43", end - 3 * 3600));
    let mut expected: Vec<String> =
        range["data"]["result"].as_array().unwrap().iter().map(|s| promql_labels(&s["metric"])).collect();
    expected.sort();
    let mut legend: Vec<String> =
        legend.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    legend.sort();
    assert_eq!(legend, expected, "legend names the series of /api/v1/query_range");
    assert_eq!(
        legend,
        [
            "webui_temp{room=\"a\", site=\"lab\"}",
            "webui_temp{room=\"b\", site=\"lab\"}",
            "webui_temp{room=\"c\", site=\"annex\"}"
        ]
    );
    // Each line has a point per step, and the axes carry time and value labels.
    let segments = b.js("return [...document.querySelectorAll('#chart path.series')].map(p => (p.getAttribute('d').match(/[ML]/g) || []).length)");
    for n in segments.as_array().unwrap() {
        assert!(n.as_u64().unwrap() >= 100, "a line with {n} points");
    }
    let ticks = b.js("return [...document.querySelectorAll('#chart text')].map(t => t.textContent)");
    let ticks: Vec<&str> = ticks.as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(ticks.contains(&"01:00") && ticks.contains(&"02:00"), "time axis: {ticks:?}");
    assert!(ticks.contains(&"20"), "value axis: {ticks:?}");

    // The URL reproduces the view.
    let url = b.js("return location.href").as_str().unwrap().to_string();
    assert!(
        url.contains("g0.expr=webui_temp")
            && url.contains("g0.tab=graph")
            && url.contains("g0.range_input=3h"),
        "{url}"
    );
    let png = b.screenshot();
    let shot = tempfile::tempdir().unwrap();
    let shot_path = shot.path().join("graph.png");
    std::fs::write(&shot_path, &png).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert!(w >= 1000 && h >= 600 && png.len() > 20_000, "screenshot {w}x{h}, {} bytes", png.len());
    if let Ok(dir) = std::env::var("PROMLAKE_WEBUI_SCREENSHOTS") {
        std::fs::copy(&shot_path, std::path::Path::new(&dir).join("graph.png")).unwrap();
    }

    // The Table tab: rows whose values are /api/v1/query's.
    b.click("#tab-table");
    let rows = b.wait_for(
        "three table rows",
        "const r = [...document.querySelectorAll('#table tr.result')];\
         return r.length === 3 ? r.map(tr => [tr.cells[0].textContent, tr.cells[1].textContent]) : null",
    );
    let instant = q.json(&format!("/api/v1/query?query=webui_temp&time={end}"));
    let mut want: Vec<(String, String)> = instant["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (promql_labels(&s["metric"]), s["value"][1].as_str().unwrap().to_string()))
        .collect();
    want.sort();
    let mut got: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()))
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(want[0].1, "17.25", "room a at the last sample: 10 + 29 * 0.25");

    // A bad expression: the API's error as text.
    b.type_into("#expr", "sum(webui_temp");
    b.click("#execute");
    let shown = b.wait_for("the error", "const e = document.querySelector('#error'); return e.classList.contains('hidden') ? null : e.textContent");
    let (code, body) = q.get(&format!("/api/v1/query?query={}&time={end}", enc("sum(webui_temp")));
    assert_eq!(code, 400);
    let api_error = serde_json::from_str::<Json>(&body).unwrap()["error"].as_str().unwrap().to_string();
    assert_eq!(shown.as_str().unwrap(), format!("Error executing query: {api_error}"));

    // The history offers the previous expressions; a link opens the view and runs it.
    let history = b.js("return [...document.querySelectorAll('#history option')].map(o => o.value)");
    let history: Vec<&str> = history.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(&history[1..], ["sum(webui_temp", "webui_temp"], "newest first");
    b.goto(&url);
    b.wait_for("the linked graph", "return document.querySelectorAll('#chart path.series').length === 3");

    // /stores: the StoreAPI endpoint, up, with its labels; the bucket with its labels.
    let api_stores = q.json("/api/v1/stores");
    assert_eq!(api_stores["data"]["store"][0]["name"], endpoint.as_str());
    assert!(api_stores["data"]["store"][0]["lastError"].is_null());
    assert!(api_stores["data"]["store"][0]["lastCheck"].is_string());
    assert_eq!(api_stores["data"]["store"][0]["labelSets"], json!([{"site": "annex"}]));
    assert_eq!(api_stores["data"]["bucket"][0]["labelSets"], json!([{"site": "lab"}]));
    assert_eq!(api_stores["data"]["bucket"][0]["minTime"], T0 * 1000);
    b.goto(&format!("{base}/stores"));
    let stores = b.wait_for(
        "two stores",
        "const r = [...document.querySelectorAll('tr.store')];\
         return r.length === 2 ? r.map(tr => [tr.dataset.name, tr.cells[1].textContent, tr.cells[4].textContent]) : null",
    );
    let mut stores: Vec<Vec<String>> = serde_json::from_value(stores).unwrap();
    stores.sort();
    assert_eq!(
        stores,
        [
            vec![endpoint.clone(), "UP".into(), "site=\"annex\"".into()],
            vec!["bucket".into(), "UP".into(), "site=\"lab\"".into()],
        ]
    );

    if let Ok(dir) = std::env::var("PROMLAKE_WEBUI_SCREENSHOTS") {
        std::fs::write(std::path::Path::new(&dir).join("stores.png"), b.screenshot()).unwrap();
    }

    // /blocks: the bucket's blocks, drawn and listed, as /api/v1/blocks and the bucket hold them.
    let api_blocks = q.json("/api/v1/blocks");
    let mut in_bucket: Vec<String> = tokio_block_ids(&lake_dir);
    in_bucket.sort();
    let mut listed: Vec<String> = api_blocks["data"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ulid"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, in_bucket);
    assert!(in_bucket.len() >= 2, "3h of samples make at least two 2h blocks: {in_bucket:?}");
    assert!(api_blocks["data"]["refreshedAt"].is_string());
    b.goto(&format!("{base}/blocks"));
    let shown = b.wait_for(
        "the blocks",
        "const r = [...document.querySelectorAll('tr.block-row')];\
         return r.length ? [r.map(tr => tr.dataset.ulid), document.querySelectorAll('rect.block').length,\
           r.map(tr => Number(tr.querySelector('.samples').textContent)).reduce((a, b) => a + b, 0)] : null",
    );
    let mut ulids: Vec<String> = serde_json::from_value(shown[0].clone()).unwrap();
    ulids.sort();
    assert_eq!(ulids, in_bucket);
    assert_eq!(shown[1].as_u64().unwrap() as usize, in_bucket.len(), "one bar per block");
    assert_eq!(shown[2].as_i64().unwrap(), 2 * POINTS, "samples of rooms a and b");
    if let Ok(dir) = std::env::var("PROMLAKE_WEBUI_SCREENSHOTS") {
        std::fs::write(std::path::Path::new(&dir).join("blocks.png"), b.screenshot()).unwrap();
    }

    // A querier without --bucket: the bucket page says so.
    let q2 = start(
        &[
            "query".into(),
            "--endpoint".into(),
            endpoint,
            "--grpc-address".into(),
            format!("127.0.0.1:{}", free_port()),
        ],
        Vec::new(),
    );
    let (code, body) = q2.get("/api/v1/blocks");
    assert_eq!(code, 404, "{body}");
    b.goto(&format!("http://127.0.0.1:{}/blocks", q2.port));
    let msg = b.wait_for(
        "the no-bucket message",
        "const e = document.querySelector('#error'); return e && e.textContent",
    );
    assert!(msg.as_str().unwrap().contains("--bucket"), "{msg}");
}

/// Block ids of a local bucket, read through the engine.
fn tokio_block_ids(dir: &tempfile::TempDir) -> Vec<String> {
    let bucket = local_bucket(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(bucket.list_blocks()).unwrap().into_iter().map(|b| b.meta.ulid).collect()
}

#[test]
fn tools_bucket_web_serves_the_bucket_page() {
    let (dir, url) = lake(&["a"], "site=lab");
    let ids = tokio_block_ids(&dir);
    let web = start(
        &[
            "tools".into(),
            "bucket".into(),
            "web".into(),
            "--bucket".into(),
            url,
            "--label".into(),
            "site".into(),
        ],
        vec![dir],
    );
    let blocks = web.json("/api/v1/blocks");
    assert_eq!(blocks["data"]["label"], "site");
    let listed: Vec<&str> =
        blocks["data"]["blocks"].as_array().unwrap().iter().map(|m| m["ulid"].as_str().unwrap()).collect();
    assert_eq!(listed, ids);
    let (code, page) = web.get("/blocks");
    assert_eq!(code, 200);
    assert!(page.contains("/static/blocks.js") && !page.contains("/graph"), "bucket page only");
    assert_eq!(web.get("/static/blocks.js").0, 200);
    assert_eq!(web.get("/api/v1/query?query=1").0, 404, "no query API");
    let (code, metrics) = web.get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("promlake_http_requests_total{handler=\"/api/v1/blocks\",code=\"200\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("promlake_query_duration"), "{metrics}");
    let out = promlake(&["tools", "bucket", "web", "--http-address", "127.0.0.1:0"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bucket"), "{out:?}");
}
