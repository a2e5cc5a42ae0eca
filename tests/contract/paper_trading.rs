//! The paper write path through the library: preview → approval → submit exactly once, every
//! refusal with its stable code (and with no writer call and an audit record), exactly-once
//! under concurrency, and crash recovery through the client order id.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::local_candidate::LocalCandidateWriter;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::adapters::outbound::sqlite_workflow::SqliteWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::config::{PaperTradingSettings, PaperWriterKind};
use ibkr_agent_gateway::app::order_input::{
    RawBracketPreview, RawCancelPreview, RawOrderPreview, RawPaperCancel, RawPaperModify,
    RawPaperSubmit,
};
use ibkr_agent_gateway::app::order_views::PaperOrderView;
use ibkr_agent_gateway::domain::account::{Account, AccountMode, AccountSummary};
use ibkr_agent_gateway::domain::approval::{Approval, ApprovalStatus};
use ibkr_agent_gateway::domain::audit::chain::{ChainKey, Expectations, VerifyReport};
use ibkr_agent_gateway::domain::audit::{AuditEvent, AuditRecord};
use ibkr_agent_gateway::domain::idempotency::{
    IdempotencyRecord, IdempotencyState, WriteOperation,
};
use ibkr_agent_gateway::domain::ids::{
    AccountId, ApprovalId, BrokerOrderId, ContractId, IdempotencyKey, PreviewId,
};
use ibkr_agent_gateway::domain::instrument::{Contract, ContractQuery};
use ibkr_agent_gateway::domain::kill_switch::KillSwitch;
use ibkr_agent_gateway::domain::market_data::{BarSeries, BarsRequest, Quote};
use ibkr_agent_gateway::domain::order::{Execution, LiveOrder};
use ibkr_agent_gateway::domain::order_intent::{BracketIntent, OrderIntent};
use ibkr_agent_gateway::domain::order_lifecycle::{
    HistoryQuery, LifecycleEvent, OrderHistoryEntry, TrackedOrder, TrackedOrderKey,
};
use ibkr_agent_gateway::domain::portfolio::Position;
use ibkr_agent_gateway::domain::preview::{Preview, WhatIf};
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::domain::session::SessionStatus;
use ibkr_agent_gateway::ports::audit_log::{AppendReceipt, AuditError, AuditLog, RecordSink};
use ibkr_agent_gateway::ports::broker_reader::{BrokerError, BrokerReader};
use ibkr_agent_gateway::ports::order_writer::{
    CancelAck, OrderWriter, PlacedOrder, WorkingOrder, WriteError, WriterMode,
};
use ibkr_agent_gateway::ports::workflow_store::{
    BeginOutcome, InsertApproval, RecordKey, RiskCeiling, RiskEntry, RiskTotals, StoreError,
    WorkflowStore,
};

const PAPER: &str = "DU1234567";
const OTHER_PAPER: &str = "DU7654320";
const LIVE: &str = "U7654321";

/// A writer that counts the submits that reach the (local) broker, can be slowed down to widen
/// race windows, and can "die" after the broker accepted (it then never returns).
struct CountingWriter {
    inner: LocalCandidateWriter,
    submits: AtomicUsize,
    cancels: AtomicUsize,
    delay: StdDuration,
    die_after_submit: AtomicBool,
    /// Submits reach the broker, then the answer is lost (an ambiguous outcome).
    ambiguous: AtomicBool,
}

impl CountingWriter {
    fn new(delay: StdDuration) -> Self {
        Self {
            inner: LocalCandidateWriter::new(),
            submits: AtomicUsize::new(0),
            cancels: AtomicUsize::new(0),
            delay,
            die_after_submit: AtomicBool::new(false),
            ambiguous: AtomicBool::new(false),
        }
    }

    fn submits(&self) -> usize {
        self.submits.load(Ordering::SeqCst)
    }

    fn cancels(&self) -> usize {
        self.cancels.load(Ordering::SeqCst)
    }

    async fn after_submit(&self) {
        if self.die_after_submit.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl OrderWriter for CountingWriter {
    fn name(&self) -> &'static str {
        "local_candidate"
    }
    fn mode(&self) -> WriterMode {
        WriterMode::Paper
    }
    async fn submit(
        &self,
        order: &OrderIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<PlacedOrder, WriteError> {
        tokio::time::sleep(self.delay).await;
        self.submits.fetch_add(1, Ordering::SeqCst);
        let placed = self.inner.submit(order, client_order_id).await;
        self.after_submit().await;
        if self.ambiguous.load(Ordering::SeqCst) {
            return Err(WriteError::Ambiguous {
                detail: "the connection dropped before the answer".into(),
            });
        }
        placed
    }
    async fn submit_bracket(
        &self,
        bracket: &BracketIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<Vec<PlacedOrder>, WriteError> {
        self.submits.fetch_add(1, Ordering::SeqCst);
        let placed = self.inner.submit_bracket(bracket, client_order_id).await;
        self.after_submit().await;
        placed
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
        self.cancels.fetch_add(1, Ordering::SeqCst);
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

/// An audit log that refuses the appends of one named operation (e.g. `approval consumed`),
/// to inject a failure at one step of a write.
struct StepAudit {
    inner: Arc<MemoryAuditLog>,
    failing_operation: Mutex<Option<String>>,
}

impl StepAudit {
    fn fail_on(&self, operation: Option<&str>) {
        *self.failing_operation.lock().unwrap() = operation.map(str::to_owned);
    }
}

#[async_trait]
impl AuditLog for StepAudit {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn append(&self, event: AuditEvent) -> Result<AppendReceipt, AuditError> {
        if self.failing_operation.lock().unwrap().as_deref() == Some(event.operation.as_str()) {
            return Err(AuditError::WriteFailed {
                detail: "injected: the disk is full".into(),
            });
        }
        self.inner.append(event).await
    }
    async fn check_writable(&self) -> Result<(), AuditError> {
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

/// A workflow store that fails the next call of one named method, changing nothing.
struct StepStore {
    inner: MemoryWorkflowStore,
    failing_method: Mutex<Option<&'static str>>,
}

impl StepStore {
    fn fail_next(&self, method: &'static str) {
        *self.failing_method.lock().unwrap() = Some(method);
    }

    fn check(&self, method: &'static str) -> Result<(), StoreError> {
        let mut failing = self.failing_method.lock().unwrap();
        if *failing == Some(method) {
            *failing = None;
            return Err(StoreError::Unavailable {
                detail: format!("injected: cannot {method}"),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl WorkflowStore for StepStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn insert_preview(&self, preview: &Preview) -> Result<(), StoreError> {
        self.check("insert_preview")?;
        self.inner.insert_preview(preview).await
    }
    async fn preview(&self, id: &PreviewId) -> Result<Option<Preview>, StoreError> {
        self.check("preview")?;
        self.inner.preview(id).await
    }
    async fn insert_approval(&self, approval: &Approval) -> Result<InsertApproval, StoreError> {
        self.check("insert_approval")?;
        self.inner.insert_approval(approval).await
    }
    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        self.check("approval")?;
        self.inner.approval(id).await
    }
    async fn approvals(&self, limit: usize) -> Result<Vec<Approval>, StoreError> {
        self.check("approvals")?;
        self.inner.approvals(limit).await
    }
    async fn close_approval(
        &self,
        id: &ApprovalId,
        status: ApprovalStatus,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.check("close_approval")?;
        self.inner.close_approval(id, status, at).await
    }
    async fn idempotency(&self, key: &RecordKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.check("idempotency")?;
        self.inner.idempotency(key).await
    }
    async fn begin(&self, record: &IdempotencyRecord) -> Result<BeginOutcome, StoreError> {
        self.check("begin")?;
        self.inner.begin(record).await
    }
    async fn begin_live(
        &self,
        record: &IdempotencyRecord,
        entry: &RiskEntry,
        ceiling: &RiskCeiling,
    ) -> Result<BeginOutcome, StoreError> {
        self.check("begin_live")?;
        self.inner.begin_live(record, entry, ceiling).await
    }
    async fn risk_totals(
        &self,
        window_start: DateTime<Utc>,
        session_start: DateTime<Utc>,
    ) -> Result<RiskTotals, StoreError> {
        self.check("risk_totals")?;
        self.inner.risk_totals(window_start, session_start).await
    }
    async fn kill_switch(&self) -> Result<Option<KillSwitch>, StoreError> {
        self.check("kill_switch")?;
        self.inner.kill_switch().await
    }
    async fn set_kill_switch(&self, state: &KillSwitch) -> Result<(), StoreError> {
        self.check("set_kill_switch")?;
        self.inner.set_kill_switch(state).await
    }
    async fn complete(
        &self,
        key: &RecordKey,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.check("complete")?;
        self.inner.complete(key, outcome, at).await
    }
    async fn fail(
        &self,
        key: &RecordKey,
        outcome: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.check("fail")?;
        self.inner.fail(key, outcome, at).await
    }

    async fn release(&self, key: &RecordKey, started_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.check("release")?;
        self.inner.release(key, started_at).await
    }
    async fn mark_needs_review(
        &self,
        key: &RecordKey,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.check("mark_needs_review")?;
        self.inner.mark_needs_review(key, at).await
    }
    async fn completed(
        &self,
        account: &AccountId,
        operation: WriteOperation,
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        self.check("completed")?;
        self.inner.completed(account, operation).await
    }
    async fn pending(&self) -> Result<Vec<IdempotencyRecord>, StoreError> {
        self.check("pending")?;
        self.inner.pending().await
    }
    async fn completed_records(&self) -> Result<Vec<IdempotencyRecord>, StoreError> {
        self.check("completed_records")?;
        self.inner.completed_records().await
    }
    async fn track_order(
        &self,
        order: &TrackedOrder,
        event: &LifecycleEvent,
    ) -> Result<bool, StoreError> {
        self.check("track_order")?;
        self.inner.track_order(order, event).await
    }
    async fn tracked_order(
        &self,
        key: &TrackedOrderKey,
    ) -> Result<Option<TrackedOrder>, StoreError> {
        self.check("tracked_order")?;
        self.inner.tracked_order(key).await
    }
    async fn order_backlog(&self) -> Result<Vec<TrackedOrder>, StoreError> {
        self.check("order_backlog")?;
        self.inner.order_backlog().await
    }
    async fn update_tracked_order(
        &self,
        order: &TrackedOrder,
        event: Option<&LifecycleEvent>,
    ) -> Result<(), StoreError> {
        self.check("update_tracked_order")?;
        self.inner.update_tracked_order(order, event).await
    }
    async fn order_history(
        &self,
        query: &HistoryQuery,
    ) -> Result<Vec<OrderHistoryEntry>, StoreError> {
        self.check("order_history")?;
        self.inner.order_history(query).await
    }
    async fn client_order_id_issued(&self, client_order_id: &str) -> Result<bool, StoreError> {
        self.check("client_order_id_issued")?;
        self.inner.client_order_id_issued(client_order_id).await
    }
    async fn note_live_rejection(&self, rejected: bool) -> Result<u32, StoreError> {
        self.check("note_live_rejection")?;
        self.inner.note_live_rejection(rejected).await
    }
}

/// A broker that reports every account as live, whatever its id says.
struct EverythingLive(FakeBroker);

#[async_trait]
impl BrokerReader for EverythingLive {
    fn backend_name(&self) -> &'static str {
        "fake"
    }
    async fn session_status(&self) -> Result<SessionStatus, BrokerError> {
        self.0.session_status().await
    }
    async fn keepalive(&self) -> Result<SessionStatus, BrokerError> {
        self.0.keepalive().await
    }
    async fn accounts(&self) -> Result<Vec<Account>, BrokerError> {
        let mut accounts = self.0.accounts().await?;
        for account in &mut accounts {
            account.mode = AccountMode::Live;
        }
        Ok(accounts)
    }
    async fn account_summary(&self, account: &AccountId) -> Result<AccountSummary, BrokerError> {
        self.0.account_summary(account).await
    }
    async fn positions(&self, account: &AccountId) -> Result<Vec<Position>, BrokerError> {
        self.0.positions(account).await
    }
    async fn search_contracts(&self, query: &ContractQuery) -> Result<Vec<Contract>, BrokerError> {
        self.0.search_contracts(query).await
    }
    async fn contract(&self, contract_id: ContractId) -> Result<Contract, BrokerError> {
        self.0.contract(contract_id).await
    }
    async fn quote_snapshot(&self, contract_id: ContractId) -> Result<Quote, BrokerError> {
        self.0.quote_snapshot(contract_id).await
    }
    async fn historical_bars(&self, request: &BarsRequest) -> Result<BarSeries, BrokerError> {
        self.0.historical_bars(request).await
    }
    async fn live_orders(&self, account: &AccountId) -> Result<Vec<LiveOrder>, BrokerError> {
        self.0.live_orders(account).await
    }
    async fn executions(
        &self,
        account: &AccountId,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        self.0.executions(account, since).await
    }
    async fn what_if(
        &self,
        account: &AccountId,
        legs: &[OrderIntent],
    ) -> Result<WhatIf, BrokerError> {
        self.0.what_if(account, legs).await
    }
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z")
        .unwrap()
        .into()
}

fn all_scopes() -> ScopeSet {
    Scope::ALL.iter().copied().collect()
}

fn paper_settings(enabled: bool) -> PaperTradingSettings {
    PaperTradingSettings {
        enabled,
        allowed_accounts: [PAPER, OTHER_PAPER]
            .iter()
            .map(|id| AccountId::parse(id).unwrap())
            .collect(),
        writer: PaperWriterKind::LocalCandidate,
        recovery_grace_seconds: 120,
    }
}

struct Harness {
    gateway: Gateway,
    audit: Arc<MemoryAuditLog>,
    steps: Arc<StepAudit>,
    clock: Arc<FixedClock>,
    writer: Arc<CountingWriter>,
}

struct Options {
    paper: PaperTradingSettings,
    store: Arc<dyn WorkflowStore>,
    writer: Arc<CountingWriter>,
    clock: Arc<FixedClock>,
    everything_live: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            paper: paper_settings(true),
            store: Arc::new(MemoryWorkflowStore::new()),
            writer: Arc::new(CountingWriter::new(StdDuration::ZERO)),
            clock: Arc::new(FixedClock::new(start())),
            everything_live: false,
        }
    }
}

fn harness(options: Options) -> Harness {
    let secret = SecretBytes::new(vec![42; 32]);
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
    let steps = Arc::new(StepAudit {
        inner: audit.clone(),
        failing_operation: Mutex::new(None),
    });
    let fake = FakeBroker::new(options.clock.clone());
    let broker: Arc<dyn BrokerReader> = if options.everything_live {
        Arc::new(EverythingLive(fake))
    } else {
        Arc::new(fake)
    };
    let gateway = Gateway::builder(broker)
        .clock(options.clock.clone())
        .key(secret)
        .audit_log(steps.clone())
        .scopes(all_scopes())
        .workflow_store(options.store)
        .paper_writer(options.writer.clone())
        .paper_trading(options.paper)
        .build()
        .unwrap();
    Harness {
        gateway,
        audit,
        steps,
        clock: options.clock,
        writer: options.writer,
    }
}

fn limit_order(account: &str, quantity: &str, price: &str) -> RawOrderPreview {
    RawOrderPreview {
        account: account.into(),
        contract_id: "265598".into(),
        side: "BUY".into(),
        quantity: quantity.into(),
        order_type: "LMT".into(),
        limit_price: Some(price.into()),
        ..RawOrderPreview::default()
    }
}

fn agent() -> CallContext {
    CallContext::mcp_stdio()
}

impl Harness {
    /// Preview (as the agent) and approve (as the operator at the CLI); returns the approval id.
    async fn approved(&self, account: &str, ttl: Option<u32>) -> String {
        let preview = self
            .gateway
            .preview_order(&agent(), limit_order(account, "10", "190"))
            .await
            .unwrap();
        self.approve(&preview.preview_id, ttl).await
    }

    async fn approve(&self, preview_id: &str, ttl: Option<u32>) -> String {
        self.gateway
            .create_approval(
                &CallContext::sdk(),
                RawApprovalCreate {
                    preview_id: preview_id.into(),
                    ttl_seconds: ttl,
                },
            )
            .await
            .unwrap()
            .approval_id
    }

    async fn submit(
        &self,
        account: &str,
        approval_id: &str,
        key: &str,
    ) -> Result<PaperOrderView, ibkr_agent_gateway::app::GatewayError> {
        self.gateway
            .paper_submit(
                &agent(),
                RawPaperSubmit {
                    account: account.into(),
                    approval_id: approval_id.into(),
                    idempotency_key: key.into(),
                },
            )
            .await
    }

    fn operations(&self) -> Vec<(String, String, Option<String>)> {
        self.audit
            .records()
            .iter()
            .map(|record| {
                (
                    record.columns.operation.clone(),
                    record.columns.status.clone(),
                    record.columns.error_code.clone(),
                )
            })
            .collect()
    }

    /// The last event: the refused call, with its code.
    fn assert_last_refused(&self, code: &str) {
        let operations = self.operations();
        let last = operations.last().unwrap();
        assert_eq!(last.2.as_deref(), Some(code), "{operations:?}");
        assert_ne!(last.1, "completed");
    }
}

fn code(result: Result<PaperOrderView, ibkr_agent_gateway::app::GatewayError>) -> String {
    result.unwrap_err().code().as_str().to_owned()
}

#[tokio::test]
async fn preview_approve_submit_and_replay() {
    let h = harness(Options::default());
    let approval = h.approved(PAPER, None).await;
    let first = h.submit(PAPER, &approval, "agent-order-1").await.unwrap();
    assert_eq!(first.orders.len(), 1);
    assert!(!first.replayed);
    assert_eq!(first.writer, "local_candidate");
    let again = h.submit(PAPER, &approval, "agent-order-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.orders, first.orders);
    assert_eq!(
        h.writer.submits(),
        1,
        "the replay must not reach the writer"
    );

    let operations: Vec<String> = h.operations().into_iter().map(|op| op.0).collect();
    for step in [
        "orders preview",
        "approvals create",
        "paper order intent",
        "approval consumed",
        "paper order submit",
    ] {
        assert!(
            operations.iter().any(|op| op == step),
            "{step} missing: {operations:?}"
        );
    }
    for record in h.audit.records() {
        assert!(
            !record.columns.metadata.contains("1234567"),
            "{}",
            record.columns.metadata
        );
    }
    assert!(
        h.gateway
            .audit_verify(Default::default())
            .await
            .unwrap()
            .chain_valid
    );
}

#[tokio::test]
async fn a_preview_creates_no_broker_order_state() {
    let h = harness(Options::default());
    let before = h.gateway.orders(PAPER).await.unwrap().orders.len();
    let preview = h
        .gateway
        .preview_order(&agent(), limit_order(PAPER, "10", "190"))
        .await
        .unwrap();
    assert!(!preview.executable);
    assert_eq!(preview.order_digest.len(), 64);
    assert!(preview.what_if.commission.is_some());
    assert_eq!(h.gateway.orders(PAPER).await.unwrap().orders.len(), before);
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn the_preview_policy_refuses_and_the_refusal_is_audited() {
    let h = harness(Options::default());
    let mut market = limit_order(PAPER, "10", "1");
    market.order_type = "MKT".into();
    market.limit_price = None;
    let error = h.gateway.preview_order(&agent(), market).await.unwrap_err();
    assert_eq!(error.code().as_str(), "ORDER_POLICY_REJECTED");
    h.assert_last_refused("ORDER_POLICY_REJECTED");
    let error = h
        .gateway
        .preview_order(&agent(), limit_order(PAPER, "1000", "1"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "ORDER_POLICY_REJECTED");
}

#[tokio::test]
async fn paper_disabled_is_refused() {
    let h = harness(Options {
        paper: paper_settings(false),
        ..Options::default()
    });
    let approval = h.approved(PAPER, None).await;
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "PAPER_TRADING_DISABLED"
    );
    h.assert_last_refused("PAPER_TRADING_DISABLED");
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn an_account_outside_the_allow_list_is_refused() {
    let mut paper = paper_settings(true);
    paper.allowed_accounts = BTreeSet::from([AccountId::parse(PAPER).unwrap()]);
    let h = harness(Options {
        paper,
        ..Options::default()
    });
    let approval = h.approved(OTHER_PAPER, None).await;
    assert_eq!(
        code(h.submit(OTHER_PAPER, &approval, "k1").await),
        "PAPER_ACCOUNT_NOT_ALLOWED"
    );
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn a_live_account_is_refused_on_the_paper_path() {
    let h = harness(Options::default());
    let approval = h.approved(LIVE, None).await;
    assert_eq!(
        code(h.submit(LIVE, &approval, "k1").await),
        "PAPER_ACCOUNT_NOT_PAPER"
    );
    h.assert_last_refused("PAPER_ACCOUNT_NOT_PAPER");
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn a_paper_shaped_id_the_broker_calls_live_is_refused() {
    let h = harness(Options {
        everything_live: true,
        ..Options::default()
    });
    let approval = h.approved(PAPER, None).await;
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "PAPER_ACCOUNT_NOT_PAPER"
    );
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn a_missing_approval_is_refused() {
    let h = harness(Options::default());
    assert_eq!(
        code(h.submit(PAPER, "apr_nothing", "k1").await),
        "APPROVAL_NOT_FOUND"
    );
    h.assert_last_refused("APPROVAL_NOT_FOUND");
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn an_expired_approval_is_refused_and_marked_expired() {
    let h = harness(Options::default());
    let approval = h.approved(PAPER, Some(10)).await;
    h.clock.advance(Duration::seconds(11));
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "APPROVAL_EXPIRED"
    );
    assert!(h.operations().iter().any(|op| op.0 == "approval expired"));
    let shown = h
        .gateway
        .show_approval(&CallContext::sdk(), &approval)
        .await
        .unwrap();
    assert_eq!(shown.status, "expired");
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn a_consumed_approval_is_refused() {
    let h = harness(Options::default());
    let approval = h.approved(PAPER, None).await;
    h.submit(PAPER, &approval, "k1").await.unwrap();
    assert_eq!(
        code(h.submit(PAPER, &approval, "k2").await),
        "APPROVAL_CONSUMED"
    );
    h.assert_last_refused("APPROVAL_CONSUMED");
    assert_eq!(h.writer.submits(), 1);
}

#[tokio::test]
async fn a_revoked_approval_is_refused() {
    let h = harness(Options::default());
    let approval = h.approved(PAPER, None).await;
    let revoked = h
        .gateway
        .revoke_approval(&CallContext::sdk(), &approval)
        .await
        .unwrap();
    assert_eq!(revoked.status, "revoked");
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "APPROVAL_REVOKED"
    );
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn an_approval_for_another_account_is_refused() {
    let h = harness(Options::default());
    let approval = h.approved(OTHER_PAPER, None).await;
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "APPROVAL_ACCOUNT_MISMATCH"
    );
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn an_expired_preview_is_refused() {
    let h = harness(Options::default());
    let approval = h.approved(PAPER, Some(3_600)).await;
    h.clock.advance(Duration::seconds(301));
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "ORDER_PREVIEW_EXPIRED"
    );
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn an_edited_preview_row_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let h = harness(Options {
        store: Arc::new(SqliteWorkflowStore::open(&path).unwrap()),
        ..Options::default()
    });
    let approval = h.approved(PAPER, None).await;
    // Someone with access to the file raises the limit price after approval.
    let connection = rusqlite::Connection::open(&path).unwrap();
    let changed = connection
        .execute(
            "UPDATE previews SET legs = replace(legs, 'limit=190', 'limit=199')",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(connection);
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "ORDER_DIGEST_MISMATCH"
    );
    h.assert_last_refused("ORDER_DIGEST_MISMATCH");
    assert_eq!(h.writer.submits(), 0);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_a_conflict() {
    let h = harness(Options::default());
    let first = h.approved(PAPER, None).await;
    h.submit(PAPER, &first, "shared-key").await.unwrap();
    let second = h.approved(PAPER, None).await;
    assert_eq!(
        code(h.submit(PAPER, &second, "shared-key").await),
        "ORDER_IDEMPOTENCY_CONFLICT"
    );
    assert_eq!(h.writer.submits(), 1);
    // The second approval was not touched.
    let shown = h
        .gateway
        .show_approval(&CallContext::sdk(), &second)
        .await
        .unwrap();
    assert_eq!(shown.status, "approved");
}

#[tokio::test]
async fn an_unavailable_audit_log_stops_the_write_before_anything_changes() {
    let h = harness(Options::default());
    let approval = h.approved(PAPER, None).await;
    h.audit.set_failing(true);
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "AUDIT_WRITE_FAILED"
    );
    h.audit.set_failing(false);
    assert_eq!(h.writer.submits(), 0);
    // Nothing was recorded under the key and the approval is still usable.
    let retried = h.submit(PAPER, &approval, "k1").await.unwrap();
    assert!(!retried.replayed);
    assert_eq!(h.writer.submits(), 1);
}

#[tokio::test]
async fn an_agent_needs_the_approval_scope_but_the_operator_does_not() {
    let scopes: ScopeSet = Scope::ALL
        .iter()
        .copied()
        .filter(|scope| *scope != Scope::ApprovalsCreate)
        .collect();
    let h = harness(Options::default());
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(h.clock.clone())))
        .clock(h.clock.clone())
        .scopes(scopes)
        .workflow_store(Arc::new(MemoryWorkflowStore::new()))
        .build()
        .unwrap();
    let preview = gateway
        .preview_order(&agent(), limit_order(PAPER, "10", "190"))
        .await
        .unwrap();
    let raw = RawApprovalCreate {
        preview_id: preview.preview_id.clone(),
        ttl_seconds: None,
    };
    let error = gateway
        .create_approval(&agent(), raw.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "AUTH_MISSING_SCOPE");
    let approval = gateway
        .create_approval(&CallContext::sdk(), raw)
        .await
        .unwrap();
    // The operator through the library is the operator: the principal policy, not the surface.
    assert_eq!(approval.surface, "sdk");
    assert_eq!(approval.approver, "operator");
    assert_eq!(approval.created_by, "local_operator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submits_with_one_key_reach_the_writer_once() {
    let h = Arc::new(harness(Options {
        writer: Arc::new(CountingWriter::new(StdDuration::from_millis(20))),
        ..Options::default()
    }));
    let approval = h.approved(PAPER, None).await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let h = Arc::clone(&h);
            let approval = approval.clone();
            tokio::spawn(async move { h.submit(PAPER, &approval, "one-key").await })
        })
        .collect();
    let mut order_ids = BTreeSet::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(view) => {
                order_ids.insert(view.orders[0].order_id.clone());
            }
            Err(error) => assert_eq!(error.code().as_str(), "ORDER_IDEMPOTENCY_PENDING"),
        }
    }
    assert_eq!(h.writer.submits(), 1);
    assert_eq!(order_ids.len(), 1);
    let replay = h.submit(PAPER, &approval, "one-key").await.unwrap();
    assert!(replay.replayed);
    assert_eq!(h.writer.submits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submits_with_one_approval_place_one_order() {
    let h = Arc::new(harness(Options {
        writer: Arc::new(CountingWriter::new(StdDuration::from_millis(20))),
        ..Options::default()
    }));
    let approval = h.approved(PAPER, None).await;
    let tasks: Vec<_> = (0..16)
        .map(|index| {
            let h = Arc::clone(&h);
            let approval = approval.clone();
            tokio::spawn(async move { h.submit(PAPER, &approval, &format!("key-{index}")).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(error) => assert!(
                ["APPROVAL_IN_USE", "APPROVAL_CONSUMED"].contains(&error.code().as_str()),
                "{error}"
            ),
        }
    }
    assert_eq!(accepted, 1);
    assert_eq!(h.writer.submits(), 1);
}

fn sqlite_store(path: &Path) -> Arc<dyn WorkflowStore> {
    Arc::new(SqliteWorkflowStore::open(path).unwrap())
}

/// A submit under `crash-key` whose process died after the broker accepted, and a new gateway
/// on the same database, started after the recovery grace. The "broker" (the writer) outlives
/// the process: the same one is handed to the restarted gateway.
struct Crashed {
    restarted: Harness,
    writer: Arc<CountingWriter>,
    approval: String,
}

async fn crashed_submit(path: &Path) -> Crashed {
    let writer = Arc::new(CountingWriter::new(StdDuration::ZERO));
    let clock = Arc::new(FixedClock::new(start()));
    let first = harness(Options {
        store: sqlite_store(path),
        writer: writer.clone(),
        clock: clock.clone(),
        ..Options::default()
    });
    let approval = first.approved(PAPER, None).await;
    writer.die_after_submit.store(true, Ordering::SeqCst);
    let crashed = tokio::time::timeout(
        StdDuration::from_millis(200),
        first.submit(PAPER, &approval, "crash-key"),
    )
    .await;
    assert!(
        crashed.is_err(),
        "the submit must not finish: the process died"
    );
    drop(first);
    writer.die_after_submit.store(false, Ordering::SeqCst);
    assert_eq!(writer.submits(), 1);
    clock.advance(Duration::seconds(121));
    let restarted = harness(Options {
        store: sqlite_store(path),
        writer: writer.clone(),
        clock,
        ..Options::default()
    });
    Crashed {
        restarted,
        writer,
        approval,
    }
}

#[tokio::test]
async fn a_crash_after_the_broker_accepted_is_recovered_without_resubmitting() {
    let dir = tempfile::tempdir().unwrap();
    let Crashed {
        restarted,
        writer,
        approval,
    } = crashed_submit(&dir.path().join("workflow.sqlite3")).await;
    let report = restarted
        .gateway
        .recover_pending_writes(&CallContext::sdk())
        .await
        .unwrap();
    assert_eq!(
        (report.completed, report.needs_review, report.left_pending),
        (1, 0, 0)
    );
    assert_eq!(writer.submits(), 1, "recovery must never resubmit");
    let replay = restarted
        .submit(PAPER, &approval, "crash-key")
        .await
        .unwrap();
    assert!(replay.replayed);
    assert!(replay.recovered);
    assert_eq!(writer.submits(), 1);
    let shown = restarted
        .gateway
        .show_approval(&CallContext::sdk(), &approval)
        .await
        .unwrap();
    assert_eq!(shown.status, "consumed");
    assert!(
        restarted
            .operations()
            .iter()
            .any(|op| op.0 == "order recovery")
    );
    // The recovery steps and the replay carry the same links as a placement would: the key,
    // the approval and the broker order.
    let links_of = |operation: &str| -> Vec<serde_json::Value> {
        restarted
            .audit
            .records()
            .iter()
            .filter(|record| record.columns.operation == operation)
            .map(|record| {
                serde_json::from_str::<serde_json::Value>(&record.columns.metadata).unwrap()
                    ["links"]
                    .clone()
            })
            .collect()
    };
    let order_id = replay.orders[0].order_id.clone();
    for links in links_of("order recovery")
        .into_iter()
        .chain(links_of("approval consumed"))
        .chain(links_of("paper order submit"))
    {
        assert_eq!(links["idempotency_key"], "crash-key", "{links}");
        assert_eq!(links["approval_id"], approval.as_str(), "{links}");
        assert_eq!(links["broker_order_ids"][0], order_id.as_str(), "{links}");
    }
    assert_eq!(links_of("paper order submit").len(), 1);
}

#[tokio::test]
async fn outcomes_stored_by_an_earlier_release_are_migrated_and_still_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let writer = Arc::new(CountingWriter::new(StdDuration::ZERO));
    let first = harness(Options {
        store: sqlite_store(&path),
        writer: writer.clone(),
        ..Options::default()
    });
    let approval = first.approved(PAPER, None).await;
    let placed = first.submit(PAPER, &approval, "old-key").await.unwrap();
    let refused = first.submit(PAPER, "apr_missing", "old-refused").await;
    assert!(refused.is_err());
    drop(first);
    {
        // Turn the database back into what the previous release left: version 1 outcomes (the
        // serialized view, and the bare error document), and migrations V3 and later not yet
        // applied (V4's live tables, V5's order lifecycle tables and index, and V6's change to
        // the live table, are dropped with their history rows).
        let connection = rusqlite::Connection::open(&path).unwrap();
        let legacy_view = serde_json::to_string(&placed).unwrap();
        connection
            .execute(
                "UPDATE idempotency_records SET outcome = ?1 WHERE key = 'old-key'",
                [&legacy_view],
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO idempotency_records (account_id, operation, key, fingerprint, \
                 state, outcome, started_at, finished_at) VALUES (?1, 'paper_cancel', \
                 'old-failed', ?2, 'failed', ?3, '2026-01-02T15:00:00.000000000Z', \
                 '2026-01-02T15:00:01.000000000Z')",
                [
                    PAPER,
                    &"ab".repeat(32),
                    r#"{"error":{"code":"BROKER_ORDER_REJECTED","message":"the broker refused"}}"#,
                ],
            )
            .unwrap();
        connection
            .execute_batch(
                "DROP TABLE live_risk_entries; DROP TABLE kill_switch; \
                 DROP TABLE order_events; DROP TABLE live_orders_pending; \
                 DROP TABLE tracked_orders; DROP TABLE live_rejection_streak; \
                 DROP INDEX idempotency_records_key;",
            )
            .unwrap();
        let removed = connection
            .execute("DELETE FROM refinery_schema_history WHERE version >= 3", [])
            .unwrap();
        assert_eq!(removed, 4);
    }
    let restarted = harness(Options {
        store: sqlite_store(&path),
        writer: writer.clone(),
        ..Options::default()
    });
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        let stored = |key: &str| -> serde_json::Value {
            let text: String = connection
                .query_row(
                    "SELECT outcome FROM idempotency_records WHERE key = ?1",
                    [key],
                    |row| row.get(0),
                )
                .unwrap();
            serde_json::from_str(&text).unwrap()
        };
        let migrated = stored("old-key");
        assert_eq!(migrated["version"], 2, "{migrated}");
        assert_eq!(migrated["result"], "accepted");
        assert_eq!(
            migrated["orders"][0]["order_id"],
            placed.orders[0].order_id.as_str()
        );
        assert_eq!(migrated["recovered"], false);
        let failed = stored("old-failed");
        assert_eq!(failed["version"], 2, "{failed}");
        assert_eq!(failed["result"], "failed");
        assert_eq!(failed["code"], "BROKER_ORDER_REJECTED");
    }
    let replay = restarted.submit(PAPER, &approval, "old-key").await.unwrap();
    assert!(replay.replayed);
    assert_eq!(
        PaperOrderView {
            replayed: false,
            ..replay
        },
        placed
    );
    assert_eq!(writer.submits(), 1);
}

#[tokio::test]
async fn recovery_whose_summary_event_fails_says_the_records_were_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let Crashed {
        restarted,
        writer,
        approval,
    } = crashed_submit(&dir.path().join("workflow.sqlite3")).await;
    restarted.steps.fail_on(Some("orders recover"));
    let error = restarted
        .gateway
        .recover_pending_writes(&CallContext::sdk())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "AUDIT_WRITE_FAILED");
    let message = error.to_string();
    assert!(message.contains("completed 1 pending write"), "{message}");
    let action = error.user_action();
    assert!(!action.contains("nothing was done"), "{action}");
    assert!(action.contains("resolved records stand"), "{action}");
    // What it says is true: the record is completed and replays, nothing was resubmitted.
    restarted.steps.fail_on(None);
    let replay = restarted
        .submit(PAPER, &approval, "crash-key")
        .await
        .unwrap();
    assert!(replay.replayed && replay.recovered);
    assert_eq!(writer.submits(), 1);
}

#[tokio::test]
async fn a_pending_write_is_reported_and_an_unfound_one_goes_to_review() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let writer = Arc::new(CountingWriter::new(StdDuration::ZERO));
    let clock = Arc::new(FixedClock::new(start()));
    let first = harness(Options {
        store: sqlite_store(&path),
        writer: writer.clone(),
        clock: clock.clone(),
        ..Options::default()
    });
    let approval = first.approved(PAPER, None).await;
    writer.die_after_submit.store(true, Ordering::SeqCst);
    let _ = tokio::time::timeout(
        StdDuration::from_millis(200),
        first.submit(PAPER, &approval, "lost-key"),
    )
    .await;
    writer.die_after_submit.store(false, Ordering::SeqCst);
    // Within the grace the record is in flight.
    assert_eq!(
        code(first.submit(PAPER, &approval, "lost-key").await),
        "ORDER_IDEMPOTENCY_PENDING"
    );
    drop(first);

    // The broker lost the order (a different, empty book after the restart).
    clock.advance(Duration::seconds(121));
    let empty = Arc::new(CountingWriter::new(StdDuration::ZERO));
    let restarted = harness(Options {
        store: sqlite_store(&path),
        writer: empty.clone(),
        clock,
        ..Options::default()
    });
    assert_eq!(
        code(restarted.submit(PAPER, &approval, "lost-key").await),
        "ORDER_IDEMPOTENCY_NEEDS_REVIEW"
    );
    assert_eq!(empty.submits(), 0, "recovery never resubmits");
    // The approval stays held: another key cannot use it while a person reviews.
    let error = restarted
        .submit(PAPER, &approval, "other-key")
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "APPROVAL_IN_USE");
}

#[tokio::test]
async fn brackets_go_as_one_group_with_one_approval() {
    let h = harness(Options::default());
    let preview = h
        .gateway
        .preview_bracket(
            &agent(),
            RawBracketPreview {
                account: PAPER.into(),
                contract_id: "265598".into(),
                side: "BUY".into(),
                quantity: "10".into(),
                entry_price: "190".into(),
                take_profit_price: "210".into(),
                stop_loss_price: "180".into(),
                time_in_force: Some("GTC".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(preview.legs.len(), 3);
    let approval = h.approve(&preview.preview_id, None).await;
    // A bracket approval cannot place a single order.
    assert_eq!(
        code(h.submit(PAPER, &approval, "k-single").await),
        "ORDER_PREVIEW_KIND_MISMATCH"
    );
    let raw = RawPaperSubmit {
        account: PAPER.into(),
        approval_id: approval.clone(),
        idempotency_key: "bracket-1".into(),
    };
    let placed = h
        .gateway
        .paper_bracket_submit(&agent(), raw.clone())
        .await
        .unwrap();
    let legs: Vec<&str> = placed
        .orders
        .iter()
        .map(|order| order.leg.as_str())
        .collect();
    assert_eq!(legs, ["entry", "take_profit", "stop_loss"]);
    assert_eq!(h.writer.submits(), 1);
    let replay = h.gateway.paper_bracket_submit(&agent(), raw).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.orders, placed.orders);

    let mut bad = RawBracketPreview {
        account: PAPER.into(),
        contract_id: "265598".into(),
        side: "BUY".into(),
        quantity: "10".into(),
        entry_price: "190".into(),
        take_profit_price: "180".into(),
        stop_loss_price: "210".into(),
        time_in_force: None,
    };
    let error = h
        .gateway
        .preview_bracket(&agent(), bad.clone())
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "INPUT_INVALID");
    bad.take_profit_price = "200".into();
    bad.stop_loss_price = "195".into();
    assert!(h.gateway.preview_bracket(&agent(), bad).await.is_err());
}

#[tokio::test]
async fn modify_takes_an_approved_replacement_and_cancel_is_keyed() {
    let h = harness(Options::default());
    let approval = h.approved(PAPER, None).await;
    let placed = h.submit(PAPER, &approval, "k-modify").await.unwrap();
    let order_id = placed.orders[0].order_id.clone();

    // A replacement may not change the side.
    let mut flipped = limit_order(PAPER, "10", "191");
    flipped.side = "SELL".into();
    flipped.modify_order_id = Some(order_id.clone());
    let error = h
        .gateway
        .preview_order(&agent(), flipped)
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "ORDER_MODIFY_NOT_ALLOWED");

    let mut replacement = limit_order(PAPER, "5", "191.5");
    replacement.modify_order_id = Some(order_id.clone());
    let preview = h
        .gateway
        .preview_order(&agent(), replacement)
        .await
        .unwrap();
    assert_eq!(preview.kind, "modify");
    let modify_approval = h.approve(&preview.preview_id, None).await;
    let modify = RawPaperModify {
        account: PAPER.into(),
        order_id: order_id.clone(),
        approval_id: modify_approval.clone(),
        idempotency_key: "m-1".into(),
    };
    let modified = h
        .gateway
        .paper_modify(&agent(), modify.clone())
        .await
        .unwrap();
    assert_eq!(modified.orders[0].order_id, order_id);
    assert!(
        h.gateway
            .paper_modify(&agent(), modify)
            .await
            .unwrap()
            .replayed
    );
    // A modify approval is for that order only.
    let error = h
        .gateway
        .paper_modify(
            &agent(),
            RawPaperModify {
                account: PAPER.into(),
                order_id: "lc-999".into(),
                approval_id: modify_approval,
                idempotency_key: "m-2".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "APPROVAL_CONSUMED");

    let cancel = RawPaperCancel {
        account: PAPER.into(),
        order_id: order_id.clone(),
        idempotency_key: "c-1".into(),
        approval_id: None,
    };
    let cancelled = h
        .gateway
        .paper_cancel(&agent(), cancel.clone())
        .await
        .unwrap();
    assert_eq!(cancelled.operation, "cancel");
    assert!(
        h.gateway
            .paper_cancel(&agent(), cancel)
            .await
            .unwrap()
            .replayed
    );
    let unknown = h
        .gateway
        .paper_cancel(
            &agent(),
            RawPaperCancel {
                account: PAPER.into(),
                order_id: "lc-999".into(),
                idempotency_key: "c-2".into(),
                approval_id: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code().as_str(), "ORDER_NOT_FOUND");
}

mockall::mock! {
    Writer {}

    #[async_trait]
    impl OrderWriter for Writer {
        fn name(&self) -> &'static str;
        fn mode(&self) -> WriterMode;
        async fn submit(
            &self,
            order: &OrderIntent,
            client_order_id: &IdempotencyKey,
        ) -> Result<PlacedOrder, WriteError>;
        async fn submit_bracket(
            &self,
            bracket: &BracketIntent,
            client_order_id: &IdempotencyKey,
        ) -> Result<Vec<PlacedOrder>, WriteError>;
        async fn modify(
            &self,
            order_id: &BrokerOrderId,
            replacement: &OrderIntent,
        ) -> Result<PlacedOrder, WriteError>;
        async fn cancel(
            &self,
            account: &AccountId,
            order_id: &BrokerOrderId,
        ) -> Result<CancelAck, WriteError>;
        async fn order(
            &self,
            account: &AccountId,
            order_id: &BrokerOrderId,
        ) -> Result<Option<WorkingOrder>, WriteError>;
        async fn find_by_client_order_id(
            &self,
            account: &AccountId,
            client_order_id: &IdempotencyKey,
        ) -> Result<Option<WorkingOrder>, WriteError>;
    }
}

/// Every gate refuses before the writer: a mock that allows no write call proves it.
#[tokio::test]
async fn no_refused_request_reaches_the_writer() {
    let mut writer = MockWriter::new();
    writer.expect_name().return_const("mock");
    writer.expect_mode().return_const(WriterMode::Paper);
    writer.expect_submit().never();
    writer.expect_submit_bracket().never();
    writer.expect_modify().never();
    writer.expect_cancel().never();
    writer.expect_order().returning(|_, _| Ok(None));
    writer.expect_find_by_client_order_id().never();
    let clock = Arc::new(FixedClock::new(start()));
    let secret = SecretBytes::new(vec![42; 32]);
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
    let build = |paper: PaperTradingSettings, writer: Arc<dyn OrderWriter>| {
        Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
            .clock(clock.clone())
            .key(SecretBytes::new(vec![42; 32]))
            .audit_log(audit.clone())
            .scopes(all_scopes())
            .workflow_store(Arc::new(MemoryWorkflowStore::new()))
            .paper_writer(writer)
            .paper_trading(paper)
            .build()
            .unwrap()
    };
    let writer: Arc<dyn OrderWriter> = Arc::new(writer);
    let gateway = build(paper_settings(true), writer.clone());
    let preview = gateway
        .preview_order(&agent(), limit_order(PAPER, "10", "190"))
        .await
        .unwrap();
    let approval = gateway
        .create_approval(
            &CallContext::sdk(),
            RawApprovalCreate {
                preview_id: preview.preview_id,
                ttl_seconds: Some(10),
            },
        )
        .await
        .unwrap()
        .approval_id;
    let submit = |account: &str, approval: &str, key: &str| RawPaperSubmit {
        account: account.into(),
        approval_id: approval.into(),
        idempotency_key: key.into(),
    };
    let refused = [
        gateway
            .paper_submit(&agent(), submit(LIVE, &approval, "k1"))
            .await,
        gateway
            .paper_submit(&agent(), submit(PAPER, "apr_missing", "k2"))
            .await,
        gateway
            .paper_submit(&agent(), submit(OTHER_PAPER, &approval, "k3"))
            .await,
        gateway
            .paper_submit(&agent(), submit(PAPER, &approval, "bad key!"))
            .await,
        gateway
            .paper_bracket_submit(&agent(), submit(PAPER, &approval, "k4"))
            .await,
        gateway
            .paper_modify(
                &agent(),
                RawPaperModify {
                    account: PAPER.into(),
                    order_id: "1".into(),
                    approval_id: approval.clone(),
                    idempotency_key: "k5".into(),
                },
            )
            .await,
    ];
    let codes: Vec<String> = refused.into_iter().map(code).collect();
    assert_eq!(
        codes,
        [
            "PAPER_ACCOUNT_NOT_PAPER",
            "APPROVAL_NOT_FOUND",
            "APPROVAL_ACCOUNT_MISMATCH",
            "INPUT_INVALID",
            "ORDER_PREVIEW_KIND_MISMATCH",
            "ORDER_PREVIEW_KIND_MISMATCH",
        ]
    );
    clock.advance(Duration::seconds(11));
    assert_eq!(
        code(
            gateway
                .paper_submit(&agent(), submit(PAPER, &approval, "k6"))
                .await
        ),
        "APPROVAL_EXPIRED"
    );
    let disabled = build(paper_settings(false), writer);
    assert_eq!(
        code(
            disabled
                .paper_cancel(
                    &agent(),
                    RawPaperCancel {
                        account: PAPER.into(),
                        order_id: "1".into(),
                        idempotency_key: "k7".into(),
                        approval_id: None,
                    },
                )
                .await
        ),
        "PAPER_TRADING_DISABLED"
    );
}

#[tokio::test]
async fn an_approval_needs_an_existing_unexpired_unedited_preview() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let h = harness(Options {
        store: sqlite_store(&path),
        ..Options::default()
    });
    let create = |preview_id: &str, ttl: Option<u32>| RawApprovalCreate {
        preview_id: preview_id.into(),
        ttl_seconds: ttl,
    };
    let cli = CallContext::sdk();
    let unknown = h
        .gateway
        .create_approval(&cli, create("prv_missing", None))
        .await;
    assert_eq!(
        unknown.unwrap_err().code().as_str(),
        "ORDER_PREVIEW_NOT_FOUND"
    );

    let preview = h
        .gateway
        .preview_order(&agent(), limit_order(PAPER, "10", "190"))
        .await
        .unwrap();
    let too_long = h
        .gateway
        .create_approval(&cli, create(&preview.preview_id, Some(0)))
        .await;
    assert_eq!(too_long.unwrap_err().code().as_str(), "INPUT_INVALID");

    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute(
            "UPDATE previews SET legs = replace(legs, 'quantity=10', 'quantity=90')",
            [],
        )
        .unwrap();
    drop(connection);
    let edited = h
        .gateway
        .create_approval(&cli, create(&preview.preview_id, None))
        .await;
    assert_eq!(edited.unwrap_err().code().as_str(), "ORDER_DIGEST_MISMATCH");

    let fresh = h
        .gateway
        .preview_order(&agent(), limit_order(PAPER, "10", "190"))
        .await
        .unwrap();
    h.clock.advance(Duration::seconds(300));
    let expired = h
        .gateway
        .create_approval(&cli, create(&fresh.preview_id, None))
        .await;
    assert_eq!(
        expired.unwrap_err().code().as_str(),
        "ORDER_PREVIEW_EXPIRED"
    );
    h.assert_last_refused("ORDER_PREVIEW_EXPIRED");
}

// -------------------------------------------------------------------------------------------
// Failures after the writer was called (issue 10, item 3)
// -------------------------------------------------------------------------------------------

impl StepStore {
    fn new() -> Self {
        Self {
            inner: MemoryWorkflowStore::new(),
            failing_method: Mutex::new(None),
        }
    }
}

fn submit_key(key: &str) -> RecordKey {
    RecordKey {
        account_id: AccountId::parse(PAPER).unwrap(),
        operation: WriteOperation::PaperSubmit,
        key: IdempotencyKey::parse(key).unwrap(),
    }
}

impl Harness {
    async fn approval_status(&self, approval_id: &str) -> String {
        self.gateway
            .show_approval(&CallContext::sdk(), approval_id)
            .await
            .unwrap()
            .status
    }
}

/// What a failed submit told its caller: code, `details.order`, `details.outcome_recorded`,
/// message and user action.
struct Told {
    code: String,
    order: Option<String>,
    recorded: Option<bool>,
    message: String,
    action: String,
}

fn told(error: &ibkr_agent_gateway::app::GatewayError) -> Told {
    let document = error.to_json();
    let details = &document["error"]["details"];
    Told {
        code: error.code().as_str().to_owned(),
        order: details["order"].as_str().map(str::to_owned),
        recorded: details["outcome_recorded"].as_bool(),
        message: error.to_string(),
        action: error.user_action(),
    }
}

#[tokio::test]
async fn an_audit_failure_at_each_step_of_a_submit_says_what_happened_to_the_order() {
    // The events a submit appends, in order: the intent (before the writer), the approval
    // consumed (after the writer and the completed record), the call's own final event.
    for step in [
        "paper order intent",
        "approval consumed",
        "paper order submit",
    ] {
        let store = Arc::new(StepStore::new());
        let h = harness(Options {
            store: store.clone(),
            ..Options::default()
        });
        let approval = h.approved(PAPER, None).await;
        h.steps.fail_on(Some(step));
        let error = h.submit(PAPER, &approval, "k1").await.unwrap_err();
        h.steps.fail_on(None);
        let told = told(&error);
        assert_eq!(told.code, "AUDIT_WRITE_FAILED", "{step}");
        let record = store.inner.idempotency(&submit_key("k1")).await.unwrap();
        if step == "paper order intent" {
            // Before the writer: nothing happened, and the error says so.
            assert_eq!(h.writer.submits(), 0);
            assert_eq!(record, None);
            assert_eq!(h.approval_status(&approval).await, "approved");
            assert!(
                told.action.starts_with("nothing was done"),
                "{}",
                told.action
            );
            assert_eq!(told.order, None);
        } else {
            // After the writer: the order is placed and recorded; the error must not say
            // that nothing was done, and must send the caller back to the same key.
            assert_eq!(h.writer.submits(), 1, "{step}");
            assert_eq!(record.unwrap().state, IdempotencyState::Completed, "{step}");
            assert_eq!(h.approval_status(&approval).await, "consumed", "{step}");
            assert_eq!(told.order.as_deref(), Some("placed"), "{step}");
            assert_eq!(told.recorded, Some(true), "{step}");
            assert!(
                told.message.contains("accepted")
                    && told.message.contains("recorded under the idempotency key"),
                "{}",
                told.message
            );
            assert!(!told.action.contains("nothing was done"), "{}", told.action);
            assert!(
                told.action.contains("same idempotency key"),
                "{}",
                told.action
            );
        }
        // Following the advice never places a second order.
        let retried = h.submit(PAPER, &approval, "k1").await.unwrap();
        assert_eq!(retried.replayed, step != "paper order intent", "{step}");
        assert_eq!(h.writer.submits(), 1, "{step}");
    }
}

#[tokio::test]
async fn a_replay_whose_audit_event_fails_still_says_the_order_is_placed() {
    let h = harness(Options::default());
    let approval = h.approved(PAPER, None).await;
    h.submit(PAPER, &approval, "k1").await.unwrap();
    h.steps.fail_on(Some("paper order submit"));
    let told = told(&h.submit(PAPER, &approval, "k1").await.unwrap_err());
    h.steps.fail_on(None);
    assert_eq!(told.code, "AUDIT_WRITE_FAILED");
    assert_eq!(told.order.as_deref(), Some("placed"));
    assert!(!told.action.contains("nothing was done"), "{}", told.action);
    assert_eq!(h.writer.submits(), 1);
}

#[tokio::test]
async fn a_store_failure_around_the_writer_says_what_happened_to_the_order() {
    // Before the writer: `begin` fails; nothing happened.
    let store = Arc::new(StepStore::new());
    let h = harness(Options {
        store: store.clone(),
        ..Options::default()
    });
    let approval = h.approved(PAPER, None).await;
    store.fail_next("begin");
    let told_before = told(&h.submit(PAPER, &approval, "k1").await.unwrap_err());
    assert_eq!(told_before.code, "WORKFLOW_STORE_FAILED");
    assert_eq!(told_before.order, None);
    assert_eq!(h.writer.submits(), 0);
    assert_eq!(store.inner.idempotency(&submit_key("k1")).await, Ok(None));
    assert_eq!(h.approval_status(&approval).await, "approved");

    // After the writer: `complete` fails; the order is placed but not recorded.
    store.fail_next("complete");
    let told_after = told(&h.submit(PAPER, &approval, "k1").await.unwrap_err());
    assert_eq!(told_after.code, "WORKFLOW_STORE_FAILED");
    assert_eq!(told_after.order.as_deref(), Some("placed"));
    assert_eq!(told_after.recorded, Some(false));
    assert!(
        told_after.message.contains("accepted") && told_after.message.contains("pending"),
        "{}",
        told_after.message
    );
    assert!(
        told_after.action.contains("same idempotency key"),
        "{}",
        told_after.action
    );
    assert_eq!(h.writer.submits(), 1);
    assert_eq!(
        store
            .inner
            .idempotency(&submit_key("k1"))
            .await
            .unwrap()
            .unwrap()
            .state,
        IdempotencyState::Pending
    );
    // The approval stays held by the pending write: no second order through it.
    let second_key = h.submit(PAPER, &approval, "k2").await.unwrap_err();
    assert_eq!(second_key.code().as_str(), "APPROVAL_IN_USE");
    // The same key reports the write in flight, then, past the grace, recovery finds the
    // order by its client order id and the key replays it.
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "ORDER_IDEMPOTENCY_PENDING"
    );
    h.clock.advance(Duration::seconds(121));
    let replayed = h.submit(PAPER, &approval, "k1").await.unwrap();
    assert!(replayed.replayed);
    assert_eq!(h.writer.submits(), 1);
}

#[tokio::test]
async fn an_unknown_outcome_whose_audit_event_fails_is_reported_unknown() {
    let h = harness(Options::default());
    let approval = h.approved(PAPER, None).await;
    h.writer.ambiguous.store(true, Ordering::SeqCst);
    h.steps.fail_on(Some("paper order submit"));
    let told = told(&h.submit(PAPER, &approval, "k1").await.unwrap_err());
    h.steps.fail_on(None);
    assert_eq!(told.code, "AUDIT_WRITE_FAILED");
    assert_eq!(told.order.as_deref(), Some("unknown"));
    assert_eq!(told.recorded, Some(false));
    assert!(!told.action.contains("nothing was done"), "{}", told.action);
    assert!(
        told.action.contains("same idempotency key"),
        "{}",
        told.action
    );
    assert_eq!(h.writer.submits(), 1);
}

// -------------------------------------------------------------------------------------------
// Approvals: attribution, one per preview, keyed digests (issue 10, item 7)
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn approvals_record_whether_an_operator_or_an_agent_granted_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let h = harness(Options {
        store: sqlite_store(&path),
        ..Options::default()
    });
    for (context, approver, surface) in [
        (CallContext::sdk(), "operator", "sdk"),
        (agent(), "agent", "mcp_stdio"),
    ] {
        let preview = h
            .gateway
            .preview_order(&agent(), limit_order(PAPER, "10", "190"))
            .await
            .unwrap();
        let created = h
            .gateway
            .create_approval(
                &context,
                RawApprovalCreate {
                    preview_id: preview.preview_id,
                    ttl_seconds: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(created.approver, approver);
        assert_eq!(created.surface, surface);
        let shown = h
            .gateway
            .show_approval(&CallContext::sdk(), &created.approval_id)
            .await
            .unwrap();
        assert_eq!(shown.approver, approver);
    }
    let connection = rusqlite::Connection::open(&path).unwrap();
    let stored: Vec<(String, String)> = connection
        .prepare("SELECT surface, approver FROM approvals ORDER BY surface")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        stored,
        [
            ("mcp_stdio".to_owned(), "agent".to_owned()),
            ("sdk".to_owned(), "operator".to_owned()),
        ]
    );
}

impl Harness {
    async fn preview_id(&self) -> String {
        self.gateway
            .preview_order(&agent(), limit_order(PAPER, "10", "190"))
            .await
            .unwrap()
            .preview_id
    }

    async fn try_approve(&self, preview_id: &str, ttl: Option<u32>) -> Result<String, String> {
        self.gateway
            .create_approval(
                &CallContext::sdk(),
                RawApprovalCreate {
                    preview_id: preview_id.into(),
                    ttl_seconds: ttl,
                },
            )
            .await
            .map(|view| view.approval_id)
            .map_err(|error| error.code().as_str().to_owned())
    }
}

#[tokio::test]
async fn a_preview_gets_one_approval_unless_the_first_was_revoked_or_expired_unused() {
    let dir = tempfile::tempdir().unwrap();
    let stores: [Arc<dyn WorkflowStore>; 2] = [
        Arc::new(MemoryWorkflowStore::new()),
        sqlite_store(&dir.path().join("workflow.sqlite3")),
    ];
    for store in stores {
        let h = harness(Options {
            store,
            ..Options::default()
        });
        // Used: approve, submit, approve again → refused; the preview placed one order.
        let used = h.preview_id().await;
        let first = h.approve(&used, None).await;
        assert_eq!(
            h.try_approve(&used, None).await,
            Err("APPROVAL_ALREADY_GRANTED".to_owned())
        );
        h.submit(PAPER, &first, "k1").await.unwrap();
        assert_eq!(
            h.try_approve(&used, None).await,
            Err("APPROVAL_ALREADY_GRANTED".to_owned())
        );
        h.assert_last_refused("APPROVAL_ALREADY_GRANTED");
        assert_eq!(h.writer.submits(), 1);

        // Revoked: may be approved again.
        let revoked = h.preview_id().await;
        let withdrawn = h.approve(&revoked, None).await;
        h.gateway
            .revoke_approval(&CallContext::sdk(), &withdrawn)
            .await
            .unwrap();
        let again = h.try_approve(&revoked, None).await.unwrap();
        h.submit(PAPER, &again, "k2").await.unwrap();
        assert_eq!(h.writer.submits(), 2);

        // Expired unused: may be approved again.
        let lapsed = h.preview_id().await;
        h.approve(&lapsed, Some(1)).await;
        h.clock.advance(Duration::seconds(2));
        let renewed = h.try_approve(&lapsed, None).await.unwrap();
        h.submit(PAPER, &renewed, "k3").await.unwrap();
        assert_eq!(h.writer.submits(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_of_one_preview_store_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let stores: [Arc<dyn WorkflowStore>; 2] = [
        Arc::new(MemoryWorkflowStore::new()),
        sqlite_store(&dir.path().join("workflow.sqlite3")),
    ];
    for store in stores {
        let h = Arc::new(harness(Options {
            store,
            ..Options::default()
        }));
        let preview = h.preview_id().await;
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let h = Arc::clone(&h);
                let preview = preview.clone();
                tokio::spawn(async move { h.try_approve(&preview, None).await })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => granted += 1,
                Err(code) => assert_eq!(code, "APPROVAL_ALREADY_GRANTED"),
            }
        }
        assert_eq!(granted, 1);
    }
}

/// Lower-case hex SHA-256, as the unkeyed digest was computed.
fn plain_sha256(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::test]
async fn a_rewritten_preview_with_a_recomputed_plain_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let h = harness(Options {
        store: sqlite_store(&path),
        ..Options::default()
    });
    let approval = h.approved(PAPER, None).await;
    // Someone with the file but not the deployment key raises the quantity and recomputes the
    // digest the way anyone can: a plain SHA-256 of the stored legs, in both rows.
    let connection = rusqlite::Connection::open(&path).unwrap();
    let legs: String = connection
        .query_row("SELECT legs FROM previews", [], |row| row.get(0))
        .unwrap();
    let rewritten = legs.replace(";quantity=10;", ";quantity=1000;");
    assert_ne!(rewritten, legs);
    let digest = plain_sha256(&rewritten);
    connection
        .execute(
            "UPDATE previews SET legs = ?1, digest = ?2",
            rusqlite::params![rewritten, digest],
        )
        .unwrap();
    connection
        .execute(
            "UPDATE approvals SET digest = ?1",
            rusqlite::params![digest],
        )
        .unwrap();
    drop(connection);
    assert_eq!(
        code(h.submit(PAPER, &approval, "k1").await),
        "ORDER_DIGEST_MISMATCH"
    );
    h.assert_last_refused("ORDER_DIGEST_MISMATCH");
    assert_eq!(h.writer.submits(), 0);
}

// -------------------------------------------------------------------------------------------
// Protective children of brackets (issue 10, item 8)
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn cancelling_a_protective_child_alone_is_refused_but_the_parent_cancels() {
    let h = harness(Options::default());
    let legs = place_bracket(&h, "bracket-1").await;
    let leg = |name: &str| leg_of(&legs, name);
    let cancel = |order_id: String, key: &str| RawPaperCancel {
        account: PAPER.into(),
        order_id,
        idempotency_key: key.into(),
        approval_id: None,
    };
    for (child, key) in [("stop_loss", "c-sl"), ("take_profit", "c-tp")] {
        let error = h
            .gateway
            .paper_cancel(&agent(), cancel(leg(child), key))
            .await
            .unwrap_err();
        assert_eq!(
            error.code().as_str(),
            "ORDER_CANCEL_NEEDS_APPROVAL",
            "{child}"
        );
        h.assert_last_refused("ORDER_CANCEL_NEEDS_APPROVAL");
        assert_eq!(h.writer.cancels(), 0, "{child}");
    }
    // Cancelling the parent cancels the whole group and needs no approval.
    let cancelled = h
        .gateway
        .paper_cancel(&agent(), cancel(leg("entry"), "c-entry"))
        .await
        .unwrap();
    assert_eq!(cancelled.operation, "cancel");
    assert_eq!(h.writer.cancels(), 1);
}

/// Places a GTC buy bracket through the gateway; returns the leg name → order id pairs.
async fn place_bracket(h: &Harness, key: &str) -> Vec<(String, String)> {
    let preview = h
        .gateway
        .preview_bracket(
            &agent(),
            RawBracketPreview {
                account: PAPER.into(),
                contract_id: "265598".into(),
                side: "BUY".into(),
                quantity: "10".into(),
                entry_price: "190".into(),
                take_profit_price: "210".into(),
                stop_loss_price: "180".into(),
                time_in_force: Some("GTC".into()),
            },
        )
        .await
        .unwrap();
    let approval = h.approve(&preview.preview_id, None).await;
    let placed = h
        .gateway
        .paper_bracket_submit(
            &agent(),
            RawPaperSubmit {
                account: PAPER.into(),
                approval_id: approval,
                idempotency_key: key.into(),
            },
        )
        .await
        .unwrap();
    placed
        .orders
        .into_iter()
        .map(|order| (order.leg, order.order_id))
        .collect()
}

fn leg_of(legs: &[(String, String)], name: &str) -> String {
    legs.iter().find(|(leg, _)| leg == name).unwrap().1.clone()
}

fn approved_cancel(order_id: &str, key: &str, approval_id: Option<&str>) -> RawPaperCancel {
    RawPaperCancel {
        account: PAPER.into(),
        order_id: order_id.into(),
        idempotency_key: key.into(),
        approval_id: approval_id.map(str::to_owned),
    }
}

impl Harness {
    /// A paper cancel of `order_id` on the paper account, as the agent.
    async fn cancel(
        &self,
        order_id: &str,
        key: &str,
        approval_id: Option<&str>,
    ) -> Result<PaperOrderView, ibkr_agent_gateway::app::GatewayError> {
        self.gateway
            .paper_cancel(&agent(), approved_cancel(order_id, key, approval_id))
            .await
    }

    /// A cancel preview of `order_id` (as the agent), approved by the operator.
    async fn approved_cancel_of(&self, order_id: &str) -> String {
        let preview = self
            .gateway
            .preview_cancel(
                &agent(),
                RawCancelPreview {
                    account: PAPER.into(),
                    order_id: order_id.into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(preview.kind, "cancel");
        assert_eq!(preview.cancels_order_id.as_deref(), Some(order_id));
        assert!(!preview.executable);
        self.approve(&preview.preview_id, None).await
    }
}

#[tokio::test]
async fn an_approved_cancel_preview_cancels_a_protective_child_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    for store in [
        Arc::new(MemoryWorkflowStore::new()) as Arc<dyn WorkflowStore>,
        sqlite_store(&dir.path().join("workflow.sqlite3")),
    ] {
        approved_cancel_goes_once(harness(Options {
            store,
            ..Options::default()
        }))
        .await;
    }
}

async fn approved_cancel_goes_once(h: Harness) {
    let legs = place_bracket(&h, "bracket-1").await;
    let stop_loss = leg_of(&legs, "stop_loss");
    let approval = h.approved_cancel_of(&stop_loss).await;
    // Previewing and approving cancelled nothing.
    assert_eq!(h.writer.cancels(), 0);

    let cancelled = h.cancel(&stop_loss, "c-sl", Some(&approval)).await.unwrap();
    assert_eq!(cancelled.orders[0].order_id, stop_loss);
    assert_eq!(cancelled.approval_id.as_deref(), Some(approval.as_str()));
    assert_eq!(h.writer.cancels(), 1);
    // The same request replays; the approval is spent for any other.
    let replayed = h.cancel(&stop_loss, "c-sl", Some(&approval)).await.unwrap();
    assert!(replayed.replayed);
    let again = h
        .cancel(&stop_loss, "c-sl-2", Some(&approval))
        .await
        .unwrap_err();
    assert_eq!(again.code().as_str(), "APPROVAL_CONSUMED");
    assert_eq!(h.writer.cancels(), 1);
}

#[tokio::test]
async fn a_cancel_approval_is_bound_to_its_order_and_to_cancelling() {
    let h = harness(Options::default());
    let legs = place_bracket(&h, "bracket-1").await;
    let (stop_loss, take_profit) = (leg_of(&legs, "stop_loss"), leg_of(&legs, "take_profit"));
    let for_take_profit = h.approved_cancel_of(&take_profit).await;

    // The take-profit's approval does not cancel the stop-loss.
    let error = h
        .cancel(&stop_loss, "c-1", Some(&for_take_profit))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "APPROVAL_ORDER_MISMATCH");
    assert!(
        error.to_string().contains("nothing was cancelled"),
        "{error}"
    );
    h.assert_last_refused("APPROVAL_ORDER_MISMATCH");
    // An order's approval does not cancel anything.
    let order_approval = h.approved(PAPER, None).await;
    let error = h
        .cancel(&stop_loss, "c-2", Some(&order_approval))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "ORDER_PREVIEW_KIND_MISMATCH");
    // A cancel's approval places nothing.
    let submits = h.writer.submits();
    assert_eq!(
        code(h.submit(PAPER, &for_take_profit, "s-1").await),
        "ORDER_PREVIEW_KIND_MISMATCH"
    );
    assert_eq!(h.writer.submits(), submits);
    assert_eq!(h.writer.cancels(), 0);
    // None of the refusals spent it: it still cancels its own order.
    h.cancel(&take_profit, "c-3", Some(&for_take_profit))
        .await
        .unwrap();
    assert_eq!(h.writer.cancels(), 1);
}

#[tokio::test]
async fn a_bracket_child_the_gateway_has_no_record_of_is_still_protected() {
    // A bracket placed at the broker without a record here: recovered after a crash (the
    // record names only the entry), or placed outside the gateway.
    let h = harness(Options::default());
    use ibkr_agent_gateway::domain::money::{Price, Quantity};
    use ibkr_agent_gateway::domain::order::{OrderSide, OrderType, TimeInForce};
    use ibkr_agent_gateway::domain::order_intent::IntentParts;
    let intent = |side: &str, order_type: &str, limit: Option<&str>, stop: Option<&str>| {
        OrderIntent::new(IntentParts {
            account_id: AccountId::parse(PAPER).unwrap(),
            contract_id: ContractId::new(265_598).unwrap(),
            side: OrderSide::parse(side).unwrap(),
            quantity: Quantity::parse("10").unwrap(),
            order_type: OrderType::parse(order_type).unwrap(),
            limit_price: limit.map(|p| Price::parse(p).unwrap()),
            stop_price: stop.map(|p| Price::parse(p).unwrap()),
            trailing: None,
            time_in_force: TimeInForce::GoodTillCancelled,
        })
        .unwrap()
    };
    let bracket = BracketIntent::new(
        intent("BUY", "LMT", Some("190"), None),
        Price::parse("210").unwrap(),
        Price::parse("180").unwrap(),
    )
    .unwrap();
    let placed = h
        .writer
        .inner
        .submit_bracket(&bracket, &IdempotencyKey::parse("outside-1").unwrap())
        .await
        .unwrap();
    let stop_loss = placed[2].order_id.to_string();
    let error = h.cancel(&stop_loss, "c-1", None).await.unwrap_err();
    assert_eq!(error.code().as_str(), "ORDER_CANCEL_NEEDS_APPROVAL");
    assert!(error.to_string().contains("protective child"), "{error}");
    assert_eq!(h.writer.cancels(), 0);
    // With an approved cancel preview it goes through.
    let approval = h.approved_cancel_of(&stop_loss).await;
    h.cancel(&stop_loss, "c-2", Some(&approval)).await.unwrap();
    assert_eq!(h.writer.cancels(), 1);
}

#[tokio::test]
async fn a_cancel_preview_of_an_order_that_is_not_there_is_refused() {
    let h = harness(Options::default());
    let error = h
        .gateway
        .preview_cancel(
            &agent(),
            RawCancelPreview {
                account: PAPER.into(),
                order_id: "lc-999".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "ORDER_NOT_FOUND");
    assert_eq!(h.writer.cancels(), 0);
}

#[tokio::test]
async fn a_refusal_the_store_cannot_record_says_nothing_changed_but_keeps_the_key() {
    let store = Arc::new(StepStore::new());
    let h = harness(Options {
        store: store.clone(),
        ..Options::default()
    });
    // The broker definitely refuses (no such order), then recording the refusal fails.
    store.fail_next("fail");
    let error = h
        .gateway
        .paper_cancel(
            &agent(),
            RawPaperCancel {
                account: PAPER.into(),
                order_id: "lc-999".into(),
                idempotency_key: "c-1".into(),
                approval_id: None,
            },
        )
        .await
        .unwrap_err();
    let told = told(&error);
    assert_eq!(told.code, "WORKFLOW_STORE_FAILED");
    assert_eq!(told.order.as_deref(), Some("not_placed"));
    assert_eq!(told.recorded, Some(false));
    assert!(told.message.contains("refused"), "{}", told.message);
    assert!(
        told.action.contains("same idempotency key"),
        "{}",
        told.action
    );
    assert_eq!(h.writer.cancels(), 1);
}
