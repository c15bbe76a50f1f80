//! The S3 path against a real S3 API: moto_server on 127.0.0.1.

use crate::harness::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto_server process, killed on drop.
pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
}

impl Moto {
    pub(crate) fn start() -> Moto {
        let bin = std::env::var("PROMLAKE_MOTO_SERVER").unwrap_or_else(|_| {
            panic!("PROMLAKE_MOTO_SERVER is not set: run the tests with scripts/test.sh, which installs moto")
        });
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint }
    }

    pub(crate) fn create_bucket(&self, name: &str) {
        let out = Command::new("curl")
            .args(["-sf", "-X", "PUT", &format!("{}/{name}", self.endpoint)])
            .output()
            .unwrap();
        assert!(out.status.success(), "creating bucket {name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) const CREDS: [(&str, &str); 3] =
    [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "us-east-1")];

#[test]
fn import_into_s3_and_list_and_read_back() {
    let moto = Moto::start();
    moto.create_bucket("metrics");
    let tiny = tiny_blocks();
    let args = ["--bucket", "s3://metrics/lake", "--s3.endpoint", moto.endpoint.as_str()];
    let mut import = vec!["tools", "import", "--label", "cluster=eu1"];
    import.extend(args);
    import.push(tiny.to_str().unwrap());
    let out = promlake_ok(&import, &CREDS);
    assert!(out.contains("3 imported"), "{out}");
    let out = promlake_ok(&import, &CREDS);
    assert!(out.contains("3 skipped"), "{out}");

    let mut ls = vec!["tools", "bucket", "ls", "-o", "json"];
    ls.extend(args);
    let json: serde_json::Value = serde_json::from_str(&promlake_ok(&ls, &CREDS)).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[0]["labels"]["cluster"], "eu1");

    // The same bucket through a Thanos objstore YAML, read back through the engine.
    let yaml = format!(
        "type: S3\nconfig:\n  bucket: metrics\n  endpoint: {}\n  insecure: true\n  access_key: testing\n  secret_key: testing\n  region: us-east-1\nprefix: lake\n",
        moto.endpoint.trim_start_matches("http://")
    );
    let cfg = promlake_engine::BucketConfig::from_objstore_yaml(&yaml).unwrap();
    let bucket = promlake_engine::Bucket::open(&cfg).unwrap();
    assert_same(&read_bucket(&bucket), &tiny_golden());

    // Native blocks read straight from the object store (ranged reads) into a local lake.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let native = promlake_engine::Bucket::open(
        &promlake_engine::BucketConfig::from_objstore_yaml(&yaml.replace("prefix: lake", "prefix: native"))
            .unwrap(),
    )
    .unwrap();
    rt.block_on(async {
        for f in ["meta.json", "index", "chunks/000001", "tombstones"] {
            let src = tiny.join("01M8AXQ5DHQ0AK9RKPV1D1GJAY").join(f);
            let dest = object_store::path::Path::from(format!("01M8AXQ5DHQ0AK9RKPV1D1GJAY/{f}"));
            native.upload_file(&src, &dest).await.unwrap();
        }
    });
    let listed = promlake_ok(
        &[
            "tools",
            "bucket",
            "ls",
            "-o",
            "json",
            "--bucket",
            "s3://metrics/native",
            "--s3.endpoint",
            &moto.endpoint,
        ],
        &CREDS,
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["format"], "native", "{listed}");
    let lake = tempfile::tempdir().unwrap();
    let lake_url = format!("file://{}", lake.path().display());
    let out = promlake_ok(
        &["tools", "import", "--bucket", &lake_url, "--s3.endpoint", &moto.endpoint, "s3://metrics/native"],
        &CREDS,
    );
    assert!(out.contains("1 imported"), "{out}");
    let golden: Samples = tiny_golden()
        .into_iter()
        .filter_map(|(k, v)| {
            let v: Vec<_> =
                v.into_iter().filter(|s| (1_700_006_400_000..1_700_013_600_000).contains(&s.0)).collect();
            (!v.is_empty()).then_some((k, v))
        })
        .collect();
    assert_same(&read_bucket(&local_bucket(lake.path())), &golden);

    let yaml_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(yaml_file.path(), &yaml).unwrap();
    let out = promlake_ok(
        &["tools", "bucket", "ls", "--objstore.config-file", yaml_file.path().to_str().unwrap()],
        &[],
    );
    assert_eq!(out.lines().count(), 4, "{out}");
}
