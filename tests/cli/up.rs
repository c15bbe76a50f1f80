//! `promlake up`: the all-in-one process with `--demo` data, a real Prometheus 2.42
//! remote-writing into it, PromQL over head + bucket without double counting across block
//! cuts, Flight SQL through the ADBC driver and pyarrow.flight (the README's examples), a clean
//! SIGINT and a restart that still has every acknowledged write. Also: every promlake command
//! in docker/compose.yaml is accepted by the binary.

use crate::harness::*;
use crate::python::python;
use promlake_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The demo's shape, as its module documents it: CPUs per host, CPU modes, scrape interval.
const DEMO_CPUS: usize = 2;
const DEMO_CPU_MODES: usize = 4;
const DEMO_INTERVAL_MS: i64 = 15_000;
const HOSTS: usize = 3;

/// A running `promlake up` on free ports.
struct Up {
    proc: Option<Proc>,
    dir: PathBuf,
    http: u16,
    grpc: u16,
    rw: u16,
    stdout: PathBuf,
}

impl Up {
    fn start(dir: &Path, run: usize) -> Up {
        let mut up = Up {
            proc: None,
            dir: dir.to_path_buf(),
            http: free_port(),
            grpc: free_port(),
            rw: free_port(),
            stdout: dir.with_extension(format!("stdout{run}")),
        };
        let out = std::fs::File::create(&up.stdout).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_promlake"))
            .args([
                "up",
                "--data-dir",
                up.dir.to_str().unwrap(),
                "--demo",
                "--demo.hosts",
                &HOSTS.to_string(),
            ])
            .args(["--http-address", &format!("127.0.0.1:{}", up.http)])
            .args(["--grpc-address", &format!("127.0.0.1:{}", up.grpc)])
            .args(["--remote-write.address", &format!("127.0.0.1:{}", up.rw)])
            // Short blocks: the receive head is cut into the bucket while the test runs.
            .args(["--tsdb.block-duration", "2s", "--tsdb.wal.fsync", "never"])
            .env("PROMLAKE_LOG_LEVEL", "warn")
            .stdout(Stdio::from(out))
            .spawn()
            .unwrap();
        up.proc = Some(Proc(child));
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(up.http, "/-/ready").0 != 200 {
            if let Some(Proc(c)) = &mut up.proc
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("promlake up exited early: {status}\n{}", up.output());
            }
            assert!(Instant::now() < deadline, "promlake up not ready within 60s\n{}", up.output());
            std::thread::sleep(Duration::from_millis(100));
        }
        up
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// An instant query at `time` (ms): the result vector.
    fn query(&self, q: &str, time_ms: i64) -> Vec<Json> {
        let qs: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", q)
            .append_pair("time", &format!("{:.3}", time_ms as f64 / 1000.0))
            .finish();
        let (code, body) = get(self.http, &format!("/api/v1/query?{qs}"));
        assert_eq!(code, 200, "{q}: {body}");
        let v: Json = serde_json::from_str(&body).unwrap();
        v["data"]["result"].as_array().unwrap().clone()
    }

    /// The single value of a query that must return one sample.
    fn scalar(&self, q: &str, time_ms: i64) -> f64 {
        let r = self.query(q, time_ms);
        assert_eq!(r.len(), 1, "{q}: {r:?}");
        r[0]["value"][1].as_str().unwrap().parse().unwrap()
    }

    /// SIGINT, then the exit status within 10 s.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let mut p = self.proc.take().unwrap();
        assert!(Command::new("kill").args(["-INT", &p.0.id().to_string()]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = p.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "promlake up still running 10s after SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn write(&self, req: &WriteRequest) -> (u16, String) {
        let body = snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(req)).unwrap();
        post(
            self.rw,
            "/api/v1/receive",
            &[("Content-Encoding", "snappy"), ("Content-Type", "application/x-protobuf")],
            &body,
        )
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Blocks in the bucket whose meta.json names `source`.
fn blocks_from(dir: &Path, source: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join("bucket")) else { return 0 };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("meta.json")).ok())
        .filter(|m| m.contains(&format!("\"source\": \"{source}\"")))
        .count()
}

#[test]
fn up_serves_demo_remote_write_and_flight_sql_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut up = Up::start(&dir, 1);
    let banner = up.output();
    assert!(banner.contains(&format!("- url: http://127.0.0.1:{}/api/v1/receive", up.rw)), "{banner}");
    assert!(banner.contains(&format!("http://127.0.0.1:{}", up.http)), "{banner}");
    assert!(banner.contains(&format!("grpc://127.0.0.1:{}", up.grpc)), "{banner}");
    assert!(banner.contains(&format!("demo data: {HOSTS} hosts")), "{banner}");
    assert!(blocks_from(&dir, "promlake-demo") >= 12, "a day of 2h blocks");
    let (code, metrics) = get(up.http, "/metrics");
    assert_eq!(code, 200);
    for family in ["promlake_receive_", "promlake_compact_iterations_total", "promlake_store_"] {
        assert!(metrics.contains(family), "{family} not in /metrics");
    }
    // The web UI comes with it: the bucket page's API lists the demo blocks.
    let (code, page) = get(up.http, "/graph");
    assert_eq!(code, 200);
    assert!(page.contains("<html"), "{page}");
    let (code, blocks) = get(up.http, "/api/v1/blocks");
    assert_eq!(code, 200, "{blocks}");
    assert!(blocks.matches("promlake-demo").count() >= 12, "{blocks}");

    // PromQL over the demo: series counts follow the generator's parameters.
    let t = now_ms() / DEMO_INTERVAL_MS * DEMO_INTERVAL_MS - 3_600_000;
    assert_eq!(up.query("node_load1", t).len(), HOSTS);
    assert_eq!(up.scalar("count(node_cpu_seconds_total)", t), (HOSTS * DEMO_CPUS * DEMO_CPU_MODES) as f64);
    // Six hours across three 2h blocks (being compacted meanwhile): every scrape exactly once.
    let per_series = up.query("count_over_time(node_load1[6h])", t);
    assert_eq!(per_series.len(), HOSTS);
    for s in &per_series {
        assert_eq!(s["value"][1], Json::from((6 * 3_600_000 / DEMO_INTERVAL_MS).to_string()), "{s}");
    }
    // The histogram's median lies in the bucket where the generated CDF crosses 0.5 (25-50ms).
    let p50 =
        up.scalar("histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))", t);
    assert!((0.025..=0.05).contains(&p50), "{p50}");
    // Each CPU's modes add up to one second per second.
    let busy = up.scalar(
        "sum(rate(node_cpu_seconds_total[5m])) / count(count by (instance, cpu) (node_cpu_seconds_total))",
        t,
    );
    assert!((busy - 1.0).abs() < 0.01, "{busy}");

    // Remote write: samples cut from the head into 2s blocks while we query are never counted
    // twice nor missed.
    let start = now_ms() - 1000;
    let written: Vec<i64> = (0..40).map(|i| start + i * 100).collect();
    for chunk in written.chunks(5) {
        let ts = TimeSeries {
            labels: vec![
                Label { name: "__name__".into(), value: "up_test_written".into() },
                Label { name: "k".into(), value: "v".into() },
            ],
            samples: chunk.iter().map(|&timestamp| Sample { value: timestamp as f64, timestamp }).collect(),
            ..Default::default()
        };
        let (code, body) = up.write(&WriteRequest { timeseries: vec![ts], ..Default::default() });
        assert_eq!(code, 200, "{body}");
    }
    let at = written[written.len() - 1];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert_eq!(up.scalar("count_over_time(up_test_written[1m])", at), written.len() as f64);
        if blocks_from(&dir, "receive") >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the receive head was not cut within 30s");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(up.scalar("count_over_time(up_test_written[1m])", at), written.len() as f64);

    // A real Prometheus 2.42 remote-writes its own metrics; the querier returns them.
    let config = format!(
        "global: {{scrape_interval: 1s, external_labels: {{prom: p1}}}}\nscrape_configs:\n  - job_name: prometheus\n    static_configs: [{{targets: ['SELF']}}]\nremote_write:\n  - url: http://127.0.0.1:{}/api/v1/receive\n    queue_config: {{batch_send_deadline: 1s}}\n",
        up.rw
    );
    let (prom, _prom_port, _prom_dir) = start_prometheus(&config);
    let deadline = Instant::now() + Duration::from_secs(40);
    while up.query("up{job=\"prometheus\", prom=\"p1\"}", now_ms()).is_empty() {
        assert!(Instant::now() < deadline, "Prometheus's samples did not arrive within 40s");
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(3));
    drop(prom);
    std::thread::sleep(Duration::from_secs(2));
    let until = now_ms();
    let remote = "count_over_time(up{job=\"prometheus\", prom=\"p1\"}[5m])";
    let from_prometheus = up.scalar(remote, until);
    assert!(from_prometheus >= 3.0, "{from_prometheus}");

    // Flight SQL: the README's ADBC and pyarrow.flight examples.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/up_clients.py");
    let out = Command::new(python()).arg(script).arg(format!("127.0.0.1:{}", up.grpc)).output().unwrap();
    assert!(out.status.success(), "up_clients.py: {}", String::from_utf8_lossy(&out.stderr));
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["adbc_rows"].as_array().unwrap();
    assert_eq!(rows.len(), HOSTS, "{v}");
    for r in rows {
        // At least the day of demo scrapes (compaction may briefly show a block twice to SQL).
        assert!(r["samples"].as_i64().unwrap() >= 24 * 3_600_000 / DEMO_INTERVAL_MS, "{r}");
        assert!(r["peak_load"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(v["promql_instances"].as_array().unwrap().len(), HOSTS, "{v}");
    assert!(v["promql_rows"].as_u64().unwrap() >= (HOSTS * 60) as u64, "{v}");

    // SIGINT: a clean exit; a restart on the same directory has every acknowledged write.
    let status = up.interrupt();
    assert!(status.success(), "exit status after SIGINT: {status}");
    drop(up);
    let up = Up::start(&dir, 2);
    assert!(up.output().contains("demo data: already in the bucket; skipped"), "{}", up.output());
    assert_eq!(up.scalar(remote, until), from_prometheus);
    assert_eq!(up.scalar("count_over_time(up_test_written[1m])", at), written.len() as f64);
    assert_eq!(up.query("node_load1", t).len(), HOSTS);
}

/// Every promlake service of docker/compose.yaml runs a command the binary accepts, and every
/// file it mounts from docker/ exists.
#[test]
fn compose_commands_parse() {
    let docker = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker");
    let text = std::fs::read_to_string(docker.join("compose.yaml")).unwrap();
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    doc.apply_merge().unwrap(); // `<<: *promlake`, as compose resolves it
    let services = doc["services"].as_mapping().unwrap();
    let mut checked = Vec::new();
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        for v in svc["volumes"].as_sequence().into_iter().flatten() {
            let src = v.as_str().unwrap().split(':').next().unwrap();
            if src.starts_with("./") {
                assert!(docker.join(src).is_file(), "{name} mounts {src}, missing in docker/");
            }
        }
        if svc["image"].as_str() != Some("promlake:latest") {
            continue;
        }
        let args: Vec<&str> =
            svc["command"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let mut with_help = args.clone();
        with_help.push("--help");
        let out = promlake(&with_help, &[]);
        assert!(out.status.success(), "{name}: promlake {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        if let Some(file) = args.iter().find_map(|a| a.strip_prefix("--objstore.config-file=/etc/promlake/"))
        {
            let yaml: serde_yaml::Value =
                serde_yaml::from_str(&std::fs::read_to_string(docker.join(file)).unwrap()).unwrap();
            assert_eq!(yaml["type"].as_str(), Some("S3"), "{file}");
        }
        checked.push(args[0].to_string());
    }
    checked.sort();
    assert_eq!(checked, ["compact", "query", "sidecar", "store"]);
    let prom: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(docker.join("prometheus.yml")).unwrap()).unwrap();
    assert!(prom["global"]["external_labels"].as_mapping().is_some_and(|m| !m.is_empty()));
    let flags = services[&serde_yaml::Value::from("prometheus")]["command"].as_sequence().unwrap();
    for f in ["--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h"] {
        assert!(flags.iter().any(|x| x.as_str() == Some(f)), "prometheus lacks {f}");
    }
}
