//! The live write path's gates: for any combination of live gate inputs (live trading on or
//! off, the account's kind and allow-listing, who approved, each checklist item, the kill
//! switch, an order over the risk limits), no write reaches the live writer when a gate fails,
//! every failing gate is reported, and a write that passes every gate reaches the writer
//! exactly once. While the kill switch is halted, the writer receives no call at all.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::DateTime;
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::local_candidate::LocalCandidateWriter;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::live_orders::RawLiveWrite;
use ibkr_agent_gateway::app::live_settings::{LiveTradingSettings, LiveWriterKind};
use ibkr_agent_gateway::app::order_input::{RawBracketPreview, RawOrderPreview};
use ibkr_agent_gateway::domain::ids::{AccountId, BrokerOrderId, ContractId, IdempotencyKey};
use ibkr_agent_gateway::domain::instrument::AssetClass;
use ibkr_agent_gateway::domain::money::{Currency, Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderType, TimeInForce};
use ibkr_agent_gateway::domain::order_intent::{BracketIntent, IntentParts, OrderIntent};
use ibkr_agent_gateway::domain::preview::PreviewPolicy;
use ibkr_agent_gateway::domain::risk_policy::{RiskPolicy, RiskPolicyParts};
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::order_writer::{
    CancelAck, OrderWriter, PlacedOrder, WorkingOrder, WriteError, WriterMode,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

const LIVE: &str = "U7654321";
const PAPER: &str = "DU1234567";

/// A live writer over a local book that counts the calls that would reach the broker.
struct CountingLive {
    book: Arc<LocalCandidateWriter>,
    writes: AtomicUsize,
}

#[async_trait]
impl OrderWriter for CountingLive {
    fn name(&self) -> &'static str {
        "counting_live"
    }
    fn mode(&self) -> WriterMode {
        WriterMode::Live
    }
    async fn submit(
        &self,
        order: &OrderIntent,
        key: &IdempotencyKey,
    ) -> Result<PlacedOrder, WriteError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.book.submit(order, key).await
    }
    async fn submit_bracket(
        &self,
        bracket: &BracketIntent,
        key: &IdempotencyKey,
    ) -> Result<Vec<PlacedOrder>, WriteError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.book.submit_bracket(bracket, key).await
    }
    async fn modify(
        &self,
        order_id: &BrokerOrderId,
        replacement: &OrderIntent,
    ) -> Result<PlacedOrder, WriteError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.book.modify(order_id, replacement).await
    }
    async fn cancel(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<CancelAck, WriteError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.book.cancel(account, order_id).await
    }
    async fn order(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        self.book.order(account, order_id).await
    }
    async fn find_by_client_order_id(
        &self,
        account: &AccountId,
        key: &IdempotencyKey,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        self.book.find_by_client_order_id(account, key).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Submit,
    Bracket,
    Cancel,
}

/// One combination of live gate inputs.
#[derive(Debug, Clone)]
struct Case {
    live_on: bool,
    account: &'static str,
    allow_listed: bool,
    by_operator: bool,
    /// Bit i set: checklist item i acknowledged.
    checklist: u8,
    halted: bool,
    /// An order of 150 shares: over the quantity and notional limits.
    oversized: bool,
    op: Op,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (prop::bool::weighted(0.9), prop::bool::weighted(0.1)),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.85),
        prop::sample::select(vec![31u8, 31, 31, 31, 31, 0, 1, 15, 30, 23]),
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.2),
        prop::sample::select(vec![Op::Submit, Op::Submit, Op::Bracket, Op::Cancel]),
    )
        .prop_map(
            |((live_on, paper), allow_listed, by_operator, checklist, halted, oversized, op)| {
                Case {
                    live_on,
                    account: if paper { PAPER } else { LIVE },
                    allow_listed,
                    by_operator,
                    checklist,
                    halted,
                    oversized,
                    op,
                }
            },
        )
}

impl Case {
    /// The failing gates' codes, as an independent statement of the live gates.
    fn expected(&self) -> BTreeSet<&'static str> {
        let mut codes = BTreeSet::new();
        if !self.live_on {
            codes.insert("LIVE_TRADING_DISABLED");
            return codes;
        }
        if self.account == PAPER {
            codes.insert("LIVE_ACCOUNT_NOT_LIVE");
        }
        if self.account == PAPER || !self.allow_listed {
            codes.insert("LIVE_ACCOUNT_NOT_ALLOWED");
        }
        if !codes.is_empty() {
            return codes;
        }
        if self.op != Op::Cancel && !self.by_operator {
            codes.insert("LIVE_APPROVAL_NOT_OPERATOR");
        }
        if self.checklist != 31 {
            codes.insert("LIVE_CHECKLIST_INCOMPLETE");
        }
        if self.halted {
            codes.insert("KILL_SWITCH_HALTED");
        }
        if self.op != Op::Cancel && self.oversized {
            codes.insert("LIVE_QUANTITY_LIMIT_REFUSED");
            codes.insert("LIVE_NOTIONAL_LIMIT_REFUSED");
        }
        codes
    }
}

fn settings(case: &Case) -> LiveTradingSettings {
    let policy = RiskPolicy::parse(RiskPolicyParts {
        currency: Currency::parse("USD").unwrap(),
        max_notional: Decimal::new(10_000, 0),
        max_quantity: Decimal::new(100, 0),
        allowed_symbols: vec!["AAPL".into()],
        allowed_asset_classes: vec![AssetClass::Stock],
        frequency_max_orders: 10,
        frequency_window_seconds: 60,
        session_max_orders: 100,
        session_max_notional: Decimal::new(1_000_000, 0),
        max_price_deviation_bps: 10_000,
        max_quote_age_seconds: 60,
    })
    .unwrap();
    LiveTradingSettings {
        enabled: case.live_on,
        safety_enabled: case.live_on,
        // Not allow-listed: another live account is (an empty list would not start).
        allowed_accounts: [
            AccountId::parse(if case.allow_listed { LIVE } else { "U1111111" }).unwrap(),
        ]
        .into_iter()
        .collect::<BTreeSet<_>>(),
        risk_policy_id: Some("p".into()),
        policies: [("p".to_owned(), policy)].into_iter().collect(),
        checklist_acknowledged: true,
        agent_approvals_allowed: false,
        writer: LiveWriterKind::Refusing,
        session_time_zone: chrono_tz::America::New_York,
        ..LiveTradingSettings::default()
    }
}

/// Runs `case`: the codes of the failing gates (empty on success) and the writer calls made.
async fn run(case: &Case) -> (BTreeSet<String>, usize) {
    let clock = Arc::new(FixedClock::new(
        DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z")
            .unwrap()
            .into(),
    ));
    let book = Arc::new(LocalCandidateWriter::new());
    let writer = Arc::new(CountingLive {
        book: book.clone(),
        writes: AtomicUsize::new(0),
    });
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
        .clock(clock)
        .key(SecretBytes::new(vec![3; 32]))
        .scopes(Scope::ALL.iter().copied().collect())
        .live_writer(writer.clone())
        .live_trading(settings(case))
        .preview_policy(PreviewPolicy {
            max_quantity: Decimal::new(1_000, 0),
            max_notional: None,
            ..PreviewPolicy::default()
        })
        .build()
        .unwrap();
    let operator = CallContext::sdk();
    let agent = CallContext::mcp_stdio();
    if !case.halted {
        gateway
            .kill_switch_allow(&operator, "property")
            .await
            .unwrap();
    }
    let quantity = if case.oversized { "150" } else { "10" };
    let approver = if case.by_operator { &operator } else { &agent };
    let mut raw = RawLiveWrite {
        account: case.account.into(),
        idempotency_key: "under-test".into(),
        paper_trading_validated: case.checklist & 1 != 0,
        approvals_reviewed: case.checklist & 2 != 0,
        limits_reviewed: case.checklist & 4 != 0,
        kill_switch_tested: case.checklist & 8 != 0,
        incident_runbook_reviewed: case.checklist & 16 != 0,
        ..RawLiveWrite::default()
    };
    let approve = |preview_id: String| {
        let gateway = &gateway;
        async move {
            gateway
                .create_approval(
                    approver,
                    RawApprovalCreate {
                        preview_id,
                        ttl_seconds: None,
                    },
                )
                .await
                .unwrap()
                .approval_id
        }
    };
    let result = match case.op {
        Op::Submit => {
            let preview = gateway
                .preview_order(
                    &agent,
                    RawOrderPreview {
                        account: case.account.into(),
                        contract_id: "265598".into(),
                        side: "BUY".into(),
                        quantity: quantity.into(),
                        order_type: "LMT".into(),
                        limit_price: Some("190".into()),
                        ..RawOrderPreview::default()
                    },
                )
                .await
                .unwrap();
            raw.approval_id = Some(approve(preview.preview_id).await);
            gateway.live_submit(&agent, raw).await
        }
        Op::Bracket => {
            let preview = gateway
                .preview_bracket(
                    &agent,
                    RawBracketPreview {
                        account: case.account.into(),
                        contract_id: "265598".into(),
                        side: "BUY".into(),
                        quantity: quantity.into(),
                        entry_price: "190".into(),
                        take_profit_price: "195".into(),
                        stop_loss_price: "185".into(),
                        time_in_force: Some("GTC".into()),
                    },
                )
                .await
                .unwrap();
            raw.approval_id = Some(approve(preview.preview_id).await);
            gateway.live_bracket_submit(&agent, raw).await
        }
        Op::Cancel => {
            // A plain working order, placed straight into the book (not through the writer).
            let order = OrderIntent::new(IntentParts {
                account_id: AccountId::parse(case.account).unwrap(),
                contract_id: ContractId::new(265_598).unwrap(),
                side: OrderSide::Buy,
                quantity: Quantity::new(Decimal::ONE),
                order_type: OrderType::Limit,
                limit_price: Some(Price::new(Decimal::from(190)).unwrap()),
                stop_price: None,
                trailing: None,
                time_in_force: TimeInForce::GoodTillCancelled,
            })
            .unwrap();
            let placed = book
                .submit(&order, &IdempotencyKey::parse("seed").unwrap())
                .await
                .unwrap();
            raw.order_id = Some(placed.order_id.to_string());
            gateway.live_cancel(&agent, raw).await
        }
    };
    let codes = match result {
        Ok(_) => BTreeSet::new(),
        Err(error) => {
            let document = error.to_json();
            match document["error"]["details"]["failed_rules"].as_array() {
                Some(rules) => rules
                    .iter()
                    .map(|rule| rule["code"].as_str().unwrap().to_owned())
                    .collect(),
                None => [error.code().as_str().to_owned()].into_iter().collect(),
            }
        }
    };
    (codes, writer.writes.load(Ordering::SeqCst))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_live_write_reaches_the_writer_unless_every_gate_passes(case in cases()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (codes, writes) = runtime.block_on(run(&case));
        let expected: BTreeSet<String> =
            case.expected().into_iter().map(str::to_owned).collect();
        prop_assert_eq!(&codes, &expected, "{:?}", case);
        prop_assert_eq!(writes, usize::from(expected.is_empty()), "{:?}", case);
        if case.halted {
            prop_assert_eq!(writes, 0);
        }
    }
}
