//! The HTTP client: one `reqwest` client built at start-up, URLs built segment by segment,
//! every request paced, every body read under a size cap, every status mapped at the seam.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use url::Url;

use super::endpoints::{self, Endpoint, Use};
use super::errors::{self, ErrorContext, GatewayFault};
use super::pacing::{Limiter, PACING_MARGIN_PERCENT_RANGE};
use super::{ClientPortalConfig, ClientPortalSetupError};
use crate::net::is_loopback;
use crate::ports::broker_reader::BrokerError;
use crate::ports::clock::Clock;

/// The `User-Agent` sent to the gateway (IBKR's edge rejects some requests without one).
const USER_AGENT: &str = concat!("ibkr-agent-gateway/", env!("CARGO_PKG_VERSION"));

/// The longest `Retry-After` honoured; a larger value is clamped, not ignored.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The HTTP method of a request. Reads use `GET` and body-less `POST`s (session endpoints);
/// `POST` with a JSON body and `DELETE` are for order writes and go only through
/// [`GatewayClient::exchange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST` with an empty body and `Content-Length: 0`.
    PostEmpty,
    /// `POST` with a JSON body.
    PostJson,
    /// `DELETE`.
    Delete,
}

/// A JSON request body. Its `Debug` shows only the length: order bodies hold account ids.
#[derive(Clone, Default)]
pub(crate) struct JsonBody(Vec<u8>);

impl std::fmt::Debug for JsonBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonBody({} bytes)", self.0.len())
    }
}

/// One request to the gateway, relative to the base URL.
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    method: HttpMethod,
    segments: Vec<String>,
    /// How many leading segments are fixed path words; the rest are variable (ids, pages).
    fixed_segments: usize,
    query: Vec<(&'static str, String)>,
    context: ErrorContext,
    body: JsonBody,
}

impl ApiRequest {
    /// A `GET` of the fixed path `segments`.
    pub(crate) fn get(segments: &[&'static str]) -> Self {
        Self::new(HttpMethod::Get, segments)
    }

    /// A body-less `POST` of the fixed path `segments`.
    pub(crate) fn post_empty(segments: &[&'static str]) -> Self {
        Self::new(HttpMethod::PostEmpty, segments)
    }

    /// A `POST` of `body` (JSON) to the fixed path `segments`; only [`GatewayClient::exchange`]
    /// sends it.
    pub(crate) fn post_json(segments: &[&'static str], body: Vec<u8>) -> Self {
        let mut request = Self::new(HttpMethod::PostJson, segments);
        request.body = JsonBody(body);
        request
    }

    /// A `DELETE` of the fixed path `segments`; only [`GatewayClient::exchange`] sends it.
    pub(crate) fn delete(segments: &[&'static str]) -> Self {
        Self::new(HttpMethod::Delete, segments)
    }

    fn new(method: HttpMethod, segments: &[&'static str]) -> Self {
        Self {
            method,
            fixed_segments: segments.len(),
            segments: segments
                .iter()
                .map(|segment| (*segment).to_owned())
                .collect(),
            query: Vec::new(),
            context: ErrorContext::default(),
            body: JsonBody::default(),
        }
    }

    /// Appends a variable path segment (an account id, a page number). It is checked when the
    /// URL is built: only `[A-Za-z0-9._-]`, at most 64 characters, never `.` or `..`.
    #[must_use]
    pub(crate) fn segment(mut self, value: impl Into<String>) -> Self {
        self.segments.push(value.into());
        self
    }

    /// Appends a query pair; the value is percent-encoded by the URL builder.
    #[must_use]
    pub(crate) fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// Says what the request is about, for mapping error bodies.
    #[must_use]
    pub(crate) fn about(mut self, context: ErrorContext) -> Self {
        self.context = context;
        self
    }

    /// The documented endpoint this request is ([`endpoints::find`]).
    ///
    /// # Errors
    /// A fault, before anything is sent, for a method and path the adapter may not call.
    pub(crate) fn endpoint(&self) -> Result<&'static Endpoint, GatewayFault> {
        endpoints::find(self.method, &self.segments).ok_or(GatewayFault::Broker(
            BrokerError::CapabilityUnavailable {
                capability: "an endpoint the Client Portal Web API does not document",
            },
        ))
    }

    /// The pacing key: the path without its query, every identifier written `*`, so a key
    /// never carries an account id (keys are kept in the shared pacing file). A segment added
    /// with [`ApiRequest::segment`] is kept only when it is a lower-case path word such as
    /// `positions`: account ids always carry capitals and digits, order and reply ids digits.
    pub(crate) fn path_key(&self) -> String {
        let mut key = String::new();
        for (index, segment) in self.segments.iter().enumerate() {
            key.push('/');
            let is_word = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_lowercase());
            if index < self.fixed_segments || is_word {
                key.push_str(segment);
            } else {
                key.push('*');
            }
        }
        key
    }
}

/// True for a path segment that cannot change the path's shape.
fn is_safe_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 64
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What one [`GatewayClient::exchange`] produced, before the caller maps it. Writes split their
/// failures by whether the order may exist, which the read mapping of [`GatewayClient::call`]
/// does not keep.
#[derive(Debug)]
pub(crate) enum Exchange {
    /// The request did not reach the order book: it was never sent (an unsafe URL, a local
    /// pacing refusal, a failed connection) or the gateway refused it before acting (401, a
    /// redirect to the login page, 429). The fault is what a read would report.
    NotSent(GatewayFault),
    /// The request may have reached the gateway, but no complete answer came back (a timeout,
    /// a broken connection, an oversize body, an unexpected redirect). The fault is what a read
    /// would report.
    Unanswered(GatewayFault),
    /// The gateway answered: its status, and its body as JSON (`Null` when empty, `None` when
    /// it is not JSON).
    Answered {
        /// The HTTP status.
        status: StatusCode,
        /// The body.
        body: Option<Value>,
    },
}

/// The gateway client. Cheap to share behind the broker; holds no session secrets (the gateway
/// keeps the session; no cookie store is kept here).
#[derive(Debug)]
pub(crate) struct GatewayClient {
    http: reqwest::Client,
    base_url: Url,
    login_url: String,
    max_body_bytes: usize,
    limiter: Limiter,
}

impl GatewayClient {
    /// Builds the client, re-checking the TLS policy on its own. `clock` stamps the shared
    /// pacing file when there is one.
    pub(crate) fn build(
        config: &ClientPortalConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClientPortalSetupError> {
        let base_url = &config.base_url;
        let is_https = match base_url.scheme() {
            "https" => true,
            "http" if is_loopback(base_url) => false,
            _ => {
                return Err(ClientPortalSetupError::BaseUrl {
                    reason: "scheme must be https (or http for a loopback host)",
                });
            }
        };
        if base_url.cannot_be_a_base() || base_url.host().is_none() {
            return Err(ClientPortalSetupError::BaseUrl {
                reason: "must be an absolute URL with a host",
            });
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(ClientPortalSetupError::BaseUrl {
                reason: "must not carry credentials",
            });
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(ClientPortalSetupError::BaseUrl {
                reason: "must not have a query or fragment",
            });
        }
        // Checked here as well as in the config loader: a library caller can build a config
        // by hand, and certificate checks must never be skipped for a remote host.
        let skip_certificate_checks = config.allow_insecure_tls_for_localhost;
        if skip_certificate_checks && !is_loopback(base_url) {
            return Err(ClientPortalSetupError::TlsBypassNonLocalhost);
        }
        if config.request_timeout.is_zero() || config.connect_timeout.is_zero() {
            return Err(ClientPortalSetupError::Limits {
                reason: "timeouts must be positive",
            });
        }
        if !PACING_MARGIN_PERCENT_RANGE.contains(&config.pacing_margin_percent) {
            return Err(ClientPortalSetupError::Limits {
                reason: "the pacing margin must be from 5 to 50 percent",
            });
        }
        if config.max_body_bytes == 0 {
            return Err(ClientPortalSetupError::Limits {
                reason: "the body size cap must be positive",
            });
        }
        let mut default_headers = HeaderMap::new();
        default_headers.insert(
            ACCEPT,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(default_headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // A redirect from the gateway means "log in"; it is reported, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(is_https)
            .danger_accept_invalid_certs(skip_certificate_checks)
            .build()
            .map_err(|_| ClientPortalSetupError::HttpClient)?;
        let mut login_url = base_url.clone();
        login_url.set_path("/");
        login_url.set_query(None);
        Ok(Self {
            http,
            base_url: base_url.clone(),
            login_url: login_url.to_string(),
            max_body_bytes: config.max_body_bytes,
            limiter: match &config.shared_state_dir {
                Some(dir) => Limiter::shared(
                    config.pacing.clone(),
                    config.pacing_margin_percent,
                    dir,
                    clock,
                ),
                None => Limiter::new(config.pacing.clone(), config.pacing_margin_percent),
            },
        })
    }

    /// The gateway's own login page: the origin root, e.g. `https://localhost:5000/`.
    pub(crate) fn login_url(&self) -> &str {
        &self.login_url
    }

    /// The pacing limiter (the history semaphore lives there).
    pub(crate) fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Builds the absolute URL: base path, then each segment, then the query.
    pub(crate) fn url_for(&self, request: &ApiRequest) -> Result<Url, GatewayFault> {
        if !request
            .segments
            .iter()
            .all(|segment| is_safe_segment(segment))
        {
            return Err(GatewayFault::invalid(
                "refused an identifier that is unsafe in a URL path",
            ));
        }
        let mut url = self.base_url.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| GatewayFault::invalid("the base URL cannot take a path"))?;
            segments.pop_if_empty();
            segments.extend(request.segments.iter().map(String::as_str));
        }
        if !request.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &request.query {
                pairs.append_pair(key, value);
            }
        }
        Ok(url)
    }

    /// Sends one paced request and returns its JSON body (`Null` for an empty 2xx body).
    ///
    /// A 2xx body that is an object with a non-empty `error` string is a failure, mapped by its
    /// text. Nothing is retried here.
    pub(crate) async fn call(&self, request: &ApiRequest) -> Result<Value, GatewayFault> {
        if request.endpoint()?.usage != Use::Read {
            // The read path never sends a write: writes need `exchange`'s unmapped outcome.
            return Err(GatewayFault::invalid("refused to send a write as a read"));
        }
        let url = self.url_for(request)?;
        self.limiter.acquire(&request.path_key()).await?;
        let response = self
            .builder(request, url)
            .send()
            .await
            .map_err(|error| GatewayFault::Broker(errors::transport(&error)))?;
        self.interpret(response, request).await
    }

    fn builder(&self, request: &ApiRequest, url: Url) -> reqwest::RequestBuilder {
        match request.method {
            HttpMethod::Get => self.http.get(url),
            // IBKR's edge rejects empty POSTs without `Content-Length: 0` (reference §1.1), and
            // hyper sends no length header for an empty body unless told to.
            HttpMethod::PostEmpty => self
                .http
                .post(url)
                .header(CONTENT_LENGTH, "0")
                .body(Vec::<u8>::new()),
            HttpMethod::PostJson => self
                .http
                .post(url)
                .header(CONTENT_TYPE, "application/json")
                .body(request.body.0.clone()),
            HttpMethod::Delete => self.http.delete(url),
        }
    }

    /// Sends one paced request of any method and reports what happened without mapping the
    /// answer, so that a write can tell "not sent" from "outcome unknown". A 429 still starts
    /// the penalty box. Nothing is retried here.
    pub(crate) async fn exchange(&self, request: &ApiRequest) -> Exchange {
        if let Err(fault) = request.endpoint() {
            return Exchange::NotSent(fault);
        }
        let url = match self.url_for(request) {
            Ok(url) => url,
            Err(fault) => return Exchange::NotSent(fault),
        };
        if let Err(error) = self.limiter.acquire(&request.path_key()).await {
            return Exchange::NotSent(GatewayFault::Broker(error));
        }
        let response = match self.builder(request, url).send().await {
            Ok(response) => response,
            Err(error) => {
                let fault = GatewayFault::Broker(errors::transport(&error));
                // Only a failure to connect (or to build the request) proves that nothing
                // reached the gateway; a timeout or a broken connection may come after it acted.
                return if error.is_connect() || error.is_builder() {
                    Exchange::NotSent(fault)
                } else {
                    Exchange::Unanswered(fault)
                };
            }
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Exchange::NotSent(GatewayFault::NoSession);
        }
        if status.is_redirection() {
            return if is_login_redirect(response.headers()) {
                Exchange::NotSent(GatewayFault::NoSession)
            } else {
                Exchange::Unanswered(GatewayFault::invalid(
                    "the gateway answered with an unexpected redirect",
                ))
            };
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let penalty = self
                .limiter
                .penalize(&request.path_key(), retry_after(response.headers()))
                .await;
            return Exchange::NotSent(GatewayFault::RateLimited { penalty });
        }
        let body = match self.read_capped(response).await {
            Ok(body) if body.iter().all(u8::is_ascii_whitespace) => Some(Value::Null),
            Ok(body) => serde_json::from_slice::<Value>(&body).ok(),
            Err(fault) if status.is_success() => return Exchange::Unanswered(fault),
            // An unreadable error body only loses its text; the status still maps.
            Err(_) => None,
        };
        Exchange::Answered { status, body }
    }

    async fn interpret(
        &self,
        response: Response,
        request: &ApiRequest,
    ) -> Result<Value, GatewayFault> {
        let context = request.context;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(GatewayFault::NoSession);
        }
        if status.is_redirection() {
            return Err(if is_login_redirect(response.headers()) {
                GatewayFault::NoSession
            } else {
                GatewayFault::invalid("the gateway answered with an unexpected redirect")
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let penalty = self
                .limiter
                .penalize(&request.path_key(), retry_after(response.headers()))
                .await;
            return Err(GatewayFault::RateLimited { penalty });
        }
        if status == StatusCode::LOCKED {
            // `/fyi/unreadnumber` polled too often: a pacing refusal without a penalty box.
            return Err(GatewayFault::Broker(super::pacing::rate_limited(
                Duration::from_secs(60),
            )));
        }
        if !status.is_success() {
            // An unreadable error body only loses its text; the status still maps.
            let text = self
                .read_capped(response)
                .await
                .ok()
                .and_then(|body| serde_json::from_slice::<Value>(&body).ok())
                .and_then(|value| error_text(&value).map(str::to_owned));
            return Err(errors::from_status(
                status.as_u16(),
                text.as_deref(),
                context,
            ));
        }
        let body = self.read_capped(response).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        let value: Value = serde_json::from_slice(&body)
            .map_err(|_| GatewayFault::invalid("the gateway answered with malformed JSON"))?;
        if let Some(text) = error_text(&value) {
            return Err(errors::from_error_body(text, context));
        }
        Ok(value)
    }

    /// Reads the body chunk by chunk, refusing it once it passes the cap.
    async fn read_capped(&self, mut response: Response) -> Result<Vec<u8>, GatewayFault> {
        const OVERSIZE: &str = "the gateway's answer exceeds the size cap";
        let cap = self.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > cap as u64)
        {
            return Err(GatewayFault::invalid(OVERSIZE));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| GatewayFault::Broker(errors::transport(&error)))?
        {
            if body.len().saturating_add(chunk.len()) > cap {
                return Err(GatewayFault::invalid(OVERSIZE));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// True when a redirect points at the gateway's login (the session is gone).
fn is_login_redirect(headers: &HeaderMap) -> bool {
    headers
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|location| {
            let location = location.to_ascii_lowercase();
            location.contains("sso") || location.contains("login")
        })
}

/// The non-empty `error` string of a top-level object, if any (`"error": null` is no error).
pub(crate) fn error_text(value: &Value) -> Option<&str> {
    value
        .as_object()?
        .get("error")?
        .as_str()
        .filter(|text| !text.trim().is_empty())
}

/// `Retry-After` in seconds (1 to 3600); an HTTP date or garbage counts as absent.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.max(1)).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::outbound::client_portal::ClientPortalConfig;

    fn client(base: &str) -> GatewayClient {
        GatewayClient::build(
            &ClientPortalConfig::new(Url::parse(base).unwrap()),
            Arc::new(crate::adapters::outbound::clock::FixedClock::new(
                chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            )),
        )
        .unwrap()
    }

    /// A listener that counts the connections it accepts, so a test can show nothing was sent.
    async fn counting_listener() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1/api", listener.local_addr().unwrap());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((_stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        (base, accepted)
    }

    #[tokio::test]
    async fn an_undocumented_endpoint_is_refused_before_anything_is_sent() {
        let (base, accepted) = counting_listener().await;
        let client = client(&base);
        for request in [
            ApiRequest::get(&["iserver", "news"]),
            ApiRequest::get(&["iserver", "marketdata", "depth"]).query("conid", "1"),
            ApiRequest::get(&["portfolio"])
                .segment("DU1")
                .segment("transfers"),
        ] {
            let fault = client.call(&request).await.unwrap_err();
            assert!(
                matches!(
                    fault,
                    GatewayFault::Broker(BrokerError::CapabilityUnavailable { .. })
                ),
                "{fault:?}"
            );
            assert!(matches!(
                client.exchange(&request).await,
                Exchange::NotSent(_)
            ));
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn the_read_path_refuses_a_write_endpoint() {
        let (base, accepted) = counting_listener().await;
        let client = client(&base);
        let whatif = ApiRequest::post_json(&["iserver", "account"], b"{}".to_vec())
            .segment("DU1")
            .segment("orders")
            .segment("whatif");
        let cancel = ApiRequest::delete(&["iserver", "account"])
            .segment("DU1")
            .segment("order")
            .segment("7");
        for request in [whatif, cancel] {
            assert!(client.call(&request).await.is_err());
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn urls_are_built_segment_by_segment() {
        let client = client("https://localhost:5000/v1/api");
        let request = ApiRequest::get(&["portfolio"])
            .segment("DU1234567")
            .segment("positions")
            .segment("0")
            .query("sort", "name");
        assert_eq!(
            client.url_for(&request).unwrap().as_str(),
            "https://localhost:5000/v1/api/portfolio/DU1234567/positions/0?sort=name"
        );
        assert_eq!(request.path_key(), "/portfolio/*/positions/*");
        let fixed_words = ApiRequest::get(&["iserver", "account"])
            .segment("U12345")
            .segment("orders")
            .segment("whatif");
        assert_eq!(fixed_words.path_key(), "/iserver/account/*/orders/whatif");
        let trailing = self::client("https://localhost:5000/v1/api/");
        assert_eq!(
            trailing
                .url_for(&ApiRequest::get(&["tickle"]))
                .unwrap()
                .as_str(),
            "https://localhost:5000/v1/api/tickle"
        );
        assert_eq!(client.login_url(), "https://localhost:5000/");
    }

    #[test]
    fn query_values_cannot_break_out() {
        let client = client("https://localhost:5000/v1/api");
        let request =
            ApiRequest::get(&["iserver", "secdef", "search"]).query("symbol", "A&B=C#D /E");
        let url = client.url_for(&request).unwrap();
        assert_eq!(url.path(), "/v1/api/iserver/secdef/search");
        let pairs: Vec<_> = url.query_pairs().collect();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].1, "A&B=C#D /E");
        assert_eq!(url.fragment(), None);
    }

    #[test]
    fn unsafe_segments_are_refused() {
        let client = client("https://localhost:5000/v1/api");
        for bad in [
            "..",
            ".",
            "",
            "a/b",
            "a?b",
            "a#b",
            "a%2F",
            "a b",
            &"x".repeat(65),
        ] {
            let request = ApiRequest::get(&["portfolio"]).segment(bad);
            assert!(client.url_for(&request).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retry_after_is_read_as_bounded_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        headers.insert(RETRY_AFTER, "0".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(1)));
        headers.insert(RETRY_AFTER, "99999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn error_objects_are_found_only_at_the_top_level() {
        let value: Value = serde_json::from_str(r#"{"error":"no session"}"#).unwrap();
        assert_eq!(error_text(&value), Some("no session"));
        let value: Value =
            serde_json::from_str(r#"{"error":null,"hmds":{"error":"no bridge"}}"#).unwrap();
        assert_eq!(error_text(&value), None);
        let value: Value = serde_json::from_str(r#"[{"error":"x"}]"#).unwrap();
        assert_eq!(error_text(&value), None);
    }
}
