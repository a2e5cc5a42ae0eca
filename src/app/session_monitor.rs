//! Keeps the broker session alive while a long-running front end (the MCP server) serves, and
//! records every change of session state in the audit log.
//!
//! The monitor never logs in: when the session needs a person, it records that and keeps
//! asking, so tools report `BROKER_SESSION_REQUIRED` until someone logs in at the gateway.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use serde_json::json;

use crate::app::audited::{CallContext, CallSpec};
use crate::app::gateway::Gateway;
use crate::domain::audit::Durability;
use crate::domain::session::SessionState;
use crate::ports::broker_reader::BrokerError;

/// The state a keepalive outcome stands for.
fn state_of(outcome: &Result<crate::domain::session::SessionStatus, BrokerError>) -> SessionState {
    match outcome {
        Ok(status) => status.state,
        Err(BrokerError::SessionRequired { .. }) => SessionState::LoginRequired,
        Err(_) => SessionState::Unavailable,
    }
}

impl Gateway {
    /// Records a session-state change as a system event.
    async fn record_session_change(&self, from: Option<SessionState>, to: SessionState) {
        let context = CallContext::system();
        let spec = CallSpec {
            operation: "session state change".to_owned(),
            scope: None,
            input: json!({ "from": from.map(SessionState::as_str), "to": to.as_str() }),
            durability: Durability::Durable,
            input_from_gateway: false,
        };
        if let Err(error) = self.audited(&context, spec, |_note| async { Ok(()) }).await {
            // Nothing else can be done from a background loop; tools fail closed on their own
            // audit writes.
            tracing::error!(code = %error.code(), "could not record a session state change");
        }
    }

    /// Sends a keepalive every `interval` and records each change of session state (the first
    /// observation included); losing a usable session too often halts live writes
    /// (`app::halt_triggers`). Never returns; stops when dropped.
    pub async fn keep_session_alive(&self, interval: Duration) -> Infallible {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<SessionState> = None;
        let mut losses = self.session_losses();
        loop {
            ticker.tick().await;
            let state = state_of(&self.broker().keepalive().await);
            if last != Some(state) {
                self.record_session_change(last, state).await;
                if state != SessionState::Usable {
                    tracing::warn!(
                        state = state.as_str(),
                        "the broker session is not usable; a person must act"
                    );
                }
                self.note_session_change(&mut losses, last, state).await;
                last = Some(state);
            }
        }
    }

    /// Runs `serving` while keeping the session alive; stops the keepalive when `serving`
    /// ends and returns its output.
    pub async fn serve_with_keepalive<F: Future>(
        &self,
        interval: Duration,
        serving: F,
    ) -> F::Output {
        tokio::select! {
            output = serving => output,
            never = self.keep_session_alive(interval) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::adapters::outbound::clock::FixedClock;
    use crate::adapters::outbound::memory_audit::MemoryAuditLog;
    use crate::domain::account::{Account, AccountSummary};
    use crate::domain::audit::chain::ChainKey;
    use crate::domain::ids::{AccountId, ContractId};
    use crate::domain::instrument::{Contract, ContractQuery};
    use crate::domain::market_data::{BarSeries, BarsRequest, Quote};
    use crate::domain::order::{Execution, LiveOrder};
    use crate::domain::portfolio::Position;
    use crate::domain::secret::SecretBytes;
    use crate::domain::session::SessionStatus;
    use crate::ports::broker_reader::BrokerReader;

    /// A broker whose session state the test sets, counting keepalives.
    struct ScriptedSession {
        state: AtomicU8,
        keepalives: AtomicUsize,
    }

    impl ScriptedSession {
        fn status(&self) -> Result<SessionStatus, BrokerError> {
            match self.state.load(Ordering::SeqCst) {
                0 => Ok(SessionStatus {
                    state: SessionState::Usable,
                    authenticated: true,
                    connected: true,
                    competing: false,
                    login_url: None,
                }),
                1 => Err(BrokerError::SessionRequired { login_url: None }),
                _ => Err(BrokerError::Unavailable {
                    detail: "down".into(),
                }),
            }
        }
    }

    #[async_trait]
    impl BrokerReader for ScriptedSession {
        fn backend_name(&self) -> &'static str {
            "scripted"
        }
        async fn session_status(&self) -> Result<SessionStatus, BrokerError> {
            self.status()
        }
        async fn keepalive(&self) -> Result<SessionStatus, BrokerError> {
            self.keepalives.fetch_add(1, Ordering::SeqCst);
            self.status()
        }
        async fn accounts(&self) -> Result<Vec<Account>, BrokerError> {
            Ok(Vec::new())
        }
        async fn account_summary(&self, _: &AccountId) -> Result<AccountSummary, BrokerError> {
            Err(BrokerError::UnknownAccount)
        }
        async fn positions(&self, _: &AccountId) -> Result<Vec<Position>, BrokerError> {
            Err(BrokerError::UnknownAccount)
        }
        async fn search_contracts(&self, _: &ContractQuery) -> Result<Vec<Contract>, BrokerError> {
            Ok(Vec::new())
        }
        async fn contract(&self, contract_id: ContractId) -> Result<Contract, BrokerError> {
            Err(BrokerError::UnknownContract { contract_id })
        }
        async fn quote_snapshot(&self, contract_id: ContractId) -> Result<Quote, BrokerError> {
            Err(BrokerError::UnknownContract { contract_id })
        }
        async fn historical_bars(&self, request: &BarsRequest) -> Result<BarSeries, BrokerError> {
            Err(BrokerError::UnknownContract {
                contract_id: request.contract_id,
            })
        }
        async fn live_orders(&self, _: &AccountId) -> Result<Vec<LiveOrder>, BrokerError> {
            Err(BrokerError::UnknownAccount)
        }
        async fn executions(
            &self,
            _: &AccountId,
            _: Option<DateTime<Utc>>,
        ) -> Result<Vec<Execution>, BrokerError> {
            Err(BrokerError::UnknownAccount)
        }

        async fn what_if(
            &self,
            _: &AccountId,
            _: &[crate::domain::order_intent::OrderIntent],
        ) -> Result<crate::domain::preview::WhatIf, BrokerError> {
            Err(BrokerError::UnknownAccount)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keepalives_tick_at_the_interval_and_state_changes_are_audited() {
        let broker = Arc::new(ScriptedSession {
            state: AtomicU8::new(0),
            keepalives: AtomicUsize::new(0),
        });
        let secret = SecretBytes::new(vec![3; 32]);
        let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
        let clock = Arc::new(FixedClock::new(
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        ));
        let gateway = Gateway::builder(broker.clone())
            .clock(clock)
            .key(secret)
            .audit_log(audit.clone())
            .build()
            .unwrap();

        let script = async {
            // The first tick is immediate; then one per minute.
            tokio::time::sleep(Duration::from_secs(150)).await;
            assert_eq!(broker.keepalives.load(Ordering::SeqCst), 3);
            broker.state.store(1, Ordering::SeqCst); // the session drops
            tokio::time::sleep(Duration::from_secs(60)).await;
            broker.state.store(0, Ordering::SeqCst); // a person logged in again
            tokio::time::sleep(Duration::from_secs(60)).await;
            broker.keepalives.load(Ordering::SeqCst)
        };
        let keepalives = gateway
            .serve_with_keepalive(Duration::from_secs(60), script)
            .await;
        assert_eq!(keepalives, 5);

        let records = audit.records();
        let changes: Vec<&str> = records
            .iter()
            .map(|record| record.columns.metadata.as_str())
            .collect();
        assert_eq!(
            changes,
            [
                r#"{"from":null,"principal":{"kind":"system"},"to":"usable"}"#,
                r#"{"from":"usable","principal":{"kind":"system"},"to":"login_required"}"#,
                r#"{"from":"login_required","principal":{"kind":"system"},"to":"usable"}"#,
            ]
        );
        assert!(
            records.iter().all(
                |record| record.columns.surface == "system" && record.columns.actor == "system"
            )
        );
    }
}
