//! Remote MCP over Streamable HTTP, driven in process through the axum router (no socket):
//! the bearer-token challenges and metadata field by field, each token seeing exactly the
//! tools its scopes allow in both protocol eras, 403 for a hidden tool, 503 when the issuer's
//! keys are down, no MCP session ever, a remote principal that is an agent (no kill-switch
//! allow, no live approval unless configured), audit rows that name the subject only by its
//! hash, and the binary refusing `--transport http` while remote MCP is off.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::RsaKeyPair;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use ibkr_agent_gateway::adapters::inbound::mcp;
use ibkr_agent_gateway::adapters::inbound::mcp_http::jwks::{JwksCache, JwksConfig};
use ibkr_agent_gateway::adapters::inbound::mcp_http::server::router;
use ibkr_agent_gateway::adapters::inbound::mcp_http::token::{
    TokenVerifier, VerifierConfig, hmac_hex,
};
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::config::Settings;
use ibkr_agent_gateway::app::order_input::RawOrderPreview;
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use ibkr_agent_gateway::domain::secret::SecretBytes;
use serde_json::{Value, json};
use tower::ServiceExt;
use url::Url;
use wiremock::MockServer;

use crate::cli::Sandbox;
use crate::live_trading::{LIVE, LiveOptions, agent, checked, live, live_settings};
use crate::support::tokens::{jwk, now, rsa_key, serve_jwks, token_with};

const ISSUER: &str = "https://issuer.example/";
const RESOURCE: &str = "https://gateway.example/mcp";
const HOST: &str = "gateway.example";
const METADATA_URL: &str = "https://gateway.example/.well-known/oauth-protected-resource/mcp";
const SUBJECT: &str = "alice@example.com";
const JTI: &str = "jti-8f1c2b";
const SUBJECT_KEY: &[u8] = b"subject-hash-key-for-http-tests!";
const TOKEN_ID_KEY: &[u8] = b"token-id-hmac-key-for-http-test!";
const HANDSHAKE: &str = "2025-06-18";
const STATELESS: &str = "2026-07-28";

/// The scopes a remote token may be granted here, space-separated as challenges show them.
fn allowed() -> ScopeSet {
    [
        Scope::HealthRead,
        Scope::AccountsRead,
        Scope::PositionsRead,
        Scope::OrdersPreview,
        Scope::ApprovalsCreate,
        Scope::KillSwitch,
    ]
    .into_iter()
    .collect()
}

fn settings() -> Settings {
    let mut settings = Settings::embedded_defaults();
    settings.mcp_toolsets = mcp_toolsets_all();
    settings.remote_mcp.enabled = true;
    settings.remote_mcp.safety_enabled = true;
    settings.remote_mcp.resource = Some(Url::parse(RESOURCE).unwrap());
    settings.remote_mcp.issuer = Some(Url::parse(ISSUER).unwrap());
    settings.remote_mcp.allowed_scopes = allowed();
    settings.remote_mcp.audiences = vec![RESOURCE.to_owned()];
    settings
}

fn mcp_toolsets_all() -> std::collections::BTreeSet<ibkr_agent_gateway::app::config::Toolset> {
    ibkr_agent_gateway::app::config::Toolset::ALL
        .into_iter()
        .collect()
}

fn verifier(jwks: &MockServer) -> Arc<TokenVerifier> {
    verifier_at(&jwks.uri())
}

/// A verifier reading the JWKS at `{base}/jwks`.
fn verifier_at(base: &str) -> Arc<TokenVerifier> {
    let mut config = JwksConfig::new(Url::parse(&format!("{base}/jwks")).unwrap());
    config.allow_insecure_loopback = true;
    config.timeout = Duration::from_secs(2);
    Arc::new(
        TokenVerifier::new(
            VerifierConfig {
                issuer: ISSUER.to_owned(),
                resource: RESOURCE.to_owned(),
                audiences: Vec::new(),
                allowed_scopes: allowed(),
                clock_skew_seconds: 30,
                token_id_secret: SecretBytes::new(TOKEN_ID_KEY.to_vec()),
                subject_hash_key: SecretBytes::new(SUBJECT_KEY.to_vec()),
            },
            JwksCache::new(config).unwrap(),
        )
        .unwrap(),
    )
}

/// A router over `gateway`, an issuer key "k1" served as a JWKS, and the key to sign with.
struct Remote {
    app: Router,
    key: RsaKeyPair,
    audit: Arc<MemoryAuditLog>,
    _jwks: MockServer,
}

async fn remote_over(gateway: Gateway, audit: Arc<MemoryAuditLog>) -> Remote {
    remote_with(gateway, audit, &settings()).await
}

async fn remote_with(gateway: Gateway, audit: Arc<MemoryAuditLog>, settings: &Settings) -> Remote {
    let key = rsa_key();
    let jwks = serve_jwks(&[jwk(&key, "k1")]).await;
    let app = router(gateway, settings, verifier(&jwks));
    Remote {
        app,
        key,
        audit,
        _jwks: jwks,
    }
}

/// A gateway on the fake broker granting every read scope and the order workflow's.
async fn remote() -> Remote {
    let granted: ScopeSet = Scope::ALL.iter().copied().collect();
    let (gateway, audit) = crate::support::fake_gateway(9, granted);
    remote_over(gateway, audit).await
}

fn claims(scope: &str) -> Value {
    json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": SUBJECT, "exp": now() + 600,
        "iat": now(), "jti": JTI, "scope": scope,
    })
}

impl Remote {
    fn token(&self, scope: &str) -> String {
        token_with(&self.key, "k1", &claims(scope))
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response: Response<Body> = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        assert!(
            !headers.contains_key("mcp-session-id"),
            "a session id was handed out: {headers:?}"
        );
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }

    /// POSTs one JSON-RPC request to `/mcp`.
    async fn rpc(
        &self,
        token: Option<&str>,
        version: Option<&str>,
        method: &str,
        params: Value,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut request = Request::post("/mcp")
            .header("host", HOST)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(version) = version {
            request = request.header("mcp-protocol-version", version);
            if version == STATELESS {
                request = request.header("mcp-method", method);
                if let Some(name) = params.get("name").and_then(Value::as_str) {
                    request = request.header("mcp-name", name);
                }
            }
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn get(&self, path: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let request = Request::get(path).header("host", HOST).body(Body::empty());
        self.send(request.unwrap()).await
    }

    /// The tool names `token` sees in `tools/list`, in the handshake era or the stateless one.
    async fn tool_names(&self, token: &str, era: &str) -> Vec<String> {
        let (status, _, body) = if era == STATELESS {
            self.rpc(
                Some(token),
                Some(STATELESS),
                "tools/list",
                json!({"_meta": modern_meta()}),
            )
            .await
        } else {
            let (status, _, init) = self
                .rpc(Some(token), None, "initialize", initialize_params())
                .await;
            assert_eq!(status, StatusCode::OK, "{init}");
            assert_eq!(init["result"]["protocolVersion"], HANDSHAKE, "{init}");
            self.rpc(Some(token), Some(HANDSHAKE), "tools/list", json!({}))
                .await
        };
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut names: Vec<String> = body["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tool list: {body}"))
            .iter()
            .map(|tool| tool["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    /// Calls `tool` in the handshake era; the JSON-RPC answer.
    async fn call(&self, token: &str, tool: &str, arguments: Value) -> (StatusCode, Value) {
        let (status, _, body) = self
            .rpc(
                Some(token),
                Some(HANDSHAKE),
                "tools/call",
                json!({"name": tool, "arguments": arguments}),
            )
            .await;
        (status, body)
    }

    /// Every audit row as text, for scanning.
    fn audit_text(&self) -> String {
        format!("{:?}", self.audit.records())
    }
}

fn initialize_params() -> Value {
    json!({
        "protocolVersion": HANDSHAKE,
        "capabilities": {},
        "clientInfo": {"name": "contract-test", "version": "1.0.0"}
    })
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "contract-test", "version": "1.0.0"}
    })
}

/// The MCP tools a caller holding `scopes` may see (every toolset is on).
fn expected_tools(scopes: &[Scope]) -> Vec<String> {
    let mut names: Vec<String> = mcp::tool_surface()
        .as_array()
        .unwrap()
        .iter()
        .filter(|tool| {
            scopes
                .iter()
                .any(|scope| tool["scope"].as_str() == Some(scope.as_str()))
        })
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The `WWW-Authenticate` header as a map of its parameters, after the `Bearer` scheme.
fn challenge(headers: &axum::http::HeaderMap) -> std::collections::BTreeMap<String, String> {
    let value = headers
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("no challenge: {headers:?}"))
        .to_str()
        .unwrap();
    let params = value
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("not a Bearer challenge: {value}"));
    let pattern = regex::Regex::new(r#"([a-z_]+)="([^"]*)""#).unwrap();
    pattern
        .captures_iter(params)
        .map(|capture| (capture[1].to_owned(), capture[2].to_owned()))
        .collect()
}

fn allowed_scope_text() -> String {
    allowed().to_string()
}

#[tokio::test]
async fn a_request_without_a_valid_token_gets_a_401_challenge_naming_the_metadata() {
    let remote = remote().await;
    let mut expired = claims("ibkr:health:read");
    expired["exp"] = json!(now() - 3600);
    let mut foreign = claims("ibkr:health:read");
    foreign["aud"] = json!("https://elsewhere.example/mcp");
    let cases = [
        ("missing", None, None),
        ("garbage", Some("not-a-jwt".to_owned()), Some("malformed")),
        (
            "expired",
            Some(token_with(&remote.key, "k1", &expired)),
            Some("expired"),
        ),
        (
            "wrong audience",
            Some(token_with(&remote.key, "k1", &foreign)),
            Some("wrong_audience"),
        ),
    ];
    for (case, token, reason) in cases {
        let (status, headers, body) = remote
            .rpc(token.as_deref(), None, "initialize", initialize_params())
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        let params = challenge(&headers);
        assert_eq!(params["resource_metadata"], METADATA_URL, "{case}");
        assert_eq!(params["scope"], allowed_scope_text(), "{case}");
        match reason {
            None => assert!(!params.contains_key("error"), "{case}: {params:?}"),
            Some(reason) => {
                assert_eq!(params["error"], "invalid_token", "{case}");
                assert_eq!(body["error"]["reason"], reason, "{case}: {body}");
            }
        }
        assert_eq!(params.len(), if reason.is_some() { 3 } else { 2 }, "{case}");
        assert_eq!(body["error"]["code"], "AUTH_TOKEN_INVALID", "{case}");
    }
    // Each refusal is one audit event, with the reason and no token.
    let denials: Vec<_> = remote
        .audit
        .records()
        .into_iter()
        .filter(|record| record.columns.operation == "auth denied")
        .collect();
    assert_eq!(denials.len(), 4);
    for record in &denials {
        assert_eq!(record.columns.actor, "remote_subject:unverified");
        assert_eq!(record.columns.surface, "mcp_http");
        assert_eq!(record.columns.decision, "deny");
        assert_eq!(
            record.columns.error_code.as_deref(),
            Some("AUTH_TOKEN_INVALID")
        );
    }
    assert!(denials[2].columns.metadata.contains("\"expired\""));
    // A token in the query string is not a token.
    let request = Request::post(format!(
        "/mcp?access_token={}",
        remote.token("ibkr:health:read")
    ))
    .header("host", HOST)
    .header("content-type", "application/json")
    .header("accept", "application/json, text/event-stream")
    .body(Body::from(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize_params()})
            .to_string(),
    ))
    .unwrap();
    let (status, _, _) = remote.send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_metadata_is_served_at_both_paths_field_by_field_without_a_token() {
    let remote = remote().await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, _, document) = remote.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let fields = document.as_object().unwrap();
        assert_eq!(fields.len(), 4, "{path}: {document}");
        assert_eq!(document["resource"], RESOURCE);
        assert_eq!(document["authorization_servers"], json!([ISSUER]));
        assert_eq!(
            document["scopes_supported"],
            json!(
                allowed()
                    .iter()
                    .map(|scope| scope.as_str())
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }
}

#[tokio::test]
async fn each_token_sees_exactly_its_tools_in_both_eras() {
    let remote = remote().await;
    let cases: [&[Scope]; 3] = [
        &[Scope::HealthRead],
        &[Scope::AccountsRead, Scope::PositionsRead],
        &[Scope::HealthRead, Scope::AccountsRead, Scope::PositionsRead],
    ];
    for scopes in cases {
        let text: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
        // A scope the deployment does not allow for remote tokens is dropped.
        let token = remote.token(&format!("{} ibkr:audit:read", text.join(" ")));
        let expected = expected_tools(scopes);
        assert!(!expected.is_empty());
        for era in [HANDSHAKE, STATELESS] {
            assert_eq!(
                remote.tool_names(&token, era).await,
                expected,
                "{text:?} in {era}"
            );
        }
    }
    // The stateless era's discovery works behind the token check too.
    let token = remote.token("ibkr:health:read");
    let (status, _, discovered) = remote
        .rpc(
            Some(&token),
            Some(STATELESS),
            "server/discover",
            json!({"_meta": modern_meta()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{discovered}");
    assert!(
        discovered["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!(STATELESS)),
        "{discovered}"
    );
    // The stateless era answers with a private list.
    let token = remote.token("ibkr:health:read");
    let (_, _, list) = remote
        .rpc(
            Some(&token),
            Some(STATELESS),
            "tools/list",
            json!({"_meta": modern_meta()}),
        )
        .await;
    assert_eq!(list["result"]["cacheScope"], "private", "{list}");
    // A call in each era runs the tool.
    let (status, called) = remote.call(&token, "ibkr_health", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(called["result"]["isError"], json!(false), "{called}");
    let (status, _, called) = remote
        .rpc(
            Some(&token),
            Some(STATELESS),
            "tools/call",
            json!({"_meta": modern_meta(), "name": "ibkr_health", "arguments": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(called["result"]["isError"], json!(false), "{called}");
}

#[tokio::test]
async fn a_hidden_tool_call_gets_403_insufficient_scope_naming_the_needed_scope() {
    let remote = remote().await;
    let token = remote.token("ibkr:health:read");
    let (status, headers, body) = remote
        .rpc(
            Some(&token),
            Some(HANDSHAKE),
            "tools/call",
            json!({"name": "ibkr_positions_list", "arguments": {"account_id": "DU1234567"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let params = challenge(&headers);
    assert_eq!(params["error"], "insufficient_scope");
    assert_eq!(params["scope"], "ibkr:positions:read");
    assert_eq!(params["resource_metadata"], METADATA_URL);
    assert_eq!(params.len(), 3);
    assert_eq!(body["error"]["code"], "AUTH_MISSING_SCOPE");
    let denied = remote
        .audit
        .records()
        .into_iter()
        .find(|record| record.columns.operation == "ibkr_positions_list")
        .unwrap();
    assert_eq!(denied.columns.status, "denied_scope");
    assert_eq!(
        denied.columns.actor,
        format!("remote_subject:{}", hmac_hex(SUBJECT_KEY, SUBJECT).unwrap())
    );
    // The account id in the arguments never reaches the row raw.
    assert!(!remote.audit_text().contains("DU1234567"));
}

#[tokio::test]
async fn an_unreachable_jwks_fails_closed_with_503() {
    let (gateway, audit) = crate::support::fake_gateway(9, ScopeSet::read_only_defaults());
    let key = rsa_key();
    // A loopback port nothing listens on: the keys cannot be fetched.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = router(gateway, &settings(), verifier_at(&url));
    let token = token_with(&key, "k1", &claims("ibkr:health:read"));
    let remote = Remote {
        app,
        key,
        audit,
        _jwks: MockServer::start().await,
    };
    let (status, headers, body) = remote
        .rpc(Some(&token), None, "initialize", initialize_params())
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "AUTH_JWKS_UNAVAILABLE");
    assert_eq!(body["error"]["retryable"], true);
    assert_eq!(headers["retry-after"], "30");
    let row = remote.audit.records().pop().unwrap();
    assert_eq!(row.columns.operation, "auth denied");
    assert_eq!(
        row.columns.error_code.as_deref(),
        Some("AUTH_JWKS_UNAVAILABLE")
    );
    assert!(row.columns.metadata.contains("jwks_unavailable"));
}

#[tokio::test]
async fn audit_rows_name_the_subject_by_its_hash_never_the_token_subject_or_jti() {
    let remote = remote().await;
    let token = remote.token("ibkr:health:read");
    // Twice: the acceptance is recorded once per token per process.
    for _ in 0..2 {
        let (status, _) = remote.call(&token, "ibkr_health", json!({})).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _, _) = remote
        .rpc(
            Some(&token),
            Some(HANDSHAKE),
            "tools/call",
            json!({"name": "ibkr_accounts_list", "arguments": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let hash = hmac_hex(SUBJECT_KEY, SUBJECT).unwrap();
    let records = remote.audit.records();
    let accepted: Vec<_> = records
        .iter()
        .filter(|record| record.columns.operation == "auth accepted")
        .collect();
    assert_eq!(accepted.len(), 1, "{records:?}");
    assert_eq!(accepted[0].columns.actor, format!("remote_subject:{hash}"));
    let jti_hmac = hmac_hex(TOKEN_ID_KEY, JTI).unwrap();
    assert_eq!(
        accepted[0].columns.output_hash.as_deref(),
        Some(jti_hmac.as_str())
    );
    assert!(
        accepted[0]
            .columns
            .metadata
            .contains("\"jti_present\":true"),
        "{}",
        accepted[0].columns.metadata
    );
    let calls = records
        .iter()
        .filter(|record| record.columns.operation == "ibkr_health")
        .count();
    assert_eq!(calls, 2);
    for record in &records {
        assert_eq!(record.columns.surface, "mcp_http");
        assert_eq!(record.columns.actor, format!("remote_subject:{hash}"));
    }
    let text = remote.audit_text();
    let signature = token.rsplit('.').next().unwrap();
    for raw in [SUBJECT, JTI, token.as_str(), signature, "Bearer"] {
        assert!(!text.contains(raw), "the audit log holds {raw:?}");
    }
}

#[tokio::test]
async fn no_session_is_ever_created_and_unauthenticated_initialize_gets_401() {
    let remote = remote().await;
    let (status, _, _) = remote
        .rpc(None, None, "initialize", initialize_params())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let token = remote.token("ibkr:health:read");
    // `send` asserts on every answer that no `mcp-session-id` came back.
    let (status, _, init) = remote
        .rpc(Some(&token), None, "initialize", initialize_params())
        .await;
    assert_eq!(status, StatusCode::OK, "{init}");
    // Stateless: GET (a server stream) and DELETE (ending a session) do not exist.
    for method in ["GET", "DELETE"] {
        let request = Request::builder()
            .method(method)
            .uri("/mcp")
            .header("host", HOST)
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {token}"))
            .header("mcp-session-id", "guessed-session")
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = remote.send(request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
}

#[tokio::test]
async fn health_and_readiness_need_no_token_and_name_a_failed_check() {
    let remote = remote().await;
    let (status, _, body) = remote.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = remote.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["audit_writable"], true);
    remote.audit.set_failing(true);
    let (status, _, body) = remote.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["failed"], json!(["audit_writable"]));
    assert_eq!(body["checks"]["broker_reachable"], true);
    let (status, _, _) = remote.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_remote_principal_cannot_allow_the_kill_switch() {
    let live = live(LiveOptions::default());
    let remote = remote_over(live.gateway.clone(), live.audit.clone()).await;
    let token = remote.token("ibkr:killswitch ibkr:health:read");
    let (status, answer) = remote
        .call(
            &token,
            "ibkr_kill_switch_allow",
            json!({"reason": "let me trade"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(answer.get("error").is_some(), "{answer}");
    let state = live.gateway.kill_switch_status(&agent()).await.unwrap();
    assert!(!state.writes_allowed, "{}", state.state);
}

/// Creates a live preview (through the library) and approves it over HTTP; the approval id.
async fn approved_over_http(live: &crate::live_trading::Live, remote: &Remote) -> String {
    let preview = live
        .gateway
        .preview_order(
            &agent(),
            RawOrderPreview {
                account: LIVE.into(),
                contract_id: "265598".into(),
                side: "BUY".into(),
                quantity: "1".into(),
                order_type: "LMT".into(),
                limit_price: Some("190".into()),
                ..RawOrderPreview::default()
            },
        )
        .await
        .unwrap();
    let token = remote.token("ibkr:approvals:create");
    let (status, answer) = remote
        .call(
            &token,
            "ibkr_approvals_create",
            json!({"preview_id": preview.preview_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["isError"], json!(false), "{answer}");
    answer["result"]["structuredContent"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_remote_approval_backs_a_live_order_only_when_agent_approvals_are_allowed() {
    for allowed in [false, true] {
        let live = live(LiveOptions {
            settings: ibkr_agent_gateway::app::live_settings::LiveTradingSettings {
                agent_approvals_allowed: allowed,
                ..live_settings(5)
            },
            ..LiveOptions::default()
        });
        let remote = remote_over(live.gateway.clone(), live.audit.clone()).await;
        let approval = approved_over_http(&live, &remote).await;
        live.allow_writes().await;
        let submitted = live
            .submit(checked(LIVE, &approval, &format!("remote-{allowed}")))
            .await;
        if allowed {
            submitted.unwrap();
            assert_eq!(live.writer.writes(), 1);
        } else {
            let error = submitted.unwrap_err();
            assert_eq!(error.code().as_str(), "LIVE_APPROVAL_NOT_OPERATOR");
            assert_eq!(live.writer.writes(), 0);
        }
    }
}

#[test]
fn the_binary_refuses_http_while_remote_mcp_is_off() {
    let sandbox = Sandbox::new();
    let (code, stdout, stderr) = sandbox.human(&[
        "mcp",
        "serve",
        "--transport",
        "http",
        "--bind",
        "127.0.0.1:0",
    ]);
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("CONFIG_REMOTE_SWITCH_MISMATCH"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("remote_mcp.enabled"), "stderr: {stderr}");
}

#[tokio::test]
async fn serve_answers_on_a_real_loopback_socket_and_stops_when_told() {
    use ibkr_agent_gateway::adapters::inbound::mcp_http::server::{ServeLimits, serve};

    let remote = remote().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = ServeLimits::from_settings(&settings().remote_mcp);
    let serving = tokio::spawn(serve(listener, remote.app.clone(), limits, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let refused = client
        .post(format!("http://{address}/mcp"))
        .header("host", HOST)
        .header("content-type", "application/json")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize_params()})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert!(refused.headers().get("mcp-session-id").is_none());
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returns once told to stop")
        .unwrap()
        .unwrap();
    assert!(
        client
            .get(format!("http://{address}/healthz"))
            .send()
            .await
            .is_err(),
        "nothing listens after the stop"
    );
}

/// The whole stack on a loopback socket (`serve`: listener bounds and the per-peer limit,
/// then the router's Host/Origin guard, token check and per-subject limit), with `settings`.
struct Served {
    remote: Remote,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn served(settings: Settings) -> Served {
    use ibkr_agent_gateway::adapters::inbound::mcp_http::server::{ServeLimits, serve};

    let granted: ScopeSet = Scope::ALL.iter().copied().collect();
    let (gateway, audit) = crate::support::fake_gateway(9, granted);
    let remote = remote_with(gateway, audit, &settings).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = ServeLimits::from_settings(&settings.remote_mcp);
    tokio::spawn(serve(listener, remote.app.clone(), limits, async move {
        let _ = stopped.await;
    }));
    Served {
        remote,
        url: format!("http://{address}/mcp"),
        _stop: stop,
    }
}

impl Served {
    fn token_for(&self, subject: &str, jti: &str) -> String {
        let claims = json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": subject, "exp": now() + 600,
            "iat": now(), "jti": jti, "scope": "ibkr:health:read",
        });
        token_with(&self.remote.key, "k1", &claims)
    }

    /// One `tools/call ibkr_health`, with `token` and the extra headers; status, headers, body.
    async fn call(
        &self,
        token: Option<&str>,
        extra: &[(&str, String)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "ibkr_health", "arguments": {}}});
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("host", HOST)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", HANDSHAKE);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in extra {
            request = request.header(*name, value);
        }
        let response = request.body(body.to_string()).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, body)
    }

    fn rows(&self, operation: &str) -> Vec<ibkr_agent_gateway::domain::audit::AuditRecord> {
        self.remote
            .audit
            .records()
            .into_iter()
            .filter(|record| record.columns.operation == operation)
            .collect()
    }
}

/// Headers a client might forge to look like someone else.
fn forged_headers(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("x-forwarded-for", format!("203.0.113.{n}")),
        ("x-real-ip", format!("198.51.100.{n}")),
        ("forwarded", format!("for=192.0.2.{n}")),
        ("x-forwarded-user", format!("someone-{n}")),
    ]
}

#[tokio::test]
async fn the_subject_limit_holds_per_verified_subject_whatever_the_headers_or_token_say() {
    let mut settings = settings();
    settings.remote_mcp.rate_limit.max_requests = 3;
    settings.remote_mcp.rate_limit.window = Duration::from_secs(60);
    settings.remote_mcp.peer_rate_limit_max_requests = 1_000;
    let served = served(settings).await;
    let alice = served.token_for("alice", "jti-a1");
    for n in 0..3 {
        let (status, _, body) = served.call(Some(&alice), &forged_headers(n)).await;
        assert_eq!(status, 200, "call {n}: {body}");
    }
    let (status, headers, body) = served.call(Some(&alice), &forged_headers(9)).await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.get("retry-after").is_some());
    assert_eq!(body["error"]["code"], "HTTP_RATE_LIMITED");
    // A fresh token for the same subject is the same principal: still limited.
    let alice_again = served.token_for("alice", "jti-a2");
    let (status, _, _) = served.call(Some(&alice_again), &forged_headers(10)).await;
    assert_eq!(status, 429);
    // Another subject on the same connection source is not.
    let bob = served.token_for("bob", "jti-b1");
    let (status, _, body) = served.call(Some(&bob), &[]).await;
    assert_eq!(status, 200, "{body}");
    // Each refusal is on record under the subject's hash, never the raw subject.
    let denied = served.rows("auth denied");
    let limited: Vec<_> = denied
        .iter()
        .filter(|record| record.columns.error_code.as_deref() == Some("HTTP_RATE_LIMITED"))
        .collect();
    assert_eq!(limited.len(), 2, "{denied:?}");
    assert!(!format!("{limited:?}").contains("alice"));
}

#[tokio::test]
async fn the_peer_limit_stops_an_unauthenticated_flood_before_the_verifier_and_the_audit_log() {
    let mut settings = settings();
    settings.remote_mcp.peer_rate_limit_max_requests = 4;
    settings.remote_mcp.rate_limit.window = Duration::from_secs(60);
    let served = served(settings).await;
    for n in 0..4 {
        let (status, _, _) = served.call(None, &forged_headers(n)).await;
        assert_eq!(status, 401, "request {n}");
    }
    for n in 4..8 {
        let (status, headers, body) = served.call(None, &forged_headers(n)).await;
        assert_eq!(status, 429, "request {n}: {body}");
        assert!(headers.get("retry-after").is_some());
    }
    // A valid token does not lift a limit that is judged before any token is read.
    let token = served.token_for("alice", "jti-p1");
    let (status, _, _) = served.call(Some(&token), &[]).await;
    assert_eq!(status, 429);
    // Only the four requests that reached the token check were recorded.
    assert_eq!(served.rows("auth denied").len(), 4);
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused_before_the_token_check() {
    let served = served(settings()).await;
    let token = served.token_for("alice", "jti-h1");
    let (status, _, body) = served
        .call(Some(&token), &[("host", "attacker.example".to_owned())])
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "HTTP_HOST_FORBIDDEN");
    let (status, _, body) = served
        .call(
            Some(&token),
            &[("origin", "https://attacker.example".to_owned())],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "HTTP_ORIGIN_FORBIDDEN");
    // Neither reached the verifier: nothing was accepted or denied on record.
    assert!(served.rows("auth accepted").is_empty());
    assert!(served.rows("auth denied").is_empty());
    let (status, _, body) = served.call(Some(&token), &[]).await;
    assert_eq!(status, 200, "{body}");
}
