//! The bearer-token check in front of `/mcp`: an OAuth 2.1 resource server's half of the
//! exchange (RFC 6750 challenges, RFC 9728 metadata pointer).
//!
//! Only `Authorization: Bearer <jwt>` is read; a token in the query or a cookie is never
//! looked at. The outcomes:
//!
//! | request                                   | answer | `WWW-Authenticate`                                              |
//! |-------------------------------------------|--------|-----------------------------------------------------------------|
//! | no bearer token                           | 401    | `Bearer resource_metadata="…", scope="…"`                      |
//! | a token that does not verify              | 401    | the same, plus `error="invalid_token"`                         |
//! | the issuer's keys cannot be had           | 503    | none: `AUTH_JWKS_UNAVAILABLE` in the body, `Retry-After`       |
//! | a verified subject over its request rate  | 429    | none: `HTTP_RATE_LIMITED`, `Retry-After`                         |
//! | `tools/call` of a tool the token may not  | 403    | `Bearer error="insufficient_scope", scope="<needed>", resource_metadata="…"` |
//! | anything else                             | the MCP service, with the remote [`Principal`] in the request's extensions |
//!
//! Every refusal is one audit event (reason and code, the subject hash when known); an
//! accepted token is one `auth accepted` event the first time this process sees it. Nothing
//! recorded or logged carries the token, its `jti`, the header or the raw subject.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::limits::{SubjectLimiter, too_many_requests};
use super::token::{TokenError, TokenVerifier, VerifiedPrincipal};
use crate::adapters::inbound::mcp::McpServer;
use crate::app::audited::{AuthOutcome, CallContext, CallSpec};
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::principal::Principal;
use crate::domain::audit::{Durability, sha256_hex};
use crate::domain::error_code::ErrorCode;
use crate::domain::scope::Scope;

/// The largest `/mcp` body read to find the tool a `tools/call` names.
pub const MAX_PEEKED_BODY_BYTES: usize = 1024 * 1024;
/// How many accepted tokens are remembered, so each is audited once per process.
pub const SEEN_TOKENS_CAPACITY: usize = 10_000;
/// The retry advice when the issuer's keys cannot be had, in seconds.
pub const JWKS_RETRY_AFTER_SECONDS: u64 = 30;

/// The reason recorded when no bearer token was presented.
const MISSING_TOKEN: &str = "missing_token";
/// The reason recorded when a verified subject went over its request rate.
const RATE_LIMITED: &str = "rate_limited";

/// What the check needs, shared by every request.
#[derive(Clone)]
pub struct AuthState {
    pub(crate) gateway: Gateway,
    pub(crate) mcp: McpServer,
    pub(crate) verifier: Arc<TokenVerifier>,
    pub(crate) challenge: Arc<Challenge>,
    pub(crate) seen: Arc<SeenTokens>,
    /// The per-subject request limit, keyed on the verified subject hash (never a header).
    pub(crate) subjects: Arc<SubjectLimiter>,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

/// The parts of every challenge: where the metadata is and which scopes exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The absolute URL of the path-suffixed protected-resource metadata.
    pub resource_metadata: String,
    /// The allowed scopes, space-separated.
    pub scope: String,
}

impl Challenge {
    /// `Bearer resource_metadata="…", scope="…"`, with `error="invalid_token"` when a token
    /// was presented and refused.
    pub fn unauthorized(&self, invalid_token: bool) -> String {
        let error = if invalid_token {
            "error=\"invalid_token\", "
        } else {
            ""
        };
        format!(
            "Bearer {error}resource_metadata=\"{}\", scope=\"{}\"",
            self.resource_metadata, self.scope
        )
    }

    /// `Bearer error="insufficient_scope", scope="<needed>", resource_metadata="…"`.
    pub fn insufficient_scope(&self, needed: Scope) -> String {
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\"",
            needed.as_str(),
            self.resource_metadata
        )
    }
}

/// The tokens already audited as accepted, by token-id HMAC (or a hash of the token when it
/// has no `jti`), oldest evicted first past [`SEEN_TOKENS_CAPACITY`].
#[derive(Debug)]
pub struct SeenTokens {
    capacity: usize,
    // A std mutex: never held across an await.
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl SeenTokens {
    /// An empty set holding at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// Remembers `key`; true when it was not remembered yet.
    fn insert(&self, key: &str) -> bool {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if set.contains(key) {
            return false;
        }
        while set.len() >= self.capacity {
            match order.pop_front() {
                Some(oldest) => {
                    set.remove(&oldest);
                }
                None => break,
            }
        }
        set.insert(key.to_owned());
        order.push_back(key.to_owned());
        true
    }

    /// Forgets `key` (its acceptance could not be audited, so the next use tries again).
    fn forget(&self, key: &str) {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if set.remove(key) {
            order.retain(|kept| kept != key);
        }
    }
}

/// The middleware: verifies the bearer token, audits the outcome, refuses a `tools/call` the
/// token's scopes do not cover, and hands the request on with the remote [`Principal`].
pub async fn require_bearer(
    State(state): State<AuthState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer_token(request.headers()) else {
        return deny_token(&state, None).await;
    };
    let verified = match state.verifier.verify(token).await {
        Ok(verified) => verified,
        Err(error) => return deny_token(&state, Some(error)).await,
    };
    let seen_key = verified
        .token_id_hmac
        .clone()
        .unwrap_or_else(|| sha256_hex(token.as_bytes()));
    let principal = Principal::remote(verified.subject_hash.clone(), verified.scopes.clone());
    if let Err(retry) = state.subjects.check(&verified.subject_hash) {
        // Recorded like any refusal, under the subject it names; a subject that keeps going
        // writes at most one row per refused request, and only once authenticated.
        let context = CallContext::mcp_http(principal.clone());
        let outcome = AuthOutcome::Denied {
            code: ErrorCode::HttpRateLimited,
            reason: RATE_LIMITED,
            http_status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
        };
        let _ = state.gateway.record_auth(&context, outcome).await;
        return too_many_requests(retry);
    }
    if let Err(response) = audit_first_use(&state, &principal, &verified, &seen_key).await {
        return response;
    }
    let request = if request.method() == Method::POST {
        match refuse_out_of_scope(&state, &principal, request).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    } else {
        request
    };
    let mut request = request;
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The bearer token of `Authorization`, when there is exactly one such header and it uses
/// the `Bearer` scheme with a non-empty token.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

/// Audits and answers a missing or refused token.
async fn deny_token(state: &AuthState, error: Option<TokenError>) -> Response {
    let context = CallContext::mcp_http(Principal::remote_unverified());
    let (status, code, reason) = match &error {
        None => (
            StatusCode::UNAUTHORIZED,
            ErrorCode::AuthTokenInvalid,
            MISSING_TOKEN,
        ),
        Some(TokenError::KeysUnavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::AuthJwksUnavailable,
            TokenError::KeysUnavailable.reason(),
        ),
        Some(other) => (StatusCode::UNAUTHORIZED, other.code(), other.reason()),
    };
    let outcome = AuthOutcome::Denied {
        code,
        reason,
        http_status: status.as_u16(),
    };
    // The refusal stands whether or not it could be recorded (`record_auth` logs a failure).
    let _ = state.gateway.record_auth(&context, outcome).await;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let body = json!({
            "error": {
                "code": code.as_str(),
                "message": "the authorization server's signing keys are unavailable; no token can be verified now",
                "retryable": true,
                "retry_after_seconds": JWKS_RETRY_AFTER_SECONDS,
            }
        });
        let mut response = (status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(JWKS_RETRY_AFTER_SECONDS));
        return response;
    }
    let challenge = state.challenge.unauthorized(error.is_some());
    let body = json!({
        "error": {
            "code": code.as_str(),
            "message": "a valid bearer token is required",
            "reason": reason,
        }
    });
    with_challenge((status, axum::Json(body)).into_response(), &challenge)
}

/// Audits the first use of an accepted token in this process. A token whose acceptance
/// cannot be recorded is not served.
async fn audit_first_use(
    state: &AuthState,
    principal: &Principal,
    verified: &VerifiedPrincipal,
    seen_key: &str,
) -> Result<(), Response> {
    if !state.seen.insert(seen_key) {
        return Ok(());
    }
    let context = CallContext::mcp_http(principal.clone());
    let outcome = AuthOutcome::Accepted {
        token_id_hmac: verified.token_id_hmac.clone(),
    };
    match state.gateway.record_auth(&context, outcome).await {
        Ok(()) => Ok(()),
        Err(error) => {
            state.seen.forget(seen_key);
            Err(gateway_error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &error,
            ))
        }
    }
}

/// Reads the body (up to [`MAX_PEEKED_BODY_BYTES`]); a `tools/call` naming a tool whose scope
/// the principal lacks is audited and refused with 403, anything else is rebuilt unchanged.
async fn refuse_out_of_scope(
    state: &AuthState,
    principal: &Principal,
    request: Request,
) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, MAX_PEEKED_BODY_BYTES)
        .await
        .map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(json!({"error": {"code": ErrorCode::InputInvalid.as_str(),
                    "message": "the request body is too large"}})),
            )
                .into_response()
        })?;
    if let Some((tool, scope, arguments)) = out_of_scope_call(&state.mcp, principal, &bytes) {
        let context = CallContext::mcp_http(principal.clone()).with_tool(tool);
        let spec = CallSpec {
            operation: tool.to_owned(),
            scope: Some(scope),
            input: arguments,
            durability: Durability::Relaxed,
            input_from_gateway: false,
        };
        let error = state
            .gateway
            .refuse(&context, spec, GatewayError::MissingScope { scope })
            .await;
        if let GatewayError::Audit(_) = error {
            return Err(gateway_error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &error,
            ));
        }
        let challenge = state.challenge.insufficient_scope(scope);
        let response = (StatusCode::FORBIDDEN, axum::Json(error_body(&error))).into_response();
        return Err(with_challenge(response, &challenge));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The first `tools/call` in `body` (one message or a batch) naming a tool `principal` may
/// not call: the tool, the scope it needs, and the call's arguments.
fn out_of_scope_call(
    mcp: &McpServer,
    principal: &Principal,
    body: &[u8],
) -> Option<(&'static str, Scope, Value)> {
    let message: Value = serde_json::from_slice(body).ok()?;
    let messages = match message {
        Value::Array(batch) => batch,
        one => vec![one],
    };
    messages.into_iter().find_map(|message| {
        if message.get("method").and_then(Value::as_str) != Some("tools/call") {
            return None;
        }
        let params = message.get("params")?;
        let name = params.get("name").and_then(Value::as_str)?;
        let (tool, scope) = mcp.missing_scope(principal, name)?;
        let arguments = params.get("arguments").cloned().unwrap_or(Value::Null);
        Some((tool, scope, arguments))
    })
}

fn error_body(error: &GatewayError) -> Value {
    json!({
        "error": {
            "code": error.code().as_str(),
            "message": error.to_string(),
        }
    })
}

fn gateway_error_response(status: StatusCode, error: &GatewayError) -> Response {
    (status, axum::Json(error_body(error))).into_response()
}

fn with_challenge(mut response: Response, challenge: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_bearer_header_is_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer abc.def.ghi"),
        );
        assert_eq!(bearer_token(&headers), Some("abc.def.ghi"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYXNz"),
        );
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn the_seen_set_is_bounded_and_evicts_the_oldest() {
        let seen = SeenTokens::new(2);
        assert!(seen.insert("a"));
        assert!(!seen.insert("a"));
        assert!(seen.insert("b"));
        assert!(seen.insert("c"));
        // "a" was evicted to make room for "c".
        assert!(seen.insert("a"));
        seen.forget("a");
        assert!(seen.insert("a"));
    }

    #[test]
    fn challenges_name_the_metadata_and_scopes() {
        let challenge = Challenge {
            resource_metadata: "https://gw.example/.well-known/oauth-protected-resource/mcp"
                .to_owned(),
            scope: "ibkr:accounts:read ibkr:health:read".to_owned(),
        };
        assert_eq!(
            challenge.unauthorized(false),
            "Bearer resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp\", scope=\"ibkr:accounts:read ibkr:health:read\""
        );
        assert!(
            challenge
                .unauthorized(true)
                .starts_with("Bearer error=\"invalid_token\", resource_metadata=")
        );
        assert_eq!(
            challenge.insufficient_scope(Scope::PositionsRead),
            "Bearer error=\"insufficient_scope\", scope=\"ibkr:positions:read\", resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp\""
        );
    }
}
