//! Where the automatic halts are triggered: the hooks the audited wrapper, the write pipeline
//! and the session keepalive call, each deciding whether its trigger fired and, if so, calling
//! [`Gateway::auto_halt`].
//!
//! - An audit append that fails, or the live gate's write probe of the audit log that fails,
//!   halts (`audit_write_failure`). A switch already halted by this trigger is left as it is,
//!   so a dead audit log does not rewrite the halt on every call.
//! - A live writer call's answer feeds the durable streak of broker rejections
//!   (`consecutive_rejections`): an accepted order resets it, a definitive broker rejection adds
//!   one, and the streak reaching the threshold halts and is spent. Refusals before sending,
//!   requests never sent and unknown outcomes neither count nor reset. A rejection that cannot
//!   be counted is uncertainty, and halts.
//! - A usable broker session becoming unusable is a loss (`session_loss`); `count` losses within
//!   the window halt ([`SessionLossWindow`]), timed on the runtime's monotonic clock.
//!
//! A trigger that is switched off is still watched, so that `Gateway::auto_halt` can record
//! that it would have halted (a count trigger then counts at its default threshold). None of
//! these hooks fails its caller: what cannot be done is logged, and the caller's own outcome
//! stands.

use std::time::Duration;

use crate::app::gateway::Gateway;
use crate::app::live_settings::{
    DEFAULT_CONSECUTIVE_REJECTIONS, DEFAULT_SESSION_LOSS_WINDOW_MINUTES, DEFAULT_SESSION_LOSSES,
    SessionLossThreshold,
};
use crate::app::write_pipeline::WriteMode;
use crate::domain::halt_triggers::{SessionLossWindow, rejections_halt};
use crate::domain::kill_switch::HaltTrigger;
use crate::domain::session::SessionState;
use crate::ports::order_writer::WriteError;

/// The detail of a halt on a failed audit append.
const AUDIT_APPEND_FAILED: &str = "an audit record could not be written";
/// The detail of a halt on a failed write probe before a live write.
const AUDIT_PROBE_FAILED: &str = "the audit log refused the write probe before a live write";

/// The session losses the keepalive has seen, for the `session_loss` trigger.
#[derive(Debug)]
pub(crate) struct SessionLosses {
    /// Where loss times are measured from.
    origin: tokio::time::Instant,
    /// The configured threshold's window, or the default's while the trigger is off.
    window: SessionLossWindow,
    /// The threshold `window` counts to, for the halt's detail.
    threshold: SessionLossThreshold,
}

impl Gateway {
    /// Halts live writes after an audit write failed (see the module docs). Never appends
    /// through the audited wrapper, so it cannot call itself.
    pub(crate) async fn halt_on_audit_failure(&self) {
        self.halt_for_audit(AUDIT_APPEND_FAILED).await;
    }

    /// Probes whether the audit log takes writes (the live gate's fact); a failed probe halts
    /// live writes before the gate refuses the write.
    pub(crate) async fn probe_audit_or_halt(&self) -> bool {
        let writable = self.audit().check_writable().await.is_ok();
        if !writable {
            self.halt_for_audit(AUDIT_PROBE_FAILED).await;
        }
        writable
    }

    async fn halt_for_audit(&self, detail: &str) {
        let trigger = HaltTrigger::AuditWriteFailure;
        if let Ok(Some(state)) = self.workflow().kill_switch().await
            && state.trigger() == Some(trigger)
        {
            return;
        }
        // `auto_halt` logs its own failure; the failed call fails closed on its own.
        let _ = self.auto_halt(trigger, detail).await;
    }

    /// Feeds a live writer call's answer to the streak of broker rejections and halts when
    /// it reaches `live_trading.auto_halt.consecutive_rejections` (see the module docs).
    /// Paper writes are ignored.
    pub(crate) async fn note_writer_outcome<T>(
        &self,
        mode: WriteMode,
        outcome: &Result<T, WriteError>,
    ) {
        if mode != WriteMode::Live {
            return;
        }
        let threshold = self
            .live_trading()
            .auto_halt
            .consecutive_rejections
            .unwrap_or(DEFAULT_CONSECUTIVE_REJECTIONS);
        let rejected = match outcome {
            Ok(_) => false,
            Err(WriteError::Rejected { .. }) => true,
            Err(_) => return,
        };
        let trigger = HaltTrigger::ConsecutiveRejections;
        match self.workflow().note_live_rejection(rejected).await {
            Ok(streak) if rejected && rejections_halt(streak, threshold) => {
                let detail = format!("the broker rejected {streak} live orders in a row");
                if self.auto_halt(trigger, &detail).await.is_ok() {
                    // The streak that halted (or would have) is spent: after an operator
                    // allows writes, the next halt needs a full streak again.
                    if let Err(error) = self.workflow().note_live_rejection(false).await {
                        tracing::warn!(
                            code = %error.code(),
                            "the rejection streak could not be reset after a halt"
                        );
                    }
                }
            }
            Ok(_) => {}
            Err(error) if rejected => {
                tracing::error!(
                    code = %error.code(),
                    "a broker rejection of a live order could not be counted; halting"
                );
                let _ = self
                    .auto_halt(
                        trigger,
                        "a broker rejection of a live order could not be counted",
                    )
                    .await;
            }
            // A reset that was lost can only make a later halt come sooner.
            Err(error) => tracing::warn!(
                code = %error.code(),
                "an accepted live order could not reset the rejection streak"
            ),
        }
    }

    /// A fresh count of session losses under `live_trading.auto_halt.session_loss`.
    pub(crate) fn session_losses(&self) -> SessionLosses {
        let threshold =
            self.live_trading()
                .auto_halt
                .session_loss
                .unwrap_or(SessionLossThreshold {
                    count: DEFAULT_SESSION_LOSSES,
                    window: Duration::from_secs(DEFAULT_SESSION_LOSS_WINDOW_MINUTES * 60),
                });
        SessionLosses {
            origin: tokio::time::Instant::now(),
            window: SessionLossWindow::new(threshold.count, threshold.window),
            threshold,
        }
    }

    /// Notes a session-state change seen by the keepalive: a usable session becoming unusable
    /// is a loss, and enough losses within the window halt live writes.
    pub(crate) async fn note_session_change(
        &self,
        losses: &mut SessionLosses,
        from: Option<SessionState>,
        to: SessionState,
    ) {
        let lost = from == Some(SessionState::Usable) && to != SessionState::Usable;
        if !lost || !losses.window.record_loss(losses.origin.elapsed()) {
            return;
        }
        let detail = format!(
            "the broker session was lost {} times within {} minutes",
            losses.threshold.count,
            losses.threshold.window.as_secs().div_ceil(60)
        );
        let _ = self.auto_halt(HaltTrigger::SessionLoss, &detail).await;
    }
}
