//! Write limits, read from Thanos's limits configuration (`--receive.limits-config-file`):
//!
//! ```yaml
//! write:
//!   default:
//!     request: {size_bytes_limit: 1048576, series_limit: 1000, samples_limit: 10000}
//!     head_series_limit: 100000
//!   tenants:
//!     acme: {head_series_limit: 5000}
//! ```
//! Request limits answer HTTP 413, the head series limit HTTP 429 (as Thanos receive does).
//! Zero or absent means unlimited; a tenant's entry overrides the default field by field.

use crate::{Error, Result};
use serde::Deserialize;
use std::collections::HashMap;

/// Limits of one request.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RequestLimits {
    /// Largest (compressed) request body in bytes.
    #[serde(default)]
    pub size_bytes_limit: Option<u64>,
    /// Most series in one request.
    #[serde(default)]
    pub series_limit: Option<u64>,
    /// Most samples in one request.
    #[serde(default)]
    pub samples_limit: Option<u64>,
}

/// Limits of one tenant.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    /// Request limits.
    #[serde(default)]
    pub request: RequestLimits,
    /// Most series a tenant's head may hold.
    #[serde(default)]
    pub head_series_limit: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteLimits {
    #[serde(default)]
    global: Option<serde_yaml::Value>,
    #[serde(default)]
    default: TenantLimits,
    #[serde(default)]
    tenants: HashMap<String, TenantLimits>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    #[serde(default)]
    write: WriteLimits,
}

/// The effective limits, per tenant.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    default: TenantLimits,
    tenants: HashMap<String, TenantLimits>,
}

fn or(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a.or(b)
}

impl Limits {
    /// Parses Thanos's limits YAML; `what` names the source in errors.
    pub fn from_yaml(what: &str, yaml: &str) -> Result<Self> {
        let f: LimitsFile = serde_yaml::from_str(yaml)
            .map_err(|e| Error::Config(format!("{what}: invalid limits configuration: {e}")))?;
        if f.write.global.is_some() {
            tracing::warn!(
                "{what}: write.global (max_concurrency, meta-monitoring) is not supported; ignored"
            );
        }
        Ok(Limits { default: f.write.default, tenants: f.write.tenants })
    }

    /// Unlimited except the given default request size limit.
    pub fn with_size_limit(bytes: Option<u64>) -> Self {
        let mut l = Limits::default();
        l.default.request.size_bytes_limit = bytes;
        l
    }

    /// The limits that apply to `tenant` (0 never means a limit).
    pub fn for_tenant(&self, tenant: &str) -> TenantLimits {
        let d = self.default;
        let Some(t) = self.tenants.get(tenant) else { return d };
        TenantLimits {
            request: RequestLimits {
                size_bytes_limit: or(t.request.size_bytes_limit, d.request.size_bytes_limit),
                series_limit: or(t.request.series_limit, d.request.series_limit),
                samples_limit: or(t.request.samples_limit, d.request.samples_limit),
            },
            head_series_limit: or(t.head_series_limit, d.head_series_limit),
        }
    }
}

/// Checks the request-level limits after decoding (size is checked on the body before).
pub fn check_request(l: &RequestLimits, series: u64, samples: u64) -> Result<()> {
    if let Some(max) = l.series_limit.filter(|m| *m > 0)
        && series > max
    {
        return Err(Error::TooLarge(format!("request has {series} series, more than the limit of {max}")));
    }
    if let Some(max) = l.samples_limit.filter(|m| *m > 0)
        && samples > max
    {
        return Err(Error::TooLarge(format!("request has {samples} samples, more than the limit of {max}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_overrides_default() -> Result<()> {
        let l = Limits::from_yaml(
            "test",
            "write:\n  default:\n    request: {size_bytes_limit: 100, series_limit: 5}\n    head_series_limit: 10\n  tenants:\n    a: {head_series_limit: 3}\n",
        )?;
        let a = l.for_tenant("a");
        assert_eq!(
            (a.head_series_limit, a.request.size_bytes_limit, a.request.series_limit),
            (Some(3), Some(100), Some(5))
        );
        assert_eq!(l.for_tenant("b").head_series_limit, Some(10));
        assert!(Limits::from_yaml("test", "write: {bogus: 1}").is_err());
        assert!(check_request(&a.request, 6, 1).is_err());
        Ok(())
    }
}
