//! The `OrderWriter` contract: what every writer that places orders must do, what the
//! refusing writer must do, and the fake broker's what-if, the preview that precedes a write.
//!
//! Expectations for placing writers are async functions over a [`Fixture`]. `every_writer!`
//! holds the one list of them and runs it for each placing writer through `writer_suite!`,
//! one `#[tokio::test]` per expectation and writer: the local-candidate writer, and the Client
//! Portal writer against the stateful gateway double of [`crate::cp_order_double`] on
//! 127.0.0.1. A case is never skipped for a writer; where the writers legitimately differ, the
//! fixture says how (see [`CancelCompletion`]) and the expectation branches on it.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::{FakeBroker, LocalOrders, known_ids};
use ibkr_agent_gateway::adapters::outbound::local_candidate::{
    LocalCandidateWriter, LocalOrderBook,
};
use ibkr_agent_gateway::adapters::outbound::refusing_writer::RefusingOrderWriter;
use ibkr_agent_gateway::domain::error_code::ErrorCode;
use ibkr_agent_gateway::domain::ids::{AccountId, BrokerOrderId, ContractId, IdempotencyKey};
use ibkr_agent_gateway::domain::money::{Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderStatus, OrderType, TimeInForce};
use ibkr_agent_gateway::domain::order_intent::{BracketIntent, IntentParts, OrderIntent};
use ibkr_agent_gateway::ports::broker_reader::{BrokerError, BrokerReader};
use ibkr_agent_gateway::ports::order_writer::{OrderWriter, WorkingOrder, WriteError, WriterMode};
use rust_decimal::Decimal;

use crate::cp_order_double::{self, CpOrderDouble, StatusFields};
use crate::support::contract_suite as writer_suite;

/// When a cancelled order first reads as cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelCompletion {
    /// In the cancel itself: the local book marks the order before answering.
    Immediate,
    /// Once the broker has processed it: IBKR acknowledges a cancel with `Request was
    /// submitted`, and the order may read `PendingCancel` before `Cancelled` (reference §6.8,
    /// §6.10), so a caller has to look again.
    Asynchronous,
}

/// A placing writer under test and the ids it may use.
struct Fixture {
    /// The writer, with an empty book.
    writer: Arc<dyn OrderWriter>,
    /// A paper account the writer may place orders in.
    account: AccountId,
    /// Another paper account, whose orders must stay invisible from `account`.
    other_account: AccountId,
    /// A stock the writer can place orders for.
    stock: ContractId,
    /// An order id the writer never handed out, in the writer's own id form.
    unknown_order: BrokerOrderId,
    /// When a cancel shows.
    cancel_completion: CancelCompletion,
    /// The gateway double the writer talks to, kept running for the test; `None` for a writer
    /// without network.
    gateway: Option<CpOrderDouble>,
}

/// The local-candidate writer, fresh.
async fn local_candidate() -> Fixture {
    Fixture {
        writer: Arc::new(LocalCandidateWriter::new()),
        account: AccountId::parse(known_ids::PAPER_USD_ACCOUNT).unwrap(),
        other_account: AccountId::parse(known_ids::PAPER_EUR_ACCOUNT).unwrap(),
        stock: ContractId::new(known_ids::AAPL).unwrap(),
        unknown_order: BrokerOrderId::parse("lc-999999").unwrap(),
        cancel_completion: CancelCompletion::Immediate,
        gateway: None,
    }
}

/// The Client Portal writer against a fresh gateway double with an empty book.
async fn client_portal() -> Fixture {
    client_portal_with(StatusFields::WithUndocumented).await
}

async fn client_portal_with(status_fields: StatusFields) -> Fixture {
    let gateway = CpOrderDouble::start_with(status_fields).await;
    Fixture {
        writer: Arc::new(gateway.writer()),
        account: AccountId::parse(cp_order_double::PAPER).unwrap(),
        other_account: AccountId::parse(cp_order_double::OTHER_PAPER).unwrap(),
        stock: ContractId::new(cp_order_double::AAPL).unwrap(),
        // An IBKR-shaped id, so the requests about it reach the gateway.
        unknown_order: BrokerOrderId::parse("999999999").unwrap(),
        cancel_completion: CancelCompletion::Asynchronous,
        gateway: Some(gateway),
    }
}

/// The one list of expectations, run for a writer's fixture function: every placing writer
/// gets every case.
macro_rules! every_writer {
    ($($adapter:ident),+ $(,)?) => {
        $(
            writer_suite!($adapter =>
                submit_returns_an_id_findable_by_id_and_client_order_id,
                a_bracket_returns_three_orders_in_leg_order_all_findable,
                bracket_children_name_their_parent_and_the_entry_names_none,
                a_reused_client_order_id_is_rejected_and_places_nothing,
                modify_changes_only_quantity_prices_and_time_in_force,
                a_cancelled_order_reads_as_cancelled,
                unknown_order_ids_are_not_found,
                orders_of_another_account_stay_invisible,
                every_error_is_definitive,
            );
        )+
    };
}

every_writer!(local_candidate, client_portal);

// -------------------------------------------------------------------------------------------
// Helpers
// -------------------------------------------------------------------------------------------

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw).unwrap()
}

fn price(raw: &str) -> Price {
    Price::parse(raw).unwrap()
}

fn dec(raw: &str) -> Decimal {
    Decimal::from_str(raw).unwrap()
}

fn limit_order(
    account: &AccountId,
    contract: ContractId,
    quantity: &str,
    limit: &str,
) -> OrderIntent {
    OrderIntent::new(IntentParts {
        account_id: account.clone(),
        contract_id: contract,
        side: OrderSide::Buy,
        quantity: Quantity::parse(quantity).unwrap(),
        order_type: OrderType::Limit,
        limit_price: Some(price(limit)),
        stop_price: None,
        trailing: None,
        time_in_force: TimeInForce::Day,
    })
    .unwrap()
}

fn limit(fixture: &Fixture, quantity: &str, limit: &str) -> OrderIntent {
    limit_order(&fixture.account, fixture.stock, quantity, limit)
}

fn bracket(fixture: &Fixture) -> BracketIntent {
    BracketIntent::new(limit(fixture, "10", "190.00"), price("210"), price("180")).unwrap()
}

async fn find(fixture: &Fixture, order_id: &BrokerOrderId) -> WorkingOrder {
    fixture
        .writer
        .order(&fixture.account, order_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("order {order_id} is not findable"))
}

/// The order's fields that came from the intent.
fn assert_matches_intent(order: &WorkingOrder, intent: &OrderIntent) {
    assert_eq!(&order.account_id, intent.account_id());
    assert_eq!(order.contract_id, intent.contract_id());
    assert_eq!(order.side, intent.side());
    assert_eq!(order.order_type, intent.order_type());
    assert_eq!(order.quantity, intent.quantity());
    assert_eq!(order.limit_price, intent.limit_price());
    assert_eq!(order.stop_price, intent.stop_price());
    assert_eq!(order.time_in_force, intent.time_in_force());
}

// -------------------------------------------------------------------------------------------
// Expectations for placing writers
// -------------------------------------------------------------------------------------------

async fn submit_returns_an_id_findable_by_id_and_client_order_id(fixture: &Fixture) {
    assert!(!fixture.writer.name().is_empty());
    let intent = limit(fixture, "10", "190.00");
    let placed = fixture
        .writer
        .submit(&intent, &key("submit-1"))
        .await
        .unwrap();
    assert!(!placed.status.is_terminal(), "{:?}", placed.status);
    let by_id = find(fixture, &placed.order_id).await;
    assert_eq!(by_id.order_id, placed.order_id);
    assert_eq!(by_id.client_order_id.as_deref(), Some("submit-1"));
    assert_matches_intent(&by_id, &intent);
    let by_client_order_id = fixture
        .writer
        .find_by_client_order_id(&fixture.account, &key("submit-1"))
        .await
        .unwrap();
    assert_eq!(by_client_order_id, Some(by_id));
}

async fn a_bracket_returns_three_orders_in_leg_order_all_findable(fixture: &Fixture) {
    let bracket = bracket(fixture);
    let placed = fixture
        .writer
        .submit_bracket(&bracket, &key("bracket-1"))
        .await
        .unwrap();
    assert_eq!(placed.len(), 3);
    let mut ids: Vec<_> = placed.iter().map(|order| order.order_id.clone()).collect();
    for (placed_order, leg) in placed.iter().zip(bracket.legs()) {
        let order = find(fixture, &placed_order.order_id).await;
        assert_matches_intent(&order, leg);
    }
    let parent = fixture
        .writer
        .find_by_client_order_id(&fixture.account, &key("bracket-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parent.order_id, placed[0].order_id, "the parent has the id");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every leg has its own id");
}

async fn bracket_children_name_their_parent_and_the_entry_names_none(fixture: &Fixture) {
    let placed = fixture
        .writer
        .submit_bracket(&bracket(fixture), &key("bracket-parent"))
        .await
        .unwrap();
    let [entry, take_profit, stop_loss] = placed.as_slice() else {
        panic!("a bracket places three orders: {placed:?}")
    };
    assert_eq!(
        find(fixture, &entry.order_id).await.parent_ref,
        None,
        "the entry hangs from nothing"
    );
    for child in [take_profit, stop_loss] {
        let order = find(fixture, &child.order_id).await;
        let parent = order
            .parent_ref
            .unwrap_or_else(|| panic!("bracket child {} reports no parent", child.order_id));
        // The reference is the broker's, as given: the entry's order id or its client order id.
        assert!(
            parent == entry.order_id.as_str() || parent == "bracket-parent",
            "child {} hangs from {parent}, not from the entry {}",
            child.order_id,
            entry.order_id
        );
    }
    let single = fixture
        .writer
        .submit(&limit(fixture, "1", "150.00"), &key("no-parent"))
        .await
        .unwrap();
    assert_eq!(find(fixture, &single.order_id).await.parent_ref, None);
}

async fn a_reused_client_order_id_is_rejected_and_places_nothing(fixture: &Fixture) {
    let first = fixture
        .writer
        .submit(&limit(fixture, "10", "190.00"), &key("once"))
        .await
        .unwrap();
    let again = fixture
        .writer
        .submit(&limit(fixture, "20", "191.00"), &key("once"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), ErrorCode::BrokerOrderRejected, "{again:?}");
    assert!(again.is_definitive());
    assert!(again.to_string().contains("already registered"), "{again}");
    let as_bracket = fixture
        .writer
        .submit_bracket(&bracket(fixture), &key("once"))
        .await
        .unwrap_err();
    assert_eq!(as_bracket.code(), ErrorCode::BrokerOrderRejected);
    let held = fixture
        .writer
        .find_by_client_order_id(&fixture.account, &key("once"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.order_id, first.order_id);
    assert_eq!(held.quantity, Quantity::parse("10").unwrap());
}

async fn modify_changes_only_quantity_prices_and_time_in_force(fixture: &Fixture) {
    let original = limit(fixture, "10", "190.00");
    let placed = fixture
        .writer
        .submit(&original, &key("modify-1"))
        .await
        .unwrap();
    let mut parts = original.parts();
    parts.quantity = Quantity::parse("7").unwrap();
    parts.limit_price = Some(price("188.25"));
    parts.time_in_force = TimeInForce::GoodTillCancelled;
    let replacement = OrderIntent::new(parts).unwrap();
    let modified = fixture
        .writer
        .modify(&placed.order_id, &replacement)
        .await
        .unwrap();
    assert_eq!(modified.order_id, placed.order_id);
    let order = find(fixture, &placed.order_id).await;
    assert_matches_intent(&order, &replacement);
    assert_eq!(order.client_order_id.as_deref(), Some("modify-1"));
    assert_eq!(order.status, placed.status);
}

async fn a_cancelled_order_reads_as_cancelled(fixture: &Fixture) {
    let placed = fixture
        .writer
        .submit(&limit(fixture, "10", "190.00"), &key("cancel-1"))
        .await
        .unwrap();
    let ack = fixture
        .writer
        .cancel(&fixture.account, &placed.order_id)
        .await
        .unwrap();
    assert_eq!(ack.order_id, placed.order_id);
    assert!(!ack.message.is_empty());
    let first = find(fixture, &placed.order_id).await.status;
    match fixture.cancel_completion {
        CancelCompletion::Immediate => assert_eq!(first, OrderStatus::Cancelled),
        CancelCompletion::Asynchronous => {
            assert!(
                matches!(first, OrderStatus::PendingCancel | OrderStatus::Cancelled),
                "a cancelled order reads {first:?}"
            );
            let mut status = first;
            for _ in 0..3 {
                if status == OrderStatus::Cancelled {
                    break;
                }
                status = find(fixture, &placed.order_id).await.status;
            }
            assert_eq!(status, OrderStatus::Cancelled, "the cancel never completed");
        }
    }
}

async fn unknown_order_ids_are_not_found(fixture: &Fixture) {
    let unknown = &fixture.unknown_order;
    let writer = &fixture.writer;
    assert_eq!(writer.order(&fixture.account, unknown).await, Ok(None));
    let error = writer.cancel(&fixture.account, unknown).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::OrderNotFound);
    let error = writer
        .modify(unknown, &limit(fixture, "1", "1"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::OrderNotFound);
    assert_eq!(
        writer
            .find_by_client_order_id(&fixture.account, &key("never-used"))
            .await,
        Ok(None)
    );
}

async fn orders_of_another_account_stay_invisible(fixture: &Fixture) {
    let placed = fixture
        .writer
        .submit(&limit(fixture, "10", "190.00"), &key("mine"))
        .await
        .unwrap();
    let other = &fixture.other_account;
    let writer = &fixture.writer;
    assert_eq!(writer.order(other, &placed.order_id).await, Ok(None));
    assert_eq!(
        writer.find_by_client_order_id(other, &key("mine")).await,
        Ok(None)
    );
    let error = writer.cancel(other, &placed.order_id).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::OrderNotFound);
    let foreign = limit_order(other, fixture.stock, "1", "1");
    let error = writer.modify(&placed.order_id, &foreign).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::OrderNotFound);
}

async fn every_error_is_definitive(fixture: &Fixture) {
    let writer = &fixture.writer;
    let placed = writer
        .submit(&limit(fixture, "10", "190.00"), &key("errors"))
        .await
        .unwrap();
    writer
        .cancel(&fixture.account, &placed.order_id)
        .await
        .unwrap();
    let errors = [
        writer
            .submit(&limit(fixture, "1", "1"), &key("errors"))
            .await
            .unwrap_err(),
        writer
            .cancel(&fixture.account, &fixture.unknown_order)
            .await
            .unwrap_err(),
        writer
            .modify(&fixture.unknown_order, &limit(fixture, "1", "1"))
            .await
            .unwrap_err(),
        // A finished order can change no more.
        writer
            .cancel(&fixture.account, &placed.order_id)
            .await
            .unwrap_err(),
        writer
            .modify(&placed.order_id, &limit(fixture, "1", "1"))
            .await
            .unwrap_err(),
    ];
    for error in errors {
        assert!(error.is_definitive(), "{error:?}");
    }
}

// -------------------------------------------------------------------------------------------
// The local-candidate writer's own promises
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn local_candidate_ids_are_deterministic_and_a_rejected_write_adds_nothing() {
    let writer = LocalCandidateWriter::new();
    assert_eq!(writer.name(), "local_candidate");
    let fixture = local_candidate().await;
    let placed = writer
        .submit(&limit(&fixture, "10", "190.00"), &key("k"))
        .await
        .unwrap();
    assert_eq!(placed.order_id.as_str(), "lc-1");
    assert_eq!(placed.status, OrderStatus::Submitted);
    let rejected = writer
        .submit(&limit(&fixture, "10", "190.00"), &key("k"))
        .await;
    assert!(matches!(rejected, Err(WriteError::Rejected { .. })));
    assert_eq!(
        writer.submitted_count(),
        1,
        "the book still holds one order"
    );
    let legs = writer
        .submit_bracket(&bracket(&fixture), &key("k-2"))
        .await
        .unwrap();
    let ids: Vec<_> = legs.iter().map(|leg| leg.order_id.as_str()).collect();
    assert_eq!(ids, ["lc-2", "lc-3", "lc-4"]);
    assert_eq!(
        legs[2].status,
        OrderStatus::PreSubmitted,
        "the stop-loss waits"
    );
    assert_eq!(writer.submitted_count(), 4);
}

// -------------------------------------------------------------------------------------------
// The local-candidate writer in live mode
// -------------------------------------------------------------------------------------------

fn live_account() -> AccountId {
    AccountId::parse(known_ids::LIVE_USD_ACCOUNT).unwrap()
}

fn aapl() -> ContractId {
    ContractId::new(known_ids::AAPL).unwrap()
}

fn live_parts(order_type: OrderType) -> IntentParts {
    IntentParts {
        order_type,
        limit_price: None,
        ..limit_order(&live_account(), aapl(), "10", "190").parts()
    }
}

#[tokio::test]
async fn local_candidate_live_and_paper_writers_on_one_book_never_share_ids_or_orders() {
    let book = LocalOrderBook::new();
    let paper = LocalCandidateWriter::with_book(book.clone());
    let live = LocalCandidateWriter::with_book_for_mode(book.clone(), WriterMode::Live);
    assert_eq!(paper.mode(), WriterMode::Paper);
    assert_eq!(live.mode(), WriterMode::Live);
    assert_eq!(
        LocalCandidateWriter::for_mode(WriterMode::Live).mode(),
        WriterMode::Live
    );
    let paper_account = AccountId::parse(known_ids::PAPER_USD_ACCOUNT).unwrap();
    let live_account = live_account();

    let paper_first = paper
        .submit(&limit_order(&paper_account, aapl(), "10", "190"), &key("k"))
        .await
        .unwrap();
    let live_first = live
        .submit(&limit_order(&live_account, aapl(), "10", "190"), &key("k"))
        .await
        .unwrap();
    let live_second = live
        .submit(
            &limit_order(&live_account, aapl(), "5", "189.5"),
            &key("k-2"),
        )
        .await
        .unwrap();
    let paper_second = paper
        .submit(
            &limit_order(&paper_account, aapl(), "1", "190"),
            &key("k-2"),
        )
        .await
        .unwrap();
    // Each mode counts on its own, so a live run's ids do not depend on paper activity.
    assert_eq!(
        [&paper_first, &live_first, &live_second, &paper_second]
            .map(|placed| placed.order_id.as_str()),
        ["lc-1", "lcl-1", "lcl-2", "lc-2"]
    );
    // A live writer is repeatable from a fresh book.
    let again = LocalCandidateWriter::for_mode(WriterMode::Live)
        .submit(&limit_order(&live_account, aapl(), "10", "190"), &key("k"))
        .await
        .unwrap();
    assert_eq!(again.order_id.as_str(), "lcl-1");

    // Each writer sees, changes and cancels only the orders of its own mode.
    let found = live
        .find_by_client_order_id(&live_account, &key("k"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.order_id, live_first.order_id);
    assert_eq!(
        live.order(&paper_account, &paper_first.order_id).await,
        Ok(None)
    );
    assert_eq!(
        live.cancel(&paper_account, &paper_first.order_id).await,
        Err(WriteError::OrderNotFound)
    );
    assert_eq!(
        paper.order(&live_account, &live_first.order_id).await,
        Ok(None)
    );
    assert_eq!(
        paper.cancel(&live_account, &live_first.order_id).await,
        Err(WriteError::OrderNotFound)
    );
    assert_eq!(
        paper
            .find_by_client_order_id(&live_account, &key("k"))
            .await,
        Ok(None)
    );
    let ack = live
        .cancel(&live_account, &live_first.order_id)
        .await
        .unwrap();
    assert_eq!(ack.order_id, live_first.order_id);
    // The book (what the fake broker lists) holds both, each in its account.
    assert_eq!(book.orders_of(&live_account).len(), 2);
    assert_eq!(book.orders_of(&paper_account).len(), 2);
}

#[tokio::test]
async fn local_candidate_live_refuses_market_and_unpriced_orders_and_paper_accounts() {
    let writer = LocalCandidateWriter::for_mode(WriterMode::Live);
    let market = OrderIntent::new(live_parts(OrderType::Market)).unwrap();
    let stop = OrderIntent::new(IntentParts {
        stop_price: Some(price("180")),
        ..live_parts(OrderType::Stop)
    })
    .unwrap();
    let bracket = BracketIntent::new(
        limit_order(&live_account(), aapl(), "10", "190"),
        price("210"),
        price("180"),
    )
    .unwrap();
    let paper_account = limit_order(
        &AccountId::parse(known_ids::PAPER_USD_ACCOUNT).unwrap(),
        aapl(),
        "10",
        "190",
    );
    let errors = [
        (
            writer.submit(&market, &key("k")).await.map(|_| ()),
            "market order",
        ),
        (
            writer.submit(&stop, &key("k")).await.map(|_| ()),
            "has no limit price",
        ),
        (
            writer.submit(&paper_account, &key("k")).await.map(|_| ()),
            "paper accounts",
        ),
    ];
    for (result, words) in errors {
        let error = result.unwrap_err();
        assert_eq!(error.code(), ErrorCode::OrderWriterRefused, "{error:?}");
        assert!(error.is_definitive());
        assert!(error.to_string().contains(words), "{error}");
    }
    assert_eq!(writer.submitted_count(), 0, "nothing reached the book");

    // A bracket's protective stop-loss is the one leg exempt from the limit-price rule.
    let legs = writer.submit_bracket(&bracket, &key("b")).await.unwrap();
    assert_eq!(legs.len(), 3);
    assert_eq!(writer.submitted_count(), 3);

    // A stop-limit has its limit price; a replacement must keep one.
    let stop_limit = OrderIntent::new(IntentParts {
        limit_price: Some(price("179.5")),
        stop_price: Some(price("180")),
        ..live_parts(OrderType::StopLimit)
    })
    .unwrap();
    let placed = writer.submit(&stop_limit, &key("k")).await.unwrap();
    assert_eq!(placed.order_id.as_str(), "lcl-4");
    for replacement in [&market, &stop] {
        let error = writer
            .modify(&placed.order_id, replacement)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::OrderWriterRefused, "{error:?}");
    }
    let unchanged = writer
        .order(&live_account(), &placed.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.order_type, OrderType::StopLimit);
    assert_eq!(unchanged.limit_price, Some(price("179.5")));
}

#[tokio::test]
async fn refusing_writer_for_live_reports_live_and_refuses() {
    let writer = RefusingOrderWriter::for_mode(WriterMode::Live);
    assert_eq!(writer.mode(), WriterMode::Live);
    let error = writer
        .submit(&limit_order(&live_account(), aapl(), "1", "190"), &key("k"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::OrderWriterRefused);
    assert!(error.to_string().contains("live"), "{error}");
}

// -------------------------------------------------------------------------------------------
// The Client Portal writer's own promises, on the gateway double
// -------------------------------------------------------------------------------------------

fn gateway(fixture: &Fixture) -> &CpOrderDouble {
    fixture.gateway.as_ref().unwrap()
}

#[tokio::test]
async fn client_portal_confirms_the_routine_prompt_and_places_each_order_once() {
    let fixture = client_portal().await;
    assert_eq!(fixture.writer.name(), "client_portal");
    let placed = fixture
        .writer
        .submit(&limit(&fixture, "10", "190.00"), &key("k"))
        .await
        .unwrap();
    assert_eq!(
        placed.confirmed_prompts,
        [cp_order_double::ROUTINE_PROMPT],
        "the gateway asked before placing"
    );
    assert_eq!(gateway(&fixture).order_count(), 1);
    let legs = fixture
        .writer
        .submit_bracket(&bracket(&fixture), &key("k-2"))
        .await
        .unwrap();
    assert!(
        legs.iter()
            .all(|leg| leg.confirmed_prompts == [cp_order_double::ROUTINE_PROMPT])
    );
    assert_eq!(
        gateway(&fixture).order_count(),
        4,
        "one request, three orders"
    );
    let rejected = fixture
        .writer
        .submit(&limit(&fixture, "10", "190.00"), &key("k"))
        .await;
    assert!(
        matches!(rejected, Err(WriteError::Rejected { .. })),
        "{rejected:?}"
    );
    assert_eq!(
        gateway(&fixture).order_count(),
        4,
        "a rejected write adds nothing"
    );
    assert_eq!(
        gateway(&fixture).open_questions(),
        0,
        "no question is left open"
    );
}

/// The status answer documents no client order id, stop price or parent (reference §6.2).
/// Against a gateway that sends only what is documented, the writer still reads the order and
/// reports what it was not told as unknown, never as a guess; the lookup by client order id
/// (from the live-order list, which documents `order_ref`) still finds the entry.
#[tokio::test]
async fn client_portal_reports_undocumented_status_fields_as_unknown_when_absent() {
    let fixture = client_portal_with(StatusFields::DocumentedOnly).await;
    let placed = fixture
        .writer
        .submit_bracket(&bracket(&fixture), &key("plain"))
        .await
        .unwrap();
    let entry = find(&fixture, &placed[0].order_id).await;
    assert_eq!(entry.client_order_id, None);
    assert_eq!(entry.limit_price, Some(price("190.00")));
    let stop_loss = find(&fixture, &placed[2].order_id).await;
    assert_eq!(stop_loss.order_type, OrderType::Stop);
    assert_eq!(stop_loss.stop_price, None);
    assert_eq!(stop_loss.parent_ref, None);
    let by_client_order_id = fixture
        .writer
        .find_by_client_order_id(&fixture.account, &key("plain"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_client_order_id.order_id, placed[0].order_id);
    assert_eq!(by_client_order_id.client_order_id.as_deref(), Some("plain"));
}

// -------------------------------------------------------------------------------------------
// The refusing writer
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn refusing_writer_refuses_every_write_definitively() {
    let fixture = local_candidate().await;
    let writer: Arc<dyn OrderWriter> = Arc::new(RefusingOrderWriter::new());
    assert_eq!(writer.name(), "refusing");
    let order_id = BrokerOrderId::parse("1").unwrap();
    let errors = [
        writer
            .submit(&limit(&fixture, "10", "190.00"), &key("k"))
            .await
            .unwrap_err(),
        writer
            .submit_bracket(&bracket(&fixture), &key("k"))
            .await
            .unwrap_err(),
        writer
            .modify(&order_id, &limit(&fixture, "1", "1"))
            .await
            .unwrap_err(),
        writer
            .cancel(&fixture.account, &order_id)
            .await
            .unwrap_err(),
    ];
    for error in errors {
        assert_eq!(error.code(), ErrorCode::OrderWriterRefused, "{error:?}");
        assert_eq!(error.code().as_str(), "ORDER_WRITER_REFUSED");
        assert!(error.is_definitive());
        assert!(error.to_string().contains("refusing"), "{error}");
    }
}

#[tokio::test]
async fn refusing_writer_never_finds_anything() {
    let fixture = local_candidate().await;
    let writer: Arc<dyn OrderWriter> = Arc::new(RefusingOrderWriter::new());
    let _ = writer
        .submit(&limit(&fixture, "10", "190.00"), &key("k"))
        .await;
    for raw in ["1", "lc-1", "1001"] {
        let order_id = BrokerOrderId::parse(raw).unwrap();
        assert_eq!(writer.order(&fixture.account, &order_id).await, Ok(None));
    }
    assert_eq!(
        writer
            .find_by_client_order_id(&fixture.account, &key("k"))
            .await,
        Ok(None)
    );
}

// -------------------------------------------------------------------------------------------
// The fake broker's what-if
// -------------------------------------------------------------------------------------------

fn fake_broker() -> FakeBroker {
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-27T15:30:17Z")
        .unwrap()
        .with_timezone(&Utc);
    FakeBroker::new(Arc::new(FixedClock::new(now)))
}

#[tokio::test]
async fn fake_what_if_of_ten_aapl_at_a_limit_is_deterministic() {
    let fixture = local_candidate().await;
    let fake = fake_broker();
    let legs = [limit(&fixture, "10", "190.00")];
    let what_if = fake.what_if(&fixture.account, &legs).await.unwrap();
    // Notional 1900.00 USD: commission is the 1.00 minimum; margin 25 % = 475.00, maintenance
    // 80 % of that = 380.00, on top of the account's 17153.92 and 14137.98; net liquidation
    // 146360.39 less the commission.
    let commission = what_if.commission.unwrap();
    assert_eq!(commission.amount(), dec("1.00"));
    assert_eq!(commission.currency().as_str(), "USD");
    assert_eq!(what_if.initial_margin_change, Some(dec("475.00")));
    assert_eq!(what_if.initial_margin_after, Some(dec("17628.92")));
    assert_eq!(what_if.maintenance_margin_change, Some(dec("380.00")));
    assert_eq!(what_if.maintenance_margin_after, Some(dec("14517.98")));
    assert_eq!(what_if.equity_after, Some(dec("146359.39")));
    assert!(what_if.warnings.is_empty(), "{:?}", what_if.warnings);
    assert_eq!(
        fake.what_if(&fixture.account, &legs).await.unwrap(),
        what_if
    );
}

#[tokio::test]
async fn fake_what_if_margins_a_bracket_on_its_entry_only() {
    let fixture = local_candidate().await;
    let fake = fake_broker();
    let bracket = bracket(&fixture);
    let entry_only = fake
        .what_if(&fixture.account, &bracket.legs()[..1])
        .await
        .unwrap();
    let whole = fake
        .what_if(&fixture.account, bracket.legs())
        .await
        .unwrap();
    assert_eq!(whole, entry_only);
}

#[tokio::test]
async fn fake_what_if_refuses_an_unknown_account() {
    let fake = fake_broker();
    let stranger = AccountId::parse("U1111111").unwrap();
    let legs = [limit_order(
        &stranger,
        ContractId::new(known_ids::AAPL).unwrap(),
        "10",
        "190.00",
    )];
    assert_eq!(
        fake.what_if(&stranger, &legs).await,
        Err(BrokerError::UnknownAccount)
    );
}

/// One fake world: the fake broker and the local-candidate writer on one shared book. A
/// what-if (the preview's broker call) must leave that book as it was; a submit adds to it,
/// and the fake lists the new order beside its seeded ones.
#[tokio::test]
async fn fake_what_if_leaves_the_shared_book_unchanged_while_a_submit_adds_to_it() {
    let fixture = local_candidate().await;
    let clock = Arc::new(FixedClock::new(
        DateTime::parse_from_rfc3339("2026-11-27T15:30:17Z")
            .unwrap()
            .with_timezone(&Utc),
    ));
    let book = LocalOrderBook::new();
    let fake = FakeBroker::new(clock).with_local_orders(Arc::new(book.clone()));
    let writer = LocalCandidateWriter::with_book(book.clone());
    let seeded = fake.live_orders(&fixture.account).await.unwrap();

    fake.what_if(&fixture.account, &[limit(&fixture, "10", "190.00")])
        .await
        .unwrap();
    fake.what_if(&fixture.account, bracket(&fixture).legs())
        .await
        .unwrap();
    assert!(book.is_empty(), "a what-if placed {} order(s)", book.len());
    assert_eq!(fake.live_orders(&fixture.account).await.unwrap(), seeded);

    let placed = writer
        .submit(&limit(&fixture, "10", "190.00"), &key("shared-1"))
        .await
        .unwrap();
    assert_eq!(book.len(), 1);
    let listed = fake.live_orders(&fixture.account).await.unwrap();
    assert_eq!(listed.len(), seeded.len() + 1);
    let last = listed.last().unwrap();
    assert_eq!(last.order_id, placed.order_id);
    assert_eq!(last.status, OrderStatus::Submitted);
}
