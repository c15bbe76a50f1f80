//! Endpoint addresses: `HOST:PORT` as given, or `dns+HOST:PORT` resolved to every A/AAAA
//! record (Thanos's `--endpoint` syntax).

use crate::{Error, Result};
use std::fmt;

/// One `--endpoint` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSpec {
    /// Used as written.
    Static(String),
    /// Every address `host` resolves to, with `port`.
    Dns {
        /// The name to resolve.
        host: String,
        /// The port of every resolved address.
        port: u16,
    },
}

impl EndpointSpec {
    /// Parses `HOST:PORT` or `dns+HOST:PORT`; other `+` schemes (Thanos's `dnssrv+`) are
    /// rejected with a message naming them.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidArgument(format!("--endpoint {s:?}: {why}"));
        let (scheme, addr) = match s.split_once('+') {
            Some((scheme, rest)) if !scheme.contains(':') && !scheme.contains('/') => (Some(scheme), rest),
            _ => (None, s),
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("expected HOST:PORT"))?;
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number from 0 to 65535"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        match scheme {
            None => Ok(EndpointSpec::Static(addr.to_string())),
            Some("dns") => Ok(EndpointSpec::Dns { host: host.to_string(), port }),
            Some(other) => {
                Err(bad(&format!("unsupported discovery {other:?}+ (supported: HOST:PORT, dns+HOST:PORT)")))
            }
        }
    }

    /// The addresses this spec stands for now, as `HOST:PORT` (IPv6 in brackets).
    pub async fn resolve(&self) -> Result<Vec<String>> {
        match self {
            EndpointSpec::Static(a) => Ok(vec![a.clone()]),
            EndpointSpec::Dns { host, port } => {
                let addrs = tokio::net::lookup_host((host.as_str(), *port))
                    .await
                    .map_err(|e| Error::Unavailable(format!("resolving dns+{host}:{port}: {e}")))?;
                let mut out: Vec<String> = addrs.map(|a| a.to_string()).collect();
                out.sort();
                out.dedup();
                Ok(out)
            }
        }
    }
}

impl fmt::Display for EndpointSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointSpec::Static(a) => f.write_str(a),
            EndpointSpec::Dns { host, port } => write!(f, "dns+{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parse_and_resolve() -> Result<()> {
        assert_eq!(EndpointSpec::parse("store-a:10901")?, EndpointSpec::Static("store-a:10901".into()));
        assert_eq!(EndpointSpec::parse("[::1]:10901")?, EndpointSpec::Static("[::1]:10901".into()));
        let dns = EndpointSpec::parse("dns+localhost:10901")?;
        assert_eq!(dns, EndpointSpec::Dns { host: "localhost".into(), port: 10901 });
        let resolved = dns.resolve().await?;
        assert!(resolved.iter().any(|a| a == "127.0.0.1:10901" || a == "[::1]:10901"), "{resolved:?}");
        for bad in ["store-a", "dnssrv+_grpc._tcp.x", "x:port", ":10901", "dns+:1"] {
            assert!(EndpointSpec::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
