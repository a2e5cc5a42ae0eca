//! The start-up gates of live trading: a gateway whose configuration turns live trading on
//! starts only when the rest of that configuration makes live trading safe to run.
//!
//! [`check`] is a pure function of the validated [`Settings`] and of where the audit key came
//! from. With both switches off there is nothing to check. Otherwise the gates run in a fixed
//! order and the first that fails is returned as [`StartupError::LiveGate`], with its own
//! `CONFIG_LIVE_*` code and the key that must change. No message quotes a value or an account
//! id; an allow-list entry is named by its position.
//!
//! | gate                                                     | code                                     | key                                                  |
//! |----------------------------------------------------------|------------------------------------------|------------------------------------------------------|
//! | both switches, not one                                   | `CONFIG_LIVE_SWITCH_MISMATCH`            | the switch that is off                               |
//! | a non-empty allow-list of live-shaped ids                | `CONFIG_LIVE_ACCOUNTS_INVALID`           | `live_trading.allowed_accounts[i]`                   |
//! | a risk policy named and defined                          | `CONFIG_LIVE_RISK_POLICY_MISSING`        | `live_trading.risk_policy_id`                        |
//! | the paper-to-live checklist acknowledged                 | `CONFIG_LIVE_CHECKLIST_NOT_ACKNOWLEDGED` | `live_trading.paper_to_live_checklist_acknowledged`  |
//! | live-write audit retention of at least 2555 days         | `CONFIG_LIVE_RETENTION_TOO_SHORT`        | `audit.live_write_retention_days`                    |
//! | a deployment audit key from the environment              | `CONFIG_LIVE_AUDIT_KEY_NOT_DEPLOYED`     | `audit.hmac_secret_env`                              |
//! | a deployment checkpoint signing key (file or environment) | `CONFIG_LIVE_AUDIT_KEY_NOT_DEPLOYED`     | `audit.signing_key_env`                              |
//!
//! The last gate is [`check_signing_key`], run after [`check`] by the composition root.
//!
//! The allow-list gate also runs while the YAML is read (`app::config`), because only there are
//! the entries still in the file's order; [`check`] repeats it for settings built in code, where
//! a position counts in the set's (sorted) order.

use crate::app::config::{DEFAULT_LIVE_WRITE_RETENTION_DAYS, Settings};
use crate::app::startup_error::StartupError;
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::AccountId;

/// The shortest retention of live-write audit events live trading starts with: seven years.
pub const MIN_LIVE_WRITE_RETENTION_DAYS: u32 = DEFAULT_LIVE_WRITE_RETENTION_DAYS;

/// Refuses a configuration that turns live trading on without making it safe.
///
/// `key_from_environment` says whether the audit key was read from the deployment's
/// environment variable (`audit.hmac_secret_env`); false means a development key (the key file
/// in the state directory), which live trading refuses.
///
/// # Errors
/// [`StartupError::LiveGate`] for the first gate that fails, in the order of the module's
/// table.
pub fn check(settings: &Settings, key_from_environment: bool) -> Result<(), StartupError> {
    let live = &settings.live_trading;
    match (live.enabled, live.safety_enabled) {
        (false, false) => return Ok(()),
        (true, false) => {
            return Err(gate(
                ErrorCode::ConfigLiveSwitchMismatch,
                "safety.live_trading_enabled",
                "must also be true when live_trading.enabled is true; live trading needs both \
                 switches (set both, or neither)",
            ));
        }
        (false, true) => {
            return Err(gate(
                ErrorCode::ConfigLiveSwitchMismatch,
                "live_trading.enabled",
                "must also be true when safety.live_trading_enabled is true; live trading needs \
                 both switches (set both, or neither)",
            ));
        }
        (true, true) => {}
    }
    check_allowed_accounts(&live.allowed_accounts)?;
    match &live.risk_policy_id {
        None => {
            return Err(gate(
                ErrorCode::ConfigLiveRiskPolicyMissing,
                "live_trading.risk_policy_id",
                "must name the risk policy live orders are judged by",
            ));
        }
        Some(id) if !live.policies.contains_key(id) => {
            return Err(gate(
                ErrorCode::ConfigLiveRiskPolicyMissing,
                "live_trading.risk_policy_id",
                "names no policy defined under live_trading.policies",
            ));
        }
        Some(_) => {}
    }
    if !live.checklist_acknowledged {
        return Err(gate(
            ErrorCode::ConfigLiveChecklistNotAcknowledged,
            "live_trading.paper_to_live_checklist_acknowledged",
            "must be true: acknowledge the paper-to-live checklist (docs/live-trading.md) \
             before turning live trading on",
        ));
    }
    if settings.audit.live_write_retention_days < MIN_LIVE_WRITE_RETENTION_DAYS {
        return Err(gate(
            ErrorCode::ConfigLiveRetentionTooShort,
            "audit.live_write_retention_days",
            format!(
                "must be at least {MIN_LIVE_WRITE_RETENTION_DAYS} days (seven years) when live \
                 trading is on"
            ),
        ));
    }
    if !key_from_environment {
        return Err(gate(
            ErrorCode::ConfigLiveAuditKeyNotDeployed,
            "audit.hmac_secret_env",
            "live trading needs the audit key from this environment variable; the development \
             key file is refused for live",
        ));
    }
    Ok(())
}

/// The signing-key gate: with live trading on, checkpoints must be signed by the deployment's
/// key (from `audit.signing_key_file` or the variable named by `audit.signing_key_env`), not
/// by the development key nor by none. Run after [`check`], which refuses one switch alone.
///
/// # Errors
/// [`StartupError::LiveGate`] with `CONFIG_LIVE_AUDIT_KEY_NOT_DEPLOYED`.
pub fn check_signing_key(
    settings: &Settings,
    signing_key_deployed: bool,
) -> Result<(), StartupError> {
    let live = &settings.live_trading;
    if !(live.enabled || live.safety_enabled) || signing_key_deployed {
        return Ok(());
    }
    Err(gate(
        ErrorCode::ConfigLiveAuditKeyNotDeployed,
        "audit.signing_key_env",
        "live trading needs signed audit checkpoints: set the variable named by \
         audit.signing_key_env or audit.signing_key_file to the deployment's signing secret; \
         the development signing key is refused for live",
    ))
}

/// The allow-list gate: at least one entry, and every entry a live-shaped id (not a paper
/// `DU`/`DF` id). A refused entry is named by its position in `accounts`.
///
/// # Errors
/// [`StartupError::LiveGate`] with `CONFIG_LIVE_ACCOUNTS_INVALID`.
pub(crate) fn check_allowed_accounts<'a>(
    accounts: impl IntoIterator<Item = &'a AccountId>,
) -> Result<(), StartupError> {
    let mut any = false;
    for (index, id) in accounts.into_iter().enumerate() {
        any = true;
        if id.is_paper_shaped() {
            return Err(gate(
                ErrorCode::ConfigLiveAccountsInvalid,
                format!("live_trading.allowed_accounts[{index}]"),
                "is a paper account id (DU or DF); live trading allows live accounts only",
            ));
        }
    }
    if !any {
        return Err(gate(
            ErrorCode::ConfigLiveAccountsInvalid,
            "live_trading.allowed_accounts",
            "must name at least one live account when live trading is on",
        ));
    }
    Ok(())
}

fn gate(code: ErrorCode, key_path: impl Into<String>, message: impl Into<String>) -> StartupError {
    StartupError::LiveGate {
        code,
        key_path: key_path.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rust_decimal::Decimal;

    use super::*;
    use crate::app::live_settings::LiveTradingSettings;
    use crate::domain::instrument::AssetClass;
    use crate::domain::money::Currency;
    use crate::domain::risk_policy::{RiskPolicy, RiskPolicyParts};

    fn policy() -> RiskPolicy {
        RiskPolicy::parse(RiskPolicyParts {
            currency: Currency::parse("USD").unwrap(),
            max_notional: Decimal::from(10_000),
            max_quantity: Decimal::from(100),
            allowed_symbols: vec!["AAPL".into()],
            allowed_asset_classes: vec![AssetClass::Stock],
            frequency_max_orders: 5,
            frequency_window_seconds: 60,
            session_max_orders: 20,
            session_max_notional: Decimal::from(50_000),
            max_price_deviation_bps: 100,
            max_quote_age_seconds: 5,
        })
        .unwrap()
    }

    /// Settings that pass every gate (with a key from the environment).
    fn live_settings() -> Settings {
        let mut settings = Settings::embedded_defaults();
        settings.live_trading = LiveTradingSettings {
            enabled: true,
            safety_enabled: true,
            allowed_accounts: [AccountId::parse("U7654321").unwrap()].into(),
            risk_policy_id: Some("core".into()),
            policies: BTreeMap::from([("core".to_owned(), policy())]),
            checklist_acknowledged: true,
            ..LiveTradingSettings::default()
        };
        settings
    }

    /// The code and key path of the refusal.
    fn refusal(settings: &Settings, key_from_environment: bool) -> (ErrorCode, String) {
        match check(settings, key_from_environment) {
            Err(StartupError::LiveGate { code, key_path, .. }) => (code, key_path),
            other => panic!("expected a live gate refusal, got {other:?}"),
        }
    }

    #[test]
    fn nothing_is_checked_when_both_switches_are_off() {
        // Everything else is as unsafe as it can be, and the key is a development key.
        let mut settings = live_settings();
        settings.live_trading.enabled = false;
        settings.live_trading.safety_enabled = false;
        settings.live_trading.allowed_accounts.clear();
        settings.live_trading.risk_policy_id = None;
        settings.live_trading.checklist_acknowledged = false;
        settings.audit.live_write_retention_days = 1;
        assert!(check(&settings, false).is_ok());
        assert!(check(&Settings::embedded_defaults(), false).is_ok());
    }

    #[test]
    fn a_complete_live_configuration_with_a_deployed_key_passes() {
        assert!(check(&live_settings(), true).is_ok());
    }

    #[test]
    fn one_switch_without_the_other_names_the_switch_that_is_off() {
        let mut settings = live_settings();
        settings.live_trading.safety_enabled = false;
        assert_eq!(
            refusal(&settings, true),
            (
                ErrorCode::ConfigLiveSwitchMismatch,
                "safety.live_trading_enabled".to_owned()
            )
        );
        settings.live_trading.safety_enabled = true;
        settings.live_trading.enabled = false;
        assert_eq!(
            refusal(&settings, true),
            (
                ErrorCode::ConfigLiveSwitchMismatch,
                "live_trading.enabled".to_owned()
            )
        );
    }

    #[test]
    fn an_empty_allow_list_is_refused() {
        let mut settings = live_settings();
        settings.live_trading.allowed_accounts.clear();
        assert_eq!(
            refusal(&settings, true),
            (
                ErrorCode::ConfigLiveAccountsInvalid,
                "live_trading.allowed_accounts".to_owned()
            )
        );
    }

    #[test]
    fn a_paper_account_in_the_allow_list_is_refused_by_position_without_its_id() {
        let mut settings = live_settings();
        // Sorted: DU1234567 comes first, U7654321 second.
        settings
            .live_trading
            .allowed_accounts
            .insert(AccountId::parse("DU1234567").unwrap());
        let error = check(&settings, true).unwrap_err();
        assert_eq!(error.code(), ErrorCode::ConfigLiveAccountsInvalid);
        let message = error.to_string();
        assert!(
            message.starts_with("live_trading.allowed_accounts[0]:"),
            "{message}"
        );
        assert!(!message.contains("1234567"), "{message}");
    }

    #[test]
    fn a_missing_or_undefined_risk_policy_is_refused() {
        let mut settings = live_settings();
        settings.live_trading.risk_policy_id = None;
        assert_eq!(
            refusal(&settings, true),
            (
                ErrorCode::ConfigLiveRiskPolicyMissing,
                "live_trading.risk_policy_id".to_owned()
            )
        );
        settings.live_trading.risk_policy_id = Some("elsewhere".into());
        assert_eq!(
            refusal(&settings, true),
            (
                ErrorCode::ConfigLiveRiskPolicyMissing,
                "live_trading.risk_policy_id".to_owned()
            )
        );
    }

    #[test]
    fn an_unacknowledged_checklist_is_refused() {
        let mut settings = live_settings();
        settings.live_trading.checklist_acknowledged = false;
        assert_eq!(
            refusal(&settings, true),
            (
                ErrorCode::ConfigLiveChecklistNotAcknowledged,
                "live_trading.paper_to_live_checklist_acknowledged".to_owned()
            )
        );
    }

    #[test]
    fn retention_under_seven_years_is_refused_and_the_floor_itself_passes() {
        let mut settings = live_settings();
        settings.audit.live_write_retention_days = 2554;
        assert_eq!(
            refusal(&settings, true),
            (
                ErrorCode::ConfigLiveRetentionTooShort,
                "audit.live_write_retention_days".to_owned()
            )
        );
        settings.audit.live_write_retention_days = 2555;
        assert!(check(&settings, true).is_ok());
    }

    #[test]
    fn a_development_audit_key_is_refused_for_live() {
        assert_eq!(
            refusal(&live_settings(), false),
            (
                ErrorCode::ConfigLiveAuditKeyNotDeployed,
                "audit.hmac_secret_env".to_owned()
            )
        );
    }

    #[test]
    fn live_trading_without_a_deployed_signing_key_is_refused() {
        let error = check_signing_key(&live_settings(), false).unwrap_err();
        assert_eq!(error.code(), ErrorCode::ConfigLiveAuditKeyNotDeployed);
        assert!(
            matches!(&error, StartupError::LiveGate { key_path, message, .. }
                if key_path == "audit.signing_key_env" && message.contains("audit.signing_key_file")),
            "{error:?}"
        );
        assert!(check_signing_key(&live_settings(), true).is_ok());
        // With live trading off, checkpoints may be off or signed by the development key.
        assert!(check_signing_key(&Settings::embedded_defaults(), false).is_ok());
    }

    #[test]
    fn the_first_failing_gate_in_table_order_is_reported() {
        let mut settings = live_settings();
        settings.live_trading.checklist_acknowledged = false;
        settings.audit.live_write_retention_days = 30;
        assert_eq!(
            refusal(&settings, false).0,
            ErrorCode::ConfigLiveChecklistNotAcknowledged
        );
    }
}
