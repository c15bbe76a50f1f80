//! Prometheus's JSON encoding, byte for byte: the `{"status":...,"data":...}` envelope, sample
//! timestamps as JSON numbers of seconds with millisecond digits (`1700000000.5` prints as
//! `1700000000.500`, as Prometheus's `marshalTimestamp` does; scalar and string results print
//! `1700000000.5`, Go's float formatting, and their values never with an exponent), values as strings (Go's
//! `strconv.FormatFloat(v, 'f', -1, 64)`, switching to `'e'` below 1e-6 and from 1e21 like
//! Prometheus's `marshalFloat`), strings escaped like Go's `encoding/json` (HTML-safe).

use promlake_engine::Labels;
use promlake_engine::promql::Value;
use std::fmt::Write;

/// `{"status":"success","data":DATA}`.
pub fn success_envelope(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    out.push_str(r#"{"status":"success","data":"#);
    out.push_str(data);
    out.push('}');
    out
}

/// `{"status":"success","data":DATA,"warnings":[...]}`; no `warnings` key when there are none
/// (Prometheus's `omitempty`).
pub fn success_envelope_with_warnings(data: &str, warnings: &[String]) -> String {
    let mut out = success_envelope(data);
    if !warnings.is_empty() {
        out.pop();
        out.push_str(r#","warnings":"#);
        out.push_str(&string_array(warnings));
        out.push('}');
    }
    out
}

/// `{"status":"error","errorType":TYPE,"error":MSG}`.
pub fn error_envelope(error_type: &str, msg: &str) -> String {
    let mut out = String::from(r#"{"status":"error","errorType":"#);
    string(&mut out, error_type);
    out.push_str(r#","error":"#);
    string(&mut out, msg);
    out.push('}');
    out
}

/// A query result: `{"resultType":...,"result":...}`.
pub fn query_data(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Scalar { t, v } => {
            out.push_str(r#"{"resultType":"scalar","result":["#);
            float_seconds(&mut out, *t);
            out.push_str(",\"");
            out.push_str(&format_scalar(*v));
            out.push_str("\"]");
        }
        Value::String { t, s } => {
            out.push_str(r#"{"resultType":"string","result":["#);
            float_seconds(&mut out, *t);
            out.push(',');
            string(&mut out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                labels(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                point(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                labels(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, (t, v)) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    point(&mut out, *t, *v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// A JSON array of strings.
pub fn string_array<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(&mut out, s.as_ref());
    }
    out.push(']');
    out
}

/// A JSON array of label objects (`/api/v1/series`).
pub fn label_sets(sets: &[Labels]) -> String {
    let mut out = String::from("[");
    for (i, l) in sets.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        labels(&mut out, l);
    }
    out.push(']');
    out
}

/// A label set as a JSON object, in label-name order.
pub fn labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, label) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, &label.name);
        out.push(':');
        string(out, &label.value);
    }
    out.push('}');
}

/// `[T,"V"]`.
fn point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    timestamp(out, t);
    out.push_str(",\"");
    out.push_str(&format_value(v));
    out.push_str("\"]");
}

/// Milliseconds as seconds: integer part, then `.` and three digits unless they are zero.
pub fn timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let t = t.unsigned_abs();
    let _ = write!(out, "{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// Milliseconds as Go's `json.Marshal(float64(t) / 1000)`: how Prometheus prints the time of
/// a scalar or string result (`1700000000.5`, not `1700000000.500`).
fn float_seconds(out: &mut String, t: i64) {
    let _ = write!(out, "{}", t as f64 / 1000.0);
}

/// A scalar result's value: Go's `strconv.FormatFloat(v, 'f', -1, 64)`, never an exponent
/// (Prometheus's `Scalar.MarshalJSON`).
pub fn format_scalar(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

/// A sample value as Prometheus prints it.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go's 'e' format: shortest mantissa, exponent with a sign and at least two digits.
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    // Rust's Display is the shortest round-trip decimal without an exponent, as Go's 'f', -1.
    format!("{v}")
}

/// A JSON string, escaped like Go's `encoding/json` (`<`, `>`, `&`, U+2028 and U+2029 as
/// `\u` escapes).
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use promlake_engine::promql::Sample;

    #[test]
    fn values_like_go() {
        for (v, s) in [
            (1.5, "1.5"),
            (1.0, "1"),
            (-0.0, "-0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123456789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-07"),
            (1e-6, "0.000001"),
            (1.2345e100, "1.2345e+100"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_value(v), s, "{v:?}");
        }
    }

    #[test]
    fn vector_envelope() {
        let v = Value::Vector(vec![Sample {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "a<b>&\"c\"")]),
            t: 1_700_000_000_500,
            v: 1.5,
        }]);
        assert_eq!(
            success_envelope(&query_data(&v)),
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\u003cb\u003e\u0026\"c\""},"value":[1700000000.500,"1.5"]}]}}"#
        );
        let mut t = String::new();
        timestamp(&mut t, 1_700_000_000_005);
        assert_eq!(t, "1700000000.005");
        assert_eq!(
            query_data(&Value::Scalar { t: 1_700_000_000_500, v: 2.0 }),
            r#"{"resultType":"scalar","result":[1700000000.5,"2"]}"#
        );
        assert_eq!(
            error_envelope("bad_data", "x"),
            r#"{"status":"error","errorType":"bad_data","error":"x"}"#
        );
    }
}
