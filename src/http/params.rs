//! Request parameters the Prometheus way: query string and form body merged (form first, as
//! Go's `Request.FormValue`), times as unix seconds or RFC 3339, durations as float seconds or
//! Prometheus durations (`1h30m`).

use super::error::{ApiError, Result};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Prometheus's printed minimum time (`minTimeFormatted`), accepted for open-ended ranges.
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
/// Prometheus's printed maximum time (`maxTimeFormatted`).
const MAX_TIME_FORMATTED: &str = "292277025-08-17T07:12:55.807Z";

/// The parameters of one request, in Go's `r.Form` order (body before query string).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Merges a form body (when the request has one) and the query string.
    pub fn new(body_form: Option<&[u8]>, query: Option<&str>) -> Self {
        let mut v = Vec::new();
        if let Some(b) = body_form {
            v.extend(form_urlencoded::parse(b).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        Params(v)
    }

    /// The first value of `name`, or `""` (Go's `FormValue`).
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// Every value of `name` (`match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A time parameter, `default` when absent (Prometheus's `parseTimeParam`).
    pub fn time_or(&self, name: &str, default: i64) -> Result<i64> {
        match self.get(name) {
            "" => Ok(default),
            v => parse_time(v)
                .map_err(|e| ApiError::invalid_param(name, format!("Invalid time value for '{name}': {e}"))),
        }
    }

    /// An optional duration parameter.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>> {
        match self.get(name) {
            "" => Ok(None),
            v => parse_duration(v).map(Some).map_err(|e| ApiError::invalid_param(name, e)),
        }
    }
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Unix seconds (float, rounded to ms) or RFC 3339, to ms since the epoch.
pub fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f.abs() > (i64::MAX / 1000) as f64 {
            return Err(bad());
        }
        let secs = f.trunc();
        let ms = ((f - secs) * 1000.0).round();
        return Ok(secs as i64 * 1000 + ms as i64);
    }
    match s {
        MIN_TIME_FORMATTED => return Ok(i64::MIN),
        MAX_TIME_FORMATTED => return Ok(i64::MAX),
        _ => {}
    }
    parse_rfc3339(s).ok_or_else(bad)
}

/// RFC 3339 with `Z` or a `±HH:MM` offset, to ms (sub-ms digits truncated).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let (base, offset_s) = if let Some(b) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        (b, 0i64)
    } else {
        let (b, off) = s.split_at(s.len().checked_sub(6)?);
        let sign = match off.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = off[1..].split_once(':')?;
        (b, sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60))
    };
    let t = humantime::parse_rfc3339(&format!("{base}Z")).ok()?;
    let ms = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    Some(ms - offset_s * 1000)
}

/// Float seconds or a Prometheus duration (Prometheus's `parseDuration`).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ns = f * 1e9;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        // Negative durations become zero here; callers reject zero where it matters.
        return Ok(Duration::from_nanos(ns.max(0.0) as u64));
    }
    parse_prometheus_duration(s).map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// A Prometheus duration: `[0-9]+` units in the order y, w, d, h, m, s, ms (`1h30m`, `1500ms`);
/// a year is 365 days. Also the flag syntax.
pub fn parse_prometheus_duration(s: &str) -> std::result::Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bad = || format!("not a valid duration string: {s:?} (e.g. 30s, 5m, 1h30m, 1500ms)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let idx = UNITS[next_unit..].iter().position(|(u, _)| *u == unit).ok_or_else(bad)? + next_unit;
        next_unit = idx + 1;
        total = n.checked_mul(UNITS[idx].1).and_then(|ms| total.checked_add(ms)).ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("1700000000.5"), Ok(1_700_000_000_500));
        assert_eq!(parse_time("1700000000.1234"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20.25Z"), Ok(1_700_000_000_250));
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00"), Ok(1_700_000_000_000));
        assert_eq!(parse_time(MAX_TIME_FORMATTED), Ok(i64::MAX));
        assert_eq!(parse_time("x"), Err("cannot parse \"x\" to a valid timestamp".into()));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }
}
