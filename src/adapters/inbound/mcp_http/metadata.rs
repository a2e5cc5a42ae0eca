//! OAuth 2.0 protected-resource metadata (RFC 9728): the document that tells a client which
//! authorization server issues tokens for this server and which scopes exist.
//!
//! It is served at `/.well-known/oauth-protected-resource` and at the path-suffixed form for
//! the MCP endpoint: the well-known segment goes between the host and the path of the
//! resource URI, so `https://gw.example/mcp` has its metadata at
//! `https://gw.example/.well-known/oauth-protected-resource/mcp`. That absolute URL is what
//! 401 and 403 challenges name as `resource_metadata`. Everything comes from the validated
//! settings, never from a request (no `Host` header is trusted to build a URL).

use serde_json::{Value, json};
use url::Url;

use crate::domain::scope::ScopeSet;

/// The well-known path of the metadata document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The metadata document and where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceMetadata {
    /// The JSON document.
    pub document: Value,
    /// The path-suffixed path (`/.well-known/oauth-protected-resource/mcp`), when the
    /// resource URI has a path other than `/`.
    pub suffixed_path: Option<String>,
    /// The absolute URL of the path-suffixed document (or of the bare one when the resource
    /// has no path).
    pub url: String,
}

/// Builds the metadata for `resource`, issued by `issuer`, with `scopes`.
pub fn resource_metadata(resource: &Url, issuer: &Url, scopes: &ScopeSet) -> ResourceMetadata {
    let document = json!({
        "resource": resource.as_str(),
        "authorization_servers": [issuer.as_str()],
        "scopes_supported": scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>(),
        "bearer_methods_supported": ["header"],
    });
    let path = resource.path().trim_end_matches('/');
    let suffixed_path = (!path.is_empty()).then(|| format!("{WELL_KNOWN_PATH}{path}"));
    let origin = resource.origin().ascii_serialization();
    let url = format!(
        "{origin}{}",
        suffixed_path.as_deref().unwrap_or(WELL_KNOWN_PATH)
    );
    ResourceMetadata {
        document,
        suffixed_path,
        url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::Scope;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn the_suffix_is_the_resource_path() {
        let scopes: ScopeSet = [Scope::AccountsRead].into_iter().collect();
        let issuer = url("https://issuer.example");
        let metadata = resource_metadata(&url("https://gw.example:8443/mcp"), &issuer, &scopes);
        assert_eq!(
            metadata.suffixed_path.as_deref(),
            Some("/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            metadata.url,
            "https://gw.example:8443/.well-known/oauth-protected-resource/mcp"
        );
        let bare = resource_metadata(&url("https://gw.example/"), &issuer, &scopes);
        assert_eq!(bare.suffixed_path, None);
        assert_eq!(
            bare.url,
            "https://gw.example/.well-known/oauth-protected-resource"
        );
    }
}
