//! Order tracking: every order an accepted write placed enters the order history, and, until
//! it is terminal, the backlog the reconciler polls.
//!
//! A submit, bracket submit or modify (paper or live) tracks each placed leg right after its
//! idempotency record is completed (the crate-private `Gateway::track_placed`); a cancel
//! tracks nothing (the reconciler sees the cancelled order). Tracking never turns a placed
//! order into an error: a failure is logged and audited, and the next start-up rebuilds what
//! is missing from the completed idempotency records ([`Gateway::rebuild_order_backlog`]).
//!
//! Both paths build the tracked orders from the same facts: the stored outcome (the legs and
//! the broker's status at placement), the record (account, operation, key, approval) and the
//! approved preview (contract, side, quantity, type of each leg).

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::audited::CallContext;
use crate::app::gateway::Gateway;
use crate::app::order_views::PaperOrderView;
use crate::app::stored_outcome::{self, AcceptedWrite, StoredOutcome};
use crate::domain::audit::links::AuditLinks;
use crate::domain::idempotency::{IdempotencyRecord, WriteOperation};
use crate::domain::ids::{AccountId, ApprovalId, BrokerOrderId, IdempotencyKey, PreviewId};
use crate::domain::money::Quantity;
use crate::domain::order::OrderStatus;
use crate::domain::order_lifecycle::{
    LifecycleEvent, TrackedOrder, TrackedOrderKey, TradingMode, state_of,
};
use crate::ports::workflow_store::{RecordKey, StoreError};

/// Why a placed order could not be tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TrackingProblem {
    /// The workflow store failed.
    Store(StoreError),
    /// The write names no preview, or its preview is gone: the legs cannot be described.
    PreviewMissing,
    /// The stored outcome or an id in it does not parse.
    Malformed,
}

impl TrackingProblem {
    /// A short, stable word for logs and audit details.
    fn as_str(&self) -> &'static str {
        match self {
            Self::Store(_) => "workflow_store_failed",
            Self::PreviewMissing => "preview_missing",
            Self::Malformed => "outcome_malformed",
        }
    }
}

impl From<StoreError> for TrackingProblem {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// What the start-up rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BacklogRebuild {
    /// Orders that were not tracked and now are.
    pub tracked: usize,
    /// Orders that could not be tracked (their record or preview is unusable, or the store
    /// failed); each is logged.
    pub failed: usize,
}

/// The mode an operation's orders are tracked in.
pub(crate) fn mode_of(operation: WriteOperation) -> TradingMode {
    if operation.is_live() {
        TradingMode::Live
    } else {
        TradingMode::Paper
    }
}

/// True for the operations whose placed orders are tracked (every write but a cancel).
fn places_orders(operation: WriteOperation) -> bool {
    !matches!(
        operation,
        WriteOperation::PaperCancel | WriteOperation::LiveCancel
    )
}

/// One accepted write, as tracking needs it.
struct PlacedWrite<'a> {
    account_id: &'a AccountId,
    operation: WriteOperation,
    key: &'a IdempotencyKey,
    accepted: &'a AcceptedWrite,
    at: DateTime<Utc>,
}

impl Gateway {
    /// Tracks every order the accepted write `view` placed under `key` (nothing for a
    /// cancel). Called once the write's record is completed; never fails the write: a problem
    /// is logged and audited as `order tracking failed`, and start-up rebuilds it later.
    pub(crate) async fn track_placed(
        &self,
        context: &CallContext,
        key: &RecordKey,
        view: &PaperOrderView,
    ) {
        if !places_orders(key.operation) {
            return;
        }
        let accepted = AcceptedWrite::from_view(view);
        let placed = PlacedWrite {
            account_id: &key.account_id,
            operation: key.operation,
            key: &key.key,
            accepted: &accepted,
            at: self.clock().now(),
        };
        let problem = match self.tracked_legs(&placed).await {
            Ok(legs) => {
                let mut problem = None;
                for (order, event) in legs {
                    if let Err(error) = self.workflow().track_order(&order, &event).await {
                        problem = Some(TrackingProblem::Store(error));
                    }
                }
                problem
            }
            Err(problem) => Some(problem),
        };
        if let Some(problem) = problem {
            self.record_tracking_failure(context, &placed, &problem)
                .await;
        }
    }

    /// Tracks the orders of completed write records that were never tracked (a tracking
    /// failure, a crash between completing and tracking, a record recovery completed). Run at
    /// start-up; orders already tracked are left as they are. Records one `order backlog
    /// rebuild` event when it tracked or failed to track anything.
    pub async fn rebuild_order_backlog(&self) -> BacklogRebuild {
        let mut rebuild = BacklogRebuild::default();
        let records = match self.workflow().completed_records().await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(code = %error.code(), "the order backlog could not be rebuilt");
                return rebuild;
            }
        };
        for record in records
            .iter()
            .filter(|record| places_orders(record.operation))
        {
            match self.rebuild_record(record).await {
                Ok(tracked) => rebuild.tracked += tracked,
                Err(problem) => {
                    tracing::warn!(
                        problem = problem.as_str(),
                        operation = record.operation.as_str(),
                        "a completed write's orders could not be tracked"
                    );
                    rebuild.failed += 1;
                }
            }
        }
        if rebuild != BacklogRebuild::default() {
            let step = self
                .record_step(
                    &CallContext::system(),
                    "order backlog rebuild",
                    None,
                    None,
                    json!({ "tracked": rebuild.tracked, "failed": rebuild.failed }),
                    None,
                )
                .await;
            if let Err(error) = step {
                tracing::error!(code = %error.code(), "the order backlog rebuild could not be audited");
            }
        }
        rebuild
    }

    /// Tracks the untracked orders of one completed record; returns how many it tracked.
    async fn rebuild_record(&self, record: &IdempotencyRecord) -> Result<usize, TrackingProblem> {
        let text = record
            .outcome
            .as_deref()
            .ok_or(TrackingProblem::Malformed)?;
        let accepted = match stored_outcome::decode(text) {
            Ok(StoredOutcome::Accepted(accepted)) => accepted,
            // A failed write placed nothing.
            Ok(StoredOutcome::Failed(_)) => return Ok(0),
            Err(_) => return Err(TrackingProblem::Malformed),
        };
        let mode = mode_of(record.operation);
        let account_ref = self.directory().reference(&record.account_id);
        let mut untracked = false;
        for leg in &accepted.orders {
            let order_id =
                BrokerOrderId::parse(&leg.order_id).map_err(|_| TrackingProblem::Malformed)?;
            let key = TrackedOrderKey {
                mode,
                account_ref: account_ref.clone(),
                order_id,
            };
            if self.workflow().tracked_order(&key).await?.is_none() {
                untracked = true;
            }
        }
        if !untracked {
            return Ok(0);
        }
        let placed = PlacedWrite {
            account_id: &record.account_id,
            operation: record.operation,
            key: &record.key,
            accepted: &accepted,
            at: record.finished_at.unwrap_or(record.started_at),
        };
        let mut tracked = 0;
        for (order, event) in self.tracked_legs(&placed).await? {
            if self.workflow().tracked_order(&order.key).await?.is_some() {
                continue;
            }
            if self.workflow().track_order(&order, &event).await? {
                tracked += 1;
            }
        }
        Ok(tracked)
    }

    /// The tracked orders (with their first events) of the legs `placed` reports, described
    /// by its preview. A modify keeps the client order id and leg name the order was tracked
    /// with.
    async fn tracked_legs(
        &self,
        placed: &PlacedWrite<'_>,
    ) -> Result<Vec<(TrackedOrder, LifecycleEvent)>, TrackingProblem> {
        let accepted = placed.accepted;
        let preview_id = accepted
            .preview_id
            .as_deref()
            .ok_or(TrackingProblem::PreviewMissing)
            .and_then(|raw| PreviewId::parse(raw).map_err(|_| TrackingProblem::Malformed))?;
        let approval_id = accepted
            .approval_id
            .as_deref()
            .map(ApprovalId::parse)
            .transpose()
            .map_err(|_| TrackingProblem::Malformed)?;
        let preview = self
            .workflow()
            .preview(&preview_id)
            .await?
            .ok_or(TrackingProblem::PreviewMissing)?;
        if accepted.orders.len() > preview.legs.len() {
            return Err(TrackingProblem::Malformed);
        }
        let mode = mode_of(placed.operation);
        let account_ref = self.directory().reference(placed.account_id);
        let client_order_id = placed
            .operation
            .sends_client_order_id()
            .then(|| placed.key.to_string());
        let mut legs = Vec::with_capacity(accepted.orders.len());
        for (leg, intent) in accepted.orders.iter().zip(&preview.legs) {
            let order_id =
                BrokerOrderId::parse(&leg.order_id).map_err(|_| TrackingProblem::Malformed)?;
            let key = TrackedOrderKey {
                mode,
                account_ref: account_ref.clone(),
                order_id,
            };
            let earlier = if client_order_id.is_none() {
                self.workflow().tracked_order(&key).await?
            } else {
                None
            };
            // A modify leaves what already filled as it was.
            let filled = earlier.as_ref().map_or_else(
                || Quantity::new(rust_decimal::Decimal::ZERO),
                |order| order.filled_quantity,
            );
            let average_price = earlier.as_ref().and_then(|order| order.average_price);
            let status = OrderStatus::parse(&leg.broker_status).unwrap_or(OrderStatus::Unknown);
            let state = state_of(status, filled, None);
            let order = TrackedOrder {
                key: key.clone(),
                client_order_id: client_order_id.clone().or_else(|| {
                    earlier
                        .as_ref()
                        .and_then(|order| order.client_order_id.clone())
                }),
                idempotency_key: placed.key.clone(),
                operation: placed.operation.as_str().to_owned(),
                leg: earlier
                    .as_ref()
                    .map_or_else(|| leg.leg.clone(), |order| order.leg.clone()),
                approval_id: approval_id.clone(),
                preview_id: Some(preview_id.clone()),
                contract_id: intent.contract_id(),
                symbol: preview.symbol.clone(),
                side: intent.side(),
                order_type: intent.order_type(),
                approved_quantity: intent.quantity(),
                state,
                filled_quantity: filled,
                average_price,
                placed_at: placed.at,
                updated_at: placed.at,
                polling: Default::default(),
            };
            let event = LifecycleEvent {
                key,
                from: earlier.as_ref().map(|order| order.state),
                to: state,
                filled_quantity: filled,
                average_price,
                reason: None,
                at: placed.at,
            };
            legs.push((order, event));
        }
        Ok(legs)
    }

    /// Logs and audits a placed write whose orders could not be tracked.
    async fn record_tracking_failure(
        &self,
        context: &CallContext,
        placed: &PlacedWrite<'_>,
        problem: &TrackingProblem,
    ) {
        tracing::warn!(
            problem = problem.as_str(),
            operation = placed.operation.as_str(),
            "a placed order could not be tracked; start-up will rebuild it"
        );
        let mut links = AuditLinks::default();
        links.link_idempotency_key(placed.key);
        for leg in &placed.accepted.orders {
            if let Ok(order_id) = BrokerOrderId::parse(&leg.order_id) {
                links.link_broker_order(&order_id);
            }
        }
        let step = self
            .record_linked_step(
                context,
                "order tracking failed",
                (None, Some(placed.account_id)),
                json!({
                    "operation": placed.operation.as_str(),
                    "idempotency_key": placed.key.as_str(),
                    "problem": problem.as_str(),
                }),
                None,
                &links,
            )
            .await;
        if let Err(error) = step {
            tracing::error!(code = %error.code(), "an order tracking failure could not be audited");
        }
    }
}
