//! `label_replace` and `label_join` (Prometheus `evalLabelReplace` / `evalLabelJoin`). Label
//! names are validated with Prometheus 3's UTF-8 rules: any non-empty valid UTF-8 string (Rust
//! strings are always valid UTF-8, so only emptiness is checked here).

use crate::Labels;
use regex::Regex;

/// `label_replace(v, dst, replacement, src, regex)`: `Err` with Prometheus's message for an
/// invalid regex or destination label name.
///
/// The regex is fully anchored (`^(?s:regex)$`) and matched against the value of `src` (empty if
/// absent). Without a match the labels are returned unchanged; with one, `dst` is set to
/// `replacement` with `$1`, `$name`, `${name}` expanded (Go `Regexp.Expand` semantics, `$$` is a
/// literal `$`); an empty result removes `dst`. Callers evaluating many series should compile
/// once with [`compile_label_replace`] and use [`label_replace_with`].
pub fn label_replace(
    labels: &Labels,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> Result<Labels, String> {
    let re = compile_label_replace(dst, regex)?;
    Ok(label_replace_with(labels, dst, replacement, src, &re))
}

/// Validates `label_replace`'s arguments and compiles its anchored regex.
pub fn compile_label_replace(dst: &str, regex: &str) -> Result<Regex, String> {
    let re = Regex::new(&format!("^(?s:{regex})$"))
        .map_err(|_| format!("invalid regular expression in label_replace(): {regex}"))?;
    if !is_valid_label_name(dst) {
        return Err(format!("invalid destination label name in label_replace(): {dst}"));
    }
    Ok(re)
}

/// [`label_replace`] with a regex from [`compile_label_replace`].
pub fn label_replace_with(labels: &Labels, dst: &str, replacement: &str, src: &str, re: &Regex) -> Labels {
    let src_value = labels.get(src).unwrap_or("");
    let Some(caps) = re.captures(src_value) else {
        return labels.clone();
    };
    let mut value = String::new();
    caps.expand(replacement, &mut value);
    with_label(labels, dst, value)
}

/// `label_join(v, dst, separator, src...)`.
///
/// Joins the values of `srcs` (absent labels count as empty strings) with `separator` into
/// `dst`; an empty result removes `dst`. `Err` with Prometheus's message for an invalid source
/// or destination label name.
pub fn label_join(labels: &Labels, dst: &str, separator: &str, srcs: &[&str]) -> Result<Labels, String> {
    if let Some(src) = srcs.iter().find(|s| !is_valid_label_name(s)) {
        return Err(format!("invalid source label name in label_join(): {src}"));
    }
    if !is_valid_label_name(dst) {
        return Err(format!("invalid destination label name in label_join(): {dst}"));
    }
    let values: Vec<&str> = srcs.iter().map(|s| labels.get(s).unwrap_or("")).collect();
    Ok(with_label(labels, dst, values.join(separator)))
}

fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// `labels` with `name` set to `value` (removed when `value` is empty).
fn with_label(labels: &Labels, name: &str, value: String) -> Labels {
    Labels::from_pairs(
        labels
            .iter()
            .filter(|l| l.name != name)
            .map(|l| (l.name.clone(), l.value.clone()))
            .chain(std::iter::once((name.to_string(), value))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(src: &str) -> Labels {
        Labels::from_pairs([("__name__", "testmetric"), ("src", src), ("dst", "original-destination-value")])
    }

    fn with(src: &str, dst: &str) -> Labels {
        Labels::from_pairs([("__name__", "testmetric"), ("src", src), ("dst", dst)])
    }

    // functions.test "Tests for label_replace".
    #[test]
    fn label_replace_cases() -> Result<(), String> {
        let m = metric("source-value-10");
        assert_eq!(
            label_replace(&m, "dst", "destination-value-$1", "src", "source-value-(.*)")?,
            with("source-value-10", "destination-value-10")
        );
        // No sub-string match.
        assert_eq!(label_replace(&m, "dst", "destination-value-$1", "src", "value-(.*)")?, m);
        assert_eq!(
            label_replace(&m, "dst", "$1-value-$2", "src", "(.*)-value-(.*)")?,
            with("source-value-10", "source-value-10")
        );
        // Missing source: no match for a non-empty pattern, but "(.*)" matches the empty value.
        assert_eq!(label_replace(&m, "dst", "value-$1", "nonexistent-src", "source-value-(.*)")?, m);
        assert_eq!(
            label_replace(&m, "dst", "value-$1", "nonexistent-src", "(.*)")?,
            with("source-value-10", "value-")
        );
        assert_eq!(label_replace(&m, "dst", "value-$1", "src", "non-matching-regex")?, m);
        // Empty results drop the label.
        assert_eq!(
            label_replace(&m, "dst", "", "dst", ".*")?,
            Labels::from_pairs([("__name__", "testmetric"), ("src", "source-value-10")])
        );
        // Named groups, ${} syntax, $$ and (?s) dot-all.
        assert_eq!(
            label_replace(&m, "x", "${kind}_$$_${1}x", "src", "(?P<kind>[a-z]+)-.*")?.get("x"),
            Some("source_$_sourcex")
        );
        let multi = Labels::from_pairs([("src", "a\nb")]);
        assert_eq!(label_replace(&multi, "x", "$1", "src", "a.(b)")?.get("x"), Some("b"));
        assert_eq!(
            label_replace(&m, "dst", "value-$1", "src", "(.*"),
            Err("invalid regular expression in label_replace(): (.*".to_string())
        );
        assert_eq!(
            label_replace(&m, "", "", "src", "(.*)"),
            Err("invalid destination label name in label_replace(): ".to_string())
        );
        // label_replace(series, "idx", "replaced", "idx", ".*").
        let s = Labels::from_pairs([("__name__", "series"), ("label", "a"), ("idx", "1")]);
        assert_eq!(label_replace(&s, "idx", "replaced", "idx", ".*")?.get("idx"), Some("replaced"));
        Ok(())
    }

    // functions.test "Tests for label_join".
    #[test]
    fn label_join_cases() -> Result<(), String> {
        let m = Labels::from_pairs([
            ("__name__", "testmetric"),
            ("src", "a"),
            ("src1", "b"),
            ("src2", "c"),
            ("dst", "original-destination-value"),
        ]);
        assert_eq!(label_join(&m, "dst", "-", &["src", "src1", "src2"])?.get("dst"), Some("a-b-c"));
        assert_eq!(label_join(&m, "dst", "-", &["src", "src3", "src1"])?.get("dst"), Some("a--b"));
        let gone = label_join(&m, "dst", "", &["emptysrc", "emptysrc1", "emptysrc2"])?;
        assert_eq!(gone.get("dst"), None);
        assert_eq!(gone.len(), 4);
        assert_eq!(label_join(&m, "dst", ", ", &[])?.get("dst"), None);
        let m1 = Labels::from_pairs([("src", "foo"), ("src1", "bar"), ("src2", "foobar")]);
        assert_eq!(
            label_join(&m1, "dst", ", ", &["src", "src1", "src2"])?.get("dst"),
            Some("foo, bar, foobar")
        );
        let s = Labels::from_pairs([("label", "a")]);
        assert_eq!(label_join(&s, "idx", ",", &["label", "label"])?.get("idx"), Some("a,a"));
        assert_eq!(
            label_join(&m, "", "-", &["src"]),
            Err("invalid destination label name in label_join(): ".to_string())
        );
        assert_eq!(
            label_join(&m, "dst", "-", &[""]),
            Err("invalid source label name in label_join(): ".to_string())
        );
        Ok(())
    }
}
