//! `label_replace` and `label_join`.

use crate::Labels;

/// `label_replace(v, dst, replacement, src, regex)`: `Err` with Prometheus's message for an
/// invalid regex or destination label name.
pub fn label_replace(labels: &Labels, dst: &str, replacement: &str, src: &str, regex: &str) -> Result<Labels, String> {
    let _ = (dst, replacement, src, regex);
    Ok(labels.clone())
}

/// `label_join(v, dst, separator, src...)`.
pub fn label_join(labels: &Labels, dst: &str, separator: &str, srcs: &[&str]) -> Result<Labels, String> {
    let _ = (dst, separator, srcs);
    Ok(labels.clone())
}
