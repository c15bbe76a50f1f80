//! Go's meaning of byte escapes in PromQL string literals.
//!
//! In Prometheus (Go), `\xNN` and `\NNN` (octal) in a string literal are *bytes*: `"\xc3\xa9"`
//! is `é`, and `"\xff"` is a string that is not valid UTF-8 (so `label_replace(v, "\xff", ...)`
//! fails on an invalid label name). promql-parser decodes each such escape as the code point
//! U+00NN instead. [`parse`] rewrites the literals that use byte escapes above 0x7f before
//! parsing: to the UTF-8 text the bytes spell, or to an error when they spell no valid UTF-8
//! (promlake's strings, like every label in the TSDB, are UTF-8).

use promql_parser::parser::Expr;
use std::borrow::Cow;

/// Parses a PromQL query with Go's byte-escape semantics (see the module docs).
pub fn parse(query: &str) -> Result<Expr, String> {
    promql_parser::parser::parse(&byte_escapes_as_utf8(query)?)
}

/// The query with every quoted literal holding a byte escape above 0x7f rewritten to the
/// UTF-8 text its bytes spell; unchanged (borrowed) when there is none.
fn byte_escapes_as_utf8(query: &str) -> Result<Cow<'_, str>, String> {
    if !query.contains('\\') {
        return Ok(Cow::Borrowed(query));
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut chars = query.char_indices();
    while let Some((start, c)) = chars.next() {
        match c {
            '#' => {
                // A comment runs to the end of the line.
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '`' => {
                for (_, c) in chars.by_ref() {
                    if c == '`' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                let mut end = query.len();
                let mut escaped = false;
                for (i, ch) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if ch == '\\' {
                        escaped = true;
                    } else if ch == c {
                        end = i + 1;
                        break;
                    }
                }
                let literal = &query[start..end];
                if let Some(text) = decode_bytes(literal)? {
                    out.push_str(&query[copied..start]);
                    // Go's quoting only escapes what promql-parser decodes the same way.
                    out.push_str(&promlake_compat::dumpfmt::go_quote(&text));
                    copied = end;
                }
            }
            _ => {}
        }
    }
    if copied == 0 {
        return Ok(Cow::Borrowed(query));
    }
    out.push_str(&query[copied..]);
    Ok(Cow::Owned(out))
}

/// The text of a quoted literal (quotes included) decoded Go's way, when it holds a byte
/// escape above 0x7f; `None` otherwise (promql-parser then decodes it the same as Go) or when
/// it is malformed (the parser reports that).
fn decode_bytes(literal: &str) -> Result<Option<String>, String> {
    let inner = literal.get(1..literal.len().saturating_sub(1)).unwrap_or("");
    let b = inner.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut high_byte = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            bytes.push(b[i]);
            i += 1;
            continue;
        }
        let Some(&e) = b.get(i + 1) else { return Ok(None) };
        let (byte, len) = match e {
            b'x' => match inner.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => (v, 4),
                None => return Ok(None),
            },
            b'0'..=b'7' => match inner.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok()) {
                Some(v) => (v, 4),
                None => return Ok(None),
            },
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let Some(c) = inner
                    .get(i + 2..i + 2 + n)
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
                else {
                    return Ok(None);
                };
                bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i += 2 + n;
                continue;
            }
            b'a' => (0x07, 2),
            b'b' => (0x08, 2),
            b'f' => (0x0c, 2),
            b'n' => (b'\n', 2),
            b'r' => (b'\r', 2),
            b't' => (b'\t', 2),
            b'v' => (0x0b, 2),
            b'\\' | b'"' | b'\'' => (e, 2),
            _ => return Ok(None),
        };
        high_byte |= len == 4 && byte > 0x7f;
        bytes.push(byte);
        i += len;
    }
    if !high_byte {
        return Ok(None);
    }
    String::from_utf8(bytes).map(Some).map_err(|_| format!("string literal {literal} is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn byte_escapes_spell_utf8() {
        assert_eq!(byte_escapes_as_utf8(r#"x{a="\xc3\xa9"}"#).unwrap(), r#"x{a="é"}"#);
        assert_eq!(byte_escapes_as_utf8(r#"x{a='\303\251\n"'}"#).unwrap(), "x{a=\"é\\n\\\"\"}");
        // Nothing to rewrite: ASCII escapes, \u escapes, raw strings and comments stay as written.
        for q in [r#"x{a="\x41\n", b="\u00e9"}"#, r"x{a=`\xff`}", "x # \"\\xff\"\n", "plain"] {
            assert!(matches!(byte_escapes_as_utf8(q).unwrap(), Cow::Borrowed(_)), "{q}");
        }
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let err = byte_escapes_as_utf8(r#"label_replace(m, "\xff", "", "src", "(.*)")"#).unwrap_err();
        assert_eq!(err, r#"string literal "\xff" is not valid UTF-8"#);
        assert!(parse(r#"label_replace(m, "\xff", "", "src", "(.*)")"#).is_err());
    }

    #[test]
    fn parses_to_the_utf8_value() {
        let Ok(Expr::VectorSelector(vs)) = parse(r#"x{a="\xc3\xa9"}"#) else { panic!("not a selector") };
        assert_eq!(vs.matchers.matchers[0].value, "é");
    }
}
