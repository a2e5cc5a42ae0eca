//! `Host` and `Origin` validation for remote MCP: the DNS-rebinding defence.
//!
//! A web page on an attacker's domain can make a browser send requests to a name that the
//! attacker re-points at the gateway's address. Such requests carry the attacker's name in
//! `Host` and the attacker's page in `Origin`, so both are checked before anything else:
//! - `Host` must name an allowed host. An allowed entry without a port accepts that name on
//!   any port; an entry with a port accepts that port only. With no entries configured, only
//!   the loopback names `localhost`, `127.0.0.1` and `[::1]` pass (on any port). A request
//!   without a `Host` is refused.
//! - `Origin`, when present, must equal an allowed origin by scheme, host and port (default
//!   ports made explicit). An absent `Origin` passes: non-browser MCP clients do not send one,
//!   and a browser always does on the requests that matter. With no origins configured, every
//!   request carrying an `Origin` (`null` included) is refused.
//!
//! Names compare case-insensitively. Refusals are 403s with the stable codes
//! `HTTP_HOST_FORBIDDEN` and `HTTP_ORIGIN_FORBIDDEN`; the refused value is never echoed.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use thiserror::Error;
use url::Url;

use super::limits::refusal_response;
use crate::domain::error_code::ErrorCode;

/// The hosts accepted when `allowed_hosts` is empty (any port).
pub const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

/// An `allowed_hosts` or `allowed_origins` entry that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuardConfigError {
    /// An `allowed_hosts` entry is not `name` or `name:port`.
    #[error("remote_mcp.allowed_hosts entry {0:?} is not a host or host:port")]
    InvalidHost(String),
    /// An `allowed_origins` entry is not `scheme://host[:port]` with http or https.
    #[error("remote_mcp.allowed_origins entry {0:?} is not an http(s) scheme://host[:port]")]
    InvalidOrigin(String),
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    /// `Host` is missing, malformed or not allowed.
    #[error("the Host header names a host this server does not answer for")]
    HostNotAllowed,
    /// `Origin` is present and not allowed.
    #[error("the Origin header names an origin this server does not accept")]
    OriginNotAllowed,
}

impl Refusal {
    /// The stable error code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::HostNotAllowed => ErrorCode::HttpHostForbidden,
            Self::OriginNotAllowed => ErrorCode::HttpOriginForbidden,
        }
    }
}

impl IntoResponse for Refusal {
    /// A 403 with the refusal's code and fixed text.
    fn into_response(self) -> Response {
        refusal_response(StatusCode::FORBIDDEN, self.code(), &self.to_string())
    }
}

/// One allowed host: a lower-case name (IPv6 literals keep their brackets) and maybe a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    name: String,
    port: Option<u16>,
}

/// Splits `name[:port]` (or `[v6]:port`) into a lower-case name and a port. `None` when the
/// text is empty, has a bad port or characters no host name has.
fn parse_authority(text: &str) -> Option<HostRule> {
    let text = text.trim();
    let (name, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        let (name, rest) = text.split_at(end + 1);
        match rest {
            "" => (name, None),
            _ => (name, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(digits) => Some(digits.parse::<u16>().ok()?),
        None => None,
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let is_v6_literal = name.len() > 2
        && name.starts_with('[')
        && name.ends_with(']')
        && name[1..name.len() - 1]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    if name.is_empty() || !(is_v6_literal || name.chars().all(valid)) {
        return None;
    }
    Some(HostRule {
        name: name.to_ascii_lowercase(),
        port,
    })
}

/// An origin reduced to what is compared: scheme, lower-case host and explicit port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginKey {
    scheme: String,
    host: String,
    port: u16,
}

/// Parses a serialized origin (`scheme://host[:port]`, no path, query or credentials).
fn parse_origin(text: &str) -> Option<OriginKey> {
    let url = Url::parse(text.trim()).ok()?;
    let scheme = url.scheme();
    if !matches!(scheme, "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    Some(OriginKey {
        scheme: scheme.to_owned(),
        host: url.host_str()?.to_ascii_lowercase(),
        port: url.port_or_known_default()?,
    })
}

/// Checks `Host` and `Origin` against the configured lists (see the module doc).
#[derive(Debug, Clone)]
pub struct HostOriginGuard {
    hosts: Vec<HostRule>,
    origins: Vec<OriginKey>,
}

impl HostOriginGuard {
    /// A guard for `remote_mcp.allowed_hosts` and `remote_mcp.allowed_origins`.
    ///
    /// # Errors
    /// [`GuardConfigError`] naming the first entry that is not a host (`name` or `name:port`)
    /// or not an http(s) origin (`scheme://host[:port]`).
    pub fn new<H, O>(allowed_hosts: H, allowed_origins: O) -> Result<Self, GuardConfigError>
    where
        H: IntoIterator,
        H::Item: AsRef<str>,
        O: IntoIterator,
        O::Item: AsRef<str>,
    {
        let mut hosts = Vec::new();
        for entry in allowed_hosts {
            let entry = entry.as_ref();
            hosts.push(
                parse_authority(entry)
                    .ok_or_else(|| GuardConfigError::InvalidHost(entry.to_owned()))?,
            );
        }
        if hosts.is_empty() {
            hosts = LOOPBACK_HOSTS
                .iter()
                .filter_map(|name| parse_authority(name))
                .collect();
        }
        let mut origins = Vec::new();
        for entry in allowed_origins {
            let entry = entry.as_ref();
            origins.push(
                parse_origin(entry)
                    .ok_or_else(|| GuardConfigError::InvalidOrigin(entry.to_owned()))?,
            );
        }
        Ok(Self { hosts, origins })
    }

    /// A guard that refuses every request: what a server whose lists could not be read
    /// serves with, so a bad list fails closed.
    pub fn refuse_all() -> Self {
        Self {
            hosts: Vec::new(),
            origins: Vec::new(),
        }
    }

    /// Judges one request's headers.
    ///
    /// # Errors
    /// [`Refusal::HostNotAllowed`] when `Host` is missing, repeated, malformed or not allowed;
    /// [`Refusal::OriginNotAllowed`] when an `Origin` is present (even repeated or `null`) and
    /// not allowed.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = single_header(headers, header::HOST)
            .and_then(parse_authority)
            .ok_or(Refusal::HostNotAllowed)?;
        let host_allowed = self
            .hosts
            .iter()
            .any(|rule| rule.name == host.name && (rule.port.is_none() || rule.port == host.port));
        if !host_allowed {
            return Err(Refusal::HostNotAllowed);
        }
        if headers.contains_key(header::ORIGIN) {
            let origin = single_header(headers, header::ORIGIN)
                .and_then(parse_origin)
                .ok_or(Refusal::OriginNotAllowed)?;
            if !self.origins.contains(&origin) {
                return Err(Refusal::OriginNotAllowed);
            }
        }
        Ok(())
    }
}

/// The value of a header that must appear exactly once, as text.
fn single_header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// axum middleware: refuses with a 403 when `Host` or `Origin` is not allowed. Mount it
/// outermost (before the peer limit and authentication) with
/// `axum::middleware::from_fn_with_state(guard, host_origin_guard)`.
pub async fn host_origin_guard(
    State(guard): State<Arc<HostOriginGuard>>,
    request: Request,
    next: Next,
) -> Response {
    match guard.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(host) = host {
            map.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        if let Some(origin) = origin {
            map.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        map
    }

    #[test]
    fn empty_host_list_means_loopback_only() {
        let guard = HostOriginGuard::new(Vec::<String>::new(), Vec::<String>::new()).unwrap();
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert_eq!(guard.check(&headers(Some(host), None)), Ok(()), "{host}");
        }
        for host in [
            "evil.example",
            "127.0.0.2",
            "localhost.evil.example",
            "[::2]",
        ] {
            assert_eq!(
                guard.check(&headers(Some(host), None)),
                Err(Refusal::HostNotAllowed),
                "{host}"
            );
        }
        assert_eq!(
            guard.check(&headers(None, None)),
            Err(Refusal::HostNotAllowed)
        );
        assert_eq!(
            guard.check(&headers(Some("localhost"), Some("http://localhost"))),
            Err(Refusal::OriginNotAllowed),
            "no origin configured: a browser origin is refused"
        );
    }

    #[test]
    fn host_ports_and_origin_defaults() {
        let guard = HostOriginGuard::new(
            ["gw.example.com", "alt.example.com:8443"],
            ["https://app.example.com", "http://localhost:3000"],
        )
        .unwrap();
        let ok = |host: &str, origin: Option<&str>| guard.check(&headers(Some(host), origin));
        assert_eq!(ok("gw.example.com:443", None), Ok(()));
        assert_eq!(ok("alt.example.com:8443", None), Ok(()));
        assert_eq!(
            ok("alt.example.com:8444", None),
            Err(Refusal::HostNotAllowed)
        );
        assert_eq!(ok("localhost", None), Err(Refusal::HostNotAllowed));
        assert_eq!(
            ok("gw.example.com", Some("https://app.example.com:443")),
            Ok(())
        );
        assert_eq!(
            ok("gw.example.com", Some("https://APP.example.com")),
            Ok(())
        );
        assert_eq!(ok("gw.example.com", Some("http://localhost:3000")), Ok(()));
        for evil in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "http://localhost:3001",
            "https://app.example.com.evil.example",
            "null",
            "https://app.example.com/path",
        ] {
            assert_eq!(
                ok("gw.example.com", Some(evil)),
                Err(Refusal::OriginNotAllowed),
                "{evil}"
            );
        }
    }

    #[test]
    fn bad_entries_are_reported() {
        assert_eq!(
            HostOriginGuard::new(["gw.example.com:notaport"], Vec::<String>::new()).unwrap_err(),
            GuardConfigError::InvalidHost("gw.example.com:notaport".to_owned())
        );
        assert_eq!(
            HostOriginGuard::new(Vec::<String>::new(), ["app.example.com"]).unwrap_err(),
            GuardConfigError::InvalidOrigin("app.example.com".to_owned())
        );
    }
}
