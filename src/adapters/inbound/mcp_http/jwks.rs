//! The issuer's signing keys (a JWKS), fetched and cached for token verification.
//!
//! Fail closed: keys are fetched over https only (plain http only to a loopback host, and only
//! when the configuration says so, for tests), redirects are never followed, the body is capped
//! before and while it is read, the request has a timeout, and any fault leaves the caller with
//! no key rather than an old one past its lifetime. The lifetime comes from
//! `Cache-Control: max-age`, clamped to configured bounds. A token naming an unknown `kid`
//! triggers one refresh shared by every concurrent caller (single flight), and such refreshes
//! are rate-limited. Only RSA keys that carry a `kid` are kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use thiserror::Error;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;
use url::Url;

/// Why no key could be had. Messages never carry the fetched body or a token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwksError {
    /// The JWKS URL is not https (or http to loopback with the insecure switch on).
    #[error("the JWKS URL must be https")]
    InsecureUrl,
    /// The JWKS could not be fetched: connection failure, timeout or a non-success status.
    #[error("the JWKS could not be fetched")]
    Unreachable,
    /// The JWKS endpoint answered with a redirect, which is never followed.
    #[error("the JWKS endpoint redirected")]
    Redirected,
    /// The JWKS body is larger than the cap.
    #[error("the JWKS is larger than the size cap")]
    TooLarge,
    /// The JWKS body is not a key set.
    #[error("the JWKS is malformed")]
    Malformed,
    /// No usable key has this `kid`, even after a refresh (or a refresh was rate-limited).
    #[error("no signing key has this key id")]
    UnknownKey,
}

/// How the cache fetches and keeps keys.
#[derive(Debug, Clone)]
pub struct JwksConfig {
    /// The JWKS URL.
    pub url: Url,
    /// Accept `http://` for a loopback host (tests and local trials only).
    pub allow_insecure_loopback: bool,
    /// The largest body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The whole-request timeout.
    pub timeout: Duration,
    /// The shortest lifetime a `max-age` may give the keys.
    pub min_lifetime: Duration,
    /// The longest lifetime a `max-age` may give the keys.
    pub max_lifetime: Duration,
    /// The lifetime when the response has no usable `max-age`.
    pub default_lifetime: Duration,
    /// At most one refresh for an unknown `kid` per this interval.
    pub min_refresh_interval: Duration,
}

impl JwksConfig {
    /// Defaults for `url`: 64 KiB cap, 5 s timeout, lifetime 1 min..24 h (default 10 min), and
    /// at most one unknown-`kid` refresh per 30 s.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            allow_insecure_loopback: false,
            max_body_bytes: 64 * 1024,
            timeout: Duration::from_secs(5),
            min_lifetime: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(24 * 60 * 60),
            default_lifetime: Duration::from_secs(600),
            min_refresh_interval: Duration::from_secs(30),
        }
    }
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Arc<DecodingKey>>,
    expires_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// A cache of the issuer's RSA signing keys by `kid`.
pub struct JwksCache {
    config: JwksConfig,
    client: reqwest::Client,
    state: RwLock<State>,
    refresh: Mutex<()>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.config.url.as_str())
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// Builds the cache; nothing is fetched until a key is asked for.
    ///
    /// # Errors
    /// [`JwksError::InsecureUrl`] for a URL that is not https (or allowed loopback http);
    /// [`JwksError::Unreachable`] when the HTTP client cannot be built.
    pub fn new(config: JwksConfig) -> Result<Self, JwksError> {
        let secure = match config.url.scheme() {
            "https" => true,
            "http" => config.allow_insecure_loopback && crate::net::is_loopback(&config.url),
            _ => false,
        };
        if !secure {
            return Err(JwksError::InsecureUrl);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .https_only(config.url.scheme() == "https")
            .build()
            .map_err(|_| JwksError::Unreachable)?;
        Ok(Self {
            config,
            client,
            state: RwLock::new(State::default()),
            refresh: Mutex::new(()),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many fetches were attempted so far (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key for `kid`. Fetches when the keys are missing or past their lifetime, and
    /// refreshes once (rate-limited, shared by concurrent callers) when `kid` is unknown.
    ///
    /// # Errors
    /// Any [`JwksError`]; keys past their lifetime are never used when a refresh fails.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, JwksError> {
        if let Some(key) = self.fresh_key(kid).await {
            return Ok(key);
        }
        // One refresher at a time: concurrent callers queue here, and those behind a refresh
        // that brought their key find it below without fetching again. Callers whose key is
        // already cached never wait on this lock.
        let _refresh = self.refresh.lock().await;
        if let Some(key) = self.fresh_key(kid).await {
            return Ok(key);
        }
        let now = Instant::now();
        {
            let mut state = self.state.write().await;
            let fresh = state.expires_at.is_some_and(|expires| now < expires);
            if fresh {
                let recently = state
                    .last_attempt
                    .is_some_and(|at| now.duration_since(at) < self.config.min_refresh_interval);
                if recently {
                    return Err(JwksError::UnknownKey);
                }
            } else {
                // Past the lifetime: never serve the old keys, whatever the refresh does.
                state.keys.clear();
                state.expires_at = None;
            }
            state.last_attempt = Some(now);
        }
        let (keys, lifetime) = self.fetch().await?;
        let mut state = self.state.write().await;
        state.keys = keys;
        state.expires_at = Some(Instant::now() + lifetime);
        state
            .keys
            .get(kid)
            .map(Arc::clone)
            .ok_or(JwksError::UnknownKey)
    }

    async fn fresh_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let state = self.state.read().await;
        let fresh = state
            .expires_at
            .is_some_and(|expires| Instant::now() < expires);
        if fresh {
            state.keys.get(kid).map(Arc::clone)
        } else {
            None
        }
    }

    async fn fetch(&self) -> Result<(HashMap<String, Arc<DecodingKey>>, Duration), JwksError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let mut response = self
            .client
            .get(self.config.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|_| JwksError::Unreachable)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(JwksError::Redirected);
        }
        if !status.is_success() {
            return Err(JwksError::Unreachable);
        }
        let cap = self.config.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > cap as u64)
        {
            return Err(JwksError::TooLarge);
        }
        let lifetime = self.lifetime(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|value| value.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| JwksError::Unreachable)? {
            if body.len() + chunk.len() > cap {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((parse_keys(&body)?, lifetime))
    }

    fn lifetime(&self, cache_control: Option<&str>) -> Duration {
        let max_age = cache_control.and_then(|header| {
            header.split(',').find_map(|directive| {
                let (name, value) = directive.trim().split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("max-age")
                    .then(|| value.trim().trim_matches('"').parse::<u64>().ok())
                    .flatten()
            })
        });
        max_age
            .map(Duration::from_secs)
            .unwrap_or(self.config.default_lifetime)
            .clamp(self.config.min_lifetime, self.config.max_lifetime)
    }
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<serde_json::Value>,
}

/// The usable keys of a JWKS body: RSA, with a `kid`, for signing, RS256 or no `alg`.
fn parse_keys(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, JwksError> {
    let set: KeySet = serde_json::from_slice(body).map_err(|_| JwksError::Malformed)?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let text = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
        if text("kty") != Some("RSA") {
            continue;
        }
        if text("use").is_some_and(|usage| usage != "sig") {
            continue;
        }
        if text("alg").is_some_and(|alg| alg != "RS256") {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (text("kid"), text("n"), text("e")) else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_rsa_components(n, e) {
            keys.insert(kid.to_owned(), Arc::new(key));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> JwksCache {
        let mut config = JwksConfig::new(Url::parse("https://issuer.example/jwks").unwrap());
        config.min_lifetime = Duration::from_secs(60);
        config.max_lifetime = Duration::from_secs(3600);
        config.default_lifetime = Duration::from_secs(600);
        JwksCache::new(config).unwrap()
    }

    #[test]
    fn max_age_is_clamped_to_the_bounds() {
        let cache = cache();
        assert_eq!(
            cache.lifetime(Some("public, max-age=120")),
            Duration::from_secs(120)
        );
        assert_eq!(cache.lifetime(Some("max-age=1")), Duration::from_secs(60));
        assert_eq!(
            cache.lifetime(Some("max-age=999999")),
            Duration::from_secs(3600)
        );
        assert_eq!(cache.lifetime(Some("no-store")), Duration::from_secs(600));
        assert_eq!(cache.lifetime(None), Duration::from_secs(600));
    }

    #[test]
    fn plain_http_needs_loopback_and_the_switch() {
        let url = |raw: &str| Url::parse(raw).unwrap();
        let mut config = JwksConfig::new(url("http://127.0.0.1:9/jwks"));
        assert_eq!(
            JwksCache::new(config.clone()).unwrap_err(),
            JwksError::InsecureUrl
        );
        config.allow_insecure_loopback = true;
        assert!(JwksCache::new(config.clone()).is_ok());
        config.url = url("http://issuer.example/jwks");
        assert_eq!(JwksCache::new(config).unwrap_err(), JwksError::InsecureUrl);
    }

    #[test]
    fn only_rsa_signing_keys_with_a_kid_are_kept() {
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": n, "e": "AQAB"},
            {"kty": "RSA", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": n, "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        ]});
        let keys = parse_keys(body.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(parse_keys(b"[1,2]").unwrap_err(), JwksError::Malformed);
    }
}
