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
use crate::domain::kill_switch::{HaltTrigger, KillSwitch, KillSwitchReason};
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
    /// no account id) as the reason, when the trigger is on. The halt is stored before it is
    /// audited; an audit failure here is logged and never triggers another halt.
    ///
    /// # Errors
    /// The store's error when the halt could not be stored: writes may still be allowed, and
    /// the caller must treat the situation as unknown.
    pub async fn auto_halt(
        &self,
        trigger: HaltTrigger,
        detail: &str,
    ) -> Result<AutoHaltOutcome, StoreError> {
        let enabled = self.auto_halt_enabled(trigger);
        let outcome = if enabled {
            let reason = KillSwitchReason::parse(&format!(
                "automatic halt ({}): {detail}",
                trigger.as_str()
            ))
            .or_else(|_| KillSwitchReason::parse(&format!("automatic halt ({})", trigger.as_str())))
            .map_err(|_| StoreError::Unavailable {
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
        if let Err(error) = self
            .audited(&CallContext::system(), spec, |_note| async { Ok(()) })
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
}
