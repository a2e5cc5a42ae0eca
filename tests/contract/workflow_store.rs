//! The `WorkflowStore` contract: one set of expectations for every adapter (SQLite and
//! in-memory), then the SQLite store's own guarantees (restarts, file modes, edited rows,
//! path-free errors, atomicity across connections, live state and the order backlog across a
//! reopen).
//!
//! Each shared expectation is an async function over a [`Fixture`]; `workflow_contract_suite!`
//! turns the list into one multi-threaded test per expectation for an adapter.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::adapters::outbound::sqlite_workflow::SqliteWorkflowStore;
use ibkr_agent_gateway::domain::approval::{Approval, ApprovalStatus, ApproverKind};
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::audit::principal::PrincipalKind;
use ibkr_agent_gateway::domain::audit::{Actor, Surface};
use ibkr_agent_gateway::domain::idempotency::{
    Fingerprint, IdempotencyRecord, IdempotencyState, WriteOperation,
};
use ibkr_agent_gateway::domain::ids::{
    AccountId, ApprovalId, BrokerOrderId, ContractId, IdempotencyKey, PreviewId,
};
use ibkr_agent_gateway::domain::kill_switch::{
    HaltTrigger, KillSwitch, KillSwitchReason, SwitchActor,
};
use ibkr_agent_gateway::domain::money::{Currency, Money, Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderType, TimeInForce};
use ibkr_agent_gateway::domain::order_intent::{
    DigestKey, IntentParts, OrderDigest, OrderIntent, TrailingOffset,
};
use ibkr_agent_gateway::domain::order_lifecycle::{
    HistoryQuery, LifecycleEvent, LifecycleState, OrderHistoryEntry, PollState, TrackedOrder,
    TrackedOrderKey, TradingMode,
};
use ibkr_agent_gateway::domain::preview::{Preview, PreviewKind, WhatIf};
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::workflow_store::{
    BeginOutcome, InsertApproval, RecordKey, RiskCeiling, RiskEntry, RiskLimit, RiskTotals,
    StoreError, WorkflowStore,
};
use rust_decimal::Decimal;
use tempfile::TempDir;
use tokio::task::JoinSet;

const ACCOUNT: &str = "DU1234567";

/// An adapter under test.
struct Fixture {
    store: Arc<dyn WorkflowStore>,
    /// Keeps the SQLite file's directory alive for the test.
    _dir: Option<TempDir>,
}

fn memory() -> Fixture {
    Fixture {
        store: Arc::new(MemoryWorkflowStore::new()),
        _dir: None,
    }
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteWorkflowStore::open(&dir.path().join("workflow.sqlite3")).unwrap();
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// Declares one test per expectation for an adapter's fixture function.
macro_rules! workflow_contract_suite {
    ($adapter:ident => $($expectation:ident),+ $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $expectation() {
                    let fixture = super::$adapter();
                    super::$expectation(&fixture).await;
                }
            )+
        }
    };
}

workflow_contract_suite!(memory =>
    release_frees_the_key_and_the_approval,
    release_touches_only_the_pending_record_of_its_own_attempt,
    previews_round_trip,
    a_taken_preview_id_is_a_duplicate,
    approvals_round_trip,
    approvals_are_listed_newest_first_up_to_the_limit,
    begin_starts_exactly_once_under_a_race,
    begin_returns_the_existing_record,
    an_approval_backs_only_one_key,
    an_expired_or_closed_approval_cannot_begin,
    complete_consumes_the_approval_once,
    complete_accepts_a_record_under_review,
    fail_frees_the_approval,
    needs_review_keeps_the_approval_held,
    close_approval_changes_only_an_unheld_approved_approval,
    close_approval_refuses_other_target_statuses,
    finishing_a_missing_record_is_a_wrong_state,
    pending_lists_only_pending_oldest_first,
    a_preview_has_one_usable_or_used_approval,
    a_write_under_review_blocks_a_new_approval_past_expiry,
    completed_lists_an_operations_completed_records_newest_first,
    a_fresh_store_is_halted_and_stores_nothing,
    begin_live_checks_the_record_and_approval_before_the_switch,
    an_allowed_switch_starts_and_counts_the_entry,
    the_kill_switch_round_trips_its_actor_and_reason,
    each_risk_limit_refuses_alone_and_stores_nothing,
    window_and_session_starts_are_counted_apart,
    release_removes_the_entry_and_finishing_keeps_it,
    concurrent_live_begins_stop_at_the_ceiling,
    halting_after_allowing_refuses_new_live_begins,
    lifecycle_decimals_round_trip_exactly,
    a_terminal_order_leaves_the_backlog_and_stays_in_the_history,
    retracking_a_modified_order_refreshes_it_and_puts_it_back_in_the_backlog,
    updating_an_untracked_or_terminal_order_is_a_wrong_state,
    history_filters_by_account_time_and_state_newest_first,
    only_submit_records_issue_client_order_ids,
    the_rejection_streak_counts_and_an_acceptance_resets_it,
    completed_records_lists_every_account_and_operation_oldest_first,
    tracking_with_a_terminal_state_never_enters_the_backlog,
);

workflow_contract_suite!(sqlite =>
    release_frees_the_key_and_the_approval,
    release_touches_only_the_pending_record_of_its_own_attempt,
    previews_round_trip,
    a_taken_preview_id_is_a_duplicate,
    approvals_round_trip,
    approvals_are_listed_newest_first_up_to_the_limit,
    begin_starts_exactly_once_under_a_race,
    begin_returns_the_existing_record,
    an_approval_backs_only_one_key,
    an_expired_or_closed_approval_cannot_begin,
    complete_consumes_the_approval_once,
    complete_accepts_a_record_under_review,
    fail_frees_the_approval,
    needs_review_keeps_the_approval_held,
    close_approval_changes_only_an_unheld_approved_approval,
    close_approval_refuses_other_target_statuses,
    finishing_a_missing_record_is_a_wrong_state,
    pending_lists_only_pending_oldest_first,
    a_preview_has_one_usable_or_used_approval,
    a_write_under_review_blocks_a_new_approval_past_expiry,
    completed_lists_an_operations_completed_records_newest_first,
    a_fresh_store_is_halted_and_stores_nothing,
    begin_live_checks_the_record_and_approval_before_the_switch,
    an_allowed_switch_starts_and_counts_the_entry,
    the_kill_switch_round_trips_its_actor_and_reason,
    each_risk_limit_refuses_alone_and_stores_nothing,
    window_and_session_starts_are_counted_apart,
    release_removes_the_entry_and_finishing_keeps_it,
    concurrent_live_begins_stop_at_the_ceiling,
    halting_after_allowing_refuses_new_live_begins,
    lifecycle_decimals_round_trip_exactly,
    a_terminal_order_leaves_the_backlog_and_stays_in_the_history,
    retracking_a_modified_order_refreshes_it_and_puts_it_back_in_the_backlog,
    updating_an_untracked_or_terminal_order_is_a_wrong_state,
    history_filters_by_account_time_and_state_newest_first,
    only_submit_records_issue_client_order_ids,
    the_rejection_streak_counts_and_an_acceptance_resets_it,
    completed_records_lists_every_account_and_operation_oldest_first,
    tracking_with_a_terminal_state_never_enters_the_backlog,
);

// -------------------------------------------------------------------------------------------
// Builders
// -------------------------------------------------------------------------------------------

/// An approval `id` of the shared preview `prv_shared`, made at `t0 + offset` seconds.
fn shared(id: &str, offset: i64) -> Approval {
    Approval {
        preview_id: PreviewId::parse("prv_shared").unwrap(),
        ..approval(id, offset)
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap()
}

fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

fn leg(
    side: OrderSide,
    order_type: OrderType,
    limit: Option<&str>,
    stop: Option<&str>,
) -> OrderIntent {
    OrderIntent::new(IntentParts {
        account_id: account(),
        contract_id: ContractId::new(265_598).unwrap(),
        side,
        quantity: Quantity::parse("10").unwrap(),
        order_type,
        limit_price: limit.map(|raw| Price::parse(raw).unwrap()),
        stop_price: stop.map(|raw| Price::parse(raw).unwrap()),
        trailing: None,
        time_in_force: TimeInForce::GoodTillCancelled,
    })
    .unwrap()
}

/// A one-leg buy limit order at 200.
fn order_preview(id: &str) -> Preview {
    preview(
        id,
        PreviewKind::Order,
        vec![leg(OrderSide::Buy, OrderType::Limit, Some("200.00"), None)],
    )
}

/// The deployment key the test previews' digests are made with.
fn digest_key() -> DigestKey {
    DigestKey::derive(&ChainKey::new(&SecretBytes::new(vec![7; 32])).unwrap())
}

fn preview(id: &str, kind: PreviewKind, legs: Vec<OrderIntent>) -> Preview {
    Preview {
        id: PreviewId::parse(id).unwrap(),
        kind,
        digest: OrderDigest::keyed(&digest_key(), &legs),
        legs,
        symbol: "AAPL".to_owned(),
        what_if: WhatIf::default(),
        created_at: t0(),
        expires_at: t0() + Duration::seconds(300),
        created_by: Actor::LocalOperator,
        surface: Surface::Cli,
    }
}

/// An `approved` approval made at `t0 + offset` seconds, usable for 300 seconds, of its own
/// preview (`apr_x` approves `prv_x`).
fn approval(id: &str, offset: i64) -> Approval {
    let created_at = t0() + Duration::seconds(offset);
    Approval {
        id: ApprovalId::parse(id).unwrap(),
        preview_id: PreviewId::parse(&id.replacen("apr_", "prv_", 1)).unwrap(),
        account_id: account(),
        digest: order_preview("prv_1").digest,
        status: ApprovalStatus::Approved,
        created_by: Actor::LocalOperator,
        approver: ApproverKind::Operator,
        surface: Surface::Cli,
        created_at,
        expires_at: created_at + Duration::seconds(300),
        closed_at: None,
    }
}

/// A pending record under `key`, started at `t0 + 10s`, naming `approval` if given.
fn record(key: &str, approval: Option<&str>) -> IdempotencyRecord {
    IdempotencyRecord {
        account_id: account(),
        operation: WriteOperation::PaperSubmit,
        key: IdempotencyKey::parse(key).unwrap(),
        fingerprint: Fingerprint::of(&["paper_submit", key]),
        approval_id: approval.map(|id| ApprovalId::parse(id).unwrap()),
        state: IdempotencyState::Pending,
        outcome: None,
        started_at: t0() + Duration::seconds(10),
        finished_at: None,
    }
}

fn key_of(record: &IdempotencyRecord) -> RecordKey {
    RecordKey {
        account_id: record.account_id.clone(),
        operation: record.operation,
        key: record.key.clone(),
    }
}

fn approval_id(id: &str) -> ApprovalId {
    ApprovalId::parse(id).unwrap()
}

async fn status_of(store: &dyn WorkflowStore, id: &str) -> ApprovalStatus {
    store
        .approval(&approval_id(id))
        .await
        .unwrap()
        .unwrap()
        .status
}

// -------------------------------------------------------------------------------------------
// Expectations
// -------------------------------------------------------------------------------------------

async fn previews_round_trip(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let usd = Currency::parse("USD").unwrap();

    let mut order = order_preview("prv_order");
    order.what_if = WhatIf {
        commission: Some(Money::parse("1.050", usd).unwrap()),
        initial_margin_change: Some(Decimal::new(-12_345, 2)),
        initial_margin_after: Some(Decimal::new(500_000, 1)),
        maintenance_margin_change: None,
        maintenance_margin_after: Some(Decimal::ONE),
        equity_after: Some(Decimal::new(99_999_999, 4)),
        warnings: vec!["margin is \"tight\"\nsecond line".to_owned()],
    };
    order.created_by = Actor::RemoteSubject {
        subject_hash: "0123abcd".to_owned(),
    };
    order.surface = Surface::McpHttp;
    order.created_at += Duration::nanoseconds(123_456_789);

    let bracket = preview(
        "prv_bracket",
        PreviewKind::Bracket,
        vec![
            leg(OrderSide::Buy, OrderType::Limit, Some("200"), None),
            leg(OrderSide::Sell, OrderType::Limit, Some("210.5"), None),
            leg(OrderSide::Sell, OrderType::Stop, None, Some("190")),
        ],
    );

    let trailing = OrderIntent::new(IntentParts {
        order_type: OrderType::TrailingStop,
        limit_price: None,
        stop_price: Some(Price::parse("180").unwrap()),
        trailing: Some(TrailingOffset::Percent(Decimal::new(15, 1))),
        ..leg(OrderSide::Sell, OrderType::Limit, Some("1"), None).parts()
    })
    .unwrap();
    let mut modify = preview(
        "prv_modify",
        PreviewKind::Modify {
            order_id: BrokerOrderId::parse("1234567890").unwrap(),
        },
        vec![trailing],
    );
    modify.surface = Surface::Sdk;
    modify.created_by = Actor::System;

    for preview in [&order, &bracket, &modify] {
        store.insert_preview(preview).await.unwrap();
    }
    for preview in [&order, &bracket, &modify] {
        let loaded = store.preview(&preview.id).await.unwrap().unwrap();
        assert_eq!(&loaded, preview);
        assert!(loaded.digest_matches(&digest_key()), "{}", preview.id);
    }
    assert_eq!(bracket.legs.len(), 3);
    assert_eq!(
        store
            .preview(&PreviewId::parse("prv_missing").unwrap())
            .await,
        Ok(None)
    );
}

async fn a_taken_preview_id_is_a_duplicate(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store.insert_preview(&order_preview("prv_1")).await.unwrap();
    let mut other = order_preview("prv_1");
    other.symbol = "MSFT".to_owned();
    assert_eq!(
        store.insert_preview(&other).await,
        Err(StoreError::Duplicate)
    );
    assert_eq!(
        store.preview(&other.id).await.unwrap().unwrap().symbol,
        "AAPL"
    );
    store.insert_approval(&approval("apr_1", 0)).await.unwrap();
    assert_eq!(
        store.insert_approval(&approval("apr_1", 5)).await,
        Err(StoreError::Duplicate)
    );
}

async fn approvals_round_trip(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let open = approval("apr_open", 0);
    let closed = Approval {
        status: ApprovalStatus::Revoked,
        closed_at: Some(t0() + Duration::nanoseconds(1)),
        created_by: Actor::RemoteSubject {
            subject_hash: "feed".to_owned(),
        },
        approver: ApproverKind::Agent,
        surface: Surface::McpStdio,
        ..approval("apr_closed", 1)
    };
    for approval in [&open, &closed] {
        store.insert_approval(approval).await.unwrap();
        assert_eq!(
            store.approval(&approval.id).await.unwrap().as_ref(),
            Some(approval)
        );
    }
    assert_eq!(store.approval(&approval_id("apr_missing")).await, Ok(None));
}

async fn approvals_are_listed_newest_first_up_to_the_limit(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    // Inserted out of order; two share a creation time and are ordered by id, descending.
    for (id, offset) in [
        ("apr_b", 20),
        ("apr_a", 10),
        ("apr_d", 30),
        ("apr_c", 30),
        ("apr_e", 0),
    ] {
        store.insert_approval(&approval(id, offset)).await.unwrap();
    }
    let ids = |approvals: Vec<Approval>| -> Vec<String> {
        approvals
            .into_iter()
            .map(|approval| approval.id.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        ids(store.approvals(10).await.unwrap()),
        ["apr_d", "apr_c", "apr_b", "apr_a", "apr_e"]
    );
    assert_eq!(ids(store.approvals(2).await.unwrap()), ["apr_d", "apr_c"]);
    assert!(store.approvals(0).await.unwrap().is_empty());
}

async fn begin_starts_exactly_once_under_a_race(fixture: &Fixture) {
    let record = record("race-1", None);
    let mut tasks = JoinSet::new();
    for _ in 0..16 {
        let (store, record) = (Arc::clone(&fixture.store), record.clone());
        tasks.spawn(async move { store.begin(&record).await });
    }
    let mut started = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap().unwrap() {
            BeginOutcome::Started => started += 1,
            BeginOutcome::Existing(existing) => assert_eq!(existing, record),
            other => panic!("a plain begin answered {other:?}"),
        }
    }
    assert_eq!(started, 1);
}

async fn begin_returns_the_existing_record(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let first = record("k-1", None);
    assert_eq!(store.begin(&first).await, Ok(BeginOutcome::Started));
    // A different request under the same key changes nothing and sees the stored record.
    let other = IdempotencyRecord {
        fingerprint: Fingerprint::of(&["other"]),
        ..first.clone()
    };
    assert_eq!(
        store.begin(&other).await,
        Ok(BeginOutcome::Existing(first.clone()))
    );
    assert_eq!(
        store.idempotency(&key_of(&first)).await,
        Ok(Some(first.clone()))
    );
    // The same key under another operation is another record.
    let modify = IdempotencyRecord {
        operation: WriteOperation::PaperModify,
        ..first.clone()
    };
    assert_eq!(store.begin(&modify).await, Ok(BeginOutcome::Started));
    let missing = RecordKey {
        operation: WriteOperation::PaperCancel,
        ..key_of(&first)
    };
    assert_eq!(store.idempotency(&missing).await, Ok(None));
}

async fn an_approval_backs_only_one_key(fixture: &Fixture) {
    store_approval(fixture, "apr_1").await;
    let mut tasks = JoinSet::new();
    for key in ["k-a", "k-b"] {
        let (store, record) = (Arc::clone(&fixture.store), record(key, Some("apr_1")));
        tasks.spawn(async move { store.begin(&record).await });
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.unwrap().unwrap());
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|outcome| **outcome == BeginOutcome::Started)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|outcome| **outcome == BeginOutcome::ApprovalUnavailable)
            .count(),
        1,
        "{outcomes:?}"
    );
    // The refused key left no record behind.
    let mut stored = 0;
    for key in ["k-a", "k-b"] {
        if fixture
            .store
            .idempotency(&key_of(&record(key, None)))
            .await
            .unwrap()
            .is_some()
        {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(
        status_of(fixture.store.as_ref(), "apr_1").await,
        ApprovalStatus::Approved
    );
}

async fn an_expired_or_closed_approval_cannot_begin(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    // Expired by the clock: the record starts at the approval's expiry.
    let mut stale = approval("apr_stale", 0);
    stale.expires_at = record("k", None).started_at;
    store.insert_approval(&stale).await.unwrap();
    assert_eq!(
        store.begin(&record("k-stale", Some("apr_stale"))).await,
        Ok(BeginOutcome::ApprovalUnavailable)
    );
    // Closed in the store.
    for (id, status) in [
        ("apr_revoked", ApprovalStatus::Revoked),
        ("apr_expired", ApprovalStatus::Expired),
    ] {
        store_approval(fixture, id).await;
        assert!(
            store
                .close_approval(&approval_id(id), status, t0())
                .await
                .unwrap()
        );
        assert_eq!(
            store.begin(&record(&format!("k-{id}"), Some(id))).await,
            Ok(BeginOutcome::ApprovalUnavailable)
        );
    }
    // Unknown.
    assert_eq!(
        store.begin(&record("k-unknown", Some("apr_unknown"))).await,
        Ok(BeginOutcome::ApprovalUnavailable)
    );
    assert!(store.pending().await.unwrap().is_empty());
}

async fn complete_consumes_the_approval_once(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store_approval(fixture, "apr_1").await;
    let first = record("k-1", Some("apr_1"));
    let key = key_of(&first);
    assert_eq!(store.begin(&first).await, Ok(BeginOutcome::Started));
    let done = t0() + Duration::seconds(11);
    store
        .complete(&key, r#"{"order_id":"1"}"#, done)
        .await
        .unwrap();

    let stored = store.idempotency(&key).await.unwrap().unwrap();
    assert_eq!(stored.state, IdempotencyState::Completed);
    assert_eq!(stored.outcome.as_deref(), Some(r#"{"order_id":"1"}"#));
    assert_eq!(stored.finished_at, Some(done));
    let approval = store
        .approval(&approval_id("apr_1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approval.status, ApprovalStatus::Consumed);
    assert_eq!(approval.closed_at, Some(done));

    assert_eq!(
        store.complete(&key, "again", done).await,
        Err(StoreError::WrongState)
    );
    assert_eq!(
        store.fail(&key, "late", done).await,
        Err(StoreError::WrongState)
    );
    assert_eq!(
        store.begin(&record("k-2", Some("apr_1"))).await,
        Ok(BeginOutcome::ApprovalUnavailable)
    );
    assert!(
        !store
            .close_approval(&approval_id("apr_1"), ApprovalStatus::Revoked, done)
            .await
            .unwrap()
    );
}

async fn complete_accepts_a_record_under_review(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store_approval(fixture, "apr_1").await;
    let record = record("k-1", Some("apr_1"));
    let key = key_of(&record);
    store.begin(&record).await.unwrap();
    store
        .mark_needs_review(&key, t0() + Duration::seconds(20))
        .await
        .unwrap();
    store
        .complete(&key, "found", t0() + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        store.idempotency(&key).await.unwrap().unwrap().state,
        IdempotencyState::Completed
    );
    assert_eq!(status_of(store, "apr_1").await, ApprovalStatus::Consumed);
}

async fn fail_frees_the_approval(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store_approval(fixture, "apr_1").await;
    let first = record("k-1", Some("apr_1"));
    assert_eq!(store.begin(&first).await, Ok(BeginOutcome::Started));
    let failed_at = t0() + Duration::seconds(11);
    store
        .fail(&key_of(&first), r#"{"error":"refused"}"#, failed_at)
        .await
        .unwrap();
    let stored = store.idempotency(&key_of(&first)).await.unwrap().unwrap();
    assert_eq!(stored.state, IdempotencyState::Failed);
    assert_eq!(stored.finished_at, Some(failed_at));
    assert_eq!(status_of(store, "apr_1").await, ApprovalStatus::Approved);

    // Only a pending record can fail.
    assert_eq!(
        store.fail(&key_of(&first), "again", failed_at).await,
        Err(StoreError::WrongState)
    );
    assert_eq!(
        store.mark_needs_review(&key_of(&first), failed_at).await,
        Err(StoreError::WrongState)
    );
    // A new key may use the freed approval; the failed key replays its failure.
    assert_eq!(
        store.begin(&record("k-2", Some("apr_1"))).await,
        Ok(BeginOutcome::Started)
    );
    assert!(matches!(
        store.begin(&first).await,
        Ok(BeginOutcome::Existing(IdempotencyRecord {
            state: IdempotencyState::Failed,
            ..
        }))
    ));
}

async fn release_frees_the_key_and_the_approval(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store_approval(fixture, "apr_1").await;
    let first = record("k-1", Some("apr_1"));
    assert_eq!(store.begin(&first).await, Ok(BeginOutcome::Started));
    // While pending, the approval backs no other key.
    assert_eq!(
        store.begin(&record("k-2", Some("apr_1"))).await,
        Ok(BeginOutcome::ApprovalUnavailable)
    );
    store
        .release(&key_of(&first), first.started_at)
        .await
        .unwrap();
    // No record and no outcome: the same key starts afresh, with the same approval.
    assert_eq!(store.idempotency(&key_of(&first)).await, Ok(None));
    assert!(store.pending().await.unwrap().is_empty());
    assert_eq!(status_of(store, "apr_1").await, ApprovalStatus::Approved);
    let retry = IdempotencyRecord {
        started_at: first.started_at + Duration::seconds(5),
        ..first.clone()
    };
    assert_eq!(store.begin(&retry).await, Ok(BeginOutcome::Started));
    store
        .complete(&key_of(&retry), "{}", retry.started_at)
        .await
        .unwrap();
    assert_eq!(status_of(store, "apr_1").await, ApprovalStatus::Consumed);
}

async fn release_touches_only_the_pending_record_of_its_own_attempt(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store_approval(fixture, "apr_1").await;
    let first = record("k-1", Some("apr_1"));
    // Nothing under the key.
    assert_eq!(
        store.release(&key_of(&first), first.started_at).await,
        Err(StoreError::WrongState)
    );
    store.begin(&first).await.unwrap();
    // Another attempt's start time: not this attempt's record.
    assert_eq!(
        store
            .release(&key_of(&first), first.started_at + Duration::seconds(1))
            .await,
        Err(StoreError::WrongState)
    );
    // Finished records stay: recovery or another process got there first.
    store
        .mark_needs_review(&key_of(&first), t0() + Duration::seconds(20))
        .await
        .unwrap();
    assert_eq!(
        store.release(&key_of(&first), first.started_at).await,
        Err(StoreError::WrongState)
    );
    let stored = store.idempotency(&key_of(&first)).await.unwrap().unwrap();
    assert_eq!(stored.state, IdempotencyState::NeedsReview);
    assert_eq!(
        store.begin(&record("k-2", Some("apr_1"))).await,
        Ok(BeginOutcome::ApprovalUnavailable),
        "the approval stays held"
    );
    let done = record("k-3", None);
    store.begin(&done).await.unwrap();
    store
        .complete(&key_of(&done), "{}", t0() + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        store.release(&key_of(&done), done.started_at).await,
        Err(StoreError::WrongState)
    );
    assert!(store.idempotency(&key_of(&done)).await.unwrap().is_some());
}

async fn needs_review_keeps_the_approval_held(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store_approval(fixture, "apr_1").await;
    let first = record("k-1", Some("apr_1"));
    store.begin(&first).await.unwrap();
    store
        .mark_needs_review(&key_of(&first), t0() + Duration::seconds(20))
        .await
        .unwrap();
    assert_eq!(
        store
            .idempotency(&key_of(&first))
            .await
            .unwrap()
            .unwrap()
            .state,
        IdempotencyState::NeedsReview
    );
    assert_eq!(
        store.begin(&record("k-2", Some("apr_1"))).await,
        Ok(BeginOutcome::ApprovalUnavailable)
    );
    assert!(
        !store
            .close_approval(&approval_id("apr_1"), ApprovalStatus::Revoked, t0())
            .await
            .unwrap()
    );
    // Under review, the outcome is unknown: it cannot be declared failed, nor flagged twice.
    assert_eq!(
        store.fail(&key_of(&first), "no", t0()).await,
        Err(StoreError::WrongState)
    );
    assert_eq!(
        store.mark_needs_review(&key_of(&first), t0()).await,
        Err(StoreError::WrongState)
    );
    assert!(store.pending().await.unwrap().is_empty());
    assert_eq!(status_of(store, "apr_1").await, ApprovalStatus::Approved);
}

async fn close_approval_changes_only_an_unheld_approved_approval(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let closed_at = t0() + Duration::seconds(5);

    store_approval(fixture, "apr_free").await;
    assert!(
        store
            .close_approval(&approval_id("apr_free"), ApprovalStatus::Revoked, closed_at)
            .await
            .unwrap()
    );
    let revoked = store
        .approval(&approval_id("apr_free"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.status, ApprovalStatus::Revoked);
    assert_eq!(revoked.closed_at, Some(closed_at));
    // Already closed: no change, and the first close is kept.
    assert!(
        !store
            .close_approval(&approval_id("apr_free"), ApprovalStatus::Expired, t0())
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .approval(&approval_id("apr_free"))
            .await
            .unwrap()
            .unwrap(),
        revoked
    );

    // Held by a pending write: no change; freed by its failure: closable.
    store_approval(fixture, "apr_held").await;
    let held = record("k-held", Some("apr_held"));
    store.begin(&held).await.unwrap();
    assert!(
        !store
            .close_approval(&approval_id("apr_held"), ApprovalStatus::Expired, closed_at)
            .await
            .unwrap()
    );
    assert_eq!(status_of(store, "apr_held").await, ApprovalStatus::Approved);
    store
        .fail(&key_of(&held), "refused", closed_at)
        .await
        .unwrap();
    assert!(
        store
            .close_approval(&approval_id("apr_held"), ApprovalStatus::Expired, closed_at)
            .await
            .unwrap()
    );
    assert_eq!(status_of(store, "apr_held").await, ApprovalStatus::Expired);

    // Unknown: no change.
    assert!(
        !store
            .close_approval(&approval_id("apr_unknown"), ApprovalStatus::Revoked, t0())
            .await
            .unwrap()
    );
}

async fn close_approval_refuses_other_target_statuses(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store_approval(fixture, "apr_1").await;
    for status in [ApprovalStatus::Approved, ApprovalStatus::Consumed] {
        assert_eq!(
            store
                .close_approval(&approval_id("apr_1"), status, t0())
                .await,
            Err(StoreError::WrongState)
        );
    }
    assert_eq!(status_of(store, "apr_1").await, ApprovalStatus::Approved);
}

async fn finishing_a_missing_record_is_a_wrong_state(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let key = key_of(&record("k-missing", None));
    assert_eq!(
        store.complete(&key, "x", t0()).await,
        Err(StoreError::WrongState)
    );
    assert_eq!(
        store.fail(&key, "x", t0()).await,
        Err(StoreError::WrongState)
    );
    assert_eq!(
        store.mark_needs_review(&key, t0()).await,
        Err(StoreError::WrongState)
    );
}

async fn pending_lists_only_pending_oldest_first(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let at = |key: &str, offset: i64| IdempotencyRecord {
        started_at: t0() + Duration::seconds(offset),
        ..record(key, None)
    };
    // Inserted out of order; `k-b` and `k-c` tie on time and are ordered by key.
    let records = [
        at("k-c", 20),
        at("k-a", 30),
        at("k-b", 20),
        at("k-d", 10),
        at("k-done", 5),
        at("k-failed", 6),
        at("k-review", 7),
    ];
    for record in &records {
        assert_eq!(store.begin(record).await, Ok(BeginOutcome::Started));
    }
    let key = |name: &str| key_of(&record(name, None));
    store.complete(&key("k-done"), "ok", t0()).await.unwrap();
    store.fail(&key("k-failed"), "no", t0()).await.unwrap();
    store
        .mark_needs_review(&key("k-review"), t0())
        .await
        .unwrap();

    let pending = store.pending().await.unwrap();
    let keys: Vec<&str> = pending.iter().map(|record| record.key.as_str()).collect();
    assert_eq!(keys, ["k-d", "k-b", "k-c", "k-a"]);
    assert!(
        pending
            .iter()
            .all(|record| record.state == IdempotencyState::Pending && record.outcome.is_none())
    );
}

async fn a_preview_has_one_usable_or_used_approval(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let refused = Ok(InsertApproval::PreviewAlreadyApproved);
    assert_eq!(
        store.insert_approval(&shared("apr_1", 0)).await,
        Ok(InsertApproval::Inserted)
    );
    // A usable approval blocks another.
    assert_eq!(store.insert_approval(&shared("apr_2", 10)).await, refused);
    // Past its expiry but held by a write: still blocks (the order may be at the broker).
    let write = record("k-1", Some("apr_1"));
    assert_eq!(store.begin(&write).await, Ok(BeginOutcome::Started));
    assert_eq!(store.insert_approval(&shared("apr_3", 400)).await, refused);
    // The write failed (the broker did not act): the approval expired unused.
    store.fail(&key_of(&write), "{}", t0()).await.unwrap();
    assert_eq!(
        store.insert_approval(&shared("apr_4", 400)).await,
        Ok(InsertApproval::Inserted)
    );
    // A consumed approval blocks for good.
    let write = record("k-4", Some("apr_4"));
    assert_eq!(store.begin(&write).await, Ok(BeginOutcome::Started));
    store.complete(&key_of(&write), "{}", t0()).await.unwrap();
    assert_eq!(
        store.insert_approval(&shared("apr_5", 100_000)).await,
        refused
    );
    // A revoked one does not, on another preview.
    store_approval(fixture, "apr_r").await;
    assert!(
        store
            .close_approval(&approval_id("apr_r"), ApprovalStatus::Revoked, t0())
            .await
            .unwrap()
    );
    let again = Approval {
        id: approval_id("apr_r2"),
        ..approval("apr_r", 1)
    };
    assert_eq!(
        store.insert_approval(&again).await,
        Ok(InsertApproval::Inserted)
    );
    for refused_id in ["apr_2", "apr_3", "apr_5"] {
        assert_eq!(store.approval(&approval_id(refused_id)).await, Ok(None));
    }
}

async fn a_write_under_review_blocks_a_new_approval_past_expiry(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let refused = Ok(InsertApproval::PreviewAlreadyApproved);
    assert_eq!(
        store.insert_approval(&shared("apr_1", 0)).await,
        Ok(InsertApproval::Inserted)
    );
    let write = record("k-1", Some("apr_1"));
    assert_eq!(store.begin(&write).await, Ok(BeginOutcome::Started));
    store
        .mark_needs_review(&key_of(&write), t0() + Duration::seconds(20))
        .await
        .unwrap();
    // Its outcome is unknown, so the order may be at the broker: long past the approval's
    // expiry, it still blocks, and it cannot be closed.
    assert_eq!(
        store.insert_approval(&shared("apr_2", 100_000)).await,
        refused
    );
    assert!(
        !store
            .close_approval(
                &approval_id("apr_1"),
                ApprovalStatus::Expired,
                t0() + Duration::seconds(100_000)
            )
            .await
            .unwrap()
    );
    // Once it completes, the approval is consumed and blocks for good.
    store.complete(&key_of(&write), "{}", t0()).await.unwrap();
    assert_eq!(
        store.insert_approval(&shared("apr_3", 200_000)).await,
        refused
    );
    for refused_id in ["apr_2", "apr_3"] {
        assert_eq!(store.approval(&approval_id(refused_id)).await, Ok(None));
    }
}

async fn completed_lists_an_operations_completed_records_newest_first(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    for (key, finished) in [("k-old", 1), ("k-new", 2), ("k-open", 0)] {
        let write = IdempotencyRecord {
            operation: WriteOperation::PaperBracketSubmit,
            ..record(key, None)
        };
        store.begin(&write).await.unwrap();
        if finished > 0 {
            store
                .complete(&key_of(&write), key, t0() + Duration::seconds(finished))
                .await
                .unwrap();
        }
    }
    store.begin(&record("k-submit", None)).await.unwrap();
    store
        .complete(&key_of(&record("k-submit", None)), "{}", t0())
        .await
        .unwrap();
    let keys: Vec<String> = store
        .completed(&account(), WriteOperation::PaperBracketSubmit)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.key.as_str().to_owned())
        .collect();
    assert_eq!(keys, ["k-new", "k-old"]);
    let other = AccountId::parse("DU7654320").unwrap();
    assert_eq!(
        store
            .completed(&other, WriteOperation::PaperBracketSubmit)
            .await,
        Ok(Vec::new())
    );
}

// -------------------------------------------------------------------------------------------
// Live state: the kill switch and the risk counters
// -------------------------------------------------------------------------------------------

/// A live submit under `key`, started at `t0 + offset` seconds, naming no approval.
fn live_record(key: &str, offset: i64) -> IdempotencyRecord {
    IdempotencyRecord {
        operation: WriteOperation::LiveSubmit,
        fingerprint: Fingerprint::of(&["live_submit", key]),
        started_at: t0() + Duration::seconds(offset),
        ..record(key, None)
    }
}

fn entry(orders: u64, notional: &str) -> RiskEntry {
    RiskEntry {
        orders,
        notional: Decimal::from_str_exact(notional).unwrap(),
    }
}

/// A ceiling no test entry reaches: the window and the session both start an hour before `t0`.
fn roomy() -> RiskCeiling {
    RiskCeiling {
        window_start: t0() - Duration::hours(1),
        session_start: t0() - Duration::hours(1),
        max_window_orders: 1_000,
        max_session_orders: 1_000,
        max_session_notional: Decimal::from(1_000_000),
    }
}

fn operator_switch(allow: bool, offset: i64, reason: &str) -> KillSwitch {
    let by = SwitchActor {
        actor: Actor::LocalOperator,
        kind: PrincipalKind::Operator,
    };
    let (at, reason) = (
        t0() + Duration::seconds(offset),
        KillSwitchReason::parse(reason).unwrap(),
    );
    if allow {
        KillSwitch::WritesAllowed { by, at, reason }
    } else {
        KillSwitch::Halted {
            by,
            at,
            reason,
            trigger: None,
        }
    }
}

/// The totals since an hour before `t0` (window and session alike).
async fn totals_since_an_hour_before(store: &dyn WorkflowStore) -> RiskTotals {
    let start = t0() - Duration::hours(1);
    store.risk_totals(start, start).await.unwrap()
}

fn totals(orders: u64, notional: &str) -> RiskTotals {
    RiskTotals {
        window_orders: orders,
        session_orders: orders,
        session_notional: Decimal::from_str_exact(notional).unwrap(),
    }
}

async fn a_fresh_store_is_halted_and_stores_nothing(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    assert_eq!(store.kill_switch().await, Ok(None));
    let first = live_record("live-1", 0);
    assert_eq!(
        store.begin_live(&first, &entry(1, "100"), &roomy()).await,
        Ok(BeginOutcome::Halted)
    );
    assert_eq!(store.idempotency(&key_of(&first)).await, Ok(None));
    assert!(store.pending().await.unwrap().is_empty());
    assert_eq!(totals_since_an_hour_before(store).await, totals(0, "0"));
}

async fn begin_live_checks_the_record_and_approval_before_the_switch(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    // Halted (nothing stored), yet a taken key still answers with its record ...
    let taken = live_record("live-taken", 0);
    assert_eq!(store.begin(&taken).await, Ok(BeginOutcome::Started));
    assert_eq!(
        store.begin_live(&taken, &entry(1, "1"), &roomy()).await,
        Ok(BeginOutcome::Existing(taken.clone()))
    );
    // ... and a missing approval is reported as such.
    let unapproved = IdempotencyRecord {
        approval_id: Some(approval_id("apr_missing")),
        ..live_record("live-unapproved", 0)
    };
    assert_eq!(
        store
            .begin_live(&unapproved, &entry(1, "1"), &roomy())
            .await,
        Ok(BeginOutcome::ApprovalUnavailable)
    );
    // A usable approval passes on to the switch.
    store_approval(fixture, "apr_1").await;
    let approved = IdempotencyRecord {
        approval_id: Some(approval_id("apr_1")),
        ..live_record("live-approved", 0)
    };
    assert_eq!(
        store.begin_live(&approved, &entry(1, "1"), &roomy()).await,
        Ok(BeginOutcome::Halted)
    );
    assert_eq!(totals_since_an_hour_before(store).await, totals(0, "0"));
}

async fn an_allowed_switch_starts_and_counts_the_entry(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store
        .set_kill_switch(&operator_switch(true, 0, "drill done"))
        .await
        .unwrap();
    let first = live_record("live-1", 0);
    assert_eq!(
        store
            .begin_live(&first, &entry(3, "1234.5678"), &roomy())
            .await,
        Ok(BeginOutcome::Started)
    );
    assert_eq!(
        store.idempotency(&key_of(&first)).await,
        Ok(Some(first.clone()))
    );
    assert_eq!(
        totals_since_an_hour_before(store).await,
        totals(3, "1234.5678")
    );
    // A retry under the same key sees the record and counts nothing more.
    assert_eq!(
        store
            .begin_live(&first, &entry(3, "1234.5678"), &roomy())
            .await,
        Ok(BeginOutcome::Existing(first.clone()))
    );
    let second = live_record("live-2", 1);
    assert_eq!(
        store
            .begin_live(&second, &entry(1, "0.0022"), &roomy())
            .await,
        Ok(BeginOutcome::Started)
    );
    // Exact decimal sums: no float rounding.
    assert_eq!(
        totals_since_an_hour_before(store).await,
        totals(4, "1234.5700")
    );
}

async fn the_kill_switch_round_trips_its_actor_and_reason(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let allowed = operator_switch(true, 0, "checked the limits");
    store.set_kill_switch(&allowed).await.unwrap();
    assert_eq!(store.kill_switch().await, Ok(Some(allowed)));
    let halted_by_agent = KillSwitch::Halted {
        by: SwitchActor {
            actor: Actor::RemoteSubject {
                subject_hash: "ab".repeat(16),
            },
            kind: PrincipalKind::Agent,
        },
        at: t0() + Duration::nanoseconds(1_500),
        reason: KillSwitchReason::parse("the agent saw a fill it did not expect").unwrap(),
        trigger: None,
    };
    store.set_kill_switch(&halted_by_agent).await.unwrap();
    assert_eq!(store.kill_switch().await, Ok(Some(halted_by_agent)));
    for trigger in HaltTrigger::ALL {
        let automatic = KillSwitch::auto_halt(
            t0() + Duration::seconds(2),
            trigger,
            KillSwitchReason::parse("the gateway halted by itself").unwrap(),
        );
        store.set_kill_switch(&automatic).await.unwrap();
        let stored = store.kill_switch().await.unwrap().unwrap();
        assert_eq!(stored.trigger(), Some(trigger));
        assert_eq!(stored, automatic);
    }
    let fresh = KillSwitch::fresh(t0());
    store.set_kill_switch(&fresh).await.unwrap();
    assert_eq!(store.kill_switch().await, Ok(Some(fresh)));
}

async fn each_risk_limit_refuses_alone_and_stores_nothing(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store
        .set_kill_switch(&operator_switch(true, 0, "go"))
        .await
        .unwrap();
    let first = live_record("live-1", 0);
    assert_eq!(
        store.begin_live(&first, &entry(2, "500"), &roomy()).await,
        Ok(BeginOutcome::Started)
    );
    // Each ceiling admits the next entry (1 order, 100) on every counter but one.
    let cases = [
        (
            RiskCeiling {
                max_window_orders: 2,
                ..roomy()
            },
            RiskLimit::Frequency,
        ),
        (
            RiskCeiling {
                max_session_orders: 2,
                ..roomy()
            },
            RiskLimit::SessionOrders,
        ),
        (
            RiskCeiling {
                max_session_notional: Decimal::from_str_exact("599.99").unwrap(),
                ..roomy()
            },
            RiskLimit::SessionNotional,
        ),
    ];
    for (index, (ceiling, limit)) in cases.into_iter().enumerate() {
        let refused = live_record(&format!("live-refused-{index}"), 1);
        assert_eq!(
            store.begin_live(&refused, &entry(1, "100"), &ceiling).await,
            Ok(BeginOutcome::RiskLimitReached(limit)),
            "{limit:?}"
        );
        assert_eq!(store.idempotency(&key_of(&refused)).await, Ok(None));
    }
    assert_eq!(totals_since_an_hour_before(store).await, totals(2, "500"));
    assert_eq!(store.pending().await.unwrap(), vec![first]);
    // Every limit includes the new entry: reaching it exactly is allowed.
    let exact = RiskCeiling {
        max_window_orders: 3,
        max_session_orders: 3,
        max_session_notional: Decimal::from(600),
        ..roomy()
    };
    assert_eq!(
        store
            .begin_live(&live_record("live-exact", 2), &entry(1, "100"), &exact)
            .await,
        Ok(BeginOutcome::Started)
    );
    assert_eq!(totals_since_an_hour_before(store).await, totals(3, "600"));
}

async fn window_and_session_starts_are_counted_apart(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store
        .set_kill_switch(&operator_switch(true, -10_000, "go"))
        .await
        .unwrap();
    // Yesterday's session, this session before the window, and the window.
    let placed = [
        ("live-yesterday", -7_200, entry(5, "5000")),
        ("live-session", -1_800, entry(2, "200")),
        ("live-window", -30, entry(1, "10.5")),
    ];
    for (key, offset, placed_entry) in &placed {
        assert_eq!(
            store
                .begin_live(
                    &live_record(key, *offset),
                    placed_entry,
                    &roomy_from(-10_000)
                )
                .await,
            Ok(BeginOutcome::Started)
        );
    }
    let (window_start, session_start) = (t0() - Duration::seconds(60), t0() - Duration::hours(1));
    assert_eq!(
        store.risk_totals(window_start, session_start).await,
        Ok(RiskTotals {
            window_orders: 1,
            session_orders: 3,
            session_notional: Decimal::from_str_exact("210.5").unwrap(),
        })
    );
    // A start is inclusive: an entry started exactly then counts.
    assert_eq!(
        store
            .risk_totals(
                t0() - Duration::seconds(1_800),
                t0() - Duration::seconds(7_200)
            )
            .await,
        Ok(RiskTotals {
            window_orders: 3,
            session_orders: 8,
            session_notional: Decimal::from_str_exact("5210.5").unwrap(),
        })
    );
    // The ceiling counts the same way: the window holds one order, the session three.
    let ceiling = RiskCeiling {
        window_start,
        session_start,
        max_window_orders: 2,
        max_session_orders: 4,
        max_session_notional: Decimal::from(1_000),
    };
    assert_eq!(
        store
            .begin_live(&live_record("live-next", 0), &entry(1, "1"), &ceiling)
            .await,
        Ok(BeginOutcome::Started)
    );
    assert_eq!(
        store
            .begin_live(&live_record("live-over", 1), &entry(1, "1"), &ceiling)
            .await,
        Ok(BeginOutcome::RiskLimitReached(RiskLimit::Frequency))
    );
}

/// [`roomy`] with both starts `offset` seconds from `t0`.
fn roomy_from(offset: i64) -> RiskCeiling {
    RiskCeiling {
        window_start: t0() + Duration::seconds(offset),
        session_start: t0() + Duration::seconds(offset),
        ..roomy()
    }
}

async fn release_removes_the_entry_and_finishing_keeps_it(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store
        .set_kill_switch(&operator_switch(true, 0, "go"))
        .await
        .unwrap();
    let records: Vec<IdempotencyRecord> = (0..4)
        .map(|index| live_record(&format!("live-{index}"), index))
        .collect();
    for record in &records {
        assert_eq!(
            store.begin_live(record, &entry(1, "10"), &roomy()).await,
            Ok(BeginOutcome::Started)
        );
    }
    assert_eq!(totals_since_an_hour_before(store).await, totals(4, "40"));
    let at = t0() + Duration::seconds(30);
    store
        .release(&key_of(&records[0]), records[0].started_at)
        .await
        .unwrap();
    assert_eq!(totals_since_an_hour_before(store).await, totals(3, "30"));
    store.fail(&key_of(&records[1]), "{}", at).await.unwrap();
    store
        .complete(&key_of(&records[2]), "{}", at)
        .await
        .unwrap();
    store
        .mark_needs_review(&key_of(&records[3]), at)
        .await
        .unwrap();
    assert_eq!(totals_since_an_hour_before(store).await, totals(3, "30"));
    // The released key is free again and counts once more when begun again.
    assert_eq!(
        store
            .begin_live(&records[0], &entry(1, "10"), &roomy())
            .await,
        Ok(BeginOutcome::Started)
    );
    assert_eq!(totals_since_an_hour_before(store).await, totals(4, "40"));
}

async fn concurrent_live_begins_stop_at_the_ceiling(fixture: &Fixture) {
    fixture
        .store
        .set_kill_switch(&operator_switch(true, 0, "go"))
        .await
        .unwrap();
    let ceiling = RiskCeiling {
        max_window_orders: 5,
        ..roomy()
    };
    let mut tasks = JoinSet::new();
    for index in 0..16 {
        let store = Arc::clone(&fixture.store);
        let record = live_record(&format!("live-race-{index}"), 0);
        tasks.spawn(async move { store.begin_live(&record, &entry(1, "1"), &ceiling).await });
    }
    let (mut started, mut refused) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap().unwrap() {
            BeginOutcome::Started => started += 1,
            BeginOutcome::RiskLimitReached(RiskLimit::Frequency) => refused += 1,
            other => panic!("a racing live begin answered {other:?}"),
        }
    }
    assert_eq!((started, refused), (5, 11));
    assert_eq!(fixture.store.pending().await.unwrap().len(), 5);
    assert_eq!(
        totals_since_an_hour_before(fixture.store.as_ref()).await,
        totals(5, "5")
    );
}

async fn halting_after_allowing_refuses_new_live_begins(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    store
        .set_kill_switch(&operator_switch(true, 0, "go"))
        .await
        .unwrap();
    let first = live_record("live-1", 0);
    assert_eq!(
        store.begin_live(&first, &entry(1, "1"), &roomy()).await,
        Ok(BeginOutcome::Started)
    );
    let halted = operator_switch(false, 5, "end of the drill");
    store.set_kill_switch(&halted).await.unwrap();
    assert_eq!(store.kill_switch().await, Ok(Some(halted)));
    let second = live_record("live-2", 10);
    assert_eq!(
        store.begin_live(&second, &entry(1, "1"), &roomy()).await,
        Ok(BeginOutcome::Halted)
    );
    assert_eq!(store.idempotency(&key_of(&second)).await, Ok(None));
    assert_eq!(totals_since_an_hour_before(store).await, totals(1, "1"));
    // A plain begin (a paper write) does not consult the switch.
    assert_eq!(
        store.begin(&record("paper-1", None)).await,
        Ok(BeginOutcome::Started)
    );
}

/// Stores an `approved` approval `id`, made at `t0`.
async fn store_approval(fixture: &Fixture, id: &str) {
    fixture
        .store
        .insert_approval(&approval(id, 0))
        .await
        .unwrap();
}

// -------------------------------------------------------------------------------------------
// The SQLite store's own guarantees
// -------------------------------------------------------------------------------------------

fn sqlite_path(dir: &TempDir) -> PathBuf {
    dir.path().join("state").join("workflow.sqlite3")
}

fn edit(path: &Path, sql: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[tokio::test]
async fn sqlite_data_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let preview = order_preview("prv_1");
    let done = record("k-done", Some("apr_1"));
    let open = record("k-open", None);
    {
        let store = SqliteWorkflowStore::open(&path).unwrap();
        store.insert_preview(&preview).await.unwrap();
        store.insert_approval(&approval("apr_1", 0)).await.unwrap();
        store.begin(&done).await.unwrap();
        store.complete(&key_of(&done), "ok", t0()).await.unwrap();
        store.begin(&open).await.unwrap();
    }
    let store = SqliteWorkflowStore::open(&path).unwrap();
    assert_eq!(store.preview(&preview.id).await, Ok(Some(preview)));
    assert_eq!(status_of(&store, "apr_1").await, ApprovalStatus::Consumed);
    assert_eq!(
        store
            .idempotency(&key_of(&done))
            .await
            .unwrap()
            .unwrap()
            .state,
        IdempotencyState::Completed
    );
    assert_eq!(store.pending().await, Ok(vec![open]));
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let store = SqliteWorkflowStore::open(&path).unwrap();
    store.insert_preview(&order_preview("prv_1")).await.unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);
    drop(store);

    // An existing, wider file is narrowed.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(SqliteWorkflowStore::open(&path).unwrap());
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn sqlite_an_edited_limit_price_loads_with_a_digest_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let store = SqliteWorkflowStore::open(&path).unwrap();
    let preview = order_preview("prv_1");
    store.insert_preview(&preview).await.unwrap();
    assert!(
        store
            .preview(&preview.id)
            .await
            .unwrap()
            .unwrap()
            .digest_matches(&digest_key())
    );

    edit(
        &path,
        "UPDATE previews SET legs = replace(legs, ';limit=200;', ';limit=201;') \
         WHERE id = 'prv_1'",
    );
    let edited = store.preview(&preview.id).await.unwrap().unwrap();
    assert_eq!(
        edited.legs[0].limit_price(),
        Some(Price::parse("201").unwrap())
    );
    assert_eq!(edited.digest, preview.digest);
    assert!(!edited.digest_matches(&digest_key()));
}

#[tokio::test]
async fn sqlite_unparseable_rows_are_corrupt_and_name_only_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let store = SqliteWorkflowStore::open(&path).unwrap();
    store.insert_preview(&order_preview("prv_1")).await.unwrap();
    store.insert_approval(&approval("apr_1", 0)).await.unwrap();

    edit(
        &path,
        "UPDATE previews SET legs = 'order/v1;account=DU1234567;garbage' WHERE id = 'prv_1'; \
         UPDATE approvals SET status = 'maybe' WHERE id = 'apr_1';",
    );
    let error = store
        .preview(&PreviewId::parse("prv_1").unwrap())
        .await
        .unwrap_err();
    let StoreError::Corrupt { detail } = &error else {
        panic!("{error:?}");
    };
    assert!(detail.contains("prv_1"), "{detail}");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(ACCOUNT), "{text}");
        assert!(!text.contains("garbage"), "{text}");
    }
    let error = store.approval(&approval_id("apr_1")).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { detail } if detail.contains("apr_1")),
        "{error:?}"
    );
    assert!(!error.to_string().contains(ACCOUNT), "{error}");
    assert!(matches!(
        store.approvals(10).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn sqlite_errors_name_no_path() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().display().to_string();
    let blocker = dir.path().join("secret-dir-name");
    std::fs::write(&blocker, b"a file where a directory should be").unwrap();
    let error = SqliteWorkflowStore::open(&blocker.join("workflow.sqlite3")).unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(&dir_text), "{text}");
        assert!(!text.contains("secret-dir-name"), "{text}");
    }

    // A database whose tables were dropped fails every call without naming the file.
    let path = sqlite_path(&dir);
    let store = SqliteWorkflowStore::open(&path).unwrap();
    edit(
        &path,
        "DROP TABLE previews; DROP TABLE approvals; DROP TABLE idempotency_records;",
    );
    let errors = [
        store
            .insert_preview(&order_preview("prv_1"))
            .await
            .unwrap_err(),
        store.approvals(1).await.unwrap_err(),
        store.begin(&record("k-1", None)).await.unwrap_err(),
        store.pending().await.unwrap_err(),
    ];
    for error in errors {
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains(&dir_text), "{text}");
            assert!(!text.contains("workflow.sqlite3"), "{text}");
            assert!(!text.contains(ACCOUNT), "{text}");
        }
    }
    assert!(!store.describe().contains(&dir_text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_begin_is_atomic_across_connections() {
    // Two stores on one file stand in for two processes: only SQLite's lock serializes them.
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let stores: [Arc<dyn WorkflowStore>; 2] = [
        Arc::new(SqliteWorkflowStore::open(&path).unwrap()),
        Arc::new(SqliteWorkflowStore::open(&path).unwrap()),
    ];
    stores[0]
        .insert_approval(&approval("apr_1", 0))
        .await
        .unwrap();
    let mut tasks = JoinSet::new();
    for index in 0..16 {
        let store = Arc::clone(&stores[index % 2]);
        // Most race on one key; the rest use their own keys naming the same approval.
        let key = if index % 4 == 0 {
            format!("k-own-{index}")
        } else {
            "k-shared".to_owned()
        };
        let record = record(&key, Some("apr_1"));
        tasks.spawn(async move { store.begin(&record).await });
    }
    let mut started = 0;
    while let Some(outcome) = tasks.join_next().await {
        if outcome.unwrap().unwrap() == BeginOutcome::Started {
            started += 1;
        }
    }
    assert_eq!(started, 1);
    assert_eq!(stores[1].pending().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_one_approval_per_preview_holds_across_connections() {
    // Two stores on one file stand in for two processes approving the same preview.
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let stores: [Arc<dyn WorkflowStore>; 2] = [
        Arc::new(SqliteWorkflowStore::open(&path).unwrap()),
        Arc::new(SqliteWorkflowStore::open(&path).unwrap()),
    ];
    let mut tasks = JoinSet::new();
    for index in 0..16 {
        let store = Arc::clone(&stores[index % 2]);
        let candidate = shared(&format!("apr_{index}"), 0);
        tasks.spawn(async move { store.insert_approval(&candidate).await });
    }
    let mut inserted = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap().unwrap() {
            InsertApproval::Inserted => inserted += 1,
            InsertApproval::PreviewAlreadyApproved => {}
        }
    }
    assert_eq!(inserted, 1);
}

#[tokio::test]
async fn sqlite_a_trigger_refuses_a_second_approval_inserted_behind_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let store = SqliteWorkflowStore::open(&path).unwrap();
    store.insert_approval(&shared("apr_1", 0)).await.unwrap();
    let error = rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO approvals SELECT 'apr_2', preview_id, account_id, digest, status, \
             created_by, surface, created_at, expires_at, closed_at, approver \
             FROM approvals WHERE id = 'apr_1'",
            [],
        )
        .unwrap_err();
    assert!(error.to_string().contains("usable or was used"), "{error}");
}

#[tokio::test]
async fn sqlite_live_state_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let allowed = operator_switch(true, 0, "go");
    let done = live_record("live-done", 0);
    {
        let store = SqliteWorkflowStore::open(&path).unwrap();
        store.set_kill_switch(&allowed).await.unwrap();
        for (record, placed) in [
            (&done, entry(2, "250.25")),
            (&live_record("live-open", 1), entry(1, "0.75")),
        ] {
            assert_eq!(
                store.begin_live(record, &placed, &roomy()).await,
                Ok(BeginOutcome::Started)
            );
        }
        store.complete(&key_of(&done), "{}", t0()).await.unwrap();
    }
    let store = SqliteWorkflowStore::open(&path).unwrap();
    assert_eq!(store.kill_switch().await, Ok(Some(allowed)));
    assert_eq!(
        totals_since_an_hour_before(&store).await,
        totals(3, "251.00")
    );
    // The reopened counters still bind the ceiling.
    let full = RiskCeiling {
        max_session_orders: 3,
        ..roomy()
    };
    assert_eq!(
        store
            .begin_live(&live_record("live-next", 2), &entry(1, "1"), &full)
            .await,
        Ok(BeginOutcome::RiskLimitReached(RiskLimit::SessionOrders))
    );
    // A halt survives a reopen too.
    let halted = operator_switch(false, 3, "stop");
    store.set_kill_switch(&halted).await.unwrap();
    drop(store);
    let store = SqliteWorkflowStore::open(&path).unwrap();
    assert_eq!(store.kill_switch().await, Ok(Some(halted)));
}

#[tokio::test]
async fn sqlite_malformed_live_rows_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let store = SqliteWorkflowStore::open(&path).unwrap();
    store
        .set_kill_switch(&operator_switch(true, 0, "go"))
        .await
        .unwrap();
    store
        .begin_live(&live_record("live-1", 0), &entry(1, "10"), &roomy())
        .await
        .unwrap();

    for (sql, column) in [
        (
            "UPDATE kill_switch SET principal_kind = 'robot'",
            "principal kind",
        ),
        ("UPDATE kill_switch SET actor = 'somebody'", "actor"),
        ("UPDATE kill_switch SET at = 'yesterday'", "time"),
        ("UPDATE kill_switch SET reason = ''", "reason"),
    ] {
        store
            .set_kill_switch(&operator_switch(true, 0, "go"))
            .await
            .unwrap();
        edit(&path, sql);
        let error = store.kill_switch().await.unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { detail } if detail.contains(column)),
            "{sql}: {error:?}"
        );
        // A switch that does not parse never lets a live write start.
        let next = live_record("live-next", 1);
        assert!(matches!(
            store.begin_live(&next, &entry(1, "1"), &roomy()).await,
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(store.idempotency(&key_of(&next)).await, Ok(None));
    }
    // A state outside the two is refused by the table itself.
    assert!(
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("UPDATE kill_switch SET state = 'open'", [])
            .is_err()
    );

    // Text in an integer column would be summed as zero: it is refused instead.
    edit(
        &path,
        "UPDATE live_risk_entries SET notional_units = 'lots'",
    );
    let start = t0() - Duration::hours(1);
    assert!(matches!(
        store.risk_totals(start, start).await,
        Err(StoreError::Corrupt { .. })
    ));
    let error = store.risk_totals(start, start).await.unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(ACCOUNT), "{text}");
        assert!(!text.contains("lots"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_the_live_ceiling_holds_across_connections() {
    // Two stores on one file stand in for two processes placing live orders at once.
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let stores: [Arc<dyn WorkflowStore>; 2] = [
        Arc::new(SqliteWorkflowStore::open(&path).unwrap()),
        Arc::new(SqliteWorkflowStore::open(&path).unwrap()),
    ];
    stores[0]
        .set_kill_switch(&operator_switch(true, 0, "go"))
        .await
        .unwrap();
    let ceiling = RiskCeiling {
        max_window_orders: 5,
        ..roomy()
    };
    let mut tasks = JoinSet::new();
    for index in 0..16 {
        let store = Arc::clone(&stores[index % 2]);
        let record = live_record(&format!("live-race-{index}"), 0);
        tasks.spawn(async move { store.begin_live(&record, &entry(1, "1"), &ceiling).await });
    }
    let mut started = 0;
    while let Some(outcome) = tasks.join_next().await {
        if outcome.unwrap().unwrap() == BeginOutcome::Started {
            started += 1;
        }
    }
    assert_eq!(started, 5);
    assert_eq!(
        totals_since_an_hour_before(stores[1].as_ref()).await,
        totals(5, "5")
    );
}

// -------------------------------------------------------------------------------------------
// Order lifecycle: tracking, the backlog, the history, issued client order ids, the streak
// -------------------------------------------------------------------------------------------

const ACCOUNT_REF: &str = "acct_0123456789abcdef";
const OTHER_REF: &str = "acct_fedcba9876543210";

fn order_key(mode: TradingMode, account_ref: &str, order_id: &str) -> TrackedOrderKey {
    TrackedOrderKey {
        mode,
        account_ref: account_ref.to_owned(),
        order_id: BrokerOrderId::parse(order_id).unwrap(),
    }
}

/// A working paper buy of 10 as order `order_id`, placed at `t0 + offset` seconds by the
/// submit `k-<order_id>` under `apr_1`/`prv_1`, in the backlog and never polled.
fn tracked(order_id: &str, offset: i64) -> TrackedOrder {
    let placed_at = t0() + Duration::seconds(offset);
    TrackedOrder {
        key: order_key(TradingMode::Paper, ACCOUNT_REF, order_id),
        client_order_id: Some(format!("k-{order_id}")),
        idempotency_key: IdempotencyKey::parse(&format!("k-{order_id}")).unwrap(),
        operation: "paper_submit".to_owned(),
        leg: "order".to_owned(),
        approval_id: Some(approval_id("apr_1")),
        preview_id: Some(PreviewId::parse("prv_1").unwrap()),
        contract_id: ContractId::new(265_598).unwrap(),
        symbol: "AAPL".to_owned(),
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        approved_quantity: Quantity::parse("10").unwrap(),
        state: LifecycleState::Submitted,
        filled_quantity: Quantity::parse("0").unwrap(),
        average_price: None,
        placed_at,
        updated_at: placed_at,
        polling: PollState::default(),
    }
}

/// The event that moved `order` from `from` to its current state, at its `updated_at`.
fn event_of(order: &TrackedOrder, from: Option<LifecycleState>) -> LifecycleEvent {
    LifecycleEvent {
        key: order.key.clone(),
        from,
        to: order.state,
        filled_quantity: order.filled_quantity,
        average_price: order.average_price,
        reason: None,
        at: order.updated_at,
    }
}

/// Starts tracking `order` with its first event.
async fn track(store: &dyn WorkflowStore, order: &TrackedOrder) {
    assert_eq!(
        store.track_order(order, &event_of(order, None)).await,
        Ok(true)
    );
}

fn backlog_ids(backlog: &[TrackedOrder]) -> Vec<String> {
    backlog
        .iter()
        .map(|order| order.key.order_id.as_str().to_owned())
        .collect()
}

fn history_ids(history: &[OrderHistoryEntry]) -> Vec<String> {
    history
        .iter()
        .map(|entry| entry.order.key.order_id.as_str().to_owned())
        .collect()
}

fn everything() -> HistoryQuery {
    HistoryQuery {
        account_ref: None,
        since: None,
        state: None,
        limit: 100,
    }
}

async fn a_terminal_order_leaves_the_backlog_and_stays_in_the_history(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    assert_eq!(store.order_backlog().await, Ok(Vec::new()));
    let order = tracked("o-1", 0);
    track(store, &order).await;
    assert_eq!(
        store.tracked_order(&order.key).await,
        Ok(Some(order.clone()))
    );
    assert_eq!(store.order_backlog().await, Ok(vec![order.clone()]));

    // A partial fill and a failed poll: still in the backlog, with its poll state.
    let partial = TrackedOrder {
        state: LifecycleState::PartiallyFilled,
        filled_quantity: Quantity::parse("4").unwrap(),
        average_price: Some(Price::parse("199.5").unwrap()),
        updated_at: t0() + Duration::seconds(30),
        polling: PollState {
            failures: 2,
            next_poll_at: Some(t0() + Duration::seconds(90)),
            missing_since: Some(t0() + Duration::seconds(20)),
        },
        ..order.clone()
    };
    let partial_event = event_of(&partial, Some(LifecycleState::Submitted));
    store
        .update_tracked_order(&partial, Some(&partial_event))
        .await
        .unwrap();
    assert_eq!(store.order_backlog().await, Ok(vec![partial.clone()]));

    // A poll without a transition changes the poll state and records no event.
    let polled = TrackedOrder {
        polling: PollState::default(),
        updated_at: t0() + Duration::seconds(40),
        ..partial.clone()
    };
    store.update_tracked_order(&polled, None).await.unwrap();
    assert_eq!(
        store.tracked_order(&order.key).await,
        Ok(Some(polled.clone()))
    );

    let filled = TrackedOrder {
        state: LifecycleState::Filled,
        filled_quantity: Quantity::parse("10").unwrap(),
        average_price: Some(Price::parse("199.8").unwrap()),
        updated_at: t0() + Duration::seconds(60),
        polling: PollState {
            failures: 1,
            next_poll_at: Some(t0() + Duration::seconds(120)),
            missing_since: None,
        },
        ..polled.clone()
    };
    let filled_event = event_of(&filled, Some(LifecycleState::PartiallyFilled));
    store
        .update_tracked_order(&filled, Some(&filled_event))
        .await
        .unwrap();
    assert_eq!(store.order_backlog().await, Ok(Vec::new()));
    // Out of the backlog, a terminal order keeps no poll state.
    let settled = TrackedOrder {
        polling: PollState::default(),
        ..filled.clone()
    };
    assert_eq!(
        store.tracked_order(&order.key).await,
        Ok(Some(settled.clone()))
    );
    assert_eq!(
        store.order_history(&everything()).await,
        Ok(vec![OrderHistoryEntry {
            order: settled,
            events: vec![event_of(&order, None), partial_event, filled_event],
        }])
    );
}

async fn retracking_a_modified_order_refreshes_it_and_puts_it_back_in_the_backlog(
    fixture: &Fixture,
) {
    let store = fixture.store.as_ref();
    let order = tracked("o-1", 0);
    track(store, &order).await;
    let missing = TrackedOrder {
        polling: PollState {
            failures: 3,
            next_poll_at: Some(t0() + Duration::seconds(600)),
            missing_since: Some(t0() + Duration::seconds(5)),
        },
        updated_at: t0() + Duration::seconds(5),
        ..order.clone()
    };
    store.update_tracked_order(&missing, None).await.unwrap();

    // The modify: a new key, approval and quantity; what cannot change is sent differently
    // to show it is kept.
    let modified = TrackedOrder {
        client_order_id: None,
        idempotency_key: IdempotencyKey::parse("k-modify").unwrap(),
        operation: "paper_modify".to_owned(),
        leg: "stop_loss".to_owned(),
        approval_id: Some(approval_id("apr_2")),
        preview_id: Some(PreviewId::parse("prv_2").unwrap()),
        symbol: "OTHER".to_owned(),
        side: OrderSide::Sell,
        order_type: OrderType::StopLimit,
        approved_quantity: Quantity::parse("12").unwrap(),
        placed_at: t0() + Duration::seconds(50),
        updated_at: t0() + Duration::seconds(50),
        polling: PollState::default(),
        ..order.clone()
    };
    let modify_event = event_of(&modified, Some(LifecycleState::Submitted));
    assert_eq!(store.track_order(&modified, &modify_event).await, Ok(false));
    let expected = TrackedOrder {
        client_order_id: order.client_order_id.clone(),
        leg: order.leg.clone(),
        symbol: order.symbol.clone(),
        side: order.side,
        placed_at: order.placed_at,
        ..modified.clone()
    };
    assert_eq!(store.order_backlog().await, Ok(vec![expected.clone()]));

    // Cancelled, then modified again (a re-track never fails on a terminal order): it is
    // working again and back in the backlog.
    let cancelled = TrackedOrder {
        state: LifecycleState::Cancelled,
        updated_at: t0() + Duration::seconds(70),
        ..expected.clone()
    };
    let cancel_event = event_of(&cancelled, Some(LifecycleState::Submitted));
    store
        .update_tracked_order(&cancelled, Some(&cancel_event))
        .await
        .unwrap();
    assert_eq!(store.order_backlog().await, Ok(Vec::new()));
    let again = TrackedOrder {
        updated_at: t0() + Duration::seconds(80),
        ..expected.clone()
    };
    let again_event = event_of(&again, Some(LifecycleState::Cancelled));
    assert_eq!(store.track_order(&again, &again_event).await, Ok(false));
    assert_eq!(store.order_backlog().await, Ok(vec![again.clone()]));
    let history = store.order_history(&everything()).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0].events,
        vec![
            event_of(&order, None),
            modify_event,
            cancel_event,
            again_event
        ]
    );
}

async fn updating_an_untracked_or_terminal_order_is_a_wrong_state(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let untracked = tracked("o-none", 0);
    assert_eq!(
        store
            .update_tracked_order(&untracked, Some(&event_of(&untracked, None)))
            .await,
        Err(StoreError::WrongState)
    );
    assert_eq!(store.tracked_order(&untracked.key).await, Ok(None));

    let order = tracked("o-1", 0);
    track(store, &order).await;
    let rejected = TrackedOrder {
        state: LifecycleState::Rejected,
        updated_at: t0() + Duration::seconds(10),
        ..order.clone()
    };
    let mut reject_event = event_of(&rejected, Some(LifecycleState::Submitted));
    reject_event.reason = Some("insufficient margin".to_owned());
    store
        .update_tracked_order(&rejected, Some(&reject_event))
        .await
        .unwrap();
    let before = store.order_history(&everything()).await.unwrap();

    let revived = TrackedOrder {
        state: LifecycleState::Submitted,
        updated_at: t0() + Duration::seconds(20),
        ..order.clone()
    };
    assert_eq!(
        store
            .update_tracked_order(
                &revived,
                Some(&event_of(&revived, Some(LifecycleState::Rejected)))
            )
            .await,
        Err(StoreError::WrongState)
    );
    assert_eq!(
        store.update_tracked_order(&revived, None).await,
        Err(StoreError::WrongState)
    );
    assert_eq!(store.order_history(&everything()).await, Ok(before.clone()));
    assert_eq!(
        before[0].events[1].reason.as_deref(),
        Some("insufficient margin")
    );

    // An event that names another order is refused, by both methods, changing nothing.
    let working = tracked("o-2", 1);
    track(store, &working).await;
    let stray = event_of(&order, Some(LifecycleState::Submitted));
    assert_eq!(
        store.update_tracked_order(&working, Some(&stray)).await,
        Err(StoreError::WrongState)
    );
    assert_eq!(
        store.track_order(&tracked("o-3", 2), &stray).await,
        Err(StoreError::WrongState)
    );
    assert_eq!(store.tracked_order(&tracked("o-3", 2).key).await, Ok(None));
    let history = store.order_history(&everything()).await.unwrap();
    assert_eq!(history_ids(&history), ["o-2", "o-1"]);
    assert_eq!(history[0].events, vec![event_of(&working, None)]);
    assert_eq!(history[1], before[0]);

    // Two reconcilers (the server and a CLI pass beside it) that saw the same fill: the second
    // is refused, so the transition is recorded once.
    let twice = tracked("o-twice", 0);
    track(store, &twice).await;
    let partial = TrackedOrder {
        state: LifecycleState::PartiallyFilled,
        filled_quantity: Quantity::parse("4").unwrap(),
        updated_at: t0() + Duration::seconds(5),
        ..twice.clone()
    };
    let partial_event = event_of(&partial, Some(LifecycleState::Submitted));
    store
        .update_tracked_order(&partial, Some(&partial_event))
        .await
        .unwrap();
    assert_eq!(
        store
            .update_tracked_order(&partial, Some(&partial_event))
            .await,
        Err(StoreError::WrongState)
    );
    let history = store.order_history(&everything()).await.unwrap();
    let entry = history
        .iter()
        .find(|entry| entry.order.key == twice.key)
        .unwrap();
    assert_eq!(entry.events.len(), 2, "tracking, then the one partial fill");
    // A further fill is a new transition and is recorded.
    let more = TrackedOrder {
        filled_quantity: Quantity::parse("6").unwrap(),
        ..partial.clone()
    };
    store
        .update_tracked_order(
            &more,
            Some(&event_of(&more, Some(LifecycleState::PartiallyFilled))),
        )
        .await
        .unwrap();
}

async fn history_filters_by_account_time_and_state_newest_first(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let other_account = |order: TrackedOrder| TrackedOrder {
        key: order_key(TradingMode::Live, OTHER_REF, order.key.order_id.as_str()),
        ..order
    };
    let orders = [
        tracked("o-1", 10),
        other_account(tracked("o-2", 20)),
        tracked("o-3", 30),
        other_account(tracked("o-4", 40)),
        tracked("o-5", 50),
    ];
    // Tracked out of order: the history sorts by placement, not by arrival.
    for index in [2, 0, 4, 1, 3] {
        track(store, &orders[index]).await;
    }
    let filled = TrackedOrder {
        state: LifecycleState::Filled,
        filled_quantity: Quantity::parse("10").unwrap(),
        updated_at: t0() + Duration::seconds(60),
        ..orders[2].clone()
    };
    store
        .update_tracked_order(
            &filled,
            Some(&event_of(&filled, Some(LifecycleState::Submitted))),
        )
        .await
        .unwrap();

    let query = |account_ref: Option<&str>, since: Option<i64>, state, limit| HistoryQuery {
        account_ref: account_ref.map(str::to_owned),
        since: since.map(|offset| t0() + Duration::seconds(offset)),
        state,
        limit,
    };
    let ids = |query: HistoryQuery| async move {
        history_ids(&store.order_history(&query).await.unwrap())
    };
    assert_eq!(ids(everything()).await, ["o-5", "o-4", "o-3", "o-2", "o-1"]);
    assert_eq!(
        ids(query(Some(ACCOUNT_REF), None, None, 100)).await,
        ["o-5", "o-3", "o-1"]
    );
    assert_eq!(
        ids(query(Some(OTHER_REF), None, None, 100)).await,
        ["o-4", "o-2"]
    );
    assert_eq!(
        ids(query(None, Some(30), None, 100)).await,
        ["o-5", "o-4", "o-3"]
    );
    assert_eq!(
        ids(query(None, None, Some(LifecycleState::Filled), 100)).await,
        ["o-3"]
    );
    assert_eq!(
        ids(query(None, None, Some(LifecycleState::Submitted), 100)).await,
        ["o-5", "o-4", "o-2", "o-1"]
    );
    assert_eq!(ids(query(None, None, None, 2)).await, ["o-5", "o-4"]);
    assert_eq!(
        ids(query(
            Some(ACCOUNT_REF),
            Some(20),
            Some(LifecycleState::Submitted),
            1
        ))
        .await,
        ["o-5"]
    );
    assert!(ids(query(None, None, None, 0)).await.is_empty());
    assert!(
        ids(query(Some("acct_unknown"), None, None, 100))
            .await
            .is_empty()
    );
    // The backlog is oldest placed first and holds only the working orders.
    assert_eq!(
        backlog_ids(&store.order_backlog().await.unwrap()),
        ["o-1", "o-2", "o-4", "o-5"]
    );
}

async fn only_submit_records_issue_client_order_ids(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let other = AccountId::parse("DU7654320").unwrap();
    for (key, operation, account_id) in [
        ("k-paper", WriteOperation::PaperSubmit, account()),
        ("k-bracket", WriteOperation::PaperBracketSubmit, account()),
        ("k-live", WriteOperation::LiveSubmit, other.clone()),
        (
            "k-live-bracket",
            WriteOperation::LiveBracketSubmit,
            other.clone(),
        ),
        ("k-modify", WriteOperation::PaperModify, account()),
        ("k-cancel", WriteOperation::LiveCancel, other.clone()),
    ] {
        let write = IdempotencyRecord {
            operation,
            account_id,
            ..record(key, None)
        };
        store.begin(&write).await.unwrap();
    }
    // Any state counts: completed, failed, under review, pending.
    let key = |key: &str, operation| RecordKey {
        account_id: account(),
        operation,
        key: IdempotencyKey::parse(key).unwrap(),
    };
    store
        .complete(&key("k-paper", WriteOperation::PaperSubmit), "{}", t0())
        .await
        .unwrap();
    store
        .fail(
            &key("k-bracket", WriteOperation::PaperBracketSubmit),
            "{}",
            t0(),
        )
        .await
        .unwrap();
    for issued in ["k-paper", "k-bracket", "k-live", "k-live-bracket"] {
        assert_eq!(
            store.client_order_id_issued(issued).await,
            Ok(true),
            "{issued}"
        );
    }
    for never in ["k-modify", "k-cancel", "k-unknown", "K-PAPER", ""] {
        assert_eq!(
            store.client_order_id_issued(never).await,
            Ok(false),
            "{never}"
        );
    }
    // A released record was never received by the broker: its key was not issued.
    let released = record("k-released", None);
    store.begin(&released).await.unwrap();
    store
        .release(&key_of(&released), released.started_at)
        .await
        .unwrap();
    assert_eq!(store.client_order_id_issued("k-released").await, Ok(false));
}

async fn the_rejection_streak_counts_and_an_acceptance_resets_it(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    assert_eq!(store.note_live_rejection(true).await, Ok(1));
    assert_eq!(store.note_live_rejection(true).await, Ok(2));
    assert_eq!(store.note_live_rejection(false).await, Ok(0));
    assert_eq!(store.note_live_rejection(false).await, Ok(0));
    assert_eq!(store.note_live_rejection(true).await, Ok(1));
}

async fn completed_records_lists_every_account_and_operation_oldest_first(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    assert_eq!(store.completed_records().await, Ok(Vec::new()));
    let other = AccountId::parse("DU7654320").unwrap();
    let writes = [
        ("k-a", WriteOperation::PaperSubmit, account(), Some(3)),
        (
            "k-b",
            WriteOperation::LiveBracketSubmit,
            other.clone(),
            Some(1),
        ),
        ("k-c", WriteOperation::PaperModify, account(), Some(2)),
        ("k-d", WriteOperation::PaperSubmit, other.clone(), None),
        ("k-e", WriteOperation::LiveCancel, other.clone(), Some(4)),
    ];
    for (key, operation, account_id, finished) in &writes {
        let write = IdempotencyRecord {
            operation: *operation,
            account_id: account_id.clone(),
            ..record(key, None)
        };
        store.begin(&write).await.unwrap();
        if let Some(offset) = finished {
            let outcome = format!("outcome of {key}");
            store
                .complete(&key_of(&write), &outcome, t0() + Duration::seconds(*offset))
                .await
                .unwrap();
        }
    }
    let completed = store.completed_records().await.unwrap();
    let seen: Vec<(&str, WriteOperation, &str)> = completed
        .iter()
        .map(|record| {
            (
                record.key.as_str(),
                record.operation,
                record.outcome.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("k-b", WriteOperation::LiveBracketSubmit, "outcome of k-b"),
            ("k-c", WriteOperation::PaperModify, "outcome of k-c"),
            ("k-a", WriteOperation::PaperSubmit, "outcome of k-a"),
            ("k-e", WriteOperation::LiveCancel, "outcome of k-e"),
        ]
    );
    assert_eq!(completed[0].account_id, other);
    assert!(
        completed
            .iter()
            .all(|record| record.state == IdempotencyState::Completed)
    );
}

async fn lifecycle_decimals_round_trip_exactly(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    let order = TrackedOrder {
        approved_quantity: Quantity::parse("12345.678901").unwrap(),
        filled_quantity: Quantity::parse("0.0001").unwrap(),
        average_price: Some(Price::parse("0.0001").unwrap()),
        state: LifecycleState::PartiallyFilled,
        ..tracked("o-1", 0)
    };
    track(store, &order).await;
    let later = TrackedOrder {
        filled_quantity: Quantity::parse("12345.678900").unwrap(),
        average_price: Some(Price::parse("12345.678901").unwrap()),
        updated_at: t0() + Duration::seconds(1),
        ..order.clone()
    };
    let event = event_of(&later, Some(LifecycleState::PartiallyFilled));
    store
        .update_tracked_order(&later, Some(&event))
        .await
        .unwrap();
    let history = store.order_history(&everything()).await.unwrap();
    let stored = &history[0];
    // Compared as text: equal decimals of another scale (12345.6789 for 12345.678900) would
    // pass an equality check while losing the stored precision.
    let text = |quantity: Quantity| quantity.to_string();
    assert_eq!(text(stored.order.approved_quantity), "12345.678901");
    assert_eq!(text(stored.order.filled_quantity), "12345.678900");
    assert_eq!(
        stored
            .order
            .average_price
            .map(|price| price.to_string())
            .as_deref(),
        Some("12345.678901")
    );
    assert_eq!(text(stored.events[0].filled_quantity), "0.0001");
    assert_eq!(
        stored.events[0]
            .average_price
            .map(|price| price.to_string())
            .as_deref(),
        Some("0.0001")
    );
    assert_eq!(stored.events[1], event);
}

async fn tracking_with_a_terminal_state_never_enters_the_backlog(fixture: &Fixture) {
    let store = fixture.store.as_ref();
    // An order the broker rejected at placement: history only.
    let rejected = TrackedOrder {
        state: LifecycleState::Rejected,
        polling: PollState {
            failures: 1,
            next_poll_at: Some(t0()),
            missing_since: None,
        },
        ..tracked("o-1", 0)
    };
    track(store, &rejected).await;
    assert_eq!(store.order_backlog().await, Ok(Vec::new()));
    let stored = store.tracked_order(&rejected.key).await.unwrap().unwrap();
    assert_eq!(stored.state, LifecycleState::Rejected);
    assert_eq!(stored.polling, PollState::default());
    // An order needing review stays in the backlog.
    let review = TrackedOrder {
        state: LifecycleState::NeedsReview,
        ..tracked("o-2", 1)
    };
    track(store, &review).await;
    assert_eq!(store.order_backlog().await, Ok(vec![review]));
}

#[tokio::test]
async fn sqlite_a_second_store_on_the_same_file_sees_the_backlog_and_the_streak() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let first = SqliteWorkflowStore::open(&path).unwrap();
    let working = TrackedOrder {
        polling: PollState {
            failures: 2,
            next_poll_at: Some(t0() + Duration::seconds(120)),
            missing_since: Some(t0() + Duration::seconds(60)),
        },
        ..tracked("o-1", 0)
    };
    track(&first, &working).await;
    let done = TrackedOrder {
        state: LifecycleState::Cancelled,
        ..tracked("o-2", 1)
    };
    track(&first, &done).await;
    assert_eq!(first.note_live_rejection(true).await, Ok(1));
    assert_eq!(first.note_live_rejection(true).await, Ok(2));

    // Another process on the same file, while the first is still open.
    let second = SqliteWorkflowStore::open(&path).unwrap();
    assert_eq!(second.order_backlog().await, Ok(vec![working.clone()]));
    assert_eq!(
        history_ids(&second.order_history(&everything()).await.unwrap()),
        ["o-2", "o-1"]
    );
    assert_eq!(second.note_live_rejection(true).await, Ok(3));
    assert_eq!(first.note_live_rejection(true).await, Ok(4));
    drop((first, second));

    // A restart.
    let reopened = SqliteWorkflowStore::open(&path).unwrap();
    assert_eq!(reopened.order_backlog().await, Ok(vec![working]));
    assert_eq!(reopened.note_live_rejection(true).await, Ok(5));
    assert_eq!(reopened.note_live_rejection(false).await, Ok(0));
}

#[tokio::test]
async fn sqlite_malformed_tracked_rows_are_corrupt_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_path(&dir);
    let store = SqliteWorkflowStore::open(&path).unwrap();
    let order = tracked("o-1", 0);
    track(&store, &order).await;
    for (sql, column) in [
        (
            "UPDATE tracked_orders SET filled_quantity = '1e3'",
            "filled_quantity",
        ),
        ("UPDATE tracked_orders SET state = 'gone-fishing'", "state"),
        ("UPDATE order_events SET at = 'yesterday-ish'", "event at"),
        (
            "UPDATE live_orders_pending SET next_poll_at = 'soon-ish'",
            "next_poll_at",
        ),
    ] {
        edit(&path, sql);
        let error = store.order_history(&everything()).await.unwrap_err();
        let StoreError::Corrupt { detail } = &error else {
            panic!("{sql}: {error:?}");
        };
        assert!(detail.contains(column), "{detail}");
        assert!(detail.contains("o-1"), "{detail}");
        for text in [error.to_string(), format!("{error:?}")] {
            for stored in [
                "1e3",
                "gone-fishing",
                "yesterday-ish",
                "soon-ish",
                ACCOUNT_REF,
            ] {
                assert!(!text.contains(stored), "{text}");
            }
        }
        // Put the row back for the next column.
        edit(
            &path,
            "UPDATE tracked_orders SET filled_quantity = '0', state = 'submitted'; \
             UPDATE order_events SET at = '2026-01-02T15:00:00.000000000Z'; \
             UPDATE live_orders_pending SET next_poll_at = NULL;",
        );
        assert!(store.order_history(&everything()).await.is_ok(), "{sql}");
    }
    // A streak beyond the counter's range is corrupt, and stays as stored.
    edit(
        &path,
        "INSERT OR REPLACE INTO live_rejection_streak (id, count) VALUES (1, 1099511627776)",
    );
    assert!(matches!(
        store.note_live_rejection(false).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.note_live_rejection(true).await,
        Err(StoreError::Corrupt { .. })
    ));
}
