//! Thanos's hashrings file (`--receive.hashrings-file`) and the `hashmod` algorithm: a series
//! of tenant `t` with labels `l` goes to endpoint `(xxhash64(t ⊕ l) + replica) mod N` for
//! replicas `0..replication_factor`, exactly as Thanos's `simpleHashring` places it.
//!
//! ```json
//! [{"hashring": "default", "tenants": [], "endpoints": ["10.0.0.1:10901", {"address": "10.0.0.2:10901"}]}]
//! ```
//! A ring lists the tenants it serves (`tenant_matcher_type`: `exact`, the default, or `glob`);
//! a ring without tenants serves every tenant no other ring claims.

use crate::{Error, Result};
use promlake_proto::prometheus::Label;
use serde::Deserialize;

/// Label separator of Thanos's `HashWithPrefix`.
const SEP: u8 = 0xff;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EndpointSpec {
    Address(String),
    Full { address: String },
}

#[derive(Debug, Deserialize)]
struct RingSpec {
    #[serde(default)]
    hashring: String,
    #[serde(default)]
    tenants: Vec<String>,
    #[serde(default)]
    tenant_matcher_type: Option<String>,
    #[serde(default)]
    algorithm: Option<String>,
    endpoints: Vec<EndpointSpec>,
}

/// One hashring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// Its name.
    pub name: String,
    /// Tenants it serves (empty: the default ring).
    pub tenants: Vec<String>,
    /// Tenants are glob patterns (`*`, `?`).
    pub glob: bool,
    /// Endpoints (gRPC addresses of receivers), in file order.
    pub endpoints: Vec<String>,
}

/// Every hashring of the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hashrings {
    /// The rings, in file order.
    pub rings: Vec<Ring>,
}

/// `*` any run, `?` any one character.
fn glob_match(pattern: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    go(&p, &s)
}

impl Hashrings {
    /// Parses the JSON file content; `what` names it in errors.
    pub fn parse(what: &str, json: &str) -> Result<Self> {
        let bad = |m: String| Error::Config(format!("{what}: {m}"));
        let specs: Vec<RingSpec> =
            serde_json::from_str(json).map_err(|e| bad(format!("invalid hashrings JSON: {e}")))?;
        let mut rings = Vec::new();
        for (i, s) in specs.into_iter().enumerate() {
            if let Some(a) = s.algorithm.as_deref().filter(|a| *a != "hashmod") {
                return Err(bad(format!(
                    "hashring {i}: algorithm {a:?} is not supported (allowed: hashmod)"
                )));
            }
            let glob = match s.tenant_matcher_type.as_deref() {
                None | Some("") | Some("exact") => false,
                Some("glob") => true,
                Some(o) => {
                    return Err(bad(format!(
                        "hashring {i}: tenant_matcher_type {o:?} (allowed: exact, glob)"
                    )));
                }
            };
            let endpoints: Vec<String> = s
                .endpoints
                .into_iter()
                .map(|e| match e {
                    EndpointSpec::Address(a) | EndpointSpec::Full { address: a } => a,
                })
                .collect();
            if endpoints.is_empty() {
                return Err(bad(format!("hashring {i} ({:?}) has no endpoints", s.hashring)));
            }
            rings.push(Ring { name: s.hashring, tenants: s.tenants, glob, endpoints });
        }
        if rings.is_empty() {
            return Err(bad("no hashrings".into()));
        }
        Ok(Hashrings { rings })
    }

    /// The ring serving `tenant`: the first that names it, else the first without tenants.
    pub fn ring_for(&self, tenant: &str) -> Option<&Ring> {
        self.rings
            .iter()
            .find(|r| r.tenants.iter().any(|t| if r.glob { glob_match(t, tenant) } else { t == tenant }))
            .or_else(|| self.rings.iter().find(|r| r.tenants.is_empty()))
    }
}

/// Thanos's `labelpb.HashWithPrefix(tenant, labels)`: xxhash64 over
/// `tenant 0xff (name 0xff value 0xff)*`.
pub fn series_hash(tenant: &str, labels: &[Label]) -> u64 {
    let mut b = Vec::with_capacity(
        tenant.len() + 1 + labels.iter().map(|l| l.name.len() + l.value.len() + 2).sum::<usize>(),
    );
    b.extend_from_slice(tenant.as_bytes());
    b.push(SEP);
    for l in labels {
        b.extend_from_slice(l.name.as_bytes());
        b.push(SEP);
        b.extend_from_slice(l.value.as_bytes());
        b.push(SEP);
    }
    twox_hash::XxHash64::oneshot(0, &b)
}

impl Ring {
    /// Endpoint indexes of the `rf` replicas of a series with hash `h`.
    pub fn replicas(&self, h: u64, rf: usize) -> impl Iterator<Item = usize> + '_ {
        let n = self.endpoints.len() as u64;
        (0..rf as u64).map(move |r| (h.wrapping_add(r) % n) as usize)
    }
}

/// Thanos's write quorum: a majority of the replicas.
pub fn write_quorum(rf: usize) -> usize {
    rf / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_thanos_format_and_picks_rings() -> Result<()> {
        let h = Hashrings::parse(
            "test",
            r#"[{"hashring":"a","tenants":["t-*"],"tenant_matcher_type":"glob","endpoints":["x:1"]},
                {"hashring":"d","endpoints":["y:1",{"address":"z:1","az":"eu"}]}]"#,
        )?;
        assert_eq!(h.ring_for("t-1").map(|r| r.name.as_str()), Some("a"));
        assert_eq!(
            h.ring_for("other").map(|r| r.endpoints.clone()),
            Some(vec!["y:1".to_string(), "z:1".into()])
        );
        assert!(Hashrings::parse("test", r#"[{"endpoints":[]}]"#).is_err());
        assert!(Hashrings::parse("test", r#"[{"algorithm":"ketama","endpoints":["a"]}]"#).is_err());
        let ring = &h.rings[1];
        let reps: Vec<usize> = ring.replicas(5, 2).collect();
        assert_eq!(reps, vec![1, 0]);
        assert_eq!((write_quorum(1), write_quorum(3)), (1, 2));
        Ok(())
    }
}
