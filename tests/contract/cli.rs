//! CLI tests: the real `ibkr-agent` binary on the embedded fake broker.

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::sync::LazyLock;

use assert_cmd::Command;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::use_cases;
use ibkr_agent_gateway::domain::scope::ScopeSet;
use regex::Regex;
use serde_json::Value;
use tempfile::TempDir;

/// A test-only deployment audit key (at least 32 bytes).
pub(crate) const DEPLOYMENT_KEY: &str = "0123456789abcdef0123456789abcdef-deployment";

/// A test-only deployment checkpoint signing secret (at least 32 bytes).
pub(crate) const DEPLOYMENT_SIGNING_KEY: &str = "fedcba9876543210fedcba9876543210-signing";

/// A sandbox with its own state directory and no deployment secret.
pub(crate) struct Sandbox {
    pub(crate) state: TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        Self {
            state: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn command(&self) -> Command {
        let mut command = Command::cargo_bin("ibkr-agent").unwrap();
        command
            .env("IBKR_AGENT_STATE_DIR", self.state.path().join("state"))
            .env_remove("IBKR_AUDIT_HMAC_SECRET")
            .env_remove("IBKR_AUDIT_SIGNING_KEY")
            .env_remove("RUST_LOG");
        command
    }

    pub(crate) fn write_config(&self, name: &str, yaml: &str) -> std::path::PathBuf {
        let path = self.state.path().join(name);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// Like [`Sandbox::json`], with a deployment audit key in `IBKR_AUDIT_HMAC_SECRET` and a
    /// deployment signing key in `IBKR_AUDIT_SIGNING_KEY` (as a live deployment must have).
    pub(crate) fn json_with_deployment_key(&self, args: &[&str]) -> (i32, Value, String) {
        let output = self
            .command()
            .env("IBKR_AUDIT_HMAC_SECRET", DEPLOYMENT_KEY)
            .env("IBKR_AUDIT_SIGNING_KEY", DEPLOYMENT_SIGNING_KEY)
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        let value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        (
            output.status.code().unwrap(),
            value,
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// Runs with `--json` and returns (exit code, stdout JSON, stderr).
    pub(crate) fn json(&self, args: &[&str]) -> (i32, Value, String) {
        let output = self.command().arg("--json").args(args).output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
            panic!("stdout of {args:?} is not one JSON document ({error}):\n{stdout}")
        });
        (output.status.code().unwrap(), value, stderr)
    }

    pub(crate) fn human(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.command().args(args).output().unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }
}

/// Sample arguments for the commands whose use cases take some, by command words; the paper
/// account is named by its raw id (inputs accept it), so the scans prove it never comes back.
/// A command with samples runs once per sample.
const SAMPLE_ARGUMENTS: &[(&str, &[&[&str]])] = &[
    ("account summary", &[&["--account", "DU1234567"]]),
    ("positions list", &[&["--account", "DU1234567"]]),
    ("pnl show", &[&["--account-id", "DU1234567"]]),
    ("account info", &[&["--account-id", "U7654321"]]),
    (
        "risk show",
        &[
            &["--account-id", "DU7654320"],
            &["--account-id", "DU1234567", "--top", "2"],
        ],
    ),
    (
        "contracts search",
        &[&["AAPL"], &["VOD", "--exchange", "LSE"]],
    ),
    ("contracts resolve", &[&["AAPL"]]),
    ("market snapshot", &[&["--contract-id", "265598"]]),
    (
        "market bars",
        &[&["--contract-id", "265598", "--period", "5d", "--bar", "1h"]],
    ),
    ("orders list", &[&["--account", "DU1234567"]]),
    (
        "trading schedule",
        &[
            &["--contract-id", "265598"],
            &["--contract-id", "8894117", "--days", "3"],
        ],
    ),
    ("fx rate", &[&["--source", "USD", "--target", "EUR"]]),
    ("currency pairs", &[&["--currency", "USD"]]),
    (
        "transactions list",
        &[&["--account-id", "DU1234567", "--contract-id", "265598"]],
    ),
    (
        "options chain",
        &[
            &["--underlying", "AAPL", "--month", "DEC26"],
            &["--underlying", "SPY", "--month", "JAN27", "--right", "C"],
        ],
    ),
    ("options greeks", &[&["--contract-id", "745201901"]]),
    (
        "market depth",
        &[
            &["--account-id", "DU1234567", "--contract-id", "265598"],
            &[
                "--account-id",
                "DU1234567",
                "--contract-id",
                "265598",
                "--levels",
                "20",
            ],
        ],
    ),
    (
        "scanner run",
        &[&[
            "--instrument",
            "STK",
            "--scan-type",
            "TOP_PERC_GAIN",
            "--location",
            "STK.US",
            "--filters",
            "priceAbove=5",
        ]],
    ),
    ("fundamentals show", &[&["--contract-id", "265598"]]),
    ("kill-switch halt", &[&["--reason", "scan"]]),
    ("kill-switch allow", &[&["--reason", "scan"]]),
    (
        "executions list",
        &[
            &["--account", "U7654321"],
            &["--account", "DU1234567", "--since", "2000-01-01"],
        ],
    ),
];

/// Use cases the operator may run under the default configuration that the scans leave out,
/// and why. Each is covered elsewhere.
const NOT_SCANNED: &[(&str, &str)] = &[
    (
        "news headlines",
        "always refused with BROKER_CAPABILITY_UNAVAILABLE by design (news_calendar_reads.rs)",
    ),
    (
        "approvals create",
        "needs a stored preview, which needs a write scope (cli_orders.rs)",
    ),
    (
        "approvals show",
        "needs an approval made earlier (cli_orders.rs)",
    ),
    (
        "approvals revoke",
        "needs an approval made earlier (cli_orders.rs)",
    ),
    (
        "audit export",
        "the CLI streams JSON lines, not one document (cli_audit.rs)",
    ),
];

/// Commands that are no use case, scanned too. `audit verify` is a typed gateway call, not a
/// registry entry (it can verify another database the CLI opens); it runs last, once the
/// audit log exists.
const NOT_USE_CASES: &[&[&str]] = &[&["audit", "verify"]];

/// Every command the operator can run on a fresh sandbox under the default configuration:
/// one per registered use case the defaults let the operator call (with its sample arguments
/// when it takes some), then [`NOT_USE_CASES`]. A new use case joins the scans by itself, or
/// the test asks for its sample arguments.
static DERIVED_COMMANDS: LazyLock<Vec<Vec<&'static str>>> = LazyLock::new(|| {
    let operator = CallContext::sdk();
    let defaults = ScopeSet::read_only_defaults();
    let mut commands = Vec::new();
    for entry in use_cases::registry() {
        let command = entry.definition().command;
        if !entry.is_visible_to(operator.principal(), &defaults)
            || NOT_SCANNED.iter().any(|(name, _)| *name == command)
        {
            continue;
        }
        let words: Vec<&'static str> = command.split(' ').collect();
        let takes_arguments = entry
            .input_schema()
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|required| !required.is_empty());
        match SAMPLE_ARGUMENTS.iter().find(|(name, _)| *name == command) {
            Some((_, samples)) => {
                for sample in *samples {
                    commands.push(words.iter().chain(sample.iter()).copied().collect());
                }
            }
            None => {
                assert!(
                    !takes_arguments,
                    "`{command}` takes arguments: add samples to SAMPLE_ARGUMENTS or a reason \
                     to NOT_SCANNED"
                );
                commands.push(words);
            }
        }
    }
    // A sample or a reason for a command that is gone would hide nothing: refuse it.
    let listed = SAMPLE_ARGUMENTS
        .iter()
        .map(|(name, _)| *name)
        .chain(NOT_SCANNED.iter().map(|(name, _)| *name));
    for name in listed {
        assert!(
            use_cases::registry()
                .iter()
                .any(|entry| entry.definition().command == name),
            "`{name}` is no registered command"
        );
    }
    commands.extend(NOT_USE_CASES.iter().map(|words| words.to_vec()));
    commands
});

/// The commands the output scans run ([`DERIVED_COMMANDS`]): `for args in COMMANDS` yields
/// each command's words, and `COMMANDS.len()` counts them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Commands;

/// Every command the output scans run.
pub(crate) const COMMANDS: Commands = Commands;

impl Commands {
    pub(crate) fn len(self) -> usize {
        DERIVED_COMMANDS.len()
    }
}

impl IntoIterator for Commands {
    type Item = &'static [&'static str];
    type IntoIter = std::iter::Map<
        std::slice::Iter<'static, Vec<&'static str>>,
        fn(&'static Vec<&'static str>) -> &'static [&'static str],
    >;

    fn into_iter(self) -> Self::IntoIter {
        DERIVED_COMMANDS.iter().map(Vec::as_slice)
    }
}

pub(crate) fn raw_account_id_shape() -> Regex {
    Regex::new(r"(DU|DF|U)\d+").unwrap()
}

#[test]
fn the_scanned_commands_come_from_the_registry() {
    let scanned: Vec<String> = COMMANDS.into_iter().map(|args| args.join(" ")).collect();
    // Every read use case, the operator's own no-argument use cases, and the extras.
    for expected in [
        "health",
        "session requirements",
        "accounts list",
        "market bars --contract-id 265598 --period 5d --bar 1h",
        "audit tail",
        "approvals list",
        "orders recover",
        "orders reconcile",
        "audit verify",
    ] {
        assert!(
            scanned.iter().any(|args| args == expected),
            "{expected}: {scanned:#?}"
        );
    }
    // Use cases a fresh sandbox cannot run under the default scopes stay out.
    for absent in ["orders preview", "orders submit", "audit export"] {
        assert!(
            !scanned.iter().any(|args| args.starts_with(absent)),
            "{absent}: {scanned:#?}"
        );
    }
    assert_eq!(scanned.last().map(String::as_str), Some("audit verify"));
}

#[test]
fn every_command_prints_one_json_document() {
    let sandbox = Sandbox::new();
    for args in COMMANDS {
        let (code, value, stderr) = sandbox.json(args);
        assert_eq!(code, 0, "{args:?} failed: {stderr}");
        assert!(value.is_object(), "{args:?}");
    }
}

#[test]
fn no_output_carries_a_raw_account_id() {
    let sandbox = Sandbox::new();
    let shape = raw_account_id_shape();
    for args in COMMANDS {
        let (_, json, json_err) = sandbox.json(args);
        let (_, human, human_err) = sandbox.human(args);
        for (form, text) in [
            ("json", json.to_string()),
            ("stderr", json_err),
            ("human", human),
            ("stderr", human_err),
        ] {
            assert!(
                !shape.is_match(&text),
                "{args:?} {form} output carries a raw account id:\n{text}"
            );
        }
    }
}

#[test]
fn accounts_are_named_by_reference_mask_and_mode() {
    let sandbox = Sandbox::new();
    let (_, value, _) = sandbox.json(&["accounts", "list"]);
    let accounts = value["accounts"].as_array().unwrap();
    let paper = accounts
        .iter()
        .find(|a| a["display"] == "DU\u{2022}\u{2022}\u{2022}4567")
        .unwrap();
    assert_eq!(paper["mode"], "paper");
    let live = accounts
        .iter()
        .find(|a| a["display"] == "U\u{2022}\u{2022}\u{2022}4321")
        .unwrap();
    assert_eq!(live["mode"], "live");
    let reference = paper["account_ref"].as_str().unwrap();
    assert!(
        Regex::new("^acct_[0-9a-f]{16}$")
            .unwrap()
            .is_match(reference)
    );

    // The reference is stable across runs (same installation) and accepted as input.
    let (_, again, _) = sandbox.json(&["accounts", "list"]);
    assert_eq!(again["accounts"], value["accounts"]);
    let (code, summary, _) = sandbox.json(&["account", "summary", "--account", reference]);
    assert_eq!(code, 0);
    assert_eq!(summary["account"]["account_ref"], reference);
    assert_eq!(summary["base_currency"], "USD");
}

#[test]
fn aliases_from_config_name_accounts_and_select_them() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "alias.yaml",
        "accounts:\n  aliases:\n    DU1234567: main-paper\n",
    );
    let config = config.to_str().unwrap();
    let (code, value, _) = sandbox.json(&[
        "--config",
        config,
        "positions",
        "list",
        "--account",
        "main-paper",
    ]);
    assert_eq!(code, 0);
    assert_eq!(value["account"]["alias"], "main-paper");
    assert!(!value["positions"].as_array().unwrap().is_empty());
}

#[test]
fn decimals_are_strings_in_json() {
    let sandbox = Sandbox::new();
    let (_, value, _) = sandbox.json(&["account", "summary", "--account", "DU1234567"]);
    assert!(value["net_liquidation"].is_string(), "{value}");
    let (_, value, _) = sandbox.json(&["market", "snapshot", "--contract-id", "265598"]);
    assert!(value["bid"].is_string(), "{value}");
}

#[test]
fn search_filters_are_honoured() {
    let sandbox = Sandbox::new();
    let (_, all, _) = sandbox.json(&["contracts", "search", "VOD"]);
    let (_, lse, _) = sandbox.json(&["contracts", "search", "VOD", "--exchange", "LSE"]);
    let (_, usd, _) = sandbox.json(&["contracts", "search", "VOD", "--currency", "USD"]);
    let count = |value: &Value| value["contracts"].as_array().unwrap().len();
    assert!(count(&all) >= 2);
    assert_eq!(count(&lse), 1);
    assert_eq!(lse["contracts"][0]["exchange"], "LSE");
    assert_eq!(count(&usd), 1);
    assert_eq!(usd["contracts"][0]["currency"], "USD");
    let (_, options, _) = sandbox.json(&["contracts", "search", "AAPL", "--asset-class", "OPT"]);
    assert!(
        options["contracts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["asset_class"] == "OPT")
    );
    assert!(count(&options) >= 6);
}

pub(crate) fn assert_error(result: (i32, Value, String), exit: i32, code: &str) -> Value {
    let (actual_exit, value, stderr) = result;
    assert_eq!(actual_exit, exit, "stderr: {stderr}");
    assert_eq!(value["error"]["code"], code, "{value}");
    assert!(stderr.contains(&format!("error[{code}]")), "{stderr}");
    assert_eq!(
        stderr.matches("error[").count(),
        1,
        "the error prints once: {stderr}"
    );
    value
}

#[test]
fn a_missing_config_file_exits_2_naming_the_path() {
    let sandbox = Sandbox::new();
    let result = sandbox.json(&["--config", "does-not-exist.yaml", "health"]);
    let value = assert_error(result, 2, "CONFIG_FILE_UNREADABLE");
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does-not-exist.yaml")
    );
}

#[test]
fn an_unknown_config_key_exits_2_naming_the_key() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config("bad.yaml", "broker:\n  backend: fake\n  colour: blue\n");
    let value = assert_error(
        sandbox.json(&["--config", config.to_str().unwrap(), "health"]),
        2,
        "CONFIG_INVALID",
    );
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("broker.colour"),
        "{value}"
    );
}

#[test]
fn a_missing_scope_exits_4_before_any_broker_call() {
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "narrow.yaml",
        "auth:\n  enabled_scopes: [ibkr:health:read]\n",
    );
    let config = config.to_str().unwrap();
    let (code, _, _) = sandbox.json(&["--config", config, "health"]);
    assert_eq!(code, 0);
    let value = assert_error(
        sandbox.json(&["--config", config, "accounts", "list"]),
        4,
        "AUTH_MISSING_SCOPE",
    );
    assert_eq!(
        value["error"]["details"]["required_scope"],
        "ibkr:accounts:read"
    );
}

#[test]
fn an_ambiguous_contract_exits_2_listing_candidates() {
    let sandbox = Sandbox::new();
    let value = assert_error(
        sandbox.json(&["contracts", "resolve", "VOD"]),
        2,
        "INPUT_AMBIGUOUS_CONTRACT",
    );
    let candidates = value["error"]["details"]["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2);
    let (code, resolved, _) = sandbox.json(&["contracts", "resolve", "VOD", "--exchange", "LSE"]);
    assert_eq!(code, 0);
    assert_eq!(resolved["exchange"], "LSE");
}

#[test]
fn an_unknown_account_exits_2_without_echoing_it() {
    let sandbox = Sandbox::new();
    let value = assert_error(
        sandbox.json(&["positions", "list", "--account", "DU9999999"]),
        2,
        "INPUT_UNKNOWN_ACCOUNT",
    );
    assert!(!value.to_string().contains("9999999"));
}

#[test]
fn bad_inputs_are_refused_with_input_invalid() {
    let sandbox = Sandbox::new();
    assert_error(
        sandbox.json(&["market", "snapshot", "--contract-id", "abc"]),
        2,
        "INPUT_INVALID",
    );
    assert_error(
        sandbox.json(&[
            "market",
            "bars",
            "--contract-id",
            "265598",
            "--period",
            "1y",
            "--bar",
            "1min",
        ]),
        2,
        "INPUT_INVALID",
    );
    assert_error(
        sandbox.json(&[
            "executions",
            "list",
            "--account",
            "DU1234567",
            "--since",
            "soon",
        ]),
        2,
        "INPUT_INVALID",
    );
}

#[test]
fn the_since_filter_drops_older_executions() {
    let sandbox = Sandbox::new();
    let (_, all, _) = sandbox.json(&["executions", "list", "--account", "DU1234567"]);
    let (_, none, _) = sandbox.json(&[
        "executions",
        "list",
        "--account",
        "DU1234567",
        "--since",
        "2999-01-01",
    ]);
    assert!(!all["executions"].as_array().unwrap().is_empty());
    assert!(none["executions"].as_array().unwrap().is_empty());
}

#[test]
fn stale_quotes_are_refused_when_a_max_age_is_given() {
    let sandbox = Sandbox::new();
    let (_, search, _) = sandbox.json(&["contracts", "search", "VOD", "--exchange", "LSE"]);
    let delayed = search["contracts"][0]["contract_id"].to_string();
    let (code, quote, _) = sandbox.json(&["market", "snapshot", "--contract-id", &delayed]);
    assert_eq!(code, 0);
    assert_eq!(quote["status"], "delayed");
    assert_error(
        sandbox.json(&[
            "market",
            "snapshot",
            "--contract-id",
            &delayed,
            "--max-age-seconds",
            "60",
        ]),
        6,
        "MARKET_DATA_STALE",
    );
}

#[test]
fn the_client_portal_backend_reports_an_unreachable_gateway() {
    // A loopback port nothing listens on: the adapter is built, the read fails as unavailable.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sandbox = Sandbox::new();
    let config = sandbox.write_config(
        "cp.yaml",
        &format!(
            "broker:\n  backend: client_portal_gateway\n  base_url: https://127.0.0.1:{port}/v1/api\n  request_timeout_seconds: 2\n"
        ),
    );
    let (code, value, stderr) = sandbox.json_with_deployment_key(&[
        "--config",
        config.to_str().unwrap(),
        "accounts",
        "list",
    ]);
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(value["error"]["code"], "BROKER_BACKEND_UNAVAILABLE");
}

#[test]
fn a_short_deployment_secret_is_refused() {
    let sandbox = Sandbox::new();
    let output = sandbox
        .command()
        .env("IBKR_AUDIT_HMAC_SECRET", "short")
        .args(["--json", "health"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["error"]["code"], "CONFIG_SECRET_INVALID");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("short\n"));
}

#[test]
fn help_documents_the_exit_codes() {
    let sandbox = Sandbox::new();
    let (code, stdout, _) = sandbox.human(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("Exit codes:") && stdout.contains("7  audit integrity failure"),
        "{stdout}"
    );
}

#[test]
fn human_output_is_an_aligned_table() {
    let sandbox = Sandbox::new();
    let (code, stdout, _) = sandbox.human(&["accounts", "list"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("ACCOUNT_REF"));
    let mode_column = lines[0].find("MODE").unwrap();
    for line in &lines[1..] {
        let column: String = line.chars().skip(mode_column).take(5).collect();
        assert!(
            column.starts_with("paper") || column.starts_with("live"),
            "{line}"
        );
    }
}

#[test]
fn a_closed_stdout_exits_quietly() {
    let sandbox = Sandbox::new();
    // The first run creates the installation key and says so on stderr; this test wants silence.
    sandbox.json(&["health"]);
    let binary = assert_cmd::cargo::cargo_bin("ibkr-agent");
    let mut child = StdCommand::new(binary)
        .args([
            "market",
            "bars",
            "--contract-id",
            "265598",
            "--period",
            "1m",
            "--bar",
            "1h",
        ])
        .env("IBKR_AGENT_STATE_DIR", sandbox.state.path().join("state"))
        .env_remove("IBKR_AUDIT_HMAC_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_development_key_is_created_owner_only_next_to_the_database() {
    let sandbox = Sandbox::new();
    let (code, value, stderr) = sandbox.json(&["health"]);
    assert_eq!(code, 0);
    assert_eq!(value["audit_key"], "development");
    assert_eq!(value["audit_store"], "sqlite audit.sqlite3");
    assert!(stderr.contains("DEVELOPMENT audit key"), "{stderr}");
    let key = sandbox.state.path().join("state/audit-hmac.key");
    assert!(Path::new(&key).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o077,
            0
        );
    }
    let (_, _, stderr) = sandbox.json(&["health"]);
    assert!(!stderr.contains("DEVELOPMENT"), "warned twice: {stderr}");
}
