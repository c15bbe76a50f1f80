//! Reusable flag blocks, flattened into the subcommands that need them.

use anyhow::{Context, Result, bail};
use clap::Args;
use promlake_engine::bucket::S3Options;
use promlake_engine::{Bucket, BucketConfig};
use std::path::PathBuf;

/// Logging.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filtering level (error, warn, info, debug) or a tracing filter directive.
    #[arg(long = "log.level", env = "PROMLAKE_LOG_LEVEL", default_value = "info", global = true)]
    pub level: String,
}

impl LogArgs {
    /// Installs the global tracing subscriber (logfmt-like lines on stderr).
    pub fn init(&self) {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        use std::io::IsTerminal;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init();
    }
}

/// Where the bucket is: `--bucket URL` or a Thanos objstore configuration.
#[derive(Debug, Args)]
pub struct BucketArgs {
    /// Bucket URL: file:///abs/dir, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or memory://.
    #[arg(long, env = "PROMLAKE_BUCKET", value_name = "URL")]
    pub bucket: Option<String>,
    /// Path to a Thanos objstore YAML (type: FILESYSTEM|S3|GCS|AZURE); replaces --bucket.
    #[arg(long = "objstore.config-file", env = "PROMLAKE_OBJSTORE_CONFIG_FILE", value_name = "FILE")]
    pub objstore_config_file: Option<PathBuf>,
    /// Thanos objstore YAML given inline; replaces --bucket and --objstore.config-file.
    #[arg(long = "objstore.config", env = "PROMLAKE_OBJSTORE_CONFIG", value_name = "YAML")]
    pub objstore_config: Option<String>,
    /// S3 endpoint URL (e.g. http://127.0.0.1:9000); default: AWS_ENDPOINT_URL or AWS.
    #[arg(long = "s3.endpoint", env = "PROMLAKE_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region; default: AWS_REGION or us-east-1.
    #[arg(long = "s3.region", env = "PROMLAKE_S3_REGION")]
    pub s3_region: Option<String>,
    /// S3 access key ID; default: AWS_ACCESS_KEY_ID.
    #[arg(long = "s3.access-key", env = "PROMLAKE_S3_ACCESS_KEY")]
    pub s3_access_key: Option<String>,
    /// S3 secret access key; default: AWS_SECRET_ACCESS_KEY.
    #[arg(long = "s3.secret-key", env = "PROMLAKE_S3_SECRET_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
    /// Use path-style S3 requests (true, the default) or virtual-hosted-style (false).
    #[arg(long = "s3.path-style", env = "PROMLAKE_S3_PATH_STYLE", value_name = "BOOL")]
    pub s3_path_style: Option<bool>,
}

impl BucketArgs {
    /// Validates the flags into a bucket configuration.
    pub fn config(&self) -> Result<BucketConfig> {
        let yaml = match (&self.objstore_config, &self.objstore_config_file) {
            (Some(y), _) => Some(y.clone()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading --objstore.config-file {}", f.display()))?,
            ),
            (None, None) => None,
        };
        let mut cfg = match (yaml, &self.bucket) {
            (Some(y), _) => BucketConfig::from_objstore_yaml(&y)?,
            (None, Some(url)) => BucketConfig::from_url(normalize_url(url)?),
            (None, None) => bail!("no bucket: pass --bucket URL or --objstore.config-file FILE"),
        };
        let s3 = &mut cfg.s3;
        let o = S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key: self.s3_access_key.clone(),
            secret_key: self.s3_secret_key.clone(),
            session_token: None,
            path_style: self.s3_path_style,
            insecure: false,
        };
        s3.endpoint = o.endpoint.or(s3.endpoint.take());
        s3.region = o.region.or(s3.region.take());
        s3.access_key = o.access_key.or(s3.access_key.take());
        s3.secret_key = o.secret_key.or(s3.secret_key.take());
        s3.path_style = o.path_style.or(s3.path_style);
        Ok(cfg)
    }

    /// Opens the bucket.
    pub fn open(&self) -> Result<Bucket> {
        Ok(Bucket::open(&self.config()?)?)
    }
}

/// Accepts a bare local directory as a file:// URL.
fn normalize_url(url: &str) -> Result<String> {
    if url.contains("://") {
        return Ok(url.to_string());
    }
    let abs = std::path::absolute(url).with_context(|| format!("--bucket {url}"))?;
    Ok(format!("file://{}", abs.display()))
}

/// The decoded-samples cache of commands that read Parquet blocks for queries.
#[derive(Debug, Args)]
pub struct SamplesCacheArgs {
    /// Memory for decoded samples of Parquet blocks, kept across queries so repeated reads skip
    /// fetching and decompressing pages (e.g. 256MB, 1GB; units are powers of 1024 as in Thanos; 0 disables).
    #[arg(
        long = "parquet.samples-cache-size",
        env = "PROMLAKE_PARQUET_SAMPLES_CACHE_SIZE",
        default_value = "256MB",
        value_parser = parse_bytes
    )]
    pub samples_cache_size: u64,
}

impl SamplesCacheArgs {
    /// A fresh cache of the configured size.
    pub fn cache(&self) -> std::sync::Arc<promlake_engine::parquet::SamplesCache> {
        promlake_engine::parquet::SamplesCache::new(
            usize::try_from(self.samples_cache_size).unwrap_or(usize::MAX),
        )
    }
}

/// Parses a byte size: a number with an optional unit B, KB, MB, GB, TB (powers of 1024, as
/// Thanos reads them) or KiB, MiB, GiB, TiB.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a size like 256MB or 1GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        other => return Err(format!("{s:?}: unknown unit {other:?} (use B, KB, MB, GB, TB)")),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{s:?} is not a size like 256MB or 1GiB"));
    }
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("256MB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("1.5 kb"), Ok(1536));
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("MB").is_err());
    }
}
