//! Remote MCP configuration through the library: `remote_mcp` is off by default, the committed
//! `config/remote.example.yaml` loads and passes the start-up gates only with a token-id HMAC
//! key of at least 32 bytes, every gate refuses with its own `CONFIG_REMOTE_*` code and key
//! path, and no refusal quotes a value from the file or the key.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ibkr_agent_gateway::app::config::Settings;
use ibkr_agent_gateway::app::remote_settings::{
    DEFAULT_REMOTE_BIND_ADDRESS, DEFAULT_TOKEN_ID_HMAC_SECRET_VARIABLE, RemoteMcpSettings,
};
use ibkr_agent_gateway::app::remote_startup;
use ibkr_agent_gateway::app::startup_error::StartupError;
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::secret_source::{SecretError, SecretSource};

/// A value no message may ever contain.
const CANARY_SECRET: &str = "canary-secret-value-canary-secret-value";

/// Secrets from a fixed table, applying the port's contract (missing, too short).
struct FixedSecrets(Vec<(&'static str, &'static str)>);

impl SecretSource for FixedSecrets {
    fn secret(&self, name: &str, min_bytes: usize) -> Result<SecretBytes, SecretError> {
        let (_, value) = self
            .0
            .iter()
            .find(|(variable, _)| *variable == name)
            .ok_or_else(|| SecretError::Missing {
                name: name.to_owned(),
            })?;
        if value.len() < min_bytes {
            return Err(SecretError::TooShort {
                name: name.to_owned(),
                min_bytes,
            });
        }
        Ok(SecretBytes::new(value.as_bytes().to_vec()))
    }
}

fn deployed_key() -> FixedSecrets {
    FixedSecrets(vec![(DEFAULT_TOKEN_ID_HMAC_SECRET_VARIABLE, CANARY_SECRET)])
}

fn no_key() -> FixedSecrets {
    FixedSecrets(Vec::new())
}

fn example_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/remote.example.yaml");
    std::fs::read_to_string(path).unwrap()
}

/// The example with one piece of text replaced (which must be there).
fn example_with(from: &str, to: &str) -> String {
    let text = example_text();
    assert!(text.contains(from), "{from:?} is not in the example");
    text.replacen(from, to, 1)
}

fn remote_of(yaml: &str) -> RemoteMcpSettings {
    Settings::from_yaml(yaml).unwrap().remote_mcp
}

/// The gate's code, key path and message, after checking the message quotes nothing from the
/// file and nothing of the key.
#[track_caller]
fn gate_refusal(remote: &RemoteMcpSettings, secrets: &FixedSecrets) -> (String, String) {
    let error = remote_startup::check(remote, secrets).unwrap_err();
    let StartupError::RemoteGate { key_path, .. } = &error else {
        panic!("expected a remote gate refusal, got {error:?}");
    };
    let shown = format!("{error} {error:?} {}", error.to_json());
    for value in [
        "example.com",
        "10.1.2.3",
        "0.0.0.0",
        "127.0.0.1:8080",
        "login.local",
        CANARY_SECRET,
        "short",
    ] {
        assert!(!shown.contains(value), "{value:?} leaked into {shown}");
    }
    (error.code().as_str().to_owned(), key_path.clone())
}

#[track_caller]
fn assert_gate(yaml: &str, secrets: &FixedSecrets, code: &str, key_path: &str) {
    let (actual_code, actual_key) = gate_refusal(&remote_of(yaml), secrets);
    assert_eq!(
        (actual_code.as_str(), actual_key.as_str()),
        (code, key_path)
    );
}

/// A shape error: `CONFIG_INVALID` at `key_path`, quoting none of `values`.
#[track_caller]
fn assert_invalid_at(yaml: &str, key_path: &str, values: &[&str]) {
    let error = Settings::from_yaml(yaml).unwrap_err();
    let message = error.to_string();
    assert_eq!(error.code().as_str(), "CONFIG_INVALID", "{message}");
    assert!(
        message.starts_with(&format!("{key_path}:")),
        "expected {key_path}, got {message}"
    );
    for value in values {
        assert!(!message.contains(value), "{value:?} leaked into {message}");
    }
}

#[test]
fn remote_mcp_is_off_by_default_with_loopback_and_nothing_allowed() {
    let remote = remote_of("");
    assert_eq!(remote, RemoteMcpSettings::default());
    assert!(!remote.enabled && !remote.safety_enabled && !remote.is_on());
    assert_eq!(remote.bind_address, DEFAULT_REMOTE_BIND_ADDRESS);
    assert_eq!(
        remote.bind_address,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert!(!remote.allow_non_loopback_bind && !remote.allow_insecure_loopback_issuer);
    assert!(remote.issuer.is_none() && remote.jwks_url.is_none() && remote.resource.is_none());
    assert!(remote.audiences.is_empty() && remote.allowed_scopes.is_empty());
    assert_eq!(remote.clock_skew, Duration::from_secs(60));
    assert_eq!(
        remote.token_id_hmac_secret_env,
        "IBKR_REMOTE_TOKEN_HMAC_SECRET"
    );
    // Off: nothing is checked, not even the key.
    remote_startup::check(&remote, &no_key()).unwrap();
}

#[test]
fn a_half_written_section_loads_and_passes_while_both_switches_are_off() {
    let yaml = "\
remote_mcp:
  bind_address: 0.0.0.0:8080
  issuer: http://login.example.com/
";
    let remote = remote_of(yaml);
    assert!(!remote.is_on());
    remote_startup::check(&remote, &no_key()).unwrap();
}

#[test]
fn the_remote_example_loads_with_every_key_and_passes_the_gates_with_a_key() {
    let remote = remote_of(&example_text());
    assert!(remote.is_on());
    assert_eq!(remote.bind_address, DEFAULT_REMOTE_BIND_ADDRESS);
    assert_eq!(
        remote.resource.as_ref().map(url::Url::as_str),
        Some("https://mcp.example.com/mcp")
    );
    assert_eq!(
        remote.issuer.as_ref().map(url::Url::as_str),
        Some("https://login.example.com/")
    );
    assert_eq!(
        remote.jwks_url.as_ref().map(url::Url::as_str),
        Some("https://login.example.com/.well-known/jwks.json")
    );
    assert_eq!(remote.audiences, vec!["https://mcp.example.com/mcp"]);
    assert_eq!(remote.allowed_scopes.len(), 4);
    assert!(remote.allowed_scopes.contains(Scope::OrdersRead));
    assert!(!remote.allowed_scopes.has_write());
    assert_eq!(remote.clock_skew, Duration::from_secs(60));
    assert_eq!(remote.rate_limit.max_requests, 60);
    assert_eq!(remote.rate_limit.window, Duration::from_secs(60));
    assert_eq!(remote.max_connections, 64);
    assert_eq!(remote.request_timeout, Duration::from_secs(30));
    assert_eq!(remote.allowed_hosts, vec!["mcp.example.com"]);
    assert_eq!(remote.allowed_origins, vec!["https://mcp.example.com"]);
    remote_startup::check(&remote, &deployed_key()).unwrap();
}

#[test]
fn one_switch_without_the_other_names_the_switch_that_is_off() {
    assert_gate(
        &example_with("remote_mcp_enabled: true", "remote_mcp_enabled: false"),
        &deployed_key(),
        "CONFIG_REMOTE_SWITCH_MISMATCH",
        "safety.remote_mcp_enabled",
    );
    assert_gate(
        &example_with("  enabled: true", "  enabled: false"),
        &deployed_key(),
        "CONFIG_REMOTE_SWITCH_MISMATCH",
        "remote_mcp.enabled",
    );
}

#[test]
fn a_non_loopback_bind_needs_its_own_flag() {
    for address in ["0.0.0.0:8080", "10.1.2.3:8443", "[::]:8080"] {
        let yaml = example_with(
            "bind_address: 127.0.0.1:8080",
            &format!("bind_address: \"{address}\""),
        );
        assert_gate(
            &yaml,
            &deployed_key(),
            "CONFIG_REMOTE_BIND_NOT_LOOPBACK",
            "remote_mcp.bind_address",
        );
        let allowed = yaml.replacen(
            "allow_non_loopback_bind: false",
            "allow_non_loopback_bind: true",
            1,
        );
        remote_startup::check(&remote_of(&allowed), &deployed_key()).unwrap();
    }
    let ipv6_loopback = example_with(
        "bind_address: 127.0.0.1:8080",
        "bind_address: \"[::1]:8080\"",
    );
    remote_startup::check(&remote_of(&ipv6_loopback), &deployed_key()).unwrap();
}

#[test]
fn the_issuer_and_jwks_must_be_https() {
    for (key, from, to) in [
        (
            "remote_mcp.issuer",
            "issuer: https://login.example.com/",
            "issuer: http://login.example.com/",
        ),
        (
            "remote_mcp.jwks_url",
            "jwks_url: https://login.example.com/.well-known/jwks.json",
            "jwks_url: http://login.example.com/.well-known/jwks.json",
        ),
    ] {
        let yaml = example_with(from, to);
        assert_gate(&yaml, &deployed_key(), "CONFIG_REMOTE_ISSUER_INVALID", key);
        // The insecure flag covers loopback hosts only.
        let flagged = yaml.replacen(
            "allow_insecure_loopback_issuer: false",
            "allow_insecure_loopback_issuer: true",
            1,
        );
        assert_gate(
            &flagged,
            &deployed_key(),
            "CONFIG_REMOTE_ISSUER_INVALID",
            key,
        );
    }
}

#[test]
fn plain_http_is_accepted_only_for_a_loopback_issuer_with_the_insecure_flag() {
    let local = example_with(
        "issuer: https://login.example.com/",
        "issuer: http://127.0.0.1:9000/",
    )
    .replacen(
        "jwks_url: https://login.example.com/.well-known/jwks.json",
        "jwks_url: http://localhost:9000/jwks",
        1,
    );
    assert_gate(
        &local,
        &deployed_key(),
        "CONFIG_REMOTE_ISSUER_INVALID",
        "remote_mcp.issuer",
    );
    let flagged = local.replacen(
        "allow_insecure_loopback_issuer: false",
        "allow_insecure_loopback_issuer: true",
        1,
    );
    remote_startup::check(&remote_of(&flagged), &deployed_key()).unwrap();
}

#[test]
fn a_missing_issuer_or_jwks_url_is_refused() {
    assert_gate(
        &example_with("  issuer: https://login.example.com/\n", ""),
        &deployed_key(),
        "CONFIG_REMOTE_ISSUER_INVALID",
        "remote_mcp.issuer",
    );
    assert_gate(
        &example_with(
            "  jwks_url: https://login.example.com/.well-known/jwks.json\n",
            "",
        ),
        &deployed_key(),
        "CONFIG_REMOTE_ISSUER_INVALID",
        "remote_mcp.jwks_url",
    );
}

#[test]
fn the_resource_must_be_set_and_https() {
    assert_gate(
        &example_with("  resource: https://mcp.example.com/mcp\n", ""),
        &deployed_key(),
        "CONFIG_REMOTE_RESOURCE_INVALID",
        "remote_mcp.resource",
    );
    assert_gate(
        &example_with(
            "resource: https://mcp.example.com/mcp",
            "resource: http://mcp.example.com/mcp",
        ),
        &deployed_key(),
        "CONFIG_REMOTE_RESOURCE_INVALID",
        "remote_mcp.resource",
    );
}

#[test]
fn audiences_and_allowed_scopes_must_not_be_empty() {
    assert_gate(
        &example_with("audiences: [https://mcp.example.com/mcp]", "audiences: []"),
        &deployed_key(),
        "CONFIG_REMOTE_AUDIENCES_MISSING",
        "remote_mcp.audiences",
    );
    assert_gate(
        &example_with(
            "allowed_scopes: [ibkr:health:read, ibkr:accounts:read, ibkr:marketdata:read, ibkr:orders:read]",
            "allowed_scopes: []",
        ),
        &deployed_key(),
        "CONFIG_REMOTE_SCOPES_MISSING",
        "remote_mcp.allowed_scopes",
    );
}

#[test]
fn the_token_id_key_must_be_set_and_long_enough_and_is_never_shown() {
    let remote = remote_of(&example_text());
    let key_path = "remote_mcp.token_id_hmac_secret_env";
    assert_eq!(
        gate_refusal(&remote, &no_key()),
        (
            "CONFIG_REMOTE_TOKEN_SECRET_INVALID".to_owned(),
            key_path.to_owned()
        )
    );
    let short = FixedSecrets(vec![(DEFAULT_TOKEN_ID_HMAC_SECRET_VARIABLE, "short")]);
    assert_eq!(
        gate_refusal(&remote, &short),
        (
            "CONFIG_REMOTE_TOKEN_SECRET_INVALID".to_owned(),
            key_path.to_owned()
        )
    );
    // The variable the file names is the one looked up.
    let renamed = remote_of(&example_with(
        "token_id_hmac_secret_env: IBKR_REMOTE_TOKEN_HMAC_SECRET",
        "token_id_hmac_secret_env: TEAM_REMOTE_KEY",
    ));
    gate_refusal(&renamed, &deployed_key());
    remote_startup::check(
        &renamed,
        &FixedSecrets(vec![("TEAM_REMOTE_KEY", CANARY_SECRET)]),
    )
    .unwrap();
}

#[test]
fn malformed_values_are_refused_by_key_path_without_quoting_them() {
    assert_invalid_at(
        &example_with(
            "bind_address: 127.0.0.1:8080",
            "bind_address: mcp.example.com:80",
        ),
        "remote_mcp.bind_address",
        &["example.com"],
    );
    assert_invalid_at(
        &example_with(
            "issuer: https://login.example.com/",
            "issuer: ftp://login.example.com/",
        ),
        "remote_mcp.issuer",
        &["example.com"],
    );
    assert_invalid_at(
        &example_with(
            "jwks_url: https://login.example.com/.well-known/jwks.json",
            "jwks_url: https://user:hunter2@login.example.com/jwks",
        ),
        "remote_mcp.jwks_url",
        &["hunter2", "example.com"],
    );
    assert_invalid_at(
        &example_with(
            "resource: https://mcp.example.com/mcp",
            "resource: https://mcp.example.com/mcp#frag",
        ),
        "remote_mcp.resource",
        &["example.com"],
    );
    assert_invalid_at(
        &example_with("ibkr:orders:read]", "ibkr:orders:read, ibkr:everything]"),
        "remote_mcp.allowed_scopes[4]",
        &[],
    );
    assert_invalid_at(
        &example_with(
            "audiences: [https://mcp.example.com/mcp]",
            "audiences: [\"a b\"]",
        ),
        "remote_mcp.audiences[0]",
        &["a b"],
    );
    assert_invalid_at(
        &example_with(
            "token_id_hmac_secret_env: IBKR_REMOTE_TOKEN_HMAC_SECRET",
            "token_id_hmac_secret_env: not-a-variable",
        ),
        "remote_mcp.token_id_hmac_secret_env",
        &["not-a-variable"],
    );
    assert_invalid_at(
        &example_with(
            "allowed_hosts: [mcp.example.com]",
            "allowed_hosts: [\"https://evil.test/x\"]",
        ),
        "remote_mcp.allowed_hosts[0]",
        &["evil.test"],
    );
    assert_invalid_at(
        &example_with(
            "allowed_origins: [https://mcp.example.com]",
            "allowed_origins: [\"https://evil.test/app\"]",
        ),
        "remote_mcp.allowed_origins[0]",
        &["evil.test"],
    );
}

#[test]
fn numbers_out_of_range_are_refused_and_the_bounds_themselves_pass() {
    assert_invalid_at(
        &example_with("clock_skew_seconds: 60", "clock_skew_seconds: 301"),
        "remote_mcp.clock_skew_seconds",
        &["301"],
    );
    assert_eq!(
        remote_of(&example_with(
            "clock_skew_seconds: 60",
            "clock_skew_seconds: 300"
        ))
        .clock_skew,
        Duration::from_secs(300)
    );
    assert_eq!(
        remote_of(&example_with(
            "clock_skew_seconds: 60",
            "clock_skew_seconds: 0"
        ))
        .clock_skew,
        Duration::ZERO
    );
    for (from, key) in [
        (
            "rate_limit_max_requests: 60",
            "remote_mcp.rate_limit_max_requests",
        ),
        (
            "rate_limit_window_seconds: 60",
            "remote_mcp.rate_limit_window_seconds",
        ),
        ("max_connections: 64", "remote_mcp.max_connections"),
        (
            "request_timeout_seconds: 30",
            "remote_mcp.request_timeout_seconds",
        ),
    ] {
        let zero = from.replace(|c: char| c.is_ascii_digit(), "").to_owned() + "0";
        assert_invalid_at(&example_with(from, &zero), key, &[]);
    }
}

#[test]
fn unknown_keys_under_remote_mcp_and_safety_are_refused() {
    assert_invalid_at(
        &example_with(
            "  max_connections: 64",
            "  max_connections: 64\n  serve_everything: true",
        ),
        "remote_mcp.serve_everything",
        &[],
    );
    assert_invalid_at(
        &example_with(
            "remote_mcp_enabled: true",
            "remote_mcp_enabled: true\n  remote_public: true",
        ),
        "safety.remote_public",
        &[],
    );
}

/// Runs the binary's `health` with `yaml` as its configuration, the token-id key set to
/// `token_key` (or unset), and returns the exit code, the JSON document and stderr.
fn health_with(yaml: &str, token_key: Option<&str>) -> (i32, serde_json::Value, String) {
    let sandbox = crate::cli::Sandbox::new();
    let config = sandbox.write_config("remote.yaml", yaml);
    let mut command = sandbox.command();
    command.env_remove(DEFAULT_TOKEN_ID_HMAC_SECRET_VARIABLE);
    if let Some(key) = token_key {
        command.env(DEFAULT_TOKEN_ID_HMAC_SECRET_VARIABLE, key);
    }
    let output = command
        .args(["--json", "--config", config.to_str().unwrap(), "health"])
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_binary_runs_the_remote_gates_at_start_up_and_never_prints_the_key() {
    let one_switch = example_with("remote_mcp_enabled: true", "remote_mcp_enabled: false");
    crate::cli::assert_error(
        health_with(&one_switch, Some(CANARY_SECRET)),
        2,
        "CONFIG_REMOTE_SWITCH_MISMATCH",
    );
    let (code, value, stderr) = health_with(&example_text(), Some("short"));
    assert!(!stderr.contains("short") && !value.to_string().contains("short"));
    crate::cli::assert_error(
        (code, value, stderr),
        2,
        "CONFIG_REMOTE_TOKEN_SECRET_INVALID",
    );
    // With the key the gates pass and any command runs.
    let (code, value, stderr) = health_with(&example_text(), Some(CANARY_SECRET));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(CANARY_SECRET) && !value.to_string().contains(CANARY_SECRET));
    // A sound deployment has nothing to warn about.
    assert_eq!(value["warnings"], serde_json::json!([]), "{value}");
}

#[test]
fn health_says_loudly_when_remote_mcp_trusts_an_issuer_over_plain_http() {
    let insecure = example_with(
        "issuer: https://login.example.com/",
        "issuer: http://127.0.0.1:9000/",
    )
    .replacen(
        "jwks_url: https://login.example.com/.well-known/jwks.json",
        "jwks_url: http://localhost:9000/jwks",
        1,
    )
    .replacen(
        "allow_insecure_loopback_issuer: false",
        "allow_insecure_loopback_issuer: true",
        1,
    );
    let (code, value, stderr) = health_with(&insecure, Some(CANARY_SECRET));
    assert_eq!(code, 0, "{stderr}");
    let warnings = value["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{value}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("REMOTE_MCP_INSECURE_ISSUER:"),
        "{value}"
    );
    // The start-up log says so too.
    assert!(
        stderr.contains("allow_insecure_loopback_issuer"),
        "{stderr}"
    );
    // The same switch with remote MCP off warns about nothing: nothing fetches those keys.
    let off = insecure.replacen("remote_mcp_enabled: true", "remote_mcp_enabled: false", 1);
    let off = off.replacen("  enabled: true", "  enabled: false", 1);
    let (code, value, stderr) = health_with(&off, Some(CANARY_SECRET));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(value["warnings"], serde_json::json!([]), "{value}");
}
