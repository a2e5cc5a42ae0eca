//! Recovery of paper writes left `pending` by a crash or an ambiguous broker answer.
//!
//! A pending submit is looked up at the broker by its client order id (the idempotency key):
//! found → the record is completed with what the broker reports (and the approval consumed);
//! not found → the record is marked `needs_review` for a person. A pending modify or cancel has
//! no client order id to look up, so it goes to review. Recovery never resubmits anything.
//!
//! Only records older than `paper_trading.recovery_grace_seconds` are touched, so a write in
//! flight in another process is left alone.

use chrono::Duration;
use serde_json::json;

use crate::app::audited::{CallContext, CallSpec};
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::order_views::{PaperOrderView, PlacedOrderView, RecoveryView};
use crate::app::paper_orders::{operation_name, success_outcome};
use crate::app::use_cases::UseCase;
use crate::app::use_cases::orders::OrdersRecover;
use crate::domain::audit::links::AuditLinks;
use crate::domain::idempotency::{IdempotencyRecord, WriteOperation};
use crate::ports::workflow_store::RecordKey;

/// What recovery did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovered {
    /// Found at the broker; completed.
    Completed,
    /// Not found; marked for review.
    NeedsReview,
}

/// The context recovery runs in at start-up: the gateway itself.
pub fn system_context() -> CallContext {
    CallContext::system()
}

impl Gateway {
    /// Resolves every pending write older than the grace period. Run at start-up by the MCP
    /// server and the CLI's write commands, and on demand by the `orders recover` use case
    /// ([`OrdersRecover`]), which wraps it.
    ///
    /// # Errors
    /// `WORKFLOW_STORE_FAILED` or `AUDIT_WRITE_FAILED`; a lookup that fails leaves its record
    /// pending and is counted, not returned. When only the closing summary event cannot be
    /// stored after records were resolved, the error says so ([`GatewayError::RecoveryDone`]):
    /// each resolution is already stored with its own audit event.
    pub async fn recover_pending_writes(
        &self,
        context: &CallContext,
    ) -> Result<RecoveryView, GatewayError> {
        let spec = CallSpec::write(OrdersRecover::DEFINITION.name, None, json!({}));
        let resolved = std::sync::Arc::new(std::sync::Mutex::new(None::<RecoveryView>));
        let tally = std::sync::Arc::clone(&resolved);
        let result = self
            .audited(context, spec, |_note| async move {
                let view = self.recover_each(context).await?;
                if let Ok(mut tally) = tally.lock() {
                    *tally = Some(view.clone());
                }
                Ok(view)
            })
            .await;
        match result {
            Err(GatewayError::Audit(source)) => {
                let done = resolved.lock().ok().and_then(|tally| tally.clone());
                match done {
                    Some(view) if view.completed + view.needs_review > 0 => {
                        Err(GatewayError::RecoveryDone {
                            completed: view.completed,
                            needs_review: view.needs_review,
                            source,
                        })
                    }
                    _ => Err(GatewayError::Audit(source)),
                }
            }
            other => other,
        }
    }

    /// Resolves each pending record past the grace, counting what happened.
    async fn recover_each(&self, context: &CallContext) -> Result<RecoveryView, GatewayError> {
        {
            let mut view = RecoveryView {
                completed: 0,
                needs_review: 0,
                left_pending: 0,
            };
            for record in self.workflow().pending().await? {
                if !self.is_past_grace(&record) {
                    view.left_pending += 1;
                    continue;
                }
                match self.recover_record(context, &record).await {
                    Ok(Recovered::Completed) => view.completed += 1,
                    Ok(Recovered::NeedsReview) => view.needs_review += 1,
                    Err(error) => {
                        tracing::warn!(code = %error.code(), "a pending write could not be recovered now");
                        view.left_pending += 1;
                    }
                }
            }
            Ok(view)
        }
    }

    /// Start-up recovery: resolves pending writes (skipped when nothing is pending), then
    /// rebuilds the order backlog from the completed records whose orders were never tracked
    /// (those recovery just completed included). Never fatal: a failure is logged, the records
    /// stay pending, and the backlog is rebuilt at the next start.
    pub async fn recover_at_startup(&self) {
        match self.workflow().pending().await {
            Ok(pending) if pending.is_empty() => {}
            Ok(_) => {
                if let Err(error) = self.recover_pending_writes(&system_context()).await {
                    tracing::warn!(code = %error.code(), "start-up recovery did not finish");
                }
            }
            Err(error) => {
                tracing::warn!(code = %error.code(), "start-up recovery could not read pending writes");
            }
        }
        self.rebuild_order_backlog().await;
    }

    /// True once a pending record is older than the recovery grace.
    pub(crate) fn is_past_grace(&self, record: &IdempotencyRecord) -> bool {
        let grace = Duration::seconds(i64::from(self.paper_trading().recovery_grace_seconds));
        self.clock().now() - record.started_at >= grace
    }

    /// Resolves one pending record (see the module docs).
    pub(crate) async fn recover_record(
        &self,
        context: &CallContext,
        record: &IdempotencyRecord,
    ) -> Result<Recovered, GatewayError> {
        let key = RecordKey {
            account_id: record.account_id.clone(),
            operation: record.operation,
            key: record.key.clone(),
        };
        let found = if record.operation.sends_client_order_id() {
            self.writer_for_operation(record.operation)
                .find_by_client_order_id(&record.account_id, &record.key)
                .await?
        } else {
            None
        };
        let now = self.clock().now();
        let approval = match &record.approval_id {
            Some(id) => self.workflow().approval(id).await?,
            None => None,
        };
        let mut links = AuditLinks::default();
        links.link_idempotency_key(&record.key);
        if let Some(approval) = &approval {
            links.link_approval(approval);
        }
        let Some(order) = found else {
            self.workflow().mark_needs_review(&key, now).await?;
            self.record_linked_step(
                context,
                "order recovery",
                (None, Some(&record.account_id)),
                json!({
                    "operation": record.operation.as_str(),
                    "idempotency_key": record.key.as_str(),
                    "result": "needs_review",
                }),
                Some(&GatewayError::IdempotencyNeedsReview),
                &links,
            )
            .await?;
            return Ok(Recovered::NeedsReview);
        };
        let preview_id = approval
            .as_ref()
            .map(|approval| approval.preview_id.to_string());
        links.link_broker_order(&order.order_id);
        let identity = self.directory().identity(&record.account_id);
        let leg = if matches!(
            record.operation,
            WriteOperation::PaperBracketSubmit | WriteOperation::LiveBracketSubmit
        ) {
            "entry"
        } else {
            "order"
        };
        let view = PaperOrderView {
            operation: operation_name(record.operation).to_owned(),
            outcome: "accepted".to_owned(),
            replayed: false,
            account_ref: identity.account_ref,
            account_display: identity.display,
            idempotency_key: record.key.to_string(),
            approval_id: record.approval_id.as_ref().map(ToString::to_string),
            preview_id,
            writer: self
                .writer_for_operation(record.operation)
                .name()
                .to_owned(),
            orders: vec![PlacedOrderView {
                leg: leg.to_owned(),
                order_id: order.order_id.to_string(),
                broker_status: order.status.code().to_owned(),
            }],
            confirmed_prompts: Vec::new(),
            broker_message: None,
            recovered: true,
        };
        let outcome = success_outcome(&view)?;
        self.workflow().complete(&key, &outcome, now).await?;
        self.track_placed(context, &key, &view).await;
        self.record_linked_step(
            context,
            "order recovery",
            (None, Some(&record.account_id)),
            json!({
                "operation": record.operation.as_str(),
                "idempotency_key": record.key.as_str(),
                "result": "completed",
                "order_id": order.order_id.as_str(),
            }),
            None,
            &links,
        )
        .await?;
        if let Some(approval_id) = &record.approval_id {
            self.record_linked_step(
                context,
                "approval consumed",
                (None, Some(&record.account_id)),
                json!({
                    "approval_id": approval_id.as_str(),
                    "operation": record.operation.as_str(),
                    "idempotency_key": record.key.as_str(),
                }),
                None,
                &links,
            )
            .await?;
        }
        Ok(Recovered::Completed)
    }
}
