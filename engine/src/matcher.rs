//! Label matchers with Prometheus semantics.

use crate::{Error, Labels, Result};
use regex::Regex;
use std::fmt;

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored)
    Regex,
    /// `!~` (fully anchored)
    NotRegex,
}

/// A label matcher. A missing label is matched as the empty string, so `foo=""` selects series
/// without `foo` and `foo!=""` series that have it.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regex source as written.
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher; regexes are anchored at both ends like Prometheus's.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?s:{value})$")).map_err(|e| Error::Matcher {
                    matcher: format!("{name}=~{value:?}"),
                    reason: e.to_string(),
                })?)
            }
            _ => None,
        };
        Ok(Matcher { name, op, value, regex })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), op: MatchOp::Equal, value: value.into(), regex: None }
    }

    /// Does the label value (`None` when the label is absent) satisfy the matcher?
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Does the series with these labels satisfy the matcher?
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name))
    }

    /// Does the empty string (an absent label) satisfy the matcher?
    pub fn matches_empty(&self) -> bool {
        self.matches_value(None)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

/// True when every matcher matches the label set.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored_and_empty_matches_absent() -> Result<()> {
        let l = Labels::from_pairs([("job", "node-exporter")]);
        assert!(!Matcher::new(MatchOp::Regex, "job", "node")?.matches(&l));
        assert!(Matcher::new(MatchOp::Regex, "job", "node.*")?.matches(&l));
        assert!(Matcher::new(MatchOp::Equal, "env", "")?.matches(&l));
        assert!(!Matcher::new(MatchOp::NotEqual, "env", "")?.matches(&l));
        assert!(Matcher::new(MatchOp::NotRegex, "job", "api|web")?.matches(&l));
        assert!(Matcher::new(MatchOp::Regex, "job", "(").is_err());
        Ok(())
    }
}
