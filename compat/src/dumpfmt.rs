//! The text format of `promtool tsdb dump`: `{name="value", ...} <value> <timestamp>` per
//! line, label values quoted as Go's `strconv.Quote` does and values printed with Go `%g`.
//!
//! Used by tests across the workspace to compare against golden dumps.

use std::fmt::Write as _;

/// One parsed dump line: labels in order, value, timestamp (ms).
pub type DumpLine = (Vec<(String, String)>, f64, i64);

/// Parses one dump line into (labels in order, value, timestamp ms).
pub fn parse_dump_line(line: &str) -> Result<DumpLine, String> {
    let rest = line.trim_end_matches(['\n', '\r']);
    let mut s = rest.strip_prefix('{').ok_or_else(|| format!("line does not start with '{{': {line:?}"))?;
    let mut labels = Vec::new();
    loop {
        if let Some(r) = s.strip_prefix('}') {
            s = r;
            break;
        }
        if !labels.is_empty() {
            s = s.strip_prefix(", ").ok_or_else(|| format!("expected ', ' between labels: {line:?}"))?;
        }
        let eq = s.find('=').ok_or_else(|| format!("label without '=': {line:?}"))?;
        let name = &s[..eq];
        if name.is_empty() || name.contains([',', '}', ' ', '"']) {
            return Err(format!("bad label name {name:?} in {line:?}"));
        }
        let (value, r) = parse_go_quoted(&s[eq + 1..])?;
        labels.push((name.to_owned(), value));
        s = r;
    }
    let s = s.strip_prefix(' ').ok_or_else(|| format!("expected ' ' after labels: {line:?}"))?;
    let (v, t) = s.split_once(' ').ok_or_else(|| format!("expected '<value> <timestamp>': {line:?}"))?;
    let value: f64 = v.parse().map_err(|e| format!("bad value {v:?}: {e}"))?;
    let ts: i64 = t.parse().map_err(|e| format!("bad timestamp {t:?}: {e}"))?;
    Ok((labels, value, ts))
}

/// Parses a Go double-quoted string literal at the start of `s`; returns it and the rest.
/// Supports `\a \b \f \n \r \t \v \\ \" \' \xNN \NNN (octal) \uNNNN \UNNNNNNNN`.
pub fn parse_go_quoted(s: &str) -> Result<(String, &str), String> {
    let body = s.strip_prefix('"').ok_or_else(|| format!("expected '\"' at {s:?}"))?;
    let mut out: Vec<u8> = Vec::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = String::from_utf8(out).map_err(|e| format!("quoted string is not UTF-8: {e}"))?;
                return Ok((value, &body[i + 1..]));
            }
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated escape")?;
                let mut hex = |n: usize| -> Result<u32, String> {
                    let mut v = 0u32;
                    for _ in 0..n {
                        let (_, h) = chars.next().ok_or("short hex escape")?;
                        v = v * 16 + h.to_digit(16).ok_or_else(|| format!("bad hex digit {h:?}"))?;
                    }
                    Ok(v)
                };
                match e {
                    'a' => out.push(7),
                    'b' => out.push(8),
                    'f' => out.push(12),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    'v' => out.push(11),
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    '\'' => out.push(b'\''),
                    'x' => out.push(hex(2)? as u8),
                    'u' | 'U' => {
                        let v = hex(if e == 'u' { 4 } else { 8 })?;
                        let ch = char::from_u32(v).ok_or_else(|| format!("bad code point {v:#x}"))?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let (_, d) = chars.next().ok_or("short octal escape")?;
                            v = v * 8 + d.to_digit(8).ok_or_else(|| format!("bad octal digit {d:?}"))?;
                        }
                        out.push(u8::try_from(v).map_err(|_| format!("octal escape {v} > 255"))?);
                    }
                    other => return Err(format!("unknown escape \\{other}")),
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Err(format!("unterminated quoted string {s:?}"))
}

/// Formats labels as Prometheus's `labels.Labels.String()`: `{a="1", b="2"}`.
pub fn format_labels(labels: &[(String, String)]) -> String {
    let mut s = String::with_capacity(2 + labels.len() * 16);
    s.push('{');
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(n);
        s.push('=');
        go_quote_into(&mut s, v);
    }
    s.push('}');
    s
}

/// Go's `strconv.Quote`. Printability follows Go for ASCII, Latin-1 and the common
/// non-printable ranges (controls, format characters, separators, private use, surrogates'
/// neighbours); other code points are treated as printable.
pub fn go_quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    go_quote_into(&mut s, v);
    s
}

fn go_quote_into(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if is_go_print(c) => s.push(c),
            '\x07' => s.push_str("\\a"),
            '\x08' => s.push_str("\\b"),
            '\x0c' => s.push_str("\\f"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '\x0b' => s.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(s, "\\U{:08x}", c as u32);
            }
        }
    }
    s.push('"');
}

fn is_go_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_control() {
        return false;
    }
    !matches!(u,
        0xa0 | 0xad // no-break space (Zs) and soft hyphen (Cf)
        | 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x206f | 0x3000
        | 0xfeff | 0xfff9..=0xfffb | 0xfffe | 0xffff
        | 0xe000..=0xf8ff | 0xf0000..=0x10ffff
        | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
        | 0xe0001 | 0xe0020..=0xe007f)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn parses_promtool_lines() {
        let (l, v, t) = parse_dump_line(
            r#"{__name__="http_requests_total", code="200", instance="a:9090"} 10 1700000060000"#,
        )
        .unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[2], ("instance".to_owned(), "a:9090".to_owned()));
        assert_eq!((v, t), (10.0, 1_700_000_060_000));
        for (text, want) in
            [("1e+06", 1e6), ("+Inf", f64::INFINITY), ("-Inf", f64::NEG_INFINITY), ("-0", -0.0)]
        {
            let (_, v, _) = parse_dump_line(&format!("{{}} {text} -5")).unwrap();
            assert_eq!(v.to_bits(), want.to_bits(), "{text}");
        }
        assert!(parse_dump_line("{} NaN 1").unwrap().1.is_nan());
        assert_eq!(parse_dump_line("{} 1 -5").unwrap().2, -5);
    }

    #[test]
    fn go_quote_round_trips() {
        for v in [
            "",
            "plain",
            "a\"b\\c",
            "tab\there\nnl",
            "\x01\x7f",
            "é ü 日本",
            "\u{200b}",
            "\u{e000}",
            "😀",
            "\u{10ffff}",
        ] {
            let q = go_quote(v);
            let (back, rest) = parse_go_quoted(&q).unwrap();
            assert_eq!(back, v, "{q}");
            assert!(rest.is_empty());
        }
        assert_eq!(go_quote("a\"\n\x01\u{200b}é"), r#""a\"\n\x01\u200bé""#);
        assert_eq!(go_quote("\u{f0000}"), r#""\U000f0000""#);
        assert_eq!(
            parse_go_quoted(r#""\101\x42\u0043\U00000044" tail"#).unwrap(),
            ("ABCD".to_owned(), " tail")
        );
    }

    #[test]
    fn format_labels_matches_prometheus() {
        let l = vec![("__name__".to_owned(), "up".to_owned()), ("le".to_owned(), "+Inf".to_owned())];
        let s = format_labels(&l);
        assert_eq!(s, r#"{__name__="up", le="+Inf"}"#);
        assert_eq!(parse_dump_line(&format!("{s} 1 2")).unwrap().0, l);
        assert_eq!(format_labels(&[]), "{}");
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "",
            "x",
            "{a=1} 1 2",
            "{a=\"1\"}1 2",
            "{a=\"1\" 1 2",
            "{a=\"1\"} x 2",
            "{a=\"1\"} 1",
            "{a=\"\\q\"} 1 2",
        ] {
            assert!(parse_dump_line(bad).is_err(), "{bad:?}");
        }
    }
}
