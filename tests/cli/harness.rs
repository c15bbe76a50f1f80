//! Helpers: run the binary, run promtool, compare sample sets bit for bit.

use promlake_compat::dumpfmt::{format_labels, parse_dump_line};
use promlake_engine::parquet::ParquetBlock;
use promlake_engine::{Bucket, SelectRequest, SeriesSource};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// Series (Go-formatted label set) → samples as (timestamp ms, value bits).
pub type Samples = BTreeMap<String, Vec<(i64, u64)>>;

/// Go's math.NaN() bit pattern.
pub const GO_NAN: u64 = 0x7ff8_0000_0000_0001;

/// The real Prometheus 2.42 blocks shipped with the project.
pub fn tiny_blocks() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tsdb-blocks/tiny")
}

/// Runs `promlake ARGS...` with extra environment.
pub fn promlake(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_promlake"));
    cmd.args(args).env("PROMLAKE_LOG_LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Runs promlake and asserts success, returning stdout.
pub fn promlake_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = promlake(args, env);
    assert!(
        out.status.success(),
        "promlake {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Parses `promtool tsdb dump` output into samples.
pub fn parse_dump(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (labels, v, t) = parse_dump_line(line).unwrap_or_else(|e| panic!("bad dump line {line:?}: {e}"));
        // The text says only "NaN"; the NaN that promtool stores when it parses "NaN" is Go's
        // math.NaN(), 0x7ff8000000000001. (Staleness markers never occur in promtool-written
        // blocks.)
        let bits = if v.is_nan() { GO_NAN } else { v.to_bits() };
        out.entry(format_labels(&labels)).or_default().push((t, bits));
    }
    for s in out.values_mut() {
        s.sort();
    }
    out
}

/// The golden dump of the tiny blocks.
pub fn tiny_golden() -> Samples {
    use std::io::Read;
    let f = std::fs::File::open(tiny_blocks().join("promtool-dump.txt.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(f).read_to_string(&mut text).unwrap();
    parse_dump(&text)
}

/// `promtool tsdb dump` of a directory of blocks (run on a copy: dump wants a wal dir and
/// writes chunks_head).
pub fn promtool_dump(blocks: &Path) -> Samples {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(blocks, tmp.path());
    std::fs::create_dir_all(tmp.path().join("wal")).unwrap();
    let out = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(tmp.path())
        .output()
        .expect("promtool not found: run scripts/test.sh, which installs Debian's prometheus package");
    assert!(out.status.success(), "promtool tsdb dump: {}", String::from_utf8_lossy(&out.stderr));
    parse_dump(&String::from_utf8(out.stdout).unwrap())
}

/// Writes blocks from OpenMetrics text with `promtool tsdb create-blocks-from openmetrics`.
pub fn promtool_create_blocks(openmetrics: &str, out_dir: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input.om");
    std::fs::write(&input, openmetrics).unwrap();
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(out_dir)
        .output()
        .expect("promtool not found: run scripts/test.sh, which installs Debian's prometheus package");
    assert!(
        out.status.success(),
        "promtool create-blocks-from: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Recursively copies a directory (files made writable).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
            let mut p = std::fs::metadata(&dest).unwrap().permissions();
            #[expect(clippy::permissions_set_readonly_false, reason = "test copies of read-only fixtures")]
            p.set_readonly(false);
            std::fs::set_permissions(&dest, p).unwrap();
        }
    }
}

/// Reads every Parquet block of a bucket back through the engine's reader.
pub fn read_bucket(bucket: &Bucket) -> Samples {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut out = Samples::new();
        for info in bucket.list_blocks().await.unwrap() {
            let block = ParquetBlock::open(bucket, info.meta).await.unwrap();
            let mut stream = block.select(&SelectRequest::all()).await.unwrap();
            use futures::StreamExt;
            while let Some(batch) = stream.next().await {
                for (labels, ts, vals) in batch.unwrap().to_series() {
                    // Compare the series' own labels: drop external labels.
                    let own: Vec<(String, String)> = labels
                        .iter()
                        .filter(|l| block.external_labels().get(&l.name).is_none())
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect();
                    let e = out.entry(format_labels(&own)).or_default();
                    e.extend(ts.into_iter().zip(vals.into_iter().map(f64::to_bits)));
                }
            }
        }
        for s in out.values_mut() {
            s.sort();
        }
        out
    })
}

/// Opens a local bucket directory.
pub fn local_bucket(dir: &Path) -> Bucket {
    Bucket::open(&promlake_engine::BucketConfig::from_url(format!("file://{}", dir.display()))).unwrap()
}

/// Asserts two sample sets are equal, reporting the first difference readably.
pub fn assert_same(actual: &Samples, expected: &Samples) {
    assert_eq!(actual.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "series sets differ");
    for (k, e) in expected {
        let a = &actual[k];
        assert_eq!(a.len(), e.len(), "sample count of {k}");
        for (x, y) in a.iter().zip(e) {
            assert_eq!(x, y, "series {k}: (ts, value bits) {x:?} != {y:?}");
        }
    }
}

/// Total samples in a set.
pub fn count(s: &Samples) -> usize {
    s.values().map(Vec::len).sum()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Raw HTTP/1.1 request: (status, body); (0, error) when the connection fails.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let run = || -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let (h, b) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other("no header end"))?;
        let status = h
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("status"))?;
        Ok((status, b.to_string()))
    };
    run().unwrap_or_else(|e| (0, e.to_string()))
}

/// GET over HTTP/1.1.
pub fn get(port: u16, path: &str) -> (u16, String) {
    request(port, "GET", path, &[], &[])
}

/// POST over HTTP/1.1.
pub fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    request(port, "POST", path, headers, body)
}

/// Starts Prometheus 2.42 (Debian's) with `config` (`SELF` replaced by its own address);
/// returns the process, its port and its directory.
pub fn start_prometheus(config: &str) -> (Proc, u16, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("prometheus.yml");
    std::fs::write(&conf, config.replace("SELF", &format!("127.0.0.1:{port}"))).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package) not found");
    (Proc(child), port, dir)
}
