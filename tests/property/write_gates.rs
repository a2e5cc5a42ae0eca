//! The write pipeline's gates: for any combination of gate inputs (paper trading on or off,
//! the account's kind and allow-listing, the approval's status, account and preview kind, the
//! working order it is about, a protective child cancelled without an approval), no write
//! reaches the writer when a gate fails, every failing rule is reported, and a write that
//! passes every gate reaches the writer exactly once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::local_candidate::LocalCandidateWriter;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::config::{PaperTradingSettings, PaperWriterKind};
use ibkr_agent_gateway::app::order_input::{
    RawBracketPreview, RawCancelPreview, RawOrderPreview, RawPaperCancel, RawPaperModify,
    RawPaperSubmit,
};
use ibkr_agent_gateway::domain::approval::ApprovalStatus;
use ibkr_agent_gateway::domain::idempotency::{
    Fingerprint, IdempotencyRecord, IdempotencyState, WriteOperation,
};
use ibkr_agent_gateway::domain::ids::{
    AccountId, ApprovalId, BrokerOrderId, ContractId, IdempotencyKey,
};
use ibkr_agent_gateway::domain::money::{Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderType, TimeInForce};
use ibkr_agent_gateway::domain::order_intent::{BracketIntent, IntentParts, OrderIntent};
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::ports::clock::Clock;
use ibkr_agent_gateway::ports::order_writer::{
    CancelAck, OrderWriter, PlacedOrder, WorkingOrder, WriteError, WriterMode,
};
use ibkr_agent_gateway::ports::workflow_store::{RecordKey, WorkflowStore};
use proptest::prelude::*;
use rust_decimal::Decimal;

const PAPER: &str = "DU1234567";
const OTHER_PAPER: &str = "DU7654320";
const LIVE: &str = "U7654321";

/// A writer that counts every write call (reads pass through uncounted).
struct CountingWriter {
    inner: Arc<LocalCandidateWriter>,
    writes: AtomicUsize,
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
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.submit(order, client_order_id).await
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Submit,
    Bracket,
    Modify,
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Approved,
    Revoked,
    Consumed,
    Expired,
}

/// One combination of gate inputs.
#[derive(Debug, Clone)]
struct Case {
    enabled: bool,
    /// The account the write names.
    account: &'static str,
    /// `paper_trading.allowed_accounts`.
    allowed: Vec<&'static str>,
    op: Op,
    /// The kind of the approved preview.
    preview_kind: Op,
    /// The account the approved preview is for.
    preview_account: &'static str,
    status: Status,
    /// For a cancel: whether an approval is given at all.
    cancel_with_approval: bool,
    /// For a cancel without an approval: whether it targets a bracket's stop-loss.
    target_child: bool,
}

/// A write that would pass, with each gate input spoiled now and then, so that both passing
/// and failing combinations (several failures at once among them) are common.
fn cases() -> impl Strategy<Value = Case> {
    let op = || prop::sample::select(vec![Op::Submit, Op::Bracket, Op::Modify, Op::Cancel]);
    let paper = || prop::sample::select(vec![PAPER, OTHER_PAPER]);
    (
        (prop::bool::weighted(0.85), op(), paper()),
        // 0: as it should be; 1: a live account; 2: not allow-listed.
        prop::sample::select(vec![0u8, 0, 0, 0, 0, 0, 1, 2]),
        (prop::bool::weighted(0.2), op()),
        (prop::bool::weighted(0.2), paper()),
        prop::sample::select(vec![
            Status::Approved,
            Status::Approved,
            Status::Approved,
            Status::Approved,
            Status::Approved,
            Status::Revoked,
            Status::Consumed,
            Status::Expired,
        ]),
        (prop::bool::ANY, prop::bool::weighted(0.3)),
    )
        .prop_map(
            |(
                (enabled, op, paper_account),
                account_fault,
                (other_kind, kind),
                (other_account, preview_account),
                status,
                (cancel_with_approval, target_child),
            )| {
                let account = if account_fault == 1 {
                    LIVE
                } else {
                    paper_account
                };
                let allowed = match account_fault {
                    2 => vec![if paper_account == PAPER {
                        OTHER_PAPER
                    } else {
                        PAPER
                    }],
                    _ => vec![PAPER, OTHER_PAPER],
                };
                Case {
                    enabled,
                    account,
                    allowed,
                    op,
                    preview_kind: if other_kind { kind } else { op },
                    preview_account: if other_account {
                        preview_account
                    } else {
                        paper_account
                    },
                    status,
                    cancel_with_approval,
                    target_child,
                }
            },
        )
}

impl Case {
    fn approval_given(&self) -> bool {
        self.op != Op::Cancel || self.cancel_with_approval
    }

    /// The failing rules' codes, in the order the gates check them: an independent statement
    /// of the paper account gate, the approval gate and the approval-required gate.
    fn expected_codes(&self) -> Vec<&'static str> {
        if !self.enabled {
            // The account is not looked up while paper trading is off.
            return vec!["PAPER_TRADING_DISABLED"];
        }
        let mut codes = Vec::new();
        if self.account == LIVE {
            codes.push("PAPER_ACCOUNT_NOT_PAPER");
        }
        if !self.allowed.contains(&self.account) {
            codes.push("PAPER_ACCOUNT_NOT_ALLOWED");
        }
        if !codes.is_empty() {
            return codes;
        }
        if !self.approval_given() {
            if self.target_child {
                codes.push("ORDER_CANCEL_NEEDS_APPROVAL");
            }
            return codes;
        }
        let same_account = self.preview_account == self.account;
        match self.status {
            Status::Approved => {}
            Status::Revoked => codes.push("APPROVAL_REVOKED"),
            Status::Consumed => codes.push("APPROVAL_CONSUMED"),
            Status::Expired => codes.push("APPROVAL_EXPIRED"),
        }
        if !same_account {
            codes.push("APPROVAL_ACCOUNT_MISMATCH");
        }
        if self.preview_kind != self.op {
            codes.push("ORDER_PREVIEW_KIND_MISMATCH");
        }
        if !same_account {
            codes.push("APPROVAL_ACCOUNT_MISMATCH");
        }
        // Modify and cancel previews are about the one plain order of their account.
        match self.op {
            Op::Modify if !(self.preview_kind == Op::Modify && same_account) => {
                codes.push("ORDER_MODIFY_NOT_ALLOWED");
            }
            Op::Cancel
                if !(matches!(self.preview_kind, Op::Modify | Op::Cancel) && same_account) =>
            {
                codes.push("APPROVAL_ORDER_MISMATCH");
            }
            _ => {}
        }
        codes
    }
}

/// A one-unit GTC limit buy at 190 in `account`.
fn limit_buy(account: &str) -> OrderIntent {
    OrderIntent::new(IntentParts {
        account_id: AccountId::parse(account).unwrap(),
        contract_id: ContractId::new(265_598).unwrap(),
        side: OrderSide::Buy,
        quantity: Quantity::new(Decimal::ONE),
        order_type: OrderType::Limit,
        limit_price: Some(Price::new(Decimal::from(190)).unwrap()),
        stop_price: None,
        trailing: None,
        time_in_force: TimeInForce::GoodTillCancelled,
    })
    .unwrap()
}

/// Working orders placed straight into the local book (not through the counting writer): the
/// plain order and the bracket stop-loss of `account`.
async fn seed_orders(book: &LocalCandidateWriter, account: &str) -> (String, String) {
    let key = |name: &str| IdempotencyKey::parse(&format!("seed-{name}-{account}")).unwrap();
    let plain = book
        .submit(&limit_buy(account), &key("plain"))
        .await
        .unwrap();
    let bracket = BracketIntent::new(
        limit_buy(account),
        Price::new(Decimal::from(210)).unwrap(),
        Price::new(Decimal::from(180)).unwrap(),
    )
    .unwrap();
    let placed = book
        .submit_bracket(&bracket, &key("bracket"))
        .await
        .unwrap();
    (plain.order_id.to_string(), placed[2].order_id.to_string())
}

/// Runs `case` against a fresh gateway: returns the write's result codes (empty on success,
/// else the error code followed by every failing rule's code) and the writer calls it made.
async fn run(case: &Case) -> (Result<(), (String, Vec<String>)>, usize) {
    let clock = Arc::new(FixedClock::new(
        DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z")
            .unwrap()
            .into(),
    ));
    let book = Arc::new(LocalCandidateWriter::new());
    let writer = Arc::new(CountingWriter {
        inner: Arc::clone(&book),
        writes: AtomicUsize::new(0),
    });
    let store = Arc::new(MemoryWorkflowStore::new());
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
        .clock(clock.clone())
        .scopes(Scope::ALL.iter().copied().collect())
        .workflow_store(store.clone())
        .paper_writer(writer.clone())
        .paper_trading(PaperTradingSettings {
            enabled: case.enabled,
            allowed_accounts: case
                .allowed
                .iter()
                .map(|id| AccountId::parse(id).unwrap())
                .collect::<BTreeSet<_>>(),
            writer: PaperWriterKind::LocalCandidate,
            recovery_grace_seconds: 120,
        })
        .build()
        .unwrap();
    let agent = CallContext::mcp_stdio();
    let (paper_plain, paper_child) = seed_orders(&book, PAPER).await;
    let (other_plain, other_child) = seed_orders(&book, OTHER_PAPER).await;
    let plain_of = |account: &str| {
        if account == OTHER_PAPER {
            other_plain.clone()
        } else {
            paper_plain.clone()
        }
    };
    let child_of = |account: &str| {
        if account == OTHER_PAPER {
            other_child.clone()
        } else {
            paper_child.clone()
        }
    };

    // The approved preview.
    let limit = |account: &str, quantity: &str, modify: Option<String>| RawOrderPreview {
        account: account.into(),
        contract_id: "265598".into(),
        side: "BUY".into(),
        quantity: quantity.into(),
        order_type: "LMT".into(),
        limit_price: Some("190".into()),
        time_in_force: Some("GTC".into()),
        modify_order_id: modify,
        ..RawOrderPreview::default()
    };
    let preview_account = case.preview_account;
    let preview = match case.preview_kind {
        Op::Submit => {
            gateway
                .preview_order(&agent, limit(preview_account, "1", None))
                .await
        }
        Op::Modify => {
            gateway
                .preview_order(
                    &agent,
                    limit(preview_account, "2", Some(plain_of(preview_account))),
                )
                .await
        }
        Op::Bracket => {
            gateway
                .preview_bracket(
                    &agent,
                    RawBracketPreview {
                        account: preview_account.into(),
                        contract_id: "265598".into(),
                        side: "BUY".into(),
                        quantity: "1".into(),
                        entry_price: "190".into(),
                        take_profit_price: "210".into(),
                        stop_loss_price: "180".into(),
                        time_in_force: Some("GTC".into()),
                    },
                )
                .await
        }
        Op::Cancel => {
            gateway
                .preview_cancel(
                    &agent,
                    RawCancelPreview {
                        account: preview_account.into(),
                        order_id: plain_of(preview_account),
                    },
                )
                .await
        }
    }
    .unwrap();
    let approval = gateway
        .create_approval(
            &CallContext::sdk(),
            RawApprovalCreate {
                preview_id: preview.preview_id,
                ttl_seconds: Some(30),
            },
        )
        .await
        .unwrap();
    let approval_id = ApprovalId::parse(&approval.approval_id).unwrap();
    match case.status {
        Status::Approved => {}
        Status::Revoked => {
            assert!(
                store
                    .close_approval(&approval_id, ApprovalStatus::Revoked, clock.now())
                    .await
                    .unwrap()
            );
        }
        Status::Consumed => {
            // An earlier write under another key used it.
            let record_key = RecordKey {
                account_id: AccountId::parse(preview_account).unwrap(),
                operation: WriteOperation::PaperSubmit,
                key: IdempotencyKey::parse("earlier-write").unwrap(),
            };
            store
                .begin(&IdempotencyRecord {
                    account_id: record_key.account_id.clone(),
                    operation: record_key.operation,
                    key: record_key.key.clone(),
                    fingerprint: Fingerprint::of(&["earlier"]),
                    approval_id: Some(approval_id.clone()),
                    state: IdempotencyState::Pending,
                    outcome: None,
                    started_at: clock.now(),
                    finished_at: None,
                })
                .await
                .unwrap();
            store
                .complete(&record_key, "{}", clock.now())
                .await
                .unwrap();
        }
        Status::Expired => clock.advance(Duration::seconds(31)),
    }

    // The write under test.
    let approval_text = approval.approval_id.clone();
    let target = if case.op == Op::Cancel && !case.cancel_with_approval && case.target_child {
        child_of(case.account)
    } else {
        plain_of(case.account)
    };
    let key = "write-under-test".to_owned();
    let result = match case.op {
        Op::Submit | Op::Bracket => {
            let raw = RawPaperSubmit {
                account: case.account.into(),
                approval_id: approval_text,
                idempotency_key: key,
            };
            if case.op == Op::Submit {
                gateway.paper_submit(&agent, raw).await
            } else {
                gateway.paper_bracket_submit(&agent, raw).await
            }
        }
        Op::Modify => {
            gateway
                .paper_modify(
                    &agent,
                    RawPaperModify {
                        account: case.account.into(),
                        order_id: target,
                        approval_id: approval_text,
                        idempotency_key: key,
                    },
                )
                .await
        }
        Op::Cancel => {
            gateway
                .paper_cancel(
                    &agent,
                    RawPaperCancel {
                        account: case.account.into(),
                        order_id: target,
                        idempotency_key: key,
                        approval_id: case.cancel_with_approval.then_some(approval_text),
                    },
                )
                .await
        }
    };
    let outcome = result.map(|_| ()).map_err(|error| {
        let document = error.to_json();
        let rules = document["error"]["details"]["failed_rules"]
            .as_array()
            .map(|rules| {
                rules
                    .iter()
                    .map(|rule| rule["code"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        (error.code().as_str().to_owned(), rules)
    });
    (outcome, writer.writes.load(Ordering::SeqCst))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_write_reaches_the_writer_when_a_gate_fails(case in cases()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (outcome, writes) = runtime.block_on(run(&case));
        let expected = case.expected_codes();
        match (expected.first(), outcome) {
            (None, Ok(())) => prop_assert_eq!(writes, 1, "a passing write is made once"),
            (None, Err(error)) => {
                prop_assert!(false, "{case:?} passes every gate but failed: {error:?}");
            }
            (Some(_), Ok(())) => prop_assert!(false, "{case:?} fails {expected:?} but was written"),
            (Some(first), Err((code, rules))) => {
                prop_assert_eq!(writes, 0, "{:?}", case);
                prop_assert_eq!(&code, first, "{:?}", case);
                prop_assert_eq!(rules, expected, "{:?}", case);
            }
        }
    }
}
