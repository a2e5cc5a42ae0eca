//! The live write path through the library: every runtime gate refused with its code and
//! audited, the writer never called when a gate fails, the kill switch, the durable counters,
//! exactly-once and crash recovery. The live writer is a counting double over the local book.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::local_candidate::LocalCandidateWriter;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::GatewayError;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::live_orders::RawLiveWrite;
use ibkr_agent_gateway::app::live_settings::{LiveTradingSettings, LiveWriterKind};
use ibkr_agent_gateway::app::order_input::RawOrderPreview;
use ibkr_agent_gateway::app::order_views::PaperOrderView;
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::ids::{AccountId, BrokerOrderId, IdempotencyKey};
use ibkr_agent_gateway::domain::instrument::AssetClass;
use ibkr_agent_gateway::domain::money::Currency;
use ibkr_agent_gateway::domain::order_intent::{BracketIntent, OrderIntent};
use ibkr_agent_gateway::domain::preview::PreviewPolicy;
use ibkr_agent_gateway::domain::risk_policy::{RiskPolicy, RiskPolicyParts};
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::order_writer::{
    CancelAck, OrderWriter, PlacedOrder, WorkingOrder, WriteError, WriterMode,
};
use ibkr_agent_gateway::ports::workflow_store::WorkflowStore;
use rust_decimal::Decimal;
use serde_json::Value;

pub(crate) const LIVE: &str = "U7654321";
const PAPER: &str = "DU1234567";
const AAPL: &str = "265598";

/// A live writer that counts every call that would reach the broker.
pub(crate) struct LiveDouble {
    inner: LocalCandidateWriter,
    pub(crate) writes: AtomicUsize,
    /// Submits reach the book, then the answer is lost.
    pub(crate) ambiguous: AtomicBool,
}

impl LiveDouble {
    pub(crate) fn new() -> Self {
        Self {
            inner: LocalCandidateWriter::new(),
            writes: AtomicUsize::new(0),
            ambiguous: AtomicBool::new(false),
        }
    }

    pub(crate) fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl OrderWriter for LiveDouble {
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
        self.writes.fetch_add(1, Ordering::SeqCst);
        let placed = self.inner.submit(order, client_order_id).await;
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
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.submit_bracket(bracket, client_order_id).await
    }
    async fn modify(
        &self,
        order_id: &BrokerOrderId,
        replacement: &OrderIntent,
    ) -> Result<PlacedOrder, WriteError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.modify(order_id, replacement).await
    }
    async fn cancel(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<CancelAck, WriteError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
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

pub(crate) fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z")
        .unwrap()
        .into()
}

/// A policy for AAPL stock: at most 10,000 USD and 100 shares an order, `per_window` orders a
/// minute, 20 orders and 50,000 USD a day, a 5 % collar, quotes at most 60 s old.
pub(crate) fn policy(per_window: u32) -> RiskPolicy {
    RiskPolicy::parse(RiskPolicyParts {
        currency: Currency::parse("USD").unwrap(),
        max_notional: Decimal::new(10_000, 0),
        max_quantity: Decimal::new(100, 0),
        allowed_symbols: vec!["AAPL".into()],
        allowed_asset_classes: vec![AssetClass::Stock],
        frequency_max_orders: per_window,
        frequency_window_seconds: 60,
        session_max_orders: 20,
        session_max_notional: Decimal::new(50_000, 0),
        max_price_deviation_bps: 500,
        max_quote_age_seconds: 60,
    })
    .unwrap()
}

pub(crate) fn live_settings(per_window: u32) -> LiveTradingSettings {
    LiveTradingSettings {
        enabled: true,
        safety_enabled: true,
        allowed_accounts: [AccountId::parse(LIVE).unwrap()].into_iter().collect(),
        risk_policy_id: Some("main".into()),
        policies: [("main".to_owned(), policy(per_window))]
            .into_iter()
            .collect(),
        checklist_acknowledged: true,
        agent_approvals_allowed: false,
        writer: LiveWriterKind::Refusing,
        session_time_zone: chrono_tz::America::New_York,
        ..LiveTradingSettings::default()
    }
}

pub(crate) struct Live {
    pub(crate) gateway: Gateway,
    pub(crate) audit: Arc<MemoryAuditLog>,
    pub(crate) clock: Arc<FixedClock>,
    pub(crate) writer: Arc<LiveDouble>,
}

pub(crate) struct LiveOptions {
    pub(crate) settings: LiveTradingSettings,
    pub(crate) scopes: ScopeSet,
    pub(crate) store: Arc<dyn WorkflowStore>,
    pub(crate) writer: Arc<LiveDouble>,
    pub(crate) clock: Arc<FixedClock>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            settings: live_settings(5),
            scopes: Scope::ALL.iter().copied().collect(),
            store: Arc::new(MemoryWorkflowStore::new()),
            writer: Arc::new(LiveDouble::new()),
            clock: Arc::new(FixedClock::new(start())),
        }
    }
}

pub(crate) fn live(options: LiveOptions) -> Live {
    let secret = SecretBytes::new(vec![7; 32]);
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(options.clock.clone())))
        .clock(options.clock.clone())
        .key(secret)
        .audit_log(audit.clone())
        .scopes(options.scopes)
        .workflow_store(options.store.clone())
        .live_writer(options.writer.clone())
        .live_trading(options.settings)
        // A wide preview policy, so the live policy is what judges.
        .preview_policy(PreviewPolicy {
            allowed_asset_classes: [AssetClass::Stock, AssetClass::Future]
                .into_iter()
                .collect(),
            max_quantity: Decimal::new(1_000, 0),
            max_notional: None,
            ..PreviewPolicy::default()
        })
        .build()
        .unwrap();
    Live {
        gateway,
        audit,
        clock: options.clock,
        writer: options.writer,
    }
}

pub(crate) fn agent() -> CallContext {
    CallContext::mcp_stdio()
}

pub(crate) fn operator() -> CallContext {
    CallContext::sdk()
}

fn limit_buy(account: &str, quantity: &str, price: &str) -> RawOrderPreview {
    RawOrderPreview {
        account: account.into(),
        contract_id: AAPL.into(),
        side: "BUY".into(),
        quantity: quantity.into(),
        order_type: "LMT".into(),
        limit_price: Some(price.into()),
        ..RawOrderPreview::default()
    }
}

/// Every checklist item acknowledged.
pub(crate) fn checked(account: &str, approval_id: &str, key: &str) -> RawLiveWrite {
    RawLiveWrite {
        account: account.into(),
        approval_id: Some(approval_id.into()),
        order_id: None,
        idempotency_key: key.into(),
        paper_trading_validated: true,
        approvals_reviewed: true,
        limits_reviewed: true,
        kill_switch_tested: true,
        incident_runbook_reviewed: true,
    }
}

fn codes_of(error: &GatewayError) -> Vec<String> {
    let document = error.to_json();
    match document["error"]["details"]["failed_rules"].as_array() {
        Some(rules) => rules
            .iter()
            .map(|rule| rule["code"].as_str().unwrap().to_owned())
            .collect(),
        None => vec![error.code().as_str().to_owned()],
    }
}

impl Live {
    /// Previews (as the agent) an order in `account` and has `approver` approve it.
    pub(crate) async fn approved_by(
        &self,
        approver: &CallContext,
        account: &str,
        quantity: &str,
        price: &str,
    ) -> String {
        let preview = self
            .gateway
            .preview_order(&agent(), limit_buy(account, quantity, price))
            .await
            .unwrap();
        self.gateway
            .create_approval(
                approver,
                RawApprovalCreate {
                    preview_id: preview.preview_id,
                    ttl_seconds: None,
                },
            )
            .await
            .unwrap()
            .approval_id
    }

    pub(crate) async fn approved(&self, quantity: &str, price: &str) -> String {
        self.approved_by(&operator(), LIVE, quantity, price).await
    }

    pub(crate) async fn allow_writes(&self) {
        self.gateway
            .kill_switch_allow(&operator(), "tested and reviewed")
            .await
            .unwrap();
    }

    pub(crate) async fn submit(&self, raw: RawLiveWrite) -> Result<PaperOrderView, GatewayError> {
        self.gateway.live_submit(&agent(), raw).await
    }

    /// The last audit event's operation and code.
    fn last_event(&self) -> (String, Option<String>) {
        let records = self.audit.records();
        let last = records.last().unwrap();
        (
            last.columns.operation.clone(),
            last.columns.error_code.clone(),
        )
    }
}

#[tokio::test]
async fn an_allowed_live_submit_within_every_gate_is_placed_once_and_replays() {
    let live = live(LiveOptions::default());
    live.allow_writes().await;
    let approval = live.approved("10", "190").await;
    let placed = live
        .submit(checked(LIVE, &approval, "live-1"))
        .await
        .unwrap();
    assert_eq!(placed.outcome, "accepted");
    assert_eq!(placed.writer, "live_double");
    assert_eq!(placed.operation, "submit");
    let replay = live
        .submit(checked(LIVE, &approval, "live-1"))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.orders, placed.orders);
    assert_eq!(live.writer.writes(), 1);
    let operations: Vec<String> = live
        .audit
        .records()
        .iter()
        .map(|record| record.columns.operation.clone())
        .collect();
    for expected in [
        "live order intent",
        "approval consumed",
        "live order submit",
    ] {
        assert!(
            operations.iter().any(|operation| operation == expected),
            "{operations:?}"
        );
    }
}

#[tokio::test]
async fn a_fresh_database_is_halted_until_an_operator_allows_writes() {
    let live = live(LiveOptions::default());
    let status = live.gateway.kill_switch_status(&agent()).await.unwrap();
    assert!(!status.writes_allowed);
    assert_eq!(status.state, "halted");
    let approval = live.approved("10", "190").await;
    let refused = live
        .submit(checked(LIVE, &approval, "k1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code().as_str(), "KILL_SWITCH_HALTED");
    assert_eq!(live.last_event().1.as_deref(), Some("KILL_SWITCH_HALTED"));
    // An agent may halt, never allow.
    let forbidden = live
        .gateway
        .kill_switch_allow(&agent(), "let me trade")
        .await
        .unwrap_err();
    assert_eq!(forbidden.code().as_str(), "KILL_SWITCH_ALLOW_FORBIDDEN");
    assert!(
        !live
            .gateway
            .kill_switch_status(&agent())
            .await
            .unwrap()
            .writes_allowed
    );
    live.allow_writes().await;
    let allowed = live.gateway.kill_switch_status(&agent()).await.unwrap();
    assert!(allowed.writes_allowed);
    assert_eq!(allowed.changed_by, "operator");
    // The refused request did not spend its approval: the same approval now places the order.
    live.submit(checked(LIVE, &approval, "k2")).await.unwrap();
    let halted = live
        .gateway
        .kill_switch_halt(&agent(), "something looks wrong")
        .await
        .unwrap();
    assert!(!halted.writes_allowed);
    assert_eq!(halted.changed_by, "agent");
    let second = live.approved("10", "190").await;
    let refused = live.submit(checked(LIVE, &second, "k3")).await.unwrap_err();
    assert_eq!(refused.code().as_str(), "KILL_SWITCH_HALTED");
    assert_eq!(live.writer.writes(), 1);
    let operations: Vec<String> = live
        .audit
        .records()
        .iter()
        .map(|record| record.columns.operation.clone())
        .collect();
    for expected in [
        "kill-switch allow intent",
        "kill-switch allow",
        "kill-switch halt",
    ] {
        assert!(
            operations.iter().any(|operation| operation == expected),
            "{operations:?}"
        );
    }
}

#[tokio::test]
async fn each_runtime_gate_refuses_with_its_code_before_the_writer() {
    // Live trading off.
    let off = live(LiveOptions {
        settings: LiveTradingSettings {
            safety_enabled: false,
            enabled: false,
            ..live_settings(5)
        },
        ..LiveOptions::default()
    });
    let error = off
        .submit(checked(LIVE, "apr_none", "k"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "LIVE_TRADING_DISABLED");
    assert_eq!(off.last_event().1.as_deref(), Some("LIVE_TRADING_DISABLED"));

    let live = live(LiveOptions::default());
    live.allow_writes().await;
    // A paper account, on the live path: not live, and not allow-listed either.
    let paper = live.approved_by(&operator(), PAPER, "10", "190").await;
    let error = live
        .submit(checked(PAPER, &paper, "k-paper"))
        .await
        .unwrap_err();
    assert_eq!(
        codes_of(&error),
        ["LIVE_ACCOUNT_NOT_LIVE", "LIVE_ACCOUNT_NOT_ALLOWED"]
    );
    // An agent's approval cannot back a live write.
    let by_agent = live.approved_by(&agent(), LIVE, "10", "190").await;
    let error = live
        .submit(checked(LIVE, &by_agent, "k-agent"))
        .await
        .unwrap_err();
    assert_eq!(codes_of(&error), ["LIVE_APPROVAL_NOT_OPERATOR"]);
    // The checklist, item by item.
    let approval = live.approved("10", "190").await;
    let mut unchecked = checked(LIVE, &approval, "k-list");
    unchecked.kill_switch_tested = false;
    unchecked.limits_reviewed = false;
    let error = live.submit(unchecked).await.unwrap_err();
    assert_eq!(error.code().as_str(), "LIVE_CHECKLIST_INCOMPLETE");
    let message = error.to_string();
    assert!(
        message.contains("limits_reviewed") && message.contains("kill_switch_tested"),
        "{message}"
    );
    // Risk: over the notional and quantity limits at once (38,000 USD: within the day's).
    let big = live.approved("200", "190").await;
    let error = live.submit(checked(LIVE, &big, "k-big")).await.unwrap_err();
    assert_eq!(
        codes_of(&error),
        ["LIVE_NOTIONAL_LIMIT_REFUSED", "LIVE_QUANTITY_LIMIT_REFUSED"]
    );
    // Outside the collar (the fake's AAPL trades near 190).
    let far = live.approved("10", "150").await;
    let error = live.submit(checked(LIVE, &far, "k-far")).await.unwrap_err();
    assert_eq!(codes_of(&error), ["LIVE_PRICE_COLLAR_REFUSED"]);
    // Without the scope.
    let no_scope = self::live(LiveOptions {
        scopes: Scope::ALL
            .iter()
            .copied()
            .filter(|scope| *scope != Scope::OrdersLiveSubmit)
            .collect(),
        ..LiveOptions::default()
    });
    let error = no_scope
        .submit(checked(LIVE, "apr_x", "k"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "AUTH_MISSING_SCOPE");
    // An expired preview.
    let soon = live.approved("10", "190").await;
    live.clock.advance(Duration::hours(2));
    let error = live
        .submit(checked(LIVE, &soon, "k-late"))
        .await
        .unwrap_err();
    assert!(
        codes_of(&error).contains(&"ORDER_PREVIEW_EXPIRED".to_owned())
            || codes_of(&error).contains(&"APPROVAL_EXPIRED".to_owned()),
        "{:?}",
        codes_of(&error)
    );
    assert_eq!(live.writer.writes(), 0);
    assert_eq!(no_scope.writer.writes(), 0);
    assert_eq!(off.writer.writes(), 0);
}

#[tokio::test]
async fn a_refusal_names_every_failing_gate_at_once() {
    let live = live(LiveOptions::default());
    // Halted (fresh), an agent's approval, no checklist, too big.
    let approval = live.approved_by(&agent(), LIVE, "200", "190").await;
    let raw = RawLiveWrite {
        account: LIVE.into(),
        approval_id: Some(approval),
        idempotency_key: "k-all".into(),
        ..RawLiveWrite::default()
    };
    let error = live.submit(raw).await.unwrap_err();
    let codes = codes_of(&error);
    for expected in [
        "LIVE_APPROVAL_NOT_OPERATOR",
        "LIVE_CHECKLIST_INCOMPLETE",
        "KILL_SWITCH_HALTED",
        "LIVE_NOTIONAL_LIMIT_REFUSED",
        "LIVE_QUANTITY_LIMIT_REFUSED",
    ] {
        assert!(codes.iter().any(|code| code == expected), "{codes:?}");
    }
    let document = error.to_json();
    assert_eq!(document["error"]["code"], "LIVE_APPROVAL_NOT_OPERATOR");
    let action = document["error"]["user_action"].as_str().unwrap();
    assert!(action.contains("nothing was placed"), "{action}");
    assert_eq!(live.writer.writes(), 0);
}

#[tokio::test]
async fn agents_approvals_back_live_writes_only_when_configured() {
    let live = live(LiveOptions {
        settings: LiveTradingSettings {
            agent_approvals_allowed: true,
            ..live_settings(5)
        },
        ..LiveOptions::default()
    });
    live.allow_writes().await;
    let by_agent = live.approved_by(&agent(), LIVE, "10", "190").await;
    live.submit(checked(LIVE, &by_agent, "k-agent"))
        .await
        .unwrap();
    assert_eq!(live.writer.writes(), 1);
}

#[tokio::test]
async fn the_frequency_counter_refuses_the_next_order_and_survives_a_restart() {
    let store: Arc<dyn WorkflowStore> = Arc::new(MemoryWorkflowStore::new());
    let first = live(LiveOptions {
        settings: live_settings(2),
        store: store.clone(),
        ..LiveOptions::default()
    });
    first.allow_writes().await;
    for key in ["f-1", "f-2"] {
        let approval = first.approved("1", "190").await;
        first.submit(checked(LIVE, &approval, key)).await.unwrap();
    }
    let approval = first.approved("1", "190").await;
    let error = first
        .submit(checked(LIVE, &approval, "f-3"))
        .await
        .unwrap_err();
    assert_eq!(codes_of(&error), ["LIVE_FREQUENCY_LIMIT_REFUSED"]);
    // A new gateway over the same store (a restart) counts the same two orders.
    let restarted = live(LiveOptions {
        settings: live_settings(2),
        store,
        clock: first.clock.clone(),
        ..LiveOptions::default()
    });
    let approval = restarted.approved("1", "190").await;
    let error = restarted
        .submit(checked(LIVE, &approval, "f-4"))
        .await
        .unwrap_err();
    assert_eq!(codes_of(&error), ["LIVE_FREQUENCY_LIMIT_REFUSED"]);
    let limits = restarted.gateway.limits_status(&agent()).await.unwrap();
    let frequency = limits
        .budgets
        .iter()
        .find(|budget| budget.code == "LIVE_FREQUENCY_LIMIT_REFUSED")
        .unwrap();
    assert_eq!(frequency.used, Decimal::new(2, 0));
    assert_eq!(frequency.remaining, Decimal::ZERO);
    // Once the window has passed, the next order goes through.
    restarted.clock.advance(Duration::seconds(61));
    let approval = restarted.approved("1", "190").await;
    restarted
        .submit(checked(LIVE, &approval, "f-5"))
        .await
        .unwrap();
    assert_eq!(first.writer.writes() + restarted.writer.writes(), 3);
}

#[tokio::test]
async fn a_stale_quote_is_refused_on_the_live_path() {
    // A policy that allows the fake's ES future (whose quote is hours old) and is wide enough
    // everywhere else, so only freshness can refuse it.
    let mut settings = live_settings(5);
    let wide = RiskPolicy::parse(RiskPolicyParts {
        currency: Currency::parse("USD").unwrap(),
        max_notional: Decimal::new(100_000_000, 0),
        max_quantity: Decimal::new(100, 0),
        allowed_symbols: vec!["ES".into()],
        allowed_asset_classes: vec![AssetClass::Future],
        frequency_max_orders: 5,
        frequency_window_seconds: 60,
        session_max_orders: 20,
        session_max_notional: Decimal::new(100_000_000, 0),
        max_price_deviation_bps: 10_000,
        max_quote_age_seconds: 60,
    })
    .unwrap();
    settings.policies.insert("main".into(), wide);
    let live = live(LiveOptions {
        settings,
        ..LiveOptions::default()
    });
    live.allow_writes().await;
    let quote = live
        .gateway
        .run::<ibkr_agent_gateway::app::use_cases::reads::MarketSnapshot>(
            ibkr_agent_gateway::app::use_cases::reads::SnapshotInput {
                contract_id: "495512563".into(),
                max_age_seconds: None,
            },
        )
        .await;
    let quote = serde_json::to_value(quote.unwrap()).unwrap();
    assert_eq!(quote["status"], "stale");
    let price = quote["last"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| quote["last"].as_f64().map(|last| last.to_string()))
        .unwrap();
    let mut preview = limit_buy(LIVE, "1", &price);
    preview.contract_id = "495512563".into();
    let preview = live.gateway.preview_order(&agent(), preview).await;
    let Ok(preview) = preview else {
        panic!("the preview of the stale future was refused: {preview:?}");
    };
    let approval = live
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
    let error = live
        .submit(checked(LIVE, &approval, "s-1"))
        .await
        .unwrap_err();
    assert_eq!(codes_of(&error), ["LIVE_STALE_QUOTE"]);
    assert_eq!(live.writer.writes(), 0);
}

#[tokio::test]
async fn a_live_write_the_broker_took_but_did_not_answer_is_recovered_never_resent() {
    let store: Arc<dyn WorkflowStore> = Arc::new(MemoryWorkflowStore::new());
    let writer = Arc::new(LiveDouble::new());
    let first = live(LiveOptions {
        store: store.clone(),
        writer: writer.clone(),
        ..LiveOptions::default()
    });
    first.allow_writes().await;
    let approval = first.approved("10", "190").await;
    writer.ambiguous.store(true, Ordering::SeqCst);
    let error = first
        .submit(checked(LIVE, &approval, "crash-1"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_OUTCOME_UNKNOWN");
    writer.ambiguous.store(false, Ordering::SeqCst);
    // A later process (past the recovery grace) finds the order by its cOID.
    first.clock.advance(Duration::minutes(10));
    let restarted = live(LiveOptions {
        store,
        writer: writer.clone(),
        clock: first.clock.clone(),
        ..LiveOptions::default()
    });
    restarted.gateway.start().await;
    let replay = restarted
        .submit(checked(LIVE, &approval, "crash-1"))
        .await
        .unwrap();
    assert!(replay.replayed || replay.recovered, "{replay:?}");
    assert_eq!(writer.writes(), 1, "recovery never resubmits");
}

#[tokio::test]
async fn a_writer_built_for_paper_is_never_used_for_live() {
    struct PaperOnly(LiveDouble);
    #[async_trait]
    impl OrderWriter for PaperOnly {
        fn name(&self) -> &'static str {
            "paper_only"
        }
        fn mode(&self) -> WriterMode {
            WriterMode::Paper
        }
        async fn submit(
            &self,
            o: &OrderIntent,
            k: &IdempotencyKey,
        ) -> Result<PlacedOrder, WriteError> {
            self.0.submit(o, k).await
        }
        async fn submit_bracket(
            &self,
            b: &BracketIntent,
            k: &IdempotencyKey,
        ) -> Result<Vec<PlacedOrder>, WriteError> {
            self.0.submit_bracket(b, k).await
        }
        async fn modify(
            &self,
            id: &BrokerOrderId,
            r: &OrderIntent,
        ) -> Result<PlacedOrder, WriteError> {
            self.0.modify(id, r).await
        }
        async fn cancel(&self, a: &AccountId, id: &BrokerOrderId) -> Result<CancelAck, WriteError> {
            self.0.cancel(a, id).await
        }
        async fn order(
            &self,
            a: &AccountId,
            id: &BrokerOrderId,
        ) -> Result<Option<WorkingOrder>, WriteError> {
            self.0.order(a, id).await
        }
        async fn find_by_client_order_id(
            &self,
            a: &AccountId,
            k: &IdempotencyKey,
        ) -> Result<Option<WorkingOrder>, WriteError> {
            self.0.find_by_client_order_id(a, k).await
        }
    }
    let clock = Arc::new(FixedClock::new(start()));
    let inner = Arc::new(PaperOnly(LiveDouble::new()));
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
        .clock(clock)
        .key(SecretBytes::new(vec![9; 32]))
        .scopes(Scope::ALL.iter().copied().collect())
        .live_writer(inner.clone())
        .live_trading(live_settings(5))
        .build()
        .unwrap();
    let error = gateway
        .live_submit(&agent(), checked(LIVE, "apr_1", "k"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "ORDER_WRITER_REFUSED");
    assert_eq!(inner.0.writes(), 0);
}

#[tokio::test]
async fn live_status_views_say_writes_allowed_in_plain_words() {
    let live = live(LiveOptions::default());
    let limits = live.gateway.limits_status(&agent()).await.unwrap();
    let document = serde_json::to_value(&limits).unwrap();
    assert_eq!(
        document["kill_switch"]["writes_allowed"],
        Value::Bool(false)
    );
    assert_eq!(document["live_trading_enabled"], Value::Bool(true));
    assert_eq!(document["risk_policy_id"], "main");
    let rules: Vec<&str> = document["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|budget| budget["rule"].as_str().unwrap())
        .collect();
    assert!(rules.len() >= 4, "{rules:?}");
}
