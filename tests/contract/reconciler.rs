//! The order lifecycle through the library: a placed order is tracked, the reconciler records
//! each transition once (submitted, partially filled, filled, cancelled, expired, rejected,
//! needs review), backs off a status it cannot read, rebuilds the backlog after a restart,
//! and halts live writes on an overfill or an order the gateway never placed. Time is an
//! injected clock, and the reconciler's loop runs on paused tokio time.
//!
//! The broker is the fake world with a scripted order list and executions, counting every
//! read of either.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::local_candidate::{
    LocalCandidateWriter, LocalOrderBook,
};
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::adapters::outbound::sqlite_workflow::SqliteWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::order_input::{RawBracketPreview, RawOrderPreview};
use ibkr_agent_gateway::app::reconciler::ReconcileReport;
use ibkr_agent_gateway::domain::account::{Account, AccountSummary};
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::ids::{
    AccountId, BrokerOrderId, ContractId, ExecutionId, IdempotencyKey,
};
use ibkr_agent_gateway::domain::instrument::{AssetClass, Contract, ContractQuery};
use ibkr_agent_gateway::domain::market_data::{BarSeries, BarsRequest, Quote};
use ibkr_agent_gateway::domain::money::{Currency, Money, Price, Quantity};
use ibkr_agent_gateway::domain::order::{
    Execution, LiveOrder, OrderSide, OrderStatus, OrderType, ReportedSide, TimeInForce,
};
use ibkr_agent_gateway::domain::order_intent::OrderIntent;
use ibkr_agent_gateway::domain::order_lifecycle::{
    HistoryQuery, LifecycleEvent, LifecycleState, PollState, TrackedOrder, TrackedOrderKey,
    TradingMode,
};
use ibkr_agent_gateway::domain::portfolio::Position;
use ibkr_agent_gateway::domain::preview::{PreviewPolicy, WhatIf};
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::domain::session::SessionStatus;
use ibkr_agent_gateway::ports::broker_reader::{BrokerError, BrokerReader};
use ibkr_agent_gateway::ports::order_writer::WriterMode;
use ibkr_agent_gateway::ports::workflow_store::WorkflowStore;
use rust_decimal::Decimal;
use wiremock::MockServer;

use crate::live_trading::{LIVE, LiveDouble, agent, checked, live_settings, operator, start};
use crate::support::client_portal;
use crate::support::orders_double::{self, OrdersDouble};
use crate::support::pacing;

const PAPER: &str = "DU1234567";
const AAPL: u64 = 265_598;

/// The fake world, except for the order list and the executions, which the test scripts.
pub(crate) struct ScriptedBroker {
    fake: FakeBroker,
    /// `None`: the order list cannot be read.
    orders: Mutex<Option<Vec<LiveOrder>>>,
    executions: Mutex<Vec<Execution>>,
    pub(crate) order_reads: AtomicUsize,
    pub(crate) execution_reads: AtomicUsize,
}

impl ScriptedBroker {
    fn new(clock: Arc<FixedClock>) -> Self {
        Self {
            fake: FakeBroker::new(clock),
            orders: Mutex::new(Some(Vec::new())),
            executions: Mutex::new(Vec::new()),
            order_reads: AtomicUsize::new(0),
            execution_reads: AtomicUsize::new(0),
        }
    }

    fn list(&self, orders: Vec<LiveOrder>) {
        *self.orders.lock().unwrap() = Some(orders);
    }

    fn fail_orders(&self) {
        *self.orders.lock().unwrap() = None;
    }

    fn fills(&self, executions: Vec<Execution>) {
        *self.executions.lock().unwrap() = executions;
    }

    fn order_reads(&self) -> usize {
        self.order_reads.load(Ordering::SeqCst)
    }

    fn execution_reads(&self) -> usize {
        self.execution_reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl BrokerReader for ScriptedBroker {
    fn backend_name(&self) -> &'static str {
        "scripted"
    }
    async fn session_status(&self) -> Result<SessionStatus, BrokerError> {
        self.fake.session_status().await
    }
    async fn keepalive(&self) -> Result<SessionStatus, BrokerError> {
        self.fake.keepalive().await
    }
    async fn accounts(&self) -> Result<Vec<Account>, BrokerError> {
        self.fake.accounts().await
    }
    async fn account_summary(&self, account: &AccountId) -> Result<AccountSummary, BrokerError> {
        self.fake.account_summary(account).await
    }
    async fn positions(&self, account: &AccountId) -> Result<Vec<Position>, BrokerError> {
        self.fake.positions(account).await
    }
    async fn search_contracts(&self, query: &ContractQuery) -> Result<Vec<Contract>, BrokerError> {
        self.fake.search_contracts(query).await
    }
    async fn contract(&self, contract_id: ContractId) -> Result<Contract, BrokerError> {
        self.fake.contract(contract_id).await
    }
    async fn quote_snapshot(&self, contract_id: ContractId) -> Result<Quote, BrokerError> {
        self.fake.quote_snapshot(contract_id).await
    }
    async fn historical_bars(&self, request: &BarsRequest) -> Result<BarSeries, BrokerError> {
        self.fake.historical_bars(request).await
    }
    async fn live_orders(&self, account: &AccountId) -> Result<Vec<LiveOrder>, BrokerError> {
        self.order_reads.fetch_add(1, Ordering::SeqCst);
        let listed = self.orders.lock().unwrap().clone();
        match listed {
            Some(orders) => Ok(orders
                .into_iter()
                .filter(|order| order.account_id == *account)
                .collect()),
            None => Err(BrokerError::Unavailable {
                detail: "scripted outage".into(),
            }),
        }
    }
    async fn executions(
        &self,
        account: &AccountId,
        _since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        self.execution_reads.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .executions
            .lock()
            .unwrap()
            .iter()
            .filter(|execution| execution.account_id == *account)
            .cloned()
            .collect())
    }
    async fn what_if(
        &self,
        account: &AccountId,
        legs: &[OrderIntent],
    ) -> Result<WhatIf, BrokerError> {
        self.fake.what_if(account, legs).await
    }
}

fn qty(raw: &str) -> Quantity {
    Quantity::parse(raw).unwrap()
}

/// `order_id` in `account` as the broker lists it.
fn listed(
    account: &str,
    order_id: &str,
    status: OrderStatus,
    filled: &str,
    client_order_id: Option<&str>,
) -> LiveOrder {
    LiveOrder {
        order_id: BrokerOrderId::parse(order_id).unwrap(),
        account_id: AccountId::parse(account).unwrap(),
        contract_id: ContractId::new(AAPL).unwrap(),
        symbol: "AAPL".into(),
        side: ReportedSide::Buy,
        order_type: OrderType::Limit,
        quantity: qty("10"),
        filled_quantity: qty(filled),
        limit_price: Price::parse("190").ok(),
        stop_price: None,
        time_in_force: TimeInForce::Day,
        status,
        updated_at: start(),
        client_order_id: client_order_id.map(str::to_owned),
        average_price: (filled != "0").then(|| Price::parse("189.5").unwrap()),
        reason: None,
    }
}

fn fill(order_id: &str, client_order_id: &str, quantity: &str, price: &str) -> Execution {
    Execution {
        execution_id: ExecutionId::parse(&format!("ex-{order_id}-{quantity}")).unwrap(),
        order_id: None,
        client_order_id: Some(client_order_id.into()),
        account_id: AccountId::parse(LIVE).unwrap(),
        contract_id: ContractId::new(AAPL).unwrap(),
        symbol: "AAPL".into(),
        side: OrderSide::Buy,
        quantity: qty(quantity),
        price: Price::parse(price).unwrap(),
        commission: Money::new(Decimal::ONE, Currency::parse("USD").unwrap()),
        executed_at: start(),
    }
}

struct Rec {
    gateway: Gateway,
    audit: Arc<MemoryAuditLog>,
    clock: Arc<FixedClock>,
    broker: Arc<ScriptedBroker>,
    writer: Arc<LiveDouble>,
    store: Arc<dyn WorkflowStore>,
}

fn rec_on(store: Arc<dyn WorkflowStore>, clock: Arc<FixedClock>) -> Rec {
    let secret = SecretBytes::new(vec![7; 32]);
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
    let broker = Arc::new(ScriptedBroker::new(clock.clone()));
    let writer = Arc::new(LiveDouble::new());
    let gateway = Gateway::builder(broker.clone())
        .clock(clock.clone())
        .key(secret)
        .audit_log(audit.clone())
        .scopes(Scope::ALL.iter().copied().collect())
        .workflow_store(store.clone())
        .live_writer(writer.clone())
        .live_trading(live_settings(5))
        .preview_policy(PreviewPolicy {
            allowed_asset_classes: [AssetClass::Stock].into_iter().collect(),
            max_quantity: Decimal::new(1_000, 0),
            max_notional: None,
            ..PreviewPolicy::default()
        })
        .build()
        .unwrap();
    Rec {
        gateway,
        audit,
        clock,
        broker,
        writer,
        store,
    }
}

fn rec() -> Rec {
    rec_on(
        Arc::new(MemoryWorkflowStore::new()),
        Arc::new(FixedClock::new(start())),
    )
}

impl Rec {
    /// Places a live limit buy of 10 AAPL under `key` (writes allowed first); returns the
    /// broker's order id and the account's reference.
    async fn place(&self, key: &str) -> (String, String) {
        self.gateway
            .kill_switch_allow(&operator(), "tested and reviewed")
            .await
            .unwrap();
        let preview = self
            .gateway
            .preview_order(
                &agent(),
                RawOrderPreview {
                    account: LIVE.into(),
                    contract_id: AAPL.to_string(),
                    side: "BUY".into(),
                    quantity: "10".into(),
                    order_type: "LMT".into(),
                    limit_price: Some("190".into()),
                    ..RawOrderPreview::default()
                },
            )
            .await
            .unwrap();
        let approval = self
            .gateway
            .create_approval(
                &operator(),
                RawApprovalCreate {
                    preview_id: preview.preview_id,
                    ttl_seconds: None,
                },
            )
            .await
            .unwrap()
            .approval_id;
        let placed = self
            .gateway
            .live_submit(&agent(), checked(LIVE, &approval, key))
            .await
            .unwrap();
        (placed.orders[0].order_id.clone(), placed.account_ref)
    }

    async fn pass(&self) -> ReconcileReport {
        self.gateway.reconcile_once().await.unwrap()
    }

    async fn backlog(&self) -> Vec<TrackedOrder> {
        self.store.order_backlog().await.unwrap()
    }

    /// The `order lifecycle transition` events, as (from, to) of their metadata.
    fn transitions(&self) -> Vec<(serde_json::Value, serde_json::Value)> {
        self.audit
            .records()
            .iter()
            .filter(|record| record.columns.operation == "order lifecycle transition")
            .map(|record| {
                let metadata: serde_json::Value =
                    serde_json::from_str(&record.columns.metadata).unwrap();
                (metadata["from"].clone(), metadata["to"].clone())
            })
            .collect()
    }

    fn operations(&self) -> Vec<String> {
        self.audit
            .records()
            .iter()
            .map(|record| record.columns.operation.clone())
            .collect()
    }
}

fn transition(from: &str, to: &str) -> (serde_json::Value, serde_json::Value) {
    (from.into(), to.into())
}

#[tokio::test]
async fn a_fill_in_two_steps_is_recorded_once_per_transition() {
    let rec = rec();
    let (order_id, account_ref) = rec.place("life-1").await;
    let backlog = rec.backlog().await;
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].state, LifecycleState::Submitted);
    assert_eq!(backlog[0].client_order_id.as_deref(), Some("life-1"));
    assert_eq!(backlog[0].approved_quantity, qty("10"));

    rec.broker.list(vec![listed(
        LIVE,
        &order_id,
        OrderStatus::Submitted,
        "0",
        Some("life-1"),
    )]);
    assert!(rec.pass().await.changes.is_empty());
    rec.broker.list(vec![listed(
        LIVE,
        &order_id,
        OrderStatus::Submitted,
        "4",
        Some("life-1"),
    )]);
    let partial = rec.pass().await;
    assert_eq!(partial.changes.len(), 1);
    assert_eq!(partial.changes[0].to, "partially_filled");
    assert_eq!(partial.changes[0].filled_quantity, "4");
    assert_eq!(partial.changes[0].average_price.as_deref(), Some("189.5"));
    assert_eq!(partial.changes[0].account_ref, account_ref);
    // The same report again changes nothing.
    assert!(rec.pass().await.changes.is_empty());
    rec.broker.list(vec![listed(
        LIVE,
        &order_id,
        OrderStatus::Filled,
        "10",
        Some("life-1"),
    )]);
    assert_eq!(rec.pass().await.changes[0].to, "filled");

    assert_eq!(
        rec.transitions(),
        [
            transition("submitted", "partially_filled"),
            transition("partially_filled", "filled"),
        ]
    );
    // Filled is terminal: it left the backlog, and a pass with nothing due calls no broker.
    assert!(rec.backlog().await.is_empty());
    let reads = rec.broker.order_reads();
    let idle = rec.pass().await;
    assert_eq!((idle.backlog, idle.polled), (0, 0));
    assert_eq!(rec.broker.order_reads(), reads);
    // Four passes, one orders read each; nothing went missing, so no executions read.
    assert_eq!(reads, 4);
    assert_eq!(rec.broker.execution_reads(), 0);

    // The durable history holds the whole lifecycle.
    let history = rec
        .store
        .order_history(&HistoryQuery {
            account_ref: Some(account_ref),
            since: None,
            state: None,
            limit: 10,
        })
        .await
        .unwrap();
    let states: Vec<(Option<LifecycleState>, LifecycleState)> = history[0]
        .events
        .iter()
        .map(|event| (event.from, event.to))
        .collect();
    assert_eq!(
        states,
        [
            (None, LifecycleState::Submitted),
            (
                Some(LifecycleState::Submitted),
                LifecycleState::PartiallyFilled
            ),
            (
                Some(LifecycleState::PartiallyFilled),
                LifecycleState::Filled
            ),
        ]
    );
    // No audit event names the raw account id.
    for record in rec.audit.records() {
        assert!(
            !record.columns.metadata.contains(LIVE),
            "{}",
            record.columns.metadata
        );
    }
}

#[tokio::test]
async fn cancelled_expired_and_rejected_orders_leave_the_backlog() {
    let rec = rec();
    let (cancelled, _) = rec.place("end-1").await;
    let (expired, _) = rec.place("end-2").await;
    let (rejected, _) = rec.place("end-3").await;
    let mut refused = listed(LIVE, &rejected, OrderStatus::Inactive, "0", Some("end-3"));
    refused.reason = Some("insufficient buying power".into());
    rec.broker.list(vec![
        listed(LIVE, &cancelled, OrderStatus::Cancelled, "0", Some("end-1")),
        listed(LIVE, &expired, OrderStatus::Inactive, "0", Some("end-2")),
        refused,
    ]);
    let report = rec.pass().await;
    let outcomes: Vec<(String, String, Option<String>)> = report
        .changes
        .iter()
        .map(|change| {
            (
                change.order_id.clone(),
                change.to.clone(),
                change.reason.clone(),
            )
        })
        .collect();
    for expected in [
        (cancelled, "cancelled".to_owned(), None),
        (expired, "expired".to_owned(), None),
        (
            rejected,
            "rejected".to_owned(),
            Some("insufficient buying power".to_owned()),
        ),
    ] {
        assert!(outcomes.contains(&expected), "{outcomes:?}");
    }
    assert_eq!(rec.transitions().len(), 3);
    assert!(rec.backlog().await.is_empty());
    // One orders read for the three orders of the one account.
    assert_eq!(rec.broker.order_reads(), 1);
}

#[tokio::test]
async fn a_vanished_order_needs_review_after_the_grace_and_stays_in_the_backlog() {
    let rec = rec();
    let (order_id, _) = rec.place("gone-1").await;
    // The broker lists nothing.
    assert!(rec.pass().await.changes.is_empty());
    assert_eq!(rec.broker.execution_reads(), 1);
    rec.clock.advance(Duration::seconds(299));
    assert!(rec.pass().await.changes.is_empty());
    assert_eq!(rec.backlog().await[0].state, LifecycleState::Submitted);
    rec.clock.advance(Duration::seconds(1));
    let report = rec.pass().await;
    assert_eq!(report.changes.len(), 1);
    assert_eq!(report.changes[0].order_id, order_id);
    assert_eq!(report.changes[0].to, "needs_review");
    assert!(report.changes[0].reason.is_some());
    // Not dropped: still in the backlog, still polled.
    let backlog = rec.backlog().await;
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].state, LifecycleState::NeedsReview);
    let reads = rec.broker.order_reads();
    assert!(rec.pass().await.changes.is_empty());
    assert_eq!(rec.broker.order_reads(), reads + 1);
    assert_eq!(rec.transitions(), [transition("submitted", "needs_review")]);
}

#[tokio::test]
async fn a_vanished_order_whose_executions_fill_it_is_filled() {
    let rec = rec();
    let (order_id, _) = rec.place("gone-2").await;
    rec.broker.fills(vec![
        fill(&order_id, "gone-2", "4", "189"),
        fill(&order_id, "gone-2", "6", "190"),
        // Another order's fill counts for nothing.
        fill("999", "someone-else", "5", "100"),
    ]);
    let report = rec.pass().await;
    assert_eq!(report.changes.len(), 1);
    assert_eq!(report.changes[0].to, "filled");
    assert_eq!(report.changes[0].filled_quantity, "10");
    assert_eq!(report.changes[0].average_price.as_deref(), Some("189.6"));
    assert!(rec.backlog().await.is_empty());
}

#[tokio::test]
async fn an_unreadable_status_backs_off_instead_of_retrying_at_once() {
    let rec = rec();
    let (_, account_ref) = rec.place("slow-1").await;
    rec.broker.fail_orders();
    let report = rec.pass().await;
    assert_eq!(report.unreadable_accounts, [account_ref]);
    assert!(report.changes.is_empty());
    assert_eq!(rec.broker.order_reads(), 1);
    // Passes before the back-off ends do not call the broker.
    for _ in 0..5 {
        assert_eq!(rec.pass().await.polled, 0);
    }
    rec.clock.advance(Duration::seconds(59));
    rec.pass().await;
    assert_eq!(rec.broker.order_reads(), 1);
    rec.clock.advance(Duration::seconds(1));
    rec.pass().await;
    assert_eq!(rec.broker.order_reads(), 2);
    let polling = rec.backlog().await[0].polling.clone();
    assert_eq!(polling.failures, 2);
    assert_eq!(
        polling.next_poll_at,
        Some(start() + Duration::seconds(60 + 120))
    );
    assert!(rec.transitions().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_reconciler_loop_backs_off_on_paused_time_and_stops_when_serving_ends() {
    let rec = rec();
    rec.place("loop-1").await;
    rec.broker.fail_orders();
    let clock = rec.clock.clone();
    // The injected clock follows tokio's paused time, half a tick ahead of each pass.
    let serving = async {
        tokio::time::sleep(StdDuration::from_secs(15)).await;
        for _ in 0..30 {
            clock.advance(Duration::seconds(30));
            tokio::time::sleep(StdDuration::from_secs(30)).await;
        }
        "served"
    };
    let served = rec.gateway.serve_with_reconciler(serving).await;
    assert_eq!(served, "served");
    // 31 passes over 15 minutes at a 30 s interval, but the order is read only when its
    // back-off ends: at 0, 60, 180, 420 and 900 s.
    assert_eq!(rec.broker.order_reads(), 5);
    // Serving ended: the loop is gone.
    tokio::time::sleep(StdDuration::from_secs(3_600)).await;
    rec.clock.advance(Duration::hours(1));
    assert_eq!(rec.broker.order_reads(), 5);
}

#[tokio::test(start_paused = true)]
async fn the_reconciler_loop_records_a_fill_while_serving() {
    let rec = rec();
    let (order_id, _) = rec.place("loop-2").await;
    let broker = rec.broker.clone();
    let serving = async {
        tokio::time::sleep(StdDuration::from_secs(45)).await;
        broker.list(vec![listed(
            LIVE,
            &order_id,
            OrderStatus::Filled,
            "10",
            Some("loop-2"),
        )]);
        tokio::time::sleep(StdDuration::from_secs(30)).await;
    };
    rec.gateway.serve_with_reconciler(serving).await;
    assert_eq!(rec.transitions(), [transition("submitted", "filled")]);
    assert!(rec.backlog().await.is_empty());
}

/// A SQLite trigger that makes tracking fail, as a full disk or a locked file would.
fn break_tracking(path: &Path, broken: bool) {
    let connection = rusqlite::Connection::open(path).unwrap();
    if broken {
        connection
            .execute_batch(
                "CREATE TRIGGER no_tracking BEFORE INSERT ON tracked_orders \
                 BEGIN SELECT RAISE(ABORT, 'tracking is broken'); END;",
            )
            .unwrap();
    } else {
        connection
            .execute_batch("DROP TRIGGER no_tracking;")
            .unwrap();
    }
}

#[tokio::test]
async fn a_restart_rebuilds_the_backlog_from_completed_writes_never_tracked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workflow.sqlite3");
    let clock = Arc::new(FixedClock::new(start()));
    let first = rec_on(
        Arc::new(SqliteWorkflowStore::open(&path).unwrap()),
        clock.clone(),
    );
    first.gateway.start().await;
    break_tracking(&path, true);
    // Tracking fails: the order is placed all the same, and the failure is audited.
    let (order_id, account_ref) = first.place("restart-1").await;
    assert_eq!(first.writer.writes(), 1);
    assert!(
        first
            .operations()
            .contains(&"order tracking failed".to_owned())
    );
    assert!(first.backlog().await.is_empty());
    drop(first);
    break_tracking(&path, false);

    let second = rec_on(Arc::new(SqliteWorkflowStore::open(&path).unwrap()), clock);
    second.gateway.start().await;
    let backlog = second.backlog().await;
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].key.order_id.as_str(), order_id);
    assert_eq!(backlog[0].key.account_ref, account_ref);
    assert_eq!(backlog[0].key.mode, TradingMode::Live);
    assert_eq!(backlog[0].state, LifecycleState::Submitted);
    assert_eq!(backlog[0].client_order_id.as_deref(), Some("restart-1"));
    assert_eq!(backlog[0].symbol, "AAPL");
    assert!(
        second
            .operations()
            .contains(&"order backlog rebuild".to_owned())
    );
    // The rebuilt order is reconciled like any.
    second.broker.list(vec![listed(
        LIVE,
        &order_id,
        OrderStatus::Filled,
        "10",
        Some("restart-1"),
    )]);
    assert_eq!(second.pass().await.changes[0].to, "filled");
    drop(second);

    // A third start finds nothing left to rebuild.
    let third = rec_on(
        Arc::new(SqliteWorkflowStore::open(&path).unwrap()),
        Arc::new(FixedClock::new(start())),
    );
    third.gateway.start().await;
    assert!(third.backlog().await.is_empty());
    assert!(
        !third
            .operations()
            .contains(&"order backlog rebuild".to_owned())
    );
}

/// The next live submit is refused by the halted kill switch before the writer.
async fn assert_halted_with(rec: &Rec, trigger: &str) {
    let status = rec.gateway.kill_switch_status(&operator()).await.unwrap();
    assert!(!status.writes_allowed);
    assert_eq!(status.trigger.as_deref(), Some(trigger));
    let writes = rec.writer.writes();
    let preview = rec
        .gateway
        .preview_order(
            &agent(),
            RawOrderPreview {
                account: LIVE.into(),
                contract_id: AAPL.to_string(),
                side: "BUY".into(),
                quantity: "1".into(),
                order_type: "LMT".into(),
                limit_price: Some("190".into()),
                ..RawOrderPreview::default()
            },
        )
        .await
        .unwrap();
    let approval = rec
        .gateway
        .create_approval(
            &operator(),
            RawApprovalCreate {
                preview_id: preview.preview_id,
                ttl_seconds: None,
            },
        )
        .await
        .unwrap()
        .approval_id;
    let refused = rec
        .gateway
        .live_submit(&agent(), checked(LIVE, &approval, "after-halt"))
        .await
        .unwrap_err();
    assert_eq!(refused.code().as_str(), "KILL_SWITCH_HALTED");
    assert_eq!(rec.writer.writes(), writes);
    assert!(
        rec.operations()
            .contains(&"kill-switch auto-halt".to_owned())
    );
}

#[tokio::test]
async fn a_live_order_with_a_client_order_id_never_issued_halts_live_writes() {
    let rec = rec();
    let (order_id, _) = rec.place("ours-1").await;
    rec.broker.list(vec![
        listed(LIVE, &order_id, OrderStatus::Submitted, "0", Some("ours-1")),
        // Placed by hand in TWS: no client order id, no anomaly.
        listed(LIVE, "5550001", OrderStatus::Submitted, "0", None),
        listed(
            LIVE,
            "5550002",
            OrderStatus::Submitted,
            "0",
            Some("not-ours-7"),
        ),
    ]);
    let report = rec.pass().await;
    assert_eq!(report.anomalies.len(), 1, "{:?}", report.anomalies);
    assert_eq!(report.anomalies[0].kind, "unknown_client_order_id");
    assert_eq!(report.anomalies[0].order_id, "5550002");
    assert!(report.anomalies[0].halted);
    assert!(!report.anomalies[0].detail.contains(LIVE));
    assert_halted_with(&rec, "unknown_client_order_id").await;
}

#[tokio::test]
async fn an_overfill_halts_live_writes() {
    let rec = rec();
    let (order_id, _) = rec.place("over-1").await;
    rec.broker.list(vec![listed(
        LIVE,
        &order_id,
        OrderStatus::Filled,
        "12",
        Some("over-1"),
    )]);
    let report = rec.pass().await;
    assert_eq!(report.changes[0].to, "filled");
    assert_eq!(report.anomalies.len(), 1);
    assert_eq!(report.anomalies[0].kind, "overfill");
    assert!(report.anomalies[0].halted);
    assert_halted_with(&rec, "overfill").await;
}

#[tokio::test]
async fn a_paper_overfill_is_audited_and_halts_nothing() {
    let rec = rec();
    rec.gateway
        .kill_switch_allow(&operator(), "tested and reviewed")
        .await
        .unwrap();
    let accounts = rec.gateway.accounts().await.unwrap();
    let paper_ref = accounts
        .accounts
        .iter()
        .find(|account| account.mode == "paper")
        .unwrap()
        .account_ref
        .clone();
    let (order, first) = tracked_paper(&paper_ref, "lc-1", "paper-1");
    rec.store.track_order(&order, &first).await.unwrap();
    rec.broker.list(vec![listed(
        PAPER,
        "lc-1",
        OrderStatus::Filled,
        "12",
        // Paper orders are not checked for client order ids.
        Some("never-issued"),
    )]);
    let report = rec.pass().await;
    assert_eq!(report.changes[0].mode, "paper");
    assert_eq!(report.anomalies.len(), 1);
    assert_eq!(report.anomalies[0].kind, "overfill");
    assert!(!report.anomalies[0].halted);
    assert!(
        rec.operations()
            .contains(&"order lifecycle anomaly".to_owned())
    );
    let status = rec.gateway.kill_switch_status(&operator()).await.unwrap();
    assert!(status.writes_allowed);
}

// -------------------------------------------------------------------------------------------
// Pacing against the Client Portal adapter
// -------------------------------------------------------------------------------------------

/// A tracked paper order in `account_ref`, submitted and never polled.
fn tracked_paper(
    account_ref: &str,
    order_id: &str,
    client_order_id: &str,
) -> (TrackedOrder, LifecycleEvent) {
    let key = TrackedOrderKey {
        mode: TradingMode::Paper,
        account_ref: account_ref.to_owned(),
        order_id: BrokerOrderId::parse(order_id).unwrap(),
    };
    let order = TrackedOrder {
        key: key.clone(),
        client_order_id: Some(client_order_id.to_owned()),
        idempotency_key: IdempotencyKey::parse(client_order_id).unwrap(),
        operation: "paper_submit".into(),
        leg: "order".into(),
        approval_id: None,
        preview_id: None,
        contract_id: ContractId::new(AAPL).unwrap(),
        symbol: "AAPL".into(),
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        approved_quantity: qty("10"),
        state: LifecycleState::Submitted,
        filled_quantity: qty("0"),
        average_price: None,
        placed_at: client_portal::now(),
        updated_at: client_portal::now(),
        polling: PollState::default(),
    };
    let first = LifecycleEvent {
        key,
        from: None,
        to: LifecycleState::Submitted,
        filled_quantity: qty("0"),
        average_price: None,
        reason: None,
        at: client_portal::now(),
    };
    (order, first)
}

/// Paused time does not mix with real sockets: this runs in real time (about 10 s) under the
/// adapter's documented pacing, and asserts on the double's clock only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_pending_orders_take_one_orders_request_per_pass_within_the_pacing() {
    let server = MockServer::start().await;
    client_portal::prime(&server).await;
    let double = OrdersDouble::new(200);
    double.mount(&server).await;
    let clock = Arc::new(FixedClock::new(client_portal::now()));
    let secret = SecretBytes::new(vec![7; 32]);
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
    let store: Arc<dyn WorkflowStore> = Arc::new(MemoryWorkflowStore::new());
    let broker = Arc::new(client_portal::broker_with(client_portal::config(&server)));
    let gateway = Gateway::builder(broker)
        .clock(clock.clone())
        .key(secret)
        .audit_log(audit.clone())
        .workflow_store(store.clone())
        .build()
        .unwrap();
    let paper_ref = gateway
        .accounts()
        .await
        .unwrap()
        .accounts
        .iter()
        .find(|account| account.display.ends_with("4567"))
        .unwrap()
        .account_ref
        .clone();
    // The 200 listed orders, and 5 more the list no longer shows: each pass also reads the
    // fills, once.
    for index in 0..205 {
        let (order, first) = tracked_paper(
            &paper_ref,
            &orders_double::order_id(index),
            &double.client_order_id(index),
        );
        store.track_order(&order, &first).await.unwrap();
    }

    for _ in 0..3 {
        let report = gateway.reconcile_once().await.unwrap();
        assert_eq!((report.backlog, report.polled), (205, 205));
        assert!(report.unreadable_accounts.is_empty(), "{report:?}");
        assert!(report.changes.is_empty());
        clock.advance(Duration::seconds(30));
    }

    for endpoint in [orders_double::ORDERS_PATH, orders_double::TRADES_PATH] {
        let times = double.arrival_times(endpoint);
        assert_eq!(times.len(), 3, "{endpoint}: one request per pass");
        let gap = pacing::shortest_gap(&times).unwrap();
        assert!(
            gap >= orders_double::DOCUMENTED_SPACING,
            "{endpoint}: {gap:?}"
        );
    }
    double.assert_documented_spacing();
}

#[tokio::test]
async fn each_leg_of_a_live_bracket_is_tracked_with_its_own_quantity_and_type() {
    let rec = rec();
    rec.gateway
        .kill_switch_allow(&operator(), "tested and reviewed")
        .await
        .unwrap();
    let preview = rec
        .gateway
        .preview_bracket(
            &agent(),
            RawBracketPreview {
                account: LIVE.into(),
                contract_id: AAPL.to_string(),
                side: "BUY".into(),
                quantity: "5".into(),
                entry_price: "190".into(),
                take_profit_price: "200".into(),
                stop_loss_price: "180".into(),
                time_in_force: None,
            },
        )
        .await
        .unwrap();
    let approval = rec
        .gateway
        .create_approval(
            &operator(),
            RawApprovalCreate {
                preview_id: preview.preview_id,
                ttl_seconds: None,
            },
        )
        .await
        .unwrap()
        .approval_id;
    let placed = rec
        .gateway
        .live_bracket_submit(&agent(), checked(LIVE, &approval, "bracket-1"))
        .await
        .unwrap();
    assert_eq!(placed.orders.len(), 3);
    let backlog = rec.backlog().await;
    assert_eq!(backlog.len(), 3);
    for leg in &placed.orders {
        let tracked = backlog
            .iter()
            .find(|order| order.key.order_id.as_str() == leg.order_id)
            .unwrap();
        assert_eq!(tracked.leg, leg.leg);
        assert_eq!(tracked.approved_quantity, qty("5"));
        assert_eq!(tracked.operation, "live_bracket_submit");
        assert_eq!(tracked.client_order_id.as_deref(), Some("bracket-1"));
        let expected_type = match leg.leg.as_str() {
            "stop_loss" => OrderType::Stop,
            _ => OrderType::Limit,
        };
        assert_eq!(tracked.order_type, expected_type, "{}", leg.leg);
        let expected_side = match leg.leg.as_str() {
            "entry" => OrderSide::Buy,
            _ => OrderSide::Sell,
        };
        assert_eq!(tracked.side, expected_side, "{}", leg.leg);
    }
}

#[tokio::test]
async fn a_live_modify_refreshes_the_tracked_order_and_keeps_its_client_order_id() {
    let rec = rec();
    let (order_id, _) = rec.place("to-modify").await;
    let preview = rec
        .gateway
        .preview_order(
            &agent(),
            RawOrderPreview {
                account: LIVE.into(),
                contract_id: AAPL.to_string(),
                side: "BUY".into(),
                quantity: "6".into(),
                order_type: "LMT".into(),
                limit_price: Some("190.5".into()),
                modify_order_id: Some(order_id.clone()),
                ..RawOrderPreview::default()
            },
        )
        .await
        .unwrap();
    let approval = rec
        .gateway
        .create_approval(
            &operator(),
            RawApprovalCreate {
                preview_id: preview.preview_id,
                ttl_seconds: None,
            },
        )
        .await
        .unwrap()
        .approval_id;
    let mut modify = checked(LIVE, &approval, "modify-1");
    modify.order_id = Some(order_id.clone());
    rec.gateway.live_modify(&agent(), modify).await.unwrap();
    let backlog = rec.backlog().await;
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].key.order_id.as_str(), order_id);
    assert_eq!(backlog[0].approved_quantity, qty("6"));
    assert_eq!(backlog[0].idempotency_key.as_str(), "modify-1");
    assert_eq!(backlog[0].operation, "live_modify");
    assert_eq!(backlog[0].client_order_id.as_deref(), Some("to-modify"));
    assert_eq!(backlog[0].state, LifecycleState::Submitted);
    // Filling the old quantity is now an overfill.
    rec.broker.list(vec![listed(
        LIVE,
        &order_id,
        OrderStatus::Filled,
        "10",
        Some("to-modify"),
    )]);
    let report = rec.pass().await;
    assert_eq!(report.anomalies.len(), 1);
    assert_eq!(report.anomalies[0].kind, "overfill");
}

// -------------------------------------------------------------------------------------------
// The fake world: one local book behind the fake broker and the live writer
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_fake_worlds_order_moves_through_its_lifecycle_and_a_forgotten_one_is_filled_by_its_executions()
 {
    let clock = Arc::new(FixedClock::new(start()));
    let book = LocalOrderBook::new();
    let broker = Arc::new(FakeBroker::new(clock.clone()).with_local_orders(Arc::new(book.clone())));
    let secret = SecretBytes::new(vec![7; 32]);
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
    let store: Arc<dyn WorkflowStore> = Arc::new(MemoryWorkflowStore::new());
    let gateway = Gateway::builder(broker)
        .clock(clock.clone())
        .key(secret)
        .audit_log(audit.clone())
        .scopes(Scope::ALL.iter().copied().collect())
        .workflow_store(store.clone())
        .live_writer(Arc::new(LocalCandidateWriter::with_book_for_mode(
            book.clone(),
            WriterMode::Live,
        )))
        .live_trading(live_settings(5))
        .preview_policy(PreviewPolicy {
            allowed_asset_classes: [AssetClass::Stock].into_iter().collect(),
            max_quantity: Decimal::new(1_000, 0),
            max_notional: None,
            ..PreviewPolicy::default()
        })
        .build()
        .unwrap();
    let rec = Rec {
        gateway,
        audit,
        clock,
        // Not used here: the fake world is the broker and the writer.
        broker: Arc::new(ScriptedBroker::new(Arc::new(FixedClock::new(start())))),
        writer: Arc::new(LiveDouble::new()),
        store,
    };
    let (first, _) = rec.place("world-1").await;
    let first = BrokerOrderId::parse(&first).unwrap();
    book.fill(&first, qty("4"), Price::parse("189").unwrap())
        .unwrap();
    assert_eq!(rec.pass().await.changes[0].to, "partially_filled");
    book.fill(&first, qty("6"), Price::parse("190").unwrap())
        .unwrap();
    let filled = rec.pass().await;
    assert_eq!(filled.changes[0].to, "filled");
    assert_eq!(filled.changes[0].average_price.as_deref(), Some("189.6"));

    let (second, _) = rec.place("world-2").await;
    let second = BrokerOrderId::parse(&second).unwrap();
    book.fill(&second, qty("10"), Price::parse("190").unwrap())
        .unwrap();
    book.forget(&second).unwrap();
    let report = rec.pass().await;
    assert_eq!(report.changes.len(), 1);
    assert_eq!(report.changes[0].to, "filled");
    assert_eq!(report.changes[0].filled_quantity, "10");
    assert!(rec.backlog().await.is_empty());
    assert_eq!(
        rec.transitions(),
        [
            transition("submitted", "partially_filled"),
            transition("partially_filled", "filled"),
            transition("submitted", "filled"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn while_serving_an_unknown_client_order_id_halts_once_and_an_operator_can_allow_again() {
    let rec = rec();
    let (order_id, _) = rec.place("once-1").await;
    rec.broker.list(vec![
        listed(LIVE, &order_id, OrderStatus::Submitted, "0", Some("once-1")),
        listed(
            LIVE,
            "5550003",
            OrderStatus::Filled,
            "10",
            Some("not-ours-8"),
        ),
    ]);
    let gateway = rec.gateway.clone();
    let serving = async {
        tokio::time::sleep(StdDuration::from_secs(45)).await;
        gateway
            .kill_switch_allow(&operator(), "the foreign order was reviewed")
            .await
            .unwrap();
        tokio::time::sleep(StdDuration::from_secs(120)).await;
    };
    rec.gateway.serve_with_reconciler(serving).await;
    // Six passes saw the order; only the first halted.
    assert_eq!(rec.broker.order_reads(), 6);
    let halts = rec
        .operations()
        .iter()
        .filter(|operation| *operation == "kill-switch auto-halt")
        .count();
    assert_eq!(halts, 1);
    let status = rec.gateway.kill_switch_status(&operator()).await.unwrap();
    assert!(status.writes_allowed);
}
