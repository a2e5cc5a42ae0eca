//! The automatic halts through the library: a failed audit write (an append, or the live gate's
//! write probe), broker rejections of live orders in a row, the broker session lost too often
//! (on paused time), and the reconciler's overfill and unknown client order id each halt live
//! writes by themselves. Each halt is audited where the audit log works, names its trigger in
//! the kill switch's status, and keeps the next live submit from the writer (zero calls) until
//! an operator allows writes again. A trigger that is switched off does not halt.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::GatewayError;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::auto_halt::AutoHaltOutcome;
use ibkr_agent_gateway::app::live_settings::{AutoHaltSettings, LiveTradingSettings};
use ibkr_agent_gateway::app::live_views::KillSwitchView;
use ibkr_agent_gateway::app::order_input::RawOrderPreview;
use ibkr_agent_gateway::app::order_views::PaperOrderView;
use ibkr_agent_gateway::domain::account::{Account, AccountSummary};
use ibkr_agent_gateway::domain::audit::AuditEvent;
use ibkr_agent_gateway::domain::audit::AuditRecord;
use ibkr_agent_gateway::domain::audit::chain::{ChainKey, Expectations, VerifyReport};
use ibkr_agent_gateway::domain::ids::{AccountId, BrokerOrderId, ContractId, IdempotencyKey};
use ibkr_agent_gateway::domain::instrument::{AssetClass, Contract, ContractQuery};
use ibkr_agent_gateway::domain::kill_switch::HaltTrigger;
use ibkr_agent_gateway::domain::market_data::{BarSeries, BarsRequest, Quote};
use ibkr_agent_gateway::domain::order::{Execution, LiveOrder};
use ibkr_agent_gateway::domain::order_intent::{BracketIntent, OrderIntent};
use ibkr_agent_gateway::domain::portfolio::Position;
use ibkr_agent_gateway::domain::preview::{PreviewPolicy, WhatIf};
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::domain::session::{SessionState, SessionStatus};
use ibkr_agent_gateway::ports::audit_log::{AppendReceipt, AuditError, AuditLog, RecordSink};
use ibkr_agent_gateway::ports::broker_reader::{BrokerError, BrokerReader};
use ibkr_agent_gateway::ports::order_writer::{
    CancelAck, OrderWriter, PlacedOrder, WorkingOrder, WriteError, WriterMode,
};
use rust_decimal::Decimal;

use crate::live_trading::{LIVE, LiveDouble, agent, checked, live_settings, operator, start};

/// The audit log: in memory, with a switch that fails every append and probe
/// (`MemoryAuditLog::set_failing`) and one that fails only the write probe.
struct FlakyAudit {
    inner: MemoryAuditLog,
    probe_fails: AtomicBool,
}

#[async_trait]
impl AuditLog for FlakyAudit {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn append(&self, event: AuditEvent) -> Result<AppendReceipt, AuditError> {
        self.inner.append(event).await
    }
    async fn check_writable(&self) -> Result<(), AuditError> {
        if self.probe_fails.load(Ordering::SeqCst) {
            return Err(AuditError::WriteFailed {
                detail: "the probe is set to fail".into(),
            });
        }
        self.inner.check_writable().await
    }
    async fn newest(&self, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        self.inner.newest(limit).await
    }
    async fn scan(
        &self,
        from: u64,
        to: u64,
        sink: Box<dyn RecordSink>,
    ) -> Result<Box<dyn RecordSink>, AuditError> {
        self.inner.scan(from, to, sink).await
    }
    async fn verify(&self, expectations: &Expectations) -> Result<VerifyReport, AuditError> {
        self.inner.verify(expectations).await
    }
}

/// The live writer double, which can be told to have the broker reject every submit (each
/// rejected submit still counts as a call that reached the broker).
struct RejectingWriter {
    inner: LiveDouble,
    reject: AtomicBool,
}

impl RejectingWriter {
    fn writes(&self) -> usize {
        self.inner.writes()
    }
}

#[async_trait]
impl OrderWriter for RejectingWriter {
    fn name(&self) -> &'static str {
        "live_double"
    }
    fn mode(&self) -> WriterMode {
        WriterMode::Live
    }
    async fn submit(
        &self,
        order: &OrderIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<PlacedOrder, WriteError> {
        if self.reject.load(Ordering::SeqCst) {
            self.inner.writes.fetch_add(1, Ordering::SeqCst);
            return Err(WriteError::Rejected {
                reason: "insufficient buying power".into(),
            });
        }
        self.inner.submit(order, client_order_id).await
    }
    async fn submit_bracket(
        &self,
        bracket: &BracketIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<Vec<PlacedOrder>, WriteError> {
        self.inner.submit_bracket(bracket, client_order_id).await
    }
    async fn modify(
        &self,
        order_id: &BrokerOrderId,
        replacement: &OrderIntent,
    ) -> Result<PlacedOrder, WriteError> {
        self.inner.modify(order_id, replacement).await
    }
    async fn cancel(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<CancelAck, WriteError> {
        self.inner.cancel(account, order_id).await
    }
    async fn order(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        self.inner.order(account, order_id).await
    }
    async fn find_by_client_order_id(
        &self,
        account: &AccountId,
        client_order_id: &IdempotencyKey,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        self.inner
            .find_by_client_order_id(account, client_order_id)
            .await
    }
}

const USABLE: u8 = 0;
const LOST: u8 = 1;

/// The fake broker with a broker session the test scripts (keepalive answers only).
struct ScriptedSession {
    inner: FakeBroker,
    state: AtomicU8,
}

impl ScriptedSession {
    fn set(&self, state: u8) {
        self.state.store(state, Ordering::SeqCst);
    }
}

#[async_trait]
impl BrokerReader for ScriptedSession {
    fn backend_name(&self) -> &'static str {
        "scripted"
    }
    async fn session_status(&self) -> Result<SessionStatus, BrokerError> {
        self.inner.session_status().await
    }
    async fn keepalive(&self) -> Result<SessionStatus, BrokerError> {
        match self.state.load(Ordering::SeqCst) {
            USABLE => Ok(SessionStatus {
                state: SessionState::Usable,
                authenticated: true,
                connected: true,
                competing: false,
                login_url: None,
            }),
            _ => Err(BrokerError::SessionRequired { login_url: None }),
        }
    }
    async fn accounts(&self) -> Result<Vec<Account>, BrokerError> {
        self.inner.accounts().await
    }
    async fn account_summary(&self, account: &AccountId) -> Result<AccountSummary, BrokerError> {
        self.inner.account_summary(account).await
    }
    async fn positions(&self, account: &AccountId) -> Result<Vec<Position>, BrokerError> {
        self.inner.positions(account).await
    }
    async fn search_contracts(&self, query: &ContractQuery) -> Result<Vec<Contract>, BrokerError> {
        self.inner.search_contracts(query).await
    }
    async fn contract(&self, contract_id: ContractId) -> Result<Contract, BrokerError> {
        self.inner.contract(contract_id).await
    }
    async fn quote_snapshot(&self, contract_id: ContractId) -> Result<Quote, BrokerError> {
        self.inner.quote_snapshot(contract_id).await
    }
    async fn historical_bars(&self, request: &BarsRequest) -> Result<BarSeries, BrokerError> {
        self.inner.historical_bars(request).await
    }
    async fn live_orders(&self, account: &AccountId) -> Result<Vec<LiveOrder>, BrokerError> {
        self.inner.live_orders(account).await
    }
    async fn executions(
        &self,
        account: &AccountId,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        self.inner.executions(account, since).await
    }
    async fn what_if(
        &self,
        account: &AccountId,
        legs: &[OrderIntent],
    ) -> Result<WhatIf, BrokerError> {
        self.inner.what_if(account, legs).await
    }
}

struct Halts {
    gateway: Gateway,
    audit: Arc<FlakyAudit>,
    writer: Arc<RejectingWriter>,
    broker: Arc<ScriptedSession>,
}

/// Live trading on (20 orders a minute, so the risk policy never judges these tests), every
/// double in its good state, with `auto_halt` as given.
fn halts(auto_halt: AutoHaltSettings) -> Halts {
    let settings = LiveTradingSettings {
        auto_halt,
        ..live_settings(20)
    };
    let clock = Arc::new(FixedClock::new(start()));
    let secret = SecretBytes::new(vec![7; 32]);
    let audit = Arc::new(FlakyAudit {
        inner: MemoryAuditLog::new(ChainKey::new(&secret).unwrap()),
        probe_fails: AtomicBool::new(false),
    });
    let writer = Arc::new(RejectingWriter {
        inner: LiveDouble::new(),
        reject: AtomicBool::new(false),
    });
    let broker = Arc::new(ScriptedSession {
        inner: FakeBroker::new(clock.clone()),
        state: AtomicU8::new(USABLE),
    });
    let gateway = Gateway::builder(broker.clone())
        .clock(clock)
        .key(secret)
        .audit_log(audit.clone())
        .scopes(Scope::ALL.iter().copied().collect())
        .workflow_store(Arc::new(MemoryWorkflowStore::new()))
        .live_writer(writer.clone())
        .live_trading(settings)
        .preview_policy(PreviewPolicy {
            allowed_asset_classes: [AssetClass::Stock].into_iter().collect(),
            max_quantity: Decimal::new(1_000, 0),
            max_notional: None,
            ..PreviewPolicy::default()
        })
        .build()
        .unwrap();
    Halts {
        gateway,
        audit,
        writer,
        broker,
    }
}

/// Every trigger switched off.
fn all_off() -> AutoHaltSettings {
    AutoHaltSettings {
        audit_write_failure: false,
        consecutive_rejections: None,
        session_loss: None,
        overfill: false,
        unknown_client_order_id: false,
    }
}

impl Halts {
    /// A fresh operator approval of a small AAPL limit buy in the live account.
    async fn approved(&self) -> String {
        let preview = self
            .gateway
            .preview_order(
                &agent(),
                RawOrderPreview {
                    account: LIVE.into(),
                    contract_id: "265598".into(),
                    side: "BUY".into(),
                    quantity: "5".into(),
                    order_type: "LMT".into(),
                    limit_price: Some("190".into()),
                    ..RawOrderPreview::default()
                },
            )
            .await
            .unwrap();
        self.gateway
            .create_approval(
                &operator(),
                RawApprovalCreate {
                    preview_id: preview.preview_id,
                    ttl_seconds: None,
                },
            )
            .await
            .unwrap()
            .approval_id
    }

    async fn allow(&self) {
        self.gateway
            .kill_switch_allow(&operator(), "reviewed")
            .await
            .unwrap();
    }

    /// Approves and submits a live order under `key`.
    async fn submit(&self, key: &str) -> Result<PaperOrderView, GatewayError> {
        let approval = self.approved().await;
        self.gateway
            .live_submit(&agent(), checked(LIVE, &approval, key))
            .await
    }

    async fn status(&self) -> KillSwitchView {
        self.gateway.kill_switch_status(&agent()).await.unwrap()
    }

    /// The input of every `kill-switch auto-halt` event, oldest first.
    fn auto_halt_events(&self) -> Vec<serde_json::Value> {
        self.audit
            .inner
            .records()
            .iter()
            .filter(|record| record.columns.operation == "kill-switch auto-halt")
            .map(|record| serde_json::from_str(&record.columns.metadata).unwrap())
            .collect()
    }

    /// Checks the switch is halted by `trigger`, that the next live submit never reaches the
    /// writer, that an agent cannot reopen it, and that an operator's allow does.
    async fn assert_halted_until_an_operator_allows(&self, trigger: HaltTrigger) {
        let status = self.status().await;
        assert!(!status.writes_allowed, "{status:?}");
        assert_eq!(status.state, "halted");
        assert_eq!(status.changed_by, "system");
        assert_eq!(status.trigger.as_deref(), Some(trigger.as_str()));
        let prefix = format!("automatic halt ({})", trigger.as_str());
        assert!(status.reason.starts_with(&prefix), "{}", status.reason);
        let document = serde_json::to_value(&status).unwrap();
        assert_eq!(document["trigger"], trigger.as_str());

        let writes = self.writer.writes();
        let refused = self.submit("after-halt").await.unwrap_err();
        assert_eq!(refused.code().as_str(), "KILL_SWITCH_HALTED");
        assert_eq!(self.writer.writes(), writes, "no writer call while halted");

        let forbidden = self
            .gateway
            .kill_switch_allow(&agent(), "looks fine to me")
            .await
            .unwrap_err();
        assert_eq!(forbidden.code().as_str(), "KILL_SWITCH_ALLOW_FORBIDDEN");
        assert!(!self.status().await.writes_allowed);

        self.allow().await;
        let reopened = self.status().await;
        assert!(reopened.writes_allowed);
        assert_eq!(reopened.trigger, None);
        self.submit("after-allow").await.unwrap();
        assert_eq!(self.writer.writes(), writes + 1);
    }
}

#[tokio::test]
async fn a_failed_audit_append_halts_live_writes() {
    let h = halts(AutoHaltSettings::default());
    h.allow().await;
    h.audit.inner.set_failing(true);
    // Any call whose event cannot be stored: here a read.
    let error = h.gateway.kill_switch_status(&agent()).await.unwrap_err();
    assert_eq!(error.code().as_str(), "AUDIT_WRITE_FAILED");
    h.audit.inner.set_failing(false);
    // The halt could not be audited while the log failed; it was stored all the same.
    assert!(h.auto_halt_events().is_empty());
    h.assert_halted_until_an_operator_allows(HaltTrigger::AuditWriteFailure)
        .await;
}

#[tokio::test]
async fn a_failed_audit_probe_before_a_live_write_halts_and_is_audited() {
    let h = halts(AutoHaltSettings::default());
    h.allow().await;
    h.audit.probe_fails.store(true, Ordering::SeqCst);
    let refused = h.submit("probe").await.unwrap_err();
    assert_eq!(refused.code().as_str(), "LIVE_AUDIT_UNAVAILABLE");
    assert_eq!(h.writer.writes(), 0);
    h.audit.probe_fails.store(false, Ordering::SeqCst);
    let events = h.auto_halt_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["trigger"], "audit_write_failure");
    h.assert_halted_until_an_operator_allows(HaltTrigger::AuditWriteFailure)
        .await;
}

#[tokio::test]
async fn three_broker_rejections_in_a_row_halt_live_writes() {
    let h = halts(AutoHaltSettings::default());
    h.allow().await;
    h.writer.reject.store(true, Ordering::SeqCst);
    for key in ["r1", "r2"] {
        let error = h.submit(key).await.unwrap_err();
        assert_eq!(error.code().as_str(), "BROKER_ORDER_REJECTED");
        assert!(h.status().await.writes_allowed, "halted after {key}");
    }
    let error = h.submit("r3").await.unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_ORDER_REJECTED");
    assert_eq!(h.writer.writes(), 3);
    let events = h.auto_halt_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["trigger"], "consecutive_rejections");
    h.writer.reject.store(false, Ordering::SeqCst);
    h.assert_halted_until_an_operator_allows(HaltTrigger::ConsecutiveRejections)
        .await;
    // The streak that halted is spent: one more rejection does not halt again.
    h.writer.reject.store(true, Ordering::SeqCst);
    h.submit("r4").await.unwrap_err();
    assert!(h.status().await.writes_allowed);
}

#[tokio::test]
async fn an_accepted_order_resets_the_rejection_streak() {
    let h = halts(AutoHaltSettings::default());
    h.allow().await;
    for (key, reject) in [
        ("a1", true),
        ("a2", true),
        ("a3", false),
        ("a4", true),
        ("a5", true),
    ] {
        h.writer.reject.store(reject, Ordering::SeqCst);
        let outcome = h.submit(key).await;
        assert_eq!(outcome.is_ok(), !reject, "{key}");
    }
    assert_eq!(h.writer.writes(), 5);
    assert!(h.status().await.writes_allowed);
    assert!(h.auto_halt_events().is_empty());
}

/// Loses a usable session `times` times, `apart` between losses (at least two minutes), while
/// the keepalive ticks every minute on paused time; the first loss is seen a minute in.
async fn lose_the_session(h: &Halts, times: usize, apart: Duration) {
    let script = async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        for _ in 0..times {
            h.broker.set(LOST);
            tokio::time::sleep(Duration::from_secs(60)).await;
            h.broker.set(USABLE);
            tokio::time::sleep(apart - Duration::from_secs(60)).await;
        }
    };
    h.gateway
        .serve_with_keepalive(Duration::from_secs(60), script)
        .await;
}

#[tokio::test(start_paused = true)]
async fn the_session_lost_three_times_within_ten_minutes_halts_live_writes() {
    let h = halts(AutoHaltSettings::default());
    h.allow().await;
    lose_the_session(&h, 2, Duration::from_secs(120)).await;
    assert!(h.status().await.writes_allowed, "two losses do not halt");
    // Losses at 1, 3 and 5 minutes.
    let h = halts(AutoHaltSettings::default());
    h.allow().await;
    lose_the_session(&h, 3, Duration::from_secs(120)).await;
    let events = h.auto_halt_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["trigger"], "session_loss");
    h.assert_halted_until_an_operator_allows(HaltTrigger::SessionLoss)
        .await;
}

#[tokio::test(start_paused = true)]
async fn session_losses_further_apart_than_the_window_do_not_halt() {
    let h = halts(AutoHaltSettings::default());
    h.allow().await;
    // Losses at 1, 7 and 13 minutes: never three within ten.
    lose_the_session(&h, 3, Duration::from_secs(360)).await;
    assert!(h.status().await.writes_allowed);
    assert!(h.auto_halt_events().is_empty());
}

#[tokio::test]
async fn an_overfill_or_an_unknown_client_order_id_halts_live_writes() {
    for (trigger, detail) in [
        (
            HaltTrigger::Overfill,
            "order lcl-1 (acct_0123456789ab) filled 12 of 10 approved",
        ),
        (
            HaltTrigger::UnknownClientOrderId,
            "order 987654 (acct_0123456789ab) carries a client order id the gateway never issued",
        ),
    ] {
        let h = halts(AutoHaltSettings::default());
        h.allow().await;
        let outcome = h.gateway.auto_halt(trigger, detail).await.unwrap();
        assert_eq!(outcome, AutoHaltOutcome::Halted);
        let events = h.auto_halt_events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["trigger"], trigger.as_str());
        assert_eq!(events[0]["detail"], detail);
        assert_eq!(events[0]["principal"]["kind"], "system");
        assert_eq!(
            h.status().await.reason,
            format!("automatic halt ({}): {detail}", trigger.as_str())
        );
        h.assert_halted_until_an_operator_allows(trigger).await;
    }
}

#[tokio::test]
async fn a_raw_account_id_in_a_halt_detail_is_shown_only_as_its_reference() {
    let h = halts(AutoHaltSettings::default());
    let detail = format!("order 987654 in {LIVE} filled 12 of 10 approved");
    h.gateway
        .auto_halt(HaltTrigger::Overfill, &detail)
        .await
        .unwrap();
    let reason = h.status().await.reason;
    assert!(!reason.contains(LIVE), "{reason}");
    assert!(
        reason.starts_with("automatic halt (overfill): order 987654 in ")
            && reason.contains("acct_")
            && reason.ends_with(" filled 12 of 10 approved"),
        "{reason}"
    );
    let events = h.auto_halt_events();
    assert!(!events[0].to_string().contains(LIVE));
}

#[tokio::test(start_paused = true)]
async fn a_switched_off_trigger_does_not_halt_and_records_that_it_would_have() {
    let h = halts(all_off());
    h.allow().await;
    // A failed audit probe: the write is refused by its gate, and only that.
    h.audit.probe_fails.store(true, Ordering::SeqCst);
    let refused = h.submit("probe").await.unwrap_err();
    assert_eq!(refused.code().as_str(), "LIVE_AUDIT_UNAVAILABLE");
    h.audit.probe_fails.store(false, Ordering::SeqCst);
    // A failed append (whose "would have halted" record fails with it).
    h.audit.inner.set_failing(true);
    h.gateway.kill_switch_status(&agent()).await.unwrap_err();
    h.audit.inner.set_failing(false);
    assert!(h.status().await.writes_allowed);
    // Four rejections; each reached the writer.
    h.writer.reject.store(true, Ordering::SeqCst);
    for key in ["r1", "r2", "r3", "r4"] {
        h.submit(key).await.unwrap_err();
    }
    assert_eq!(h.writer.writes(), 4);
    assert!(h.status().await.writes_allowed);
    // Three session losses within ten minutes.
    lose_the_session(&h, 3, Duration::from_secs(120)).await;
    assert!(h.status().await.writes_allowed);
    // The reconciler's anomalies.
    for trigger in [HaltTrigger::Overfill, HaltTrigger::UnknownClientOrderId] {
        let outcome = h.gateway.auto_halt(trigger, "seen").await.unwrap();
        assert_eq!(outcome, AutoHaltOutcome::Disabled);
    }
    assert!(h.status().await.writes_allowed);
    assert!(h.auto_halt_events().is_empty());
    // Each trigger that would have halted says so once (rejections and session losses at
    // their default thresholds).
    let skipped: Vec<String> = h
        .audit
        .inner
        .records()
        .iter()
        .filter(|record| record.columns.operation == "kill-switch auto-halt skipped (trigger off)")
        .map(|record| {
            let input: serde_json::Value = serde_json::from_str(&record.columns.metadata).unwrap();
            input["trigger"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        skipped,
        [
            "audit_write_failure",
            "consecutive_rejections",
            "session_loss",
            "overfill",
            "unknown_client_order_id",
        ]
    );
    h.writer.reject.store(false, Ordering::SeqCst);
    h.submit("ok").await.unwrap();
    assert_eq!(h.writer.writes(), 5);
}
