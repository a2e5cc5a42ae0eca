//! The live-trading controls: the kill switch (status, halt, allow) and the live limits'
//! remaining budgets.
//!
//! The kill switch is a domain state machine ([`crate::domain::kill_switch`]) stored in the
//! workflow store, so every process sharing the database sees one state, and a restart keeps
//! it. A database that never stored one is halted: an operator allows writes explicitly.
//! Every change is an audit event; the two directions are ordered for safety:
//! - a halt is stored first and audited after: if the audit log fails, writes are still
//!   halted (the call reports the audit failure);
//! - an allow is audited first (a durable event) and stored after: if the audit log fails,
//!   writes stay halted and nothing changed.
//!
//! Only an operator may allow writes (the domain refuses anyone else with
//! `KILL_SWITCH_ALLOW_FORBIDDEN`, and the MCP server offers no allow tool). Anyone holding
//! `ibkr:killswitch` may halt: an agent can stop itself, never restart itself.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use crate::app::audited::{CallContext, CallSpec};
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::live_views::{KillSwitchView, LimitBudgetView, LimitsView};
use crate::domain::kill_switch::{KillSwitch, KillSwitchReason, SwitchActor};
use crate::domain::risk_policy::{RiskCounters, remaining_budget};
use crate::domain::scope::Scope;

/// Where the frequency window and the trading day begin for `now`: the window is the last
/// `window_seconds`; the trading day began at the last midnight in `zone`. A midnight the
/// zone skips (or an overflow) falls back to a full day earlier, which counts more, never
/// less.
pub(crate) fn counter_starts(
    now: DateTime<Utc>,
    window_seconds: u32,
    zone: chrono_tz::Tz,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let window_start = now
        .checked_sub_signed(Duration::seconds(i64::from(window_seconds)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let local_midnight = now.with_timezone(&zone).date_naive().and_hms_opt(0, 0, 0);
    let session_start = local_midnight
        .and_then(|midnight| zone.from_local_datetime(&midnight).earliest())
        .map(|start| start.with_timezone(&Utc))
        .or_else(|| now.checked_sub_signed(Duration::hours(24)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    (window_start, session_start)
}

impl Gateway {
    /// The kill switch as stored now.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE`, `WORKFLOW_STORE_FAILED`, `WORKFLOW_RECORD_CORRUPT`,
    /// `AUDIT_WRITE_FAILED`.
    pub async fn kill_switch_status(
        &self,
        context: &CallContext,
    ) -> Result<KillSwitchView, GatewayError> {
        let spec = CallSpec::read("kill-switch status", Scope::KillSwitch, json!({}));
        self.audited(context, spec, |_note| async move {
            Ok(KillSwitchView::of(
                self.workflow().kill_switch().await?.as_ref(),
            ))
        })
        .await
    }

    /// Halts live writes, whoever asks (with the scope). Halting a halted switch records the
    /// newer reason.
    ///
    /// # Errors
    /// `INPUT_INVALID` for a missing or malformed reason, `AUTH_MISSING_SCOPE`,
    /// `WORKFLOW_STORE_FAILED`, `AUDIT_WRITE_FAILED` (the halt stands).
    pub async fn kill_switch_halt(
        &self,
        context: &CallContext,
        reason: &str,
    ) -> Result<KillSwitchView, GatewayError> {
        let spec = CallSpec::write(
            "kill-switch halt",
            Some(Scope::KillSwitch),
            json!({ "reason": reason }),
        );
        self.audited(context, spec, |_note| async move {
            let reason = parse_reason(reason)?;
            let now = self.clock().now();
            let current = self
                .workflow()
                .kill_switch()
                .await?
                .unwrap_or_else(|| KillSwitch::fresh(now));
            let halted = current.halt(switch_actor(context), now, reason);
            self.workflow().set_kill_switch(&halted).await?;
            Ok(KillSwitchView::of(Some(&halted)))
        })
        .await
    }

    /// Allows live writes again: an operator only. The allow is recorded as a durable audit
    /// event before it is stored.
    ///
    /// # Errors
    /// `KILL_SWITCH_ALLOW_FORBIDDEN` for anyone but an operator, `INPUT_INVALID`,
    /// `AUTH_MISSING_SCOPE`, `WORKFLOW_STORE_FAILED`, `AUDIT_WRITE_FAILED` (writes stay
    /// halted).
    pub async fn kill_switch_allow(
        &self,
        context: &CallContext,
        reason: &str,
    ) -> Result<KillSwitchView, GatewayError> {
        let spec = CallSpec::write(
            "kill-switch allow",
            Some(Scope::KillSwitch),
            json!({ "reason": reason }),
        );
        self.audited(context, spec, |_note| async move {
            let reason = parse_reason(reason)?;
            let now = self.clock().now();
            let current = self
                .workflow()
                .kill_switch()
                .await?
                .unwrap_or_else(|| KillSwitch::fresh(now));
            let allowed = current.allow(switch_actor(context), now, reason)?;
            self.record_step(
                context,
                "kill-switch allow intent",
                Some(Scope::KillSwitch),
                None,
                json!({ "writes_allowed": true }),
                None,
            )
            .await?;
            self.workflow().set_kill_switch(&allowed).await?;
            Ok(KillSwitchView::of(Some(&allowed)))
        })
        .await
    }

    /// The live risk policy's remaining budgets now, from the durable counters, and the kill
    /// switch.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE`, `WORKFLOW_STORE_FAILED`, `WORKFLOW_RECORD_CORRUPT`,
    /// `AUDIT_WRITE_FAILED`.
    pub async fn limits_status(&self, context: &CallContext) -> Result<LimitsView, GatewayError> {
        let spec = CallSpec::read("limits status", Scope::RiskRead, json!({}));
        self.audited(context, spec, |_note| async move {
            let settings = self.live_trading();
            let switch = self.workflow().kill_switch().await?;
            let mut view = LimitsView {
                live_trading_enabled: settings.is_on(),
                risk_policy_id: None,
                currency: None,
                window_start: None,
                session_start: None,
                budgets: Vec::new(),
                max_price_deviation_bps: None,
                max_quote_age_seconds: None,
                allowed_symbols: Vec::new(),
                allowed_asset_classes: Vec::new(),
                kill_switch: KillSwitchView::of(switch.as_ref()),
            };
            let Some(policy) = settings.policy() else {
                return Ok(view);
            };
            let (window_start, session_start) = counter_starts(
                self.clock().now(),
                policy.frequency_window_seconds(),
                settings.session_time_zone,
            );
            let totals = self
                .workflow()
                .risk_totals(window_start, session_start)
                .await?;
            let counters = RiskCounters::new(
                totals.window_orders,
                totals.session_orders,
                totals.session_notional,
            )
            .map_err(|_| {
                GatewayError::Store(crate::ports::workflow_store::StoreError::Corrupt {
                    detail: "the stored live session notional is negative".into(),
                })
            })?;
            view.risk_policy_id = settings.risk_policy_id.clone();
            view.currency = Some(policy.currency().to_string());
            view.window_start = Some(window_start);
            view.session_start = Some(session_start);
            view.budgets = remaining_budget(policy, &counters)
                .into_iter()
                .map(|budget| LimitBudgetView {
                    rule: budget.rule.to_owned(),
                    code: budget.code.as_str().to_owned(),
                    limit: budget.limit,
                    used: budget.used,
                    remaining: budget.remaining,
                })
                .collect();
            view.max_price_deviation_bps = Some(policy.max_price_deviation_bps());
            view.max_quote_age_seconds = Some(policy.max_quote_age_seconds());
            view.allowed_symbols = policy.allowed_symbols().iter().cloned().collect();
            view.allowed_asset_classes = policy
                .allowed_asset_classes()
                .iter()
                .map(|class| class.code().to_owned())
                .collect();
            Ok(view)
        })
        .await
    }
}

/// Who is moving the switch, as the domain rule sees them.
fn switch_actor(context: &CallContext) -> SwitchActor {
    SwitchActor {
        actor: context.actor().clone(),
        kind: context.principal().kind(),
    }
}

fn parse_reason(raw: &str) -> Result<KillSwitchReason, GatewayError> {
    KillSwitchReason::parse(raw).map_err(|error| GatewayError::InvalidInput {
        field: "reason",
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trading_day_starts_at_midnight_in_the_exchange_zone() {
        let zone = chrono_tz::America::New_York;
        // 03:30 UTC on 3 December is 22:30 on 2 December in New York (EST, UTC-5).
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 3, 30, 0).unwrap();
        let (window, session) = counter_starts(now, 60, zone);
        assert_eq!(window, Utc.with_ymd_and_hms(2026, 12, 3, 3, 29, 0).unwrap());
        assert_eq!(session, Utc.with_ymd_and_hms(2026, 12, 2, 5, 0, 0).unwrap());
        // In summer (EDT, UTC-4) the day starts an hour earlier in UTC.
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(
            counter_starts(summer, 60, zone).1,
            Utc.with_ymd_and_hms(2026, 7, 1, 4, 0, 0).unwrap()
        );
    }
}
