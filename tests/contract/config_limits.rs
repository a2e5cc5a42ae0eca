//! Configuration limits and warnings, through the library and the real binary: a file too large
//! or nested too deeply is refused before the YAML parser sees it, and granted live scopes, which
//! no tool uses yet, are warned about at start-up.

use ibkr_agent_gateway::app::config::{MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, Settings};
use serde_json::Value;

use crate::cli::Sandbox;

/// Runs `--json --config <path> health` and returns (exit code, stdout JSON, stderr).
fn health_with(sandbox: &Sandbox, name: &str, yaml: &str) -> (i32, Value, String) {
    let config = sandbox.write_config(name, yaml);
    sandbox.json(&["--config", config.to_str().unwrap(), "health"])
}

fn refusal(result: (i32, Value, String)) -> (String, String) {
    let (code, value, _) = result;
    assert_eq!(code, 2, "{value}");
    (
        value["error"]["code"].as_str().unwrap().to_owned(),
        value["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_yaml_nested_100000_levels_deep_is_refused_naming_the_reason() {
    let sandbox = Sandbox::new();
    // 200,000 bytes: 100,000 flow sequences, one inside the other.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (code, message) = refusal(health_with(&sandbox, "deep.yaml", &deep));
    assert_eq!(code, "CONFIG_INVALID");
    assert!(message.starts_with("(root)"), "{message}");
    assert!(message.contains("nests deeper than 32 levels"), "{message}");

    // The same under a key, and as compact block sequences.
    let under_key = format!(
        "mcp:\n  toolsets: {}{}\n",
        "{a: ".repeat(50_000),
        "}".repeat(50_000)
    );
    let (code, message) = refusal(health_with(&sandbox, "deep-map.yaml", &under_key));
    assert_eq!(code, "CONFIG_INVALID");
    assert!(message.contains("nests deeper"), "{message}");
    let compact = format!("{}x\n", "- ".repeat(100_000));
    let (code, message) = refusal(health_with(&sandbox, "deep-seq.yaml", &compact));
    assert_eq!(code, "CONFIG_INVALID");
    assert!(message.contains("nests deeper"), "{message}");
}

#[test]
fn depth_counts_indentation_brackets_and_compact_entries_but_not_quotes_or_comments() {
    let too_deep = |yaml: &str| {
        Settings::from_yaml(yaml)
            .err()
            .is_some_and(|error| error.to_string().contains("nests deeper"))
    };
    // Block indentation: one more level than allowed.
    let indented: String = (0..=MAX_CONFIG_DEPTH)
        .map(|level| format!("{}k{level}:\n", " ".repeat(level)))
        .collect();
    assert!(too_deep(&indented));
    let flow = |depth: usize| format!("x: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    // The key's level plus the brackets.
    assert!(too_deep(&flow(MAX_CONFIG_DEPTH)));
    assert!(!too_deep(&flow(MAX_CONFIG_DEPTH - 1)));
    // Brackets in comments and quoted scalars are text, not nesting.
    let quiet = format!(
        "# {open}\nmcp:\n  toolsets: [\"{open}\", '{open}'] # {open}\n",
        open = "[".repeat(100)
    );
    assert!(!too_deep(&quiet), "{quiet}");
    // A quote inside a plain scalar does not hide the brackets after it.
    let hidden = format!("x: [a \"b, {}{}]\n", "[".repeat(40), "]".repeat(40));
    assert!(too_deep(&hidden));
    let glued = format!("x: {{a:\"{}\n", "[".repeat(40));
    assert!(too_deep(&glued));
    // A plain scalar holding `,"` outside brackets opens nothing.
    let plain_comma = format!("x: a,\"\ny: {}{}\n", "[".repeat(40), "]".repeat(40));
    assert!(too_deep(&plain_comma));
    // A quoted scalar spanning lines cannot cancel or hide the brackets after it.
    let spanning = format!(
        "x: [\"\n]]]]]]\n\", {}{}]\n",
        "[".repeat(40),
        "]".repeat(40)
    );
    assert!(too_deep(&spanning));
    let interleaved = format!("x: [\"\n\", {}]\n", "[\"]\", ".repeat(40));
    assert!(too_deep(&interleaved));
    // An ordinary configuration is untouched.
    let settings = Settings::from_yaml(
        "broker:\n  backend: fake\nauth:\n  enabled_scopes:\n    - ibkr:health:read\nmcp:\n  toolsets: [session, market]\n",
    );
    assert!(settings.is_ok(), "{settings:?}");
}

#[test]
fn a_config_file_over_the_size_limit_is_refused_unparsed() {
    let sandbox = Sandbox::new();
    let mut large = "broker:\n  backend: fake\n".to_owned();
    large.push_str(&"# padding\n".repeat(MAX_CONFIG_BYTES / 10 - 3));
    large.push_str(&"#".repeat(MAX_CONFIG_BYTES + 1 - large.len()));
    assert_eq!(large.len(), MAX_CONFIG_BYTES + 1);
    let (code, message) = refusal(health_with(&sandbox, "large.yaml", &large));
    assert_eq!(code, "CONFIG_INVALID");
    assert!(
        message.contains("larger than the 1048576-byte limit"),
        "{message}"
    );
    // At the limit it is read.
    large.pop();
    let (code, value, _) = health_with(&sandbox, "at-limit.yaml", &large);
    assert_eq!(code, 0, "{value}");
}

#[test]
fn granted_live_scopes_are_warned_about_at_start_up() {
    let sandbox = Sandbox::new();
    let (code, value, stderr) = health_with(
        &sandbox,
        "live.yaml",
        "auth:\n  enabled_scopes:\n    - ibkr:health:read\n    - ibkr:orders:live:submit\n    - ibkr:orders:live:cancel\n",
    );
    assert_eq!(code, 0, "{value}");
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(
        stderr.contains("ibkr:orders:live:submit, ibkr:orders:live:cancel"),
        "{stderr}"
    );
    assert!(stderr.contains("which do nothing"), "{stderr}");
    assert!(!stderr.contains("ibkr:orders:live:modify"), "{stderr}");
    assert_eq!(
        value["inert_scopes"],
        serde_json::json!(["ibkr:orders:live:submit", "ibkr:orders:live:cancel"])
    );

    let (code, value, stderr) = health_with(
        &sandbox,
        "paper.yaml",
        "auth:\n  enabled_scopes:\n    - ibkr:health:read\n    - ibkr:orders:preview\n",
    );
    assert_eq!(code, 0, "{value}");
    assert!(!stderr.contains("do nothing"), "{stderr}");
    assert_eq!(value["inert_scopes"], serde_json::json!([]));
}
