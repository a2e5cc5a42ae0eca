//! Live trading configuration through the library: the committed `config/live.example.yaml`
//! loads with live trading on and passes the start-up gates only with a deployed audit key, and
//! every malformed live key is refused naming its key path without quoting its value. The
//! reconciler's timing and the automatic halts (`live_trading.auto_halt`) default to on, can
//! each be switched off, and refuse values out of range by key path.

use std::path::Path;
use std::time::Duration;

use ibkr_agent_gateway::app::config::Settings;
use ibkr_agent_gateway::app::live_settings::{
    AutoHaltSettings, DEFAULT_SESSION_TIME_ZONE, LiveWriterKind, ReconcilerSettings,
    SessionLossThreshold,
};
use ibkr_agent_gateway::app::live_startup;
use ibkr_agent_gateway::app::startup_error::StartupError;
use ibkr_agent_gateway::domain::instrument::AssetClass;

fn live_example() -> Settings {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/live.example.yaml");
    Settings::load(&path).unwrap()
}

/// A complete live section on the fake backend with the local-candidate writer.
const LIVE: &str = "\
safety:
  live_trading_enabled: true
live_trading:
  enabled: true
  allowed_accounts: [U7654321]
  risk_policy_id: core
  paper_to_live_checklist_acknowledged: true
  writer: local_candidate
  policies:
    core:
      currency: USD
      max_notional: \"2500\"
      max_quantity: \"10\"
      allowed_symbols: [AAPL]
      allowed_asset_classes: [STK, ETF]
      frequency:
        max_orders: 3
        window_seconds: 60
      session:
        max_orders: 20
        max_notional: \"10000\"
      max_price_deviation_bps: 50
      max_quote_age_seconds: 5
";

/// `LIVE` with one piece of text replaced (which must be there).
fn live_with(from: &str, to: &str) -> String {
    assert!(LIVE.contains(from), "{from:?} is not in the base text");
    LIVE.replacen(from, to, 1)
}

/// The refusal's code and message (`key.path: what is wrong`).
fn refusal(yaml: &str) -> (String, String) {
    let error = Settings::from_yaml(yaml).unwrap_err();
    (error.code().as_str().to_owned(), error.to_string())
}

#[track_caller]
fn assert_invalid_at(yaml: &str, key_path: &str) -> String {
    let (code, message) = refusal(yaml);
    assert_eq!(code, "CONFIG_INVALID", "{message}");
    assert!(
        message.starts_with(&format!("{key_path}:")),
        "expected {key_path}, got {message}"
    );
    message
}

#[test]
fn the_live_example_loads_with_live_on_and_its_policy_resolved() {
    let settings = live_example();
    assert_eq!(settings.broker.name(), "client_portal_gateway");
    let live = &settings.live_trading;
    assert!(live.is_on());
    assert_eq!(live.allowed_accounts.len(), 1);
    assert!(live.allowed_accounts.iter().all(|id| !id.is_paper_shaped()));
    assert!(live.checklist_acknowledged);
    assert!(!live.agent_approvals_allowed);
    assert_eq!(live.writer, LiveWriterKind::ClientPortal);
    assert_eq!(live.session_time_zone, chrono_tz::America::New_York);
    assert_eq!(settings.max_reply_rounds, 5);
    assert!(settings.audit.live_write_retention_days >= 2555);

    let policy = live
        .policy()
        .expect("risk_policy_id names a defined policy");
    assert_eq!(policy.currency().as_str(), "USD");
    // Exact decimals, as written.
    assert_eq!(policy.max_notional().to_string(), "2500.00");
    assert_eq!(policy.session_max_notional().to_string(), "10000.00");
    assert_eq!(policy.max_quantity().to_string(), "10");
    assert!(policy.allowed_symbols().contains("AAPL"));
    assert!(policy.allowed_asset_classes().contains(&AssetClass::Stock));
    assert_eq!(policy.frequency_max_orders(), 3);
    assert_eq!(policy.frequency_window_seconds(), 60);
    assert_eq!(policy.session_max_orders(), 20);
    assert_eq!(policy.max_price_deviation_bps(), 50);
    assert_eq!(policy.max_quote_age_seconds(), 5);
    // The reconciler and the automatic halts, spelled out at their defaults.
    assert_eq!(live.reconciler, ReconcilerSettings::default());
    assert_eq!(live.auto_halt, AutoHaltSettings::default());
}

#[test]
fn the_live_example_starts_only_with_a_deployed_audit_key() {
    let settings = live_example();
    live_startup::check(&settings, true).unwrap();
    let error = live_startup::check(&settings, false).unwrap_err();
    assert_eq!(error.code().as_str(), "CONFIG_LIVE_AUDIT_KEY_NOT_DEPLOYED");
    assert!(
        matches!(&error, StartupError::LiveGate { key_path, .. } if key_path == "audit.hmac_secret_env"),
        "{error:?}"
    );
}

#[test]
fn live_trading_is_off_and_refusing_by_default() {
    let settings = Settings::from_yaml("").unwrap();
    let live = &settings.live_trading;
    assert!(!live.enabled && !live.safety_enabled && !live.is_on());
    assert_eq!(live.writer, LiveWriterKind::Refusing);
    assert!(!live.agent_approvals_allowed);
    assert_eq!(live.session_time_zone, DEFAULT_SESSION_TIME_ZONE);
    assert_eq!(settings.max_reply_rounds, 5);
    live_startup::check(&settings, false).unwrap();
}

#[test]
fn a_complete_live_section_parses_with_its_optional_keys() {
    let settings = Settings::from_yaml(&format!(
        "{LIVE}  agent_approvals_allowed: true\n  session_time_zone: Europe/Zurich\nbroker:\n  max_reply_rounds: 10\n"
    ))
    .unwrap();
    assert!(settings.live_trading.agent_approvals_allowed);
    assert_eq!(
        settings.live_trading.session_time_zone,
        chrono_tz::Europe::Zurich
    );
    assert_eq!(settings.live_trading.writer, LiveWriterKind::LocalCandidate);
    assert_eq!(settings.max_reply_rounds, 10);
    let classes = settings
        .live_trading
        .policy()
        .unwrap()
        .allowed_asset_classes();
    assert!(classes.contains(&AssetClass::Etf));
    live_startup::check(&settings, true).unwrap();
}

#[test]
fn the_safety_section_holds_one_boolean_switch() {
    assert_invalid_at("safety:\n  bogus: true\n", "safety.bogus");
    assert_invalid_at(
        "safety:\n  live_trading_enabled: maybe\n",
        "safety.live_trading_enabled",
    );
}

#[test]
fn allow_list_entries_are_refused_by_position_without_the_id() {
    let message = assert_invalid_at(
        &live_with("[U7654321]", "[U7654321, U76543x1]"),
        "live_trading.allowed_accounts[1]",
    );
    assert!(!message.contains("7654"), "{message}");
    // A number where an id belongs: serde's message would quote it.
    let message = assert_invalid_at(
        &live_with("[U7654321]", "[1234567]"),
        "live_trading.allowed_accounts[0]",
    );
    assert!(!message.contains("1234567"), "{message}");
    let message = assert_invalid_at(
        &live_with("[U7654321]", "[U7654321, U7654321]"),
        "live_trading.allowed_accounts[1]",
    );
    assert!(!message.contains("7654321"), "{message}");
}

#[test]
fn a_paper_account_on_a_live_allow_list_is_a_live_gate_at_its_position_in_the_file() {
    // Sorted, the paper id would come first; the refusal names where it is in the file.
    let yaml = live_with("[U7654321]", "[U7654321, DU1234567]");
    let (code, message) = refusal(&yaml);
    assert_eq!(code, "CONFIG_LIVE_ACCOUNTS_INVALID");
    assert!(
        message.starts_with("live_trading.allowed_accounts[1]:"),
        "{message}"
    );
    assert!(!message.contains("1234567"), "{message}");
    // With live trading off, the list is not gated (the start-up check has nothing to check).
    let off = yaml.replace("  enabled: true\n", "  enabled: false\n");
    let off = off.replace("live_trading_enabled: true", "live_trading_enabled: false");
    let settings = Settings::from_yaml(&off).unwrap();
    live_startup::check(&settings, false).unwrap();
}

#[test]
fn policy_errors_name_the_policy_and_the_key() {
    let prefix = "live_trading.policies.core";
    let cases = [
        (
            "      max_quote_age_seconds: 5\n",
            "      max_quote_age_seconds: 5\n      bogus: 1\n",
            "bogus",
        ),
        ("max_notional: \"2500\"", "max_notional: 0", "max_notional"),
        (
            "max_notional: \"2500\"",
            "max_notional: \"1e3\"",
            "max_notional",
        ),
        (
            "max_quantity: \"10\"",
            "max_quantity: \"-1\"",
            "max_quantity",
        ),
        ("currency: USD", "currency: usd", "currency"),
        (
            "allowed_symbols: [AAPL]",
            "allowed_symbols: []",
            "allowed_symbols",
        ),
        (
            "allowed_symbols: [AAPL]",
            "allowed_symbols: [\"BRK B\"]",
            "allowed_symbols",
        ),
        ("[STK, ETF]", "[STK, IND]", "allowed_asset_classes[1]"),
        ("[STK, ETF]", "[STK, OTHER]", "allowed_asset_classes[1]"),
        ("[STK, ETF]", "[]", "allowed_asset_classes"),
        ("max_orders: 3", "max_orders: 0", "frequency.max_orders"),
        (
            "window_seconds: 60",
            "window_seconds: -60",
            "frequency.window_seconds",
        ),
        ("max_orders: 20", "max_orders: 0", "session.max_orders"),
        (
            "max_notional: \"10000\"",
            "max_notional: 0",
            "session.max_notional",
        ),
        (
            "max_notional: \"10000\"",
            "max_notional: \"ten\"",
            "session.max_notional",
        ),
        (
            "max_price_deviation_bps: 50",
            "max_price_deviation_bps: 10001",
            "max_price_deviation_bps",
        ),
        (
            "max_price_deviation_bps: 50",
            "max_price_deviation_bps: 0",
            "max_price_deviation_bps",
        ),
        (
            "max_quote_age_seconds: 5",
            "max_quote_age_seconds: 0",
            "max_quote_age_seconds",
        ),
        (
            "        window_seconds: 60\n",
            "        window_seconds: 60\n        burst: 2\n",
            "frequency.burst",
        ),
    ];
    for (from, to, key) in cases {
        assert_invalid_at(&live_with(from, to), &format!("{prefix}.{key}"));
    }
    // A missing limit is not filled in by a default.
    let message = assert_invalid_at(&live_with("      max_quote_age_seconds: 5\n", ""), prefix);
    assert!(message.contains("max_quote_age_seconds"), "{message}");
    assert_invalid_at(
        &live_with("    core:\n", "    \"core policy\":\n"),
        "live_trading.policies",
    );
}

#[test]
fn a_type_error_names_the_kind_of_value_but_not_the_value() {
    let message = assert_invalid_at(
        &live_with("max_orders: 3", "max_orders: \"s3cr3t-value\""),
        "live_trading.policies.core.frequency.max_orders",
    );
    assert!(message.contains("invalid type: string"), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");
    let message = assert_invalid_at("broker:\n  backend: tws-secret\n", "broker.backend");
    assert!(!message.contains("tws-secret"), "{message}");
    assert!(message.contains("client_portal_gateway"), "{message}");
    let message = assert_invalid_at(
        "live_trading:\n  policies:\n    core: 3\n",
        "live_trading.policies.core",
    );
    assert!(message.contains("expected a risk policy"), "{message}");
}

#[test]
fn the_writer_time_zone_and_policy_id_are_checked() {
    assert_invalid_at(
        &live_with("writer: local_candidate", "writer: tws"),
        "live_trading.writer",
    );
    let message = assert_invalid_at(
        &live_with("writer: local_candidate", "writer: client_portal"),
        "live_trading.writer",
    );
    assert!(message.contains("client_portal_gateway"), "{message}");
    assert_invalid_at(
        &format!("{LIVE}  session_time_zone: Mars/Olympus_Mons\n"),
        "live_trading.session_time_zone",
    );
    assert_invalid_at(
        &live_with("risk_policy_id: core", "risk_policy_id: \"core; drop\""),
        "live_trading.risk_policy_id",
    );
    assert_invalid_at(
        &format!("{LIVE}  surprise: true\n"),
        "live_trading.surprise",
    );
}

#[test]
fn reply_rounds_are_bounded_from_1_to_10() {
    for bad in ["0", "11", "300", "-1"] {
        assert_invalid_at(
            &format!("broker:\n  max_reply_rounds: {bad}\n"),
            "broker.max_reply_rounds",
        );
    }
    for good in [1_u8, 10] {
        let settings =
            Settings::from_yaml(&format!("broker:\n  max_reply_rounds: {good}\n")).unwrap();
        assert_eq!(settings.max_reply_rounds, good);
    }
}

#[test]
fn the_reconciler_and_every_automatic_halt_are_on_by_default() {
    let settings = Settings::from_yaml("").unwrap();
    let live = &settings.live_trading;
    assert_eq!(live.reconciler.interval, Duration::from_secs(30));
    assert_eq!(live.reconciler.missing_grace, Duration::from_secs(300));
    let halts = live.auto_halt;
    assert!(halts.audit_write_failure);
    assert_eq!(halts.consecutive_rejections, Some(3));
    assert_eq!(
        halts.session_loss,
        Some(SessionLossThreshold {
            count: 3,
            window: Duration::from_secs(600),
        })
    );
    assert!(halts.overfill);
    assert!(halts.unknown_client_order_id);
    assert_eq!(halts, AutoHaltSettings::default());
    // An empty section, and triggers named without their keys, keep the defaults.
    let named = Settings::from_yaml(
        "live_trading:\n  auto_halt:\n    consecutive_rejections: {}\n    session_loss: {}\n",
    )
    .unwrap();
    assert_eq!(named.live_trading.auto_halt, AutoHaltSettings::default());
}

#[test]
fn the_reconciler_and_auto_halt_keys_parse() {
    let settings = Settings::from_yaml(&format!(
        "{LIVE}  reconciler_interval_seconds: 15
  reconciler_grace_seconds: 120
  auto_halt:
    audit_write_failure: true
    consecutive_rejections:
      enabled: true
      count: 5
    session_loss:
      count: 4
      window_minutes: 30
    overfill: true
    unknown_client_order_id: true
"
    ))
    .unwrap();
    let live = &settings.live_trading;
    assert_eq!(live.reconciler.interval, Duration::from_secs(15));
    assert_eq!(live.reconciler.missing_grace, Duration::from_secs(120));
    assert_eq!(
        live.auto_halt,
        AutoHaltSettings {
            audit_write_failure: true,
            consecutive_rejections: Some(5),
            session_loss: Some(SessionLossThreshold {
                count: 4,
                window: Duration::from_secs(30 * 60),
            }),
            overfill: true,
            unknown_client_order_id: true,
        }
    );
    live_startup::check(&settings, true).unwrap();
}

#[test]
fn each_automatic_halt_can_be_switched_off() {
    let settings = Settings::from_yaml(&format!(
        "{LIVE}  auto_halt:
    audit_write_failure: false
    consecutive_rejections:
      enabled: false
      count: 3
    session_loss:
      enabled: false
    overfill: false
    unknown_client_order_id: false
"
    ))
    .unwrap();
    assert_eq!(
        settings.live_trading.auto_halt,
        AutoHaltSettings {
            audit_write_failure: false,
            consecutive_rejections: None,
            session_loss: None,
            overfill: false,
            unknown_client_order_id: false,
        }
    );
}

#[test]
fn reconciler_and_auto_halt_values_out_of_range_are_refused_by_key_path() {
    let section = |body: &str| format!("live_trading:\n{body}");
    for bad in ["0", "9", "3601", "-1", "fast"] {
        assert_invalid_at(
            &section(&format!("  reconciler_interval_seconds: {bad}\n")),
            "live_trading.reconciler_interval_seconds",
        );
    }
    for bad in ["59", "86401", "-5"] {
        assert_invalid_at(
            &section(&format!(
                "  reconciler_interval_seconds: 60\n  reconciler_grace_seconds: {bad}\n"
            )),
            "live_trading.reconciler_grace_seconds",
        );
    }
    let halts = |body: &str| section(&format!("  auto_halt:\n{body}"));
    for bad in ["0", "1001", "-1"] {
        assert_invalid_at(
            &halts(&format!(
                "    consecutive_rejections:\n      count: {bad}\n"
            )),
            "live_trading.auto_halt.consecutive_rejections.count",
        );
        assert_invalid_at(
            &halts(&format!("    session_loss:\n      count: {bad}\n")),
            "live_trading.auto_halt.session_loss.count",
        );
    }
    for bad in ["0", "1441"] {
        assert_invalid_at(
            &halts(&format!("    session_loss:\n      window_minutes: {bad}\n")),
            "live_trading.auto_halt.session_loss.window_minutes",
        );
    }
    assert_invalid_at(
        &halts("    overfill: sometimes\n"),
        "live_trading.auto_halt.overfill",
    );
    assert_invalid_at(
        &halts("    on_rainy_days: true\n"),
        "live_trading.auto_halt.on_rainy_days",
    );
    assert_invalid_at(
        &halts("    session_loss:\n      minutes: 10\n"),
        "live_trading.auto_halt.session_loss.minutes",
    );
    assert_invalid_at(
        &halts("    consecutive_rejections: 3\n"),
        "live_trading.auto_halt.consecutive_rejections",
    );
}
