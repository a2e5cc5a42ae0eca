//! Automatic halts: the gateway closing the kill switch by itself on uncertainty.
//!
//! A trigger (an audit write that failed, broker rejections in a row, lost broker sessions, an
//! overfill, a live order the gateway never issued) calls [`Gateway::auto_halt`]. When the
//! trigger is on in `live_trading.auto_halt` the halt is stored first, naming its trigger, and
//! audited after, so a failing audit log cannot keep writes open; only an operator's allow
//! ends it. A trigger that is switched off is still audited, so the operator sees what the
//! gateway would have done.
//!
//! Halting is always safe, so it does not depend on live trading being on.

use serde_json::json;

use crate::app::audited::{CallContext, CallSpec};
use crate::app::gateway::Gateway;
use crate::domain::audit::Durability;
use crate::domain::audit::links::AuditLinks;
use crate::domain::audit::redaction::{replace_account_ids, scrub_secrets};
use crate::domain::ids::AccountId;
use crate::domain::kill_switch::{
    HaltTrigger, KillSwitch, KillSwitchReason, MAX_REASON_CHARS, ReasonError,
};
use crate::ports::workflow_store::StoreError;

/// What [`Gateway::auto_halt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoHaltOutcome {
    /// Live writes are now halted, naming the trigger.
    Halted,
    /// The trigger is switched off in the configuration; nothing changed.
    Disabled,
}

impl Gateway {
    /// True when `trigger` is switched on in `live_trading.auto_halt`.
    pub(crate) fn auto_halt_enabled(&self, trigger: HaltTrigger) -> bool {
        let settings = &self.live_trading().auto_halt;
        match trigger {
            HaltTrigger::AuditWriteFailure => settings.audit_write_failure,
            HaltTrigger::ConsecutiveRejections => settings.consecutive_rejections.is_some(),
            HaltTrigger::SessionLoss => settings.session_loss.is_some(),
            HaltTrigger::Overfill => settings.overfill,
            HaltTrigger::UnknownClientOrderId => settings.unknown_client_order_id,
        }
    }

    /// Halts live writes because of `trigger`, with `detail` (the gateway's own words, naming
    /// accounts by reference; an account id that slips in is replaced by its reference, and
    /// secret-shaped text is scrubbed) as the reason, when the trigger is on. The halt is stored before it is
    /// audited; an audit failure here is logged and never triggers another halt.
    ///
    /// The stored reason reads `automatic halt (<trigger>): <detail>` (control characters
    /// become spaces, a detail too long for a reason is cut); the audit event, named
    /// `kill-switch auto-halt` (or `kill-switch auto-halt skipped (trigger off)`), holds
    /// `{trigger, detail}` as its redacted input.
    ///
    /// # Errors
    /// The store's error when the halt could not be stored: writes may still be allowed, and
    /// the caller must treat the situation as unknown.
    pub async fn auto_halt(
        &self,
        trigger: HaltTrigger,
        detail: &str,
    ) -> Result<AutoHaltOutcome, StoreError> {
        self.auto_halt_linked(trigger, detail, &AuditLinks::default())
            .await
    }

    /// [`Gateway::auto_halt`] whose audit event also carries `links` (the broker order an
    /// overfill or an unknown client order id was seen on, its key).
    ///
    /// # Errors
    /// As [`Gateway::auto_halt`].
    pub async fn auto_halt_linked(
        &self,
        trigger: HaltTrigger,
        detail: &str,
        links: &AuditLinks,
    ) -> Result<AutoHaltOutcome, StoreError> {
        let detail = self.safe_detail(detail);
        let detail = detail.as_str();
        let enabled = self.auto_halt_enabled(trigger);
        let outcome = if enabled {
            let reason = halt_reason(trigger, detail).map_err(|_| StoreError::Unavailable {
                detail: "the automatic halt's reason could not be formed".to_owned(),
            })?;
            let halted = KillSwitch::auto_halt(self.clock().now(), trigger, reason);
            if let Err(error) = self.workflow().set_kill_switch(&halted).await {
                tracing::error!(
                    code = %error.code(),
                    trigger = trigger.as_str(),
                    "an automatic halt could not be stored; live writes may still be allowed"
                );
                return Err(error);
            }
            tracing::warn!(
                trigger = trigger.as_str(),
                "live writes halted automatically; only an operator can allow them again"
            );
            AutoHaltOutcome::Halted
        } else {
            AutoHaltOutcome::Disabled
        };
        let spec = CallSpec {
            operation: if enabled {
                "kill-switch auto-halt".to_owned()
            } else {
                "kill-switch auto-halt skipped (trigger off)".to_owned()
            },
            scope: None,
            input: json!({ "trigger": trigger.as_str(), "detail": detail }),
            durability: Durability::Durable,
            input_from_gateway: true,
        };
        // Never `audited`: its failure would halt again, and this is the halt.
        if let Err(error) = self
            .append_without_halting(&CallContext::system(), spec, links)
            .await
        {
            tracing::error!(
                code = %error.code(),
                trigger = trigger.as_str(),
                "an automatic halt could not be audited"
            );
        }
        Ok(outcome)
    }

    /// `detail` with any secret-shaped text scrubbed and any account-id-shaped run replaced by
    /// the account's reference: the reason is shown by `kill-switch status`, which must never
    /// show a raw id, whatever a caller passed.
    fn safe_detail(&self, detail: &str) -> String {
        let (scrubbed, _) = scrub_secrets(detail);
        let directory = self.directory();
        let (safe, _) = replace_account_ids(&scrubbed, &|raw: &str| {
            AccountId::parse(raw)
                .map(|id| directory.reference(&id))
                .unwrap_or_else(|_| "an account".to_owned())
        });
        safe
    }
}

/// The stored reason of an automatic halt: `automatic halt (<trigger>): <detail>`, with control
/// characters turned into spaces and the detail cut to fit [`MAX_REASON_CHARS`].
fn halt_reason(trigger: HaltTrigger, detail: &str) -> Result<KillSwitchReason, ReasonError> {
    let prefix = format!("automatic halt ({})", trigger.as_str());
    let room = MAX_REASON_CHARS.saturating_sub(prefix.chars().count() + 2);
    let detail: String = detail
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(room)
        .collect();
    if detail.trim().is_empty() {
        KillSwitchReason::parse(&prefix)
    } else {
        KillSwitchReason::parse(&format!("{prefix}: {}", detail.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_names_its_trigger_and_stays_within_bounds() {
        let plain = halt_reason(HaltTrigger::Overfill, "order 7 filled 12 of 10").unwrap();
        assert_eq!(
            plain.as_str(),
            "automatic halt (overfill): order 7 filled 12 of 10"
        );
        let long =
            halt_reason(HaltTrigger::SessionLoss, &"x".repeat(2 * MAX_REASON_CHARS)).unwrap();
        assert_eq!(long.as_str().chars().count(), MAX_REASON_CHARS);
        let odd = halt_reason(HaltTrigger::UnknownClientOrderId, "a\nb\u{1b}c").unwrap();
        assert!(!odd.as_str().chars().any(char::is_control));
        let bare = halt_reason(HaltTrigger::AuditWriteFailure, " \n ").unwrap();
        assert_eq!(bare.as_str(), "automatic halt (audit_write_failure)");
    }
}
