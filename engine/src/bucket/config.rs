//! Where the bucket is: a URL (`file://`, `s3://`, `gs://`, `az://`, `memory://`) plus S3
//! options from flags or the environment, or a Thanos objstore YAML (`type: S3|FILESYSTEM|GCS|AZURE`).

use crate::{Error, Result};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use url::Url;

/// S3 settings that a URL cannot carry. Unset fields fall back to the standard `AWS_*`
/// environment variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint URL, e.g. `http://127.0.0.1:9000` for MinIO or moto.
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`).
    pub region: Option<String>,
    /// Access key ID.
    pub access_key: Option<String>,
    /// Secret access key.
    pub secret_key: Option<String>,
    /// Session token.
    pub session_token: Option<String>,
    /// Force path-style (`true`) or virtual-hosted-style (`false`) requests.
    pub path_style: Option<bool>,
    /// Allow plain HTTP (implied by an `http://` endpoint).
    pub insecure: bool,
}

/// A bucket location.
#[derive(Debug, Clone)]
pub struct BucketConfig {
    /// The URL, e.g. `file:///var/lib/promlake`, `s3://metrics/lake`.
    pub url: String,
    /// S3 settings for `s3://` URLs.
    pub s3: S3Options,
    /// Extra `object_store` options for gs:// and az:// (e.g. `google_service_account_key`).
    pub options: BTreeMap<String, String>,
}

impl BucketConfig {
    /// A bucket at `url` with settings from the environment.
    pub fn from_url(url: impl Into<String>) -> Self {
        BucketConfig { url: url.into(), s3: S3Options::default(), options: BTreeMap::new() }
    }

    /// Parses a Thanos objstore configuration (the `--objstore.config` YAML).
    pub fn from_objstore_yaml(yaml: &str) -> Result<Self> {
        let doc: ObjstoreYaml =
            serde_yaml::from_str(yaml).map_err(|e| Error::BucketConfig(format!("objstore YAML: {e}")))?;
        let c = &doc.config;
        let s = |k: &str| -> Option<String> {
            c.get(k).and_then(|v| match v {
                serde_yaml::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_yaml::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let b = |k: &str| c.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        let prefix = doc.prefix.trim_matches('/').to_string();
        let join = |base: String| {
            if prefix.is_empty() { base } else { format!("{base}/{prefix}") }
        };
        let need = |k: &str| {
            s(k).ok_or_else(|| {
                Error::BucketConfig(format!("objstore type {}: config.{k} is required", doc.kind))
            })
        };
        match doc.kind.to_ascii_uppercase().as_str() {
            "FILESYSTEM" => {
                let dir = need("directory")?;
                let abs = std::path::absolute(&dir)
                    .map_err(|e| Error::BucketConfig(format!("directory {dir}: {e}")))?;
                Ok(BucketConfig::from_url(join(format!("file://{}", abs.display()))))
            }
            "S3" => {
                let bucket = need("bucket")?;
                let insecure = b("insecure");
                let endpoint = s("endpoint").map(|e| {
                    if e.contains("://") {
                        e
                    } else if insecure {
                        format!("http://{e}")
                    } else {
                        format!("https://{e}")
                    }
                });
                let path_style = match s("bucket_lookup_type").as_deref() {
                    Some("path") => Some(true),
                    Some("virtual-hosted") => Some(false),
                    _ => None,
                };
                Ok(BucketConfig {
                    url: join(format!("s3://{bucket}")),
                    s3: S3Options {
                        endpoint,
                        region: s("region"),
                        access_key: s("access_key"),
                        secret_key: s("secret_key"),
                        session_token: s("session_token"),
                        path_style,
                        insecure,
                    },
                    options: BTreeMap::new(),
                })
            }
            "GCS" => {
                let bucket = need("bucket")?;
                let mut options = BTreeMap::new();
                if let Some(sa) = s("service_account") {
                    options.insert("google_service_account_key".into(), sa);
                }
                Ok(BucketConfig { url: join(format!("gs://{bucket}")), s3: S3Options::default(), options })
            }
            "AZURE" => {
                let account = need("storage_account")?;
                let container = need("container")?;
                let mut options = BTreeMap::new();
                options.insert("azure_storage_account_name".into(), account);
                if let Some(k) = s("storage_account_key") {
                    options.insert("azure_storage_account_key".into(), k);
                }
                if let Some(e) = s("endpoint") {
                    options.insert("azure_storage_endpoint".into(), e);
                }
                Ok(BucketConfig { url: join(format!("az://{container}")), s3: S3Options::default(), options })
            }
            other => Err(Error::BucketConfig(format!(
                "objstore type {other:?} is not supported (supported: FILESYSTEM, S3, GCS, AZURE)"
            ))),
        }
    }

    /// Opens the object store, rooted at the URL's path.
    pub fn build(&self) -> Result<(Arc<dyn ObjectStore>, String)> {
        let bad = |reason: String| Error::BucketConfig(format!("{}: {reason}", self.url));
        if self.url == "memory://" || self.url.starts_with("memory://") {
            return Ok((Arc::new(InMemory::new()), self.url.clone()));
        }
        let url = Url::parse(&self.url).map_err(|e| {
            bad(format!("{e} (expected file:///abs/dir, s3://bucket/prefix, gs://, az:// or memory://)"))
        })?;
        let prefix = Path::from_url_path(url.path()).map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => {
                let dir =
                    url.to_file_path().map_err(|()| bad("a file:// URL needs an absolute path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(format!("creating {}: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| bad(e.to_string()))?;
                return Ok((Arc::new(fs), self.url.clone()));
            }
            "s3" | "s3a" => {
                let bucket = url.host_str().ok_or_else(|| bad("missing bucket name".into()))?;
                let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
                let o = &self.s3;
                if let Some(e) = &o.endpoint {
                    b = b.with_endpoint(e);
                    if e.starts_with("http://") {
                        b = b.with_allow_http(true);
                    }
                }
                if o.insecure {
                    b = b.with_allow_http(true);
                }
                if let Some(r) = &o.region {
                    b = b.with_region(r);
                }
                if let Some(k) = &o.access_key {
                    b = b.with_access_key_id(k);
                }
                if let Some(k) = &o.secret_key {
                    b = b.with_secret_access_key(k);
                }
                if let Some(t) = &o.session_token {
                    b = b.with_token(t);
                }
                if let Some(p) = o.path_style {
                    b = b.with_virtual_hosted_style_request(!p);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "gs" => {
                let bucket = url.host_str().ok_or_else(|| bad("missing bucket name".into()))?;
                let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
                for (k, v) in &self.options {
                    let key = k.parse().map_err(|e: object_store::Error| bad(e.to_string()))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let container = url.host_str().ok_or_else(|| bad("missing container name".into()))?;
                let mut b = MicrosoftAzureBuilder::from_env().with_container_name(container);
                for (k, v) in &self.options {
                    let key = k.parse().map_err(|e: object_store::Error| bad(e.to_string()))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            other => {
                return Err(bad(format!(
                    "unsupported scheme {other:?} (supported: file, s3, gs, az, memory)"
                )));
            }
        };
        let store: Arc<dyn ObjectStore> =
            if prefix.as_ref().is_empty() { store } else { Arc::new(PrefixStore::new(store, prefix)) };
        Ok((store, self.url.clone()))
    }
}

#[derive(Debug, Deserialize)]
struct ObjstoreYaml {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    config: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    prefix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thanos_s3_yaml() -> Result<()> {
        let c = BucketConfig::from_objstore_yaml(
            "type: S3\nconfig:\n  bucket: metrics\n  endpoint: 127.0.0.1:9000\n  insecure: true\n  access_key: a\n  secret_key: b\n  bucket_lookup_type: path\nprefix: lake\n",
        )?;
        assert_eq!(c.url, "s3://metrics/lake");
        assert_eq!(c.s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.s3.path_style, Some(true));
        assert_eq!(c.s3.access_key.as_deref(), Some("a"));
        Ok(())
    }

    #[test]
    fn filesystem_yaml_and_errors() -> Result<()> {
        let c = BucketConfig::from_objstore_yaml("type: FILESYSTEM\nconfig:\n  directory: /tmp/x\n")?;
        assert_eq!(c.url, "file:///tmp/x");
        let e = BucketConfig::from_objstore_yaml("type: COS\nconfig: {}\n");
        assert!(matches!(e, Err(Error::BucketConfig(m)) if m.contains("COS")));
        let e = BucketConfig::from_objstore_yaml("type: S3\nconfig: {}\n");
        assert!(matches!(e, Err(Error::BucketConfig(m)) if m.contains("config.bucket")));
        let e = BucketConfig::from_url("ftp://x").build();
        assert!(matches!(e, Err(Error::BucketConfig(m)) if m.contains("ftp")));
        Ok(())
    }
}
