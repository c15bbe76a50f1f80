//! Parser for Prometheus's promqltest scripts, following `promql/promqltest/test.go`: commands
//! `load`/`load_with_nhcb`, `clear`, `eval[_fail|_warn|_info|_ordered] instant|range`, `expect`
//! lines, result lines, and the series-description value notation of `ParseSeriesDesc`.

use regex::Regex;
use std::sync::LazyLock;

/// Prometheus's staleness marker.
pub const STALE_NAN: u64 = 0x7ff0000000000002;

/// A label set as (name, value) pairs, in the order written.
pub type LabelPairs = Vec<(String, String)>;

/// One position of a value sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeqVal {
    /// `_`: no sample at this position.
    Omitted,
    /// A float sample (a staleness marker is a float with [`STALE_NAN`] bits).
    Float(f64),
    /// A native histogram `{{...}}` (not decoded: evals over them are skipped).
    Histogram,
}

/// A series description: `metric{labels} values`.
#[derive(Debug, Clone)]
pub struct SeriesDesc {
    pub labels: Vec<(String, String)>,
    pub values: Vec<SeqVal>,
}

/// A `load <step>` block.
#[derive(Debug)]
pub struct Load {
    pub step_ms: i64,
    pub with_nhcb: bool,
    /// The block has `@st` (start timestamp) lines.
    pub start_timestamps: bool,
    pub series: Vec<SeriesDesc>,
}

/// When an eval runs.
#[derive(Debug, Clone, Copy)]
pub enum EvalKind {
    Instant { at_ms: i64 },
    Range { start_ms: i64, end_ms: i64, step_ms: i64 },
}

/// How an expected failure's message must look.
#[derive(Debug)]
pub enum FailMatch {
    Message(String),
    Regex(Regex),
}

/// One expected series (instant or range).
#[derive(Debug, Clone)]
pub struct ExpectedSeries {
    /// 1-based position among the result lines (for ordered evals).
    pub pos: usize,
    pub labels: Vec<(String, String)>,
    pub values: Vec<SeqVal>,
}

/// An `eval` command.
#[derive(Debug)]
pub struct Eval {
    pub line: usize,
    pub expr: String,
    pub kind: EvalKind,
    pub fail: bool,
    pub fail_matches: Vec<FailMatch>,
    pub ordered: bool,
    /// Annotation expectations (`eval_warn`, `expect info`, ...): the engine reports none, so
    /// these are recorded but not checked.
    pub annotations: Vec<String>,
    /// `expect range vector from .. to .. step ..`: an instant query returning a matrix.
    pub expect_range: Option<(i64, i64, i64)>,
    pub expected_string: Option<String>,
    /// A bare number result line.
    pub expect_scalar: Option<f64>,
    pub expected: Vec<ExpectedSeries>,
    pub exclude_from_range_query: bool,
}

impl Eval {
    /// Whether any expected value is a native histogram.
    pub fn expects_histograms(&self) -> bool {
        self.expected.iter().any(|e| e.values.iter().any(|v| matches!(v, SeqVal::Histogram)))
    }
}

/// A script command.
#[derive(Debug)]
pub enum Cmd {
    Clear,
    Load(Load),
    Eval(Box<Eval>),
}

/// A line the runner could not parse.
#[derive(Debug)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub msg: String,
}

static PAT_SPACE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[\t ]+").unwrap());
static PAT_LOAD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^load(?:_(with_nhcb))?\s+(.+?)$").unwrap());
static PAT_EVAL_INSTANT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$").unwrap()
});
static PAT_EVAL_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
        .unwrap()
});
static PAT_EXPECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$").unwrap()
});
static PAT_EXPECT_RANGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$").unwrap());
static PAT_ST_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:_|_x\d+|\*|\*x\d+|[+-]?\d+(?:ms|[smhdwy])?(?:x\d+|[+-]\d+(?:ms|[smhdwy])?x\d+)?)$")
        .unwrap()
});

/// Parses a whole script. Errors are collected per line; parsing continues after them.
pub fn parse_script(input: &str) -> (Vec<Cmd>, Vec<ParseError>) {
    // getLines: trim, and blank out comment lines.
    let lines: Vec<String> = input
        .split('\n')
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') { String::new() } else { l.to_string() }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut errors = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let c = PAT_SPACE.splitn(l, 2).next().unwrap_or("").to_lowercase();
        let res = if c == "clear" {
            Ok((i, Cmd::Clear))
        } else if c.starts_with("load") {
            parse_load(&lines, i).map(|(i, l)| (i, Cmd::Load(l)))
        } else if c.starts_with("eval") {
            parse_eval(&lines, i).map(|(i, e)| (i, Cmd::Eval(Box::new(e))))
        } else {
            Err(ParseError { line: i + 1, msg: format!("invalid command {l:?}") })
        };
        match res {
            Ok((end, cmd)) => {
                cmds.push(cmd);
                i = end + 1;
            }
            Err(e) => {
                errors.push(e);
                // Resynchronise at the next blank line.
                i += 1;
                while i < lines.len() && !lines[i].is_empty() {
                    i += 1;
                }
            }
        }
    }
    (cmds, errors)
}

fn err(line: usize, msg: impl Into<String>) -> ParseError {
    ParseError { line: line + 1, msg: msg.into() }
}

fn parse_load(lines: &[String], mut i: usize) -> Result<(usize, Load), ParseError> {
    let caps = PAT_LOAD.captures(&lines[i]).ok_or_else(|| err(i, "invalid load command"))?;
    let with_nhcb = caps.get(1).is_some();
    let step = caps.get(2).map_or("", |m| m.as_str());
    let step_ms = parse_duration(step).map_err(|e| err(i, format!("invalid step {step:?}: {e}")))?;
    let mut load = Load { step_ms, with_nhcb, start_timestamps: false, series: Vec::new() };
    let mut pending_st: Option<(Vec<(String, String)>, usize)> = None;
    while i + 1 < lines.len() {
        i += 1;
        let def = &lines[i];
        if def.is_empty() {
            i -= 1;
            break;
        }
        if is_st_line(def) {
            if pending_st.is_some() {
                return Err(err(i, "@st line has no following sample line"));
            }
            let (metric, n) = parse_st_line(def).map_err(|e| err(i, e))?;
            load.start_timestamps = true;
            if !metric.is_empty() {
                pending_st = Some((metric, n));
            }
            continue;
        }
        let s = parse_series_desc(def).map_err(|e| err(i, e))?;
        if let Some((metric, n)) = pending_st.take() {
            if sorted(&metric) != sorted(&s.labels) {
                return Err(err(i, "@st metric does not match the following sample line metric"));
            }
            if n != s.values.len() {
                return Err(err(
                    i,
                    format!("@st line has {n} values but sample line has {}", s.values.len()),
                ));
            }
        }
        load.series.push(s);
    }
    if pending_st.is_some() {
        return Err(err(i, "@st line has no following sample line"));
    }
    Ok((i, load))
}

fn sorted(l: &[(String, String)]) -> Vec<(String, String)> {
    let mut v = l.to_vec();
    v.sort();
    v
}

fn is_st_line(def: &str) -> bool {
    match def.find([' ', '\t']) {
        Some(idx) => def[..idx].ends_with("@st"),
        None => false,
    }
}

/// Parses `metric{labels}@st <sequence>` or `@st <sequence>`: the metric and the number of
/// positions (start timestamps are not modelled by the engine).
fn parse_st_line(def: &str) -> Result<(Vec<(String, String)>, usize), String> {
    let idx = def.find([' ', '\t']).ok_or("invalid @st line")?;
    let metric = def[..idx].trim_end_matches("@st");
    let mut n = 0usize;
    for item in def[idx..].split_whitespace() {
        if !PAT_ST_ITEM.is_match(item) {
            return Err(format!("invalid ST item {item:?}"));
        }
        n += match item.rfind('x') {
            Some(p) => {
                let count: usize =
                    item[p + 1..].parse().map_err(|_| format!("invalid repeat count in {item:?}"))?;
                if item.starts_with('_') { count } else { count + 1 }
            }
            None => 1,
        };
    }
    if metric.is_empty() {
        return Ok((Vec::new(), n));
    }
    let s = parse_series_desc(&format!("{metric} _"))?;
    Ok((s.labels, n))
}

fn parse_eval(lines: &[String], mut i: usize) -> Result<(usize, Eval), ParseError> {
    let header = &lines[i];
    let (kind, modifier, expr) = if let Some(c) = PAT_EVAL_INSTANT.captures(header) {
        let at = c.get(2).map_or("", |m| m.as_str());
        let at_ms =
            parse_duration(at).map_err(|e| err(i, format!("invalid timestamp definition {at:?}: {e}")))?;
        (EvalKind::Instant { at_ms }, c.get(1).map(|m| m.as_str().to_string()), c[3].to_string())
    } else if let Some(c) = PAT_EVAL_RANGE.captures(header) {
        let (start_ms, end_ms, step_ms) = parse_durations(&c[2], &c[3], &c[4]).map_err(|e| err(i, e))?;
        (
            EvalKind::Range { start_ms, end_ms, step_ms },
            c.get(1).map(|m| m.as_str().to_string()),
            c[5].to_string(),
        )
    } else {
        return Err(err(i, format!("invalid evaluation command {header:?}")));
    };
    let is_instant = matches!(kind, EvalKind::Instant { .. });
    let mut ev = Eval {
        line: i + 1,
        expr,
        kind,
        fail: false,
        fail_matches: Vec::new(),
        ordered: false,
        annotations: Vec::new(),
        expect_range: None,
        expected_string: None,
        expect_scalar: None,
        expected: Vec::new(),
        exclude_from_range_query: false,
    };
    match modifier.as_deref() {
        Some("ordered") => ev.ordered = true,
        Some("fail") => ev.fail = true,
        Some("warn") => ev.annotations.push("eval_warn".into()),
        Some("info") => ev.annotations.push("eval_info".into()),
        _ => {}
    }
    let (mut n_fail, mut warn, mut no_warn, mut info, mut no_info) = (0, false, false, false, false);
    let mut j = 1usize;
    while i + 1 < lines.len() {
        i += 1;
        let def = &lines[i];
        if def.is_empty() {
            i -= 1;
            break;
        }
        if ev.fail && def.starts_with("expected_fail_message") {
            ev.fail_matches.push(FailMatch::Message(def["expected_fail_message".len()..].trim().to_string()));
            break;
        }
        if ev.fail && def.starts_with("expected_fail_regexp") {
            let pat = def["expected_fail_regexp".len()..].trim();
            let re = Regex::new(pat).map_err(|e| err(i, format!("invalid regexp {pat:?}: {e}")))?;
            ev.fail_matches.push(FailMatch::Regex(re));
            break;
        }
        if def.starts_with("expect range vector") {
            let c = PAT_EXPECT_RANGE
                .captures(def)
                .ok_or_else(|| err(i, format!("invalid range vector definition {def:?}")))?;
            let r = parse_durations(&c[1], &c[2], &c[3]).map_err(|e| err(i, e))?;
            ev.expect_range = Some(r);
            ev.exclude_from_range_query = true;
            continue;
        }
        if def.starts_with("expect string") {
            let rest = def.strip_prefix("expect string ").filter(|r| !r.is_empty());
            let s = rest.and_then(go_unquote).ok_or_else(|| {
                err(i, "expected string literal not valid - a quoted string literal is required")
            })?;
            ev.expected_string = Some(s);
            ev.exclude_from_range_query = true;
            continue;
        }
        if def.split(' ').next() == Some("expect") {
            let c = PAT_EXPECT
                .captures(def.trim())
                .ok_or_else(|| err(i, format!("invalid expect statement {def:?}")))?;
            let mode = &c[1];
            let fm = match (c.get(2).map(|m| m.as_str()), c.get(3)) {
                (Some("msg"), Some(m)) => Some(FailMatch::Message(m.as_str().trim().to_string())),
                (Some("regex"), Some(m)) => {
                    let pat = m.as_str().trim();
                    Some(FailMatch::Regex(
                        Regex::new(pat).map_err(|e| err(i, format!("invalid regex {pat}: {e}")))?,
                    ))
                }
                _ => None,
            };
            match mode {
                "ordered" => ev.ordered = true,
                "fail" => {
                    n_fail += 1;
                    ev.fail = true;
                    ev.fail_matches.extend(fm);
                }
                other => {
                    match other {
                        "warn" => warn = true,
                        "no_warn" => no_warn = true,
                        "info" => info = true,
                        _ => no_info = true,
                    }
                    ev.annotations.push(def.trim().to_string());
                }
            }
            if (info && no_info) || (warn && no_warn) || n_fail > 1 {
                return Err(err(i, "invalid combination of expect lines"));
            }
            continue;
        }
        if let Some(f) = parse_number(def) {
            ev.expect_scalar = Some(f);
            break;
        }
        let s = parse_series_desc(def).map_err(|e| err(i, e))?;
        if s.values.len() > 1 && is_instant && ev.expect_range.is_none() {
            return Err(err(i, "expecting multiple values in instant evaluation not allowed"));
        }
        // Later lines with the same labels replace earlier ones (test.go keys them by hash).
        let key = sorted(&s.labels);
        ev.expected.retain(|e| sorted(&e.labels) != key);
        ev.expected.push(ExpectedSeries { pos: j, labels: s.labels, values: s.values });
        j += 1;
    }
    Ok((i, ev))
}

fn parse_durations(from: &str, to: &str, step: &str) -> Result<(i64, i64, i64), String> {
    let f = parse_duration(from).map_err(|e| format!("invalid start timestamp definition {from:?}: {e}"))?;
    let t = parse_duration(to).map_err(|e| format!("invalid end timestamp definition {to:?}: {e}"))?;
    if t < f {
        return Err(format!("end timestamp ({to}) is before start timestamp ({from})"));
    }
    let s = parse_duration(step).map_err(|e| format!("invalid step definition {step:?}: {e}"))?;
    Ok((f, t, s))
}

/// `model.ParseDuration` from prometheus/common, in milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let bad = || format!("not a valid duration string: {s:?}");
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last_unit = 0usize;
    while !rest.is_empty() {
        let d = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if d == 0 {
            return Err(bad());
        }
        let v: i64 = rest[..d].parse().map_err(|_| bad())?;
        rest = &rest[d..];
        let u = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        if u == 0 {
            return Err(bad());
        }
        let pos = UNITS.iter().position(|(n, _)| *n == &rest[..u]).ok_or_else(bad)? + 1;
        if pos <= last_unit {
            return Err(format!("not a valid duration string: {s:?}: unit order"));
        }
        last_unit = pos;
        total = v.checked_mul(UNITS[pos - 1].1).and_then(|x| total.checked_add(x)).ok_or_else(bad)?;
        rest = &rest[u..];
    }
    Ok(total)
}

/// test.go's `parseNumber`: `strconv.ParseInt(s, 0, 64)`, else `strconv.ParseFloat(s, 64)`.
pub fn parse_number(s: &str) -> Option<f64> {
    parse_go_int(s).map(|i| i as f64).or_else(|| parse_go_float(s))
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    let digits = if prefixed { digits.replace('_', "") } else { digits };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    let numeric = !lower.is_empty()
        && lower.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
        && lower.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if !special && !numeric {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Go's `strconv.Unquote` for `"..."`, `'...'` (one char) and `` `...` ``.
pub fn go_unquote(s: &str) -> Option<String> {
    let q = s.chars().next()?;
    if s.len() < 2 || !s.ends_with(q) {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    match q {
        '`' => (!inner.contains('`')).then(|| inner.to_string()),
        '"' | '\'' => {
            let (v, rest) = lex_quoted_body(&s[1..], q).ok()?;
            rest.is_empty().then_some(v)
        }
        _ => None,
    }
}

/// Decodes Go escapes in `s` up to an unescaped `q`; returns the value and what follows the
/// closing quote (or the whole rest if `q` never appears, for [`go_unquote`]'s use).
fn lex_quoted_body(s: &str, q: char) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        if c == q {
            return Ok((out, &s[i + c.len_utf8()..]));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = it.next().ok_or("unterminated escape")?;
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' | '"' | '\'' => out.push(e),
            'x' | 'u' | 'U' | '0'..='7' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => 2,
                };
                let mut digits = String::new();
                if e.is_ascii_digit() {
                    digits.push(e);
                }
                for _ in 0..n {
                    digits.push(it.next().ok_or("short escape")?.1);
                }
                let radix = if e.is_ascii_digit() { 8 } else { 16 };
                let v = u32::from_str_radix(&digits, radix).map_err(|_| "bad escape")?;
                out.push(char::from_u32(v).ok_or("bad escape")?);
            }
            other => return Err(format!("unknown escape \\{other}")),
        }
    }
    Err("unterminated string".into())
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// `ParseSeriesDesc`: `metric{labels} values`, `{labels} values` or `metric values`.
pub fn parse_series_desc(line: &str) -> Result<SeriesDesc, String> {
    let mut rest = line.trim_start();
    let mut labels: Vec<(String, String)> = Vec::new();
    if rest.starts_with(is_ident_start) {
        let end = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        labels.push(("__name__".into(), rest[..end].to_string()));
        rest = &rest[end..];
    }
    if let Some(r) = rest.strip_prefix('{') {
        let (ls, r) = parse_label_set(r)?;
        labels.extend(ls);
        rest = r;
    }
    if labels.is_empty() && !line.trim_start().starts_with('{') {
        return Err(format!("invalid series description {line:?}"));
    }
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return Err(format!("unexpected {rest:?} after the series' labels"));
    }
    let values = parse_values(rest)?;
    Ok(SeriesDesc { labels, values })
}

fn parse_label_set(mut s: &str) -> Result<(LabelPairs, &str), String> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix('}') {
            return Ok((out, r));
        }
        // A label name: identifier or quoted string; a lone quoted string is the metric name.
        let (name, quoted, r) = if s.starts_with(['"', '\'', '`']) {
            let (v, r) = lex_string(s)?;
            (v, true, r)
        } else if s.starts_with(is_ident_start) {
            let end = s.find(|c: char| !is_ident_char(c)).unwrap_or(s.len());
            (s[..end].to_string(), false, &s[end..])
        } else {
            return Err(format!("unexpected {s:?} in label set"));
        };
        let r = r.trim_start();
        if let Some(r) = r.strip_prefix('=') {
            let (value, r) = lex_string(r.trim_start())?;
            out.push((name, value));
            s = r;
        } else if quoted {
            out.push(("__name__".into(), name));
            s = r;
        } else {
            return Err(format!("expected '=' after label name {name:?}"));
        }
        s = s.trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err(format!("expected ',' or '}}' in label set at {s:?}"));
        }
    }
}

fn lex_string(s: &str) -> Result<(String, &str), String> {
    let q = s.chars().next().ok_or("expected a string")?;
    let body = &s[1..];
    match q {
        '`' => {
            let end = body.find('`').ok_or("unterminated raw string")?;
            Ok((body[..end].to_string(), &body[end + 1..]))
        }
        '"' | '\'' => lex_quoted_body(body, q),
        _ => Err(format!("expected a string at {s:?}")),
    }
}

fn parse_values(s: &str) -> Result<Vec<SeqVal>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        if rest.starts_with("{{") {
            rest = skip_histogram(rest)?;
            let mut n = 1;
            if let Some(r) = rest.strip_prefix(['+', '-']) {
                if !r.starts_with("{{") {
                    return Err(format!("expected a histogram increment at {r:?}"));
                }
                rest = skip_histogram(r)?;
                let (count, r) = parse_times(rest).ok_or_else(|| format!("expected xN after {s:?}"))?;
                n = count + 1;
                rest = r;
            } else if let Some((count, r)) = parse_times(rest) {
                n = count + 1;
                rest = r;
            }
            out.extend(std::iter::repeat_n(SeqVal::Histogram, n));
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let tok = &rest[..end];
        rest = &rest[end..];
        out.extend(parse_value_token(tok)?);
    }
}

/// Skips `{{ ... }}` (nested brackets allowed) and returns what follows.
fn skip_histogram(s: &str) -> Result<&str, String> {
    let end = s.find("}}").ok_or_else(|| format!("unterminated histogram {s:?}"))?;
    Ok(&s[end + 2..])
}

/// `xN` at the start of `s`.
fn parse_times(s: &str) -> Option<(usize, &str)> {
    let r = s.strip_prefix('x')?;
    let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
    let n = r[..end].parse().ok()?;
    Some((n, &r[end..]))
}

/// A signed series number at the start of `s` (decimal, `Inf`, `NaN`; no hex in series).
fn parse_series_number(s: &str) -> Option<(f64, &str)> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (v, len) = if lower.starts_with("inf") {
        (f64::INFINITY, 3)
    } else if lower.starts_with("nan") {
        (f64::NAN, 3)
    } else {
        let b = body.as_bytes();
        let mut i = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        if i == 0 || (i == 1 && b[0] == b'.') {
            return None;
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut k = i + 1;
            if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
                k += 1;
            }
            let ds = k;
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
            if k > ds {
                i = k;
            }
        }
        (body[..i].parse::<f64>().ok()?, i)
    };
    Some((if neg { -v } else { v }, &body[len..]))
}

fn parse_value_token(tok: &str) -> Result<Vec<SeqVal>, String> {
    let bad = || format!("invalid series value {tok:?}");
    if tok == "_" {
        return Ok(vec![SeqVal::Omitted]);
    }
    if let Some(r) = tok.strip_prefix('_') {
        let (n, r) = parse_times(r).ok_or_else(bad)?;
        if !r.is_empty() {
            return Err(bad());
        }
        return Ok(vec![SeqVal::Omitted; n]);
    }
    if tok == "stale" {
        return Ok(vec![SeqVal::Float(f64::from_bits(STALE_NAN))]);
    }
    let (start, r) = parse_series_number(tok).ok_or_else(bad)?;
    if r.is_empty() {
        return Ok(vec![SeqVal::Float(start)]);
    }
    if let Some((n, r)) = parse_times(r) {
        if !r.is_empty() {
            return Err(bad());
        }
        return Ok(vec![SeqVal::Float(start); n + 1]);
    }
    if !r.starts_with(['+', '-']) {
        return Err(bad());
    }
    let (inc, r) = parse_series_number(r).ok_or_else(bad)?;
    let (n, r) = parse_times(r).ok_or_else(bad)?;
    if !r.is_empty() {
        return Err(bad());
    }
    let mut v = start;
    let mut out = Vec::with_capacity(n + 1);
    for _ in 0..=n {
        out.push(SeqVal::Float(v));
        v += inc;
    }
    Ok(out)
}
