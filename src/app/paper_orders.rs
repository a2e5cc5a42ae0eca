//! Paper write use cases: submit, bracket submit, modify and cancel, each exactly once under
//! its idempotency key.
//!
//! Every write runs the same sequence (ADR 0009):
//! 1. scope (in the audited wrapper), input parsing, and the paper gates;
//! 2. the idempotency record under the key: a finished request replays its stored outcome, a
//!    different request under the key is a conflict, one in flight is reported as pending;
//! 3. the approval and its preview, loaded server-side and checked (status, account, expiry,
//!    digest);
//! 4. a durable audit event of the intent: if the audit log cannot take it, nothing happens;
//! 5. `begin`: the `pending` record, atomically with the approval's reservation;
//! 6. one writer call;
//! 7. `complete` (consuming the approval in the same transaction), or `fail` when the broker
//!    definitely did not act; an ambiguous outcome stays `pending` for recovery; a request the
//!    broker never received (`NotSent`, e.g. a 429) is `release`d, leaving the key and the
//!    approval usable for a retry with the same key.
//!
//! Once the writer has been called, no error claims that nothing happened: a later failure of
//! the workflow store or of the audit log (including the call's own final event) is reported as
//! [`GatewayError::AfterWrite`], which keeps the failing step's code and says whether the order
//! was placed and whether its outcome is recorded under the key. The way on is always a retry
//! with the same key, which replays the outcome; never a new preview, approval or key.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use crate::app::audited::{AuditNote, CallContext, CallSpec};
use crate::app::error::{GatewayError, WriteFate};
use crate::app::gateway::Gateway;
use crate::app::input::AccountSelector;
use crate::app::order_input::{self, RawPaperCancel, RawPaperModify, RawPaperSubmit};
use crate::app::order_views::{PaperOrderView, PlacedOrderView, leg_names};
use crate::app::stored_outcome::{self, AcceptedWrite, FailedWrite, StoredOutcome};
use crate::domain::account::Account;
use crate::domain::approval::{Approval, ApprovalStatus};
use crate::domain::error_code::ErrorCode;
use crate::domain::idempotency::{
    Fingerprint, IdempotencyDecision, IdempotencyRecord, IdempotencyState, WriteOperation, decide,
};
use crate::domain::ids::{ApprovalId, BrokerOrderId};
use crate::domain::order_intent::BracketIntent;
use crate::domain::preview::{Preview, PreviewKind};
use crate::domain::scope::Scope;
use crate::ports::order_writer::{PlacedOrder, WriteError};
use crate::ports::workflow_store::{BeginOutcome, RecordKey};

/// What a keyed call has learned about its write, so that a failure after the writer was
/// called is reported truthfully (see the module docs).
#[derive(Debug, Default)]
struct WriteProgress {
    // A std mutex: it is never held across an await.
    fate: Mutex<Option<WriteFate>>,
}

impl WriteProgress {
    fn set(&self, fate: WriteFate) {
        *self.fate.lock().unwrap_or_else(PoisonError::into_inner) = Some(fate);
    }

    fn fate(&self) -> Option<WriteFate> {
        *self.fate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `error` as the caller must see it: a failure of a later step (the store, the audit log,
    /// encoding the outcome) after the writer was called names the write's fate. The writer's
    /// own errors already say what is known and pass unchanged.
    fn explain(&self, error: GatewayError) -> GatewayError {
        let later_step = matches!(
            error,
            GatewayError::Audit(_) | GatewayError::Store(_) | GatewayError::Internal { .. }
        );
        match self.fate() {
            Some(fate) if later_step => GatewayError::AfterWrite {
                fate,
                source: Box::new(error),
            },
            _ => error,
        }
    }
}

/// What a keyed write is about, for its views and audit events.
struct WriteContext<'a> {
    context: &'a CallContext,
    /// Collects the links of the call's audit events (approval, key, broker order ids).
    note: &'a crate::app::audited::AuditNote,
    progress: &'a WriteProgress,
    scope: Scope,
    account: &'a Account,
    record_key: RecordKey,
    fingerprint: Fingerprint,
    approval: Option<&'a Approval>,
}

/// The outcome view before the writer acts.
fn base_view(gateway: &Gateway, write: &WriteContext<'_>) -> PaperOrderView {
    let identity = gateway.directory().identity(&write.account.id);
    PaperOrderView {
        operation: operation_name(write.record_key.operation).to_owned(),
        outcome: "accepted".to_owned(),
        replayed: false,
        account_ref: identity.account_ref,
        account_display: identity.display,
        idempotency_key: write.record_key.key.to_string(),
        approval_id: write.approval.map(|approval| approval.id.to_string()),
        preview_id: write
            .approval
            .map(|approval| approval.preview_id.to_string()),
        writer: gateway.paper_writer().name().to_owned(),
        orders: Vec::new(),
        confirmed_prompts: Vec::new(),
        broker_message: None,
        recovered: false,
    }
}

fn placed_views(names: &[&str], placed: &[PlacedOrder]) -> Vec<PlacedOrderView> {
    placed
        .iter()
        .zip(names.iter().chain(std::iter::repeat(&"leg")))
        .map(|(order, name)| PlacedOrderView {
            leg: (*name).to_owned(),
            order_id: order.order_id.to_string(),
            broker_status: order.status.code().to_owned(),
        })
        .collect()
}

fn prompts(placed: &[PlacedOrder]) -> Vec<String> {
    let mut ids: Vec<String> = placed
        .iter()
        .flat_map(|order| order.confirmed_prompts.iter().cloned())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The stored form of a failure ([`stored_outcome`]), replayed for the same key.
fn failure_outcome(error: &GatewayError) -> String {
    let failed = StoredOutcome::Failed(FailedWrite {
        code: error.code().as_str().to_owned(),
        message: error.to_string(),
    });
    // Encoding plain strings cannot fail; should it, the stored text still says what failed.
    stored_outcome::encode(&failed).unwrap_or_else(|| {
        json!({ "error": { "code": error.code().as_str(), "message": error.to_string() } })
            .to_string()
    })
}

/// The stored form of an accepted write's view.
pub(crate) fn success_outcome(view: &PaperOrderView) -> Result<String, GatewayError> {
    stored_outcome::encode(&StoredOutcome::Accepted(AcceptedWrite::from_view(view))).ok_or(
        GatewayError::Internal {
            message: "the outcome could not be encoded".into(),
        },
    )
}

fn corrupt_outcome() -> GatewayError {
    GatewayError::Store(crate::ports::workflow_store::StoreError::Corrupt {
        detail: "a stored outcome does not parse".into(),
    })
}

fn replayed_failure(outcome: &str) -> GatewayError {
    let Ok(StoredOutcome::Failed(failed)) = stored_outcome::decode(outcome) else {
        return corrupt_outcome();
    };
    match ErrorCode::ALL
        .iter()
        .copied()
        .find(|code| code.as_str() == failed.code)
    {
        Some(code) => GatewayError::Replayed {
            code,
            message: failed.message,
        },
        None => corrupt_outcome(),
    }
}

fn replayed_success(outcome: &str) -> Result<PaperOrderView, GatewayError> {
    match stored_outcome::decode(outcome) {
        Ok(StoredOutcome::Accepted(accepted)) => Ok(accepted.replay_view()),
        _ => Err(corrupt_outcome()),
    }
}

impl Gateway {
    /// Submits the one order of an approved `order` preview to a paper account.
    ///
    /// # Errors
    /// The paper gates (`PAPER_*`), `ORDER_IDEMPOTENCY_*`, `APPROVAL_*`, `ORDER_PREVIEW_*`,
    /// `ORDER_DIGEST_MISMATCH`, `AUDIT_WRITE_FAILED`, writer errors, `WORKFLOW_STORE_FAILED`.
    pub async fn paper_submit(
        &self,
        context: &CallContext,
        raw: RawPaperSubmit,
    ) -> Result<PaperOrderView, GatewayError> {
        self.paper_group_submit(context, raw, WriteOperation::PaperSubmit)
            .await
    }

    /// Submits the three legs of an approved `bracket` preview in one broker request.
    ///
    /// # Errors
    /// As [`Gateway::paper_submit`].
    pub async fn paper_bracket_submit(
        &self,
        context: &CallContext,
        raw: RawPaperSubmit,
    ) -> Result<PaperOrderView, GatewayError> {
        self.paper_group_submit(context, raw, WriteOperation::PaperBracketSubmit)
            .await
    }

    async fn paper_group_submit(
        &self,
        context: &CallContext,
        raw: RawPaperSubmit,
        operation: WriteOperation,
    ) -> Result<PaperOrderView, GatewayError> {
        let (name, kind) = match operation {
            WriteOperation::PaperBracketSubmit => ("paper bracket submit", "bracket"),
            _ => ("paper order submit", "order"),
        };
        let scope = Scope::OrdersPaperSubmit;
        let spec = CallSpec::write_of(name, Some(scope), &raw);
        self.keyed_audited(context, spec, |note, progress| async move {
            let approval_id = order_input::approval_id(&raw.approval_id)?;
            let (account, record_key) = self
                .gated_key(&raw.account, &raw.idempotency_key, operation, &note)
                .await?;
            let key = record_key.key.clone();
            let fingerprint = Fingerprint::of(&[operation.as_str(), approval_id.as_str()]);
            if let Some(view) = self
                .settled(context, &note, &record_key, &fingerprint, &progress)
                .await?
            {
                return Ok(view);
            }
            let (approval, preview) = self
                .usable_approval(context, &approval_id, &account, kind)
                .await?;
            note.link(|links| links.link_approval(&approval));
            let write = WriteContext {
                context,
                note: &note,
                progress: &progress,
                scope,
                account: &account,
                record_key,
                fingerprint,
                approval: Some(&approval),
            };
            let mut view = base_view(self, &write);
            let writer = self.paper_writer();
            self.keyed_write(&write, async move {
                let placed = if operation == WriteOperation::PaperBracketSubmit {
                    let bracket = BracketIntent::from_legs(&preview.legs).map_err(|error| {
                        WriteError::Refused {
                            reason: format!("the stored bracket is not well-formed: {error}"),
                        }
                    })?;
                    writer.submit_bracket(&bracket, &key).await?
                } else {
                    let leg = preview.legs.first().ok_or(WriteError::Refused {
                        reason: "the preview has no order".into(),
                    })?;
                    vec![writer.submit(leg, &key).await?]
                };
                view.orders = placed_views(leg_names(&preview.kind), &placed);
                view.confirmed_prompts = prompts(&placed);
                Ok(view)
            })
            .await
        })
        .await
    }

    /// Replaces quantity, prices and time in force of a working paper order with those of an
    /// approved `modify` preview for that order.
    ///
    /// # Errors
    /// As [`Gateway::paper_submit`], plus `ORDER_MODIFY_NOT_ALLOWED` and `ORDER_NOT_FOUND`.
    pub async fn paper_modify(
        &self,
        context: &CallContext,
        raw: RawPaperModify,
    ) -> Result<PaperOrderView, GatewayError> {
        let operation = WriteOperation::PaperModify;
        let scope = Scope::OrdersPaperModify;
        let spec = CallSpec::write_of("paper order modify", Some(scope), &raw);
        self.keyed_audited(context, spec, |note, progress| async move {
            let approval_id = order_input::approval_id(&raw.approval_id)?;
            let order_id = order_input::order_id(&raw.order_id)?;
            note.link(|links| links.link_broker_order(&order_id));
            let (account, record_key) = self
                .gated_key(&raw.account, &raw.idempotency_key, operation, &note)
                .await?;
            let fingerprint =
                Fingerprint::of(&[operation.as_str(), order_id.as_str(), approval_id.as_str()]);
            if let Some(view) = self
                .settled(context, &note, &record_key, &fingerprint, &progress)
                .await?
            {
                return Ok(view);
            }
            let (approval, preview) = self
                .usable_approval(context, &approval_id, &account, "modify")
                .await?;
            note.link(|links| links.link_approval(&approval));
            if preview.kind
                != (PreviewKind::Modify {
                    order_id: order_id.clone(),
                })
            {
                return Err(GatewayError::ModifyNotAllowed { field: "order id" });
            }
            let replacement = preview
                .legs
                .first()
                .cloned()
                .ok_or(GatewayError::DigestMismatch)?;
            // The working order may have changed since the preview: check again.
            self.check_replacement(&order_id, &replacement).await?;
            let write = WriteContext {
                context,
                note: &note,
                progress: &progress,
                scope,
                account: &account,
                record_key,
                fingerprint,
                approval: Some(&approval),
            };
            let mut view = base_view(self, &write);
            let writer = self.paper_writer();
            self.keyed_write(&write, async move {
                let placed = writer.modify(&order_id, &replacement).await?;
                view.orders = placed_views(&["order"], std::slice::from_ref(&placed));
                view.confirmed_prompts = prompts(std::slice::from_ref(&placed));
                Ok(view)
            })
            .await
        })
        .await
    }

    /// Asks the broker to cancel a working paper order. Cancelling an order, or a bracket's
    /// parent (which cancels the whole group), only reduces exposure, so it needs no approval;
    /// it is still keyed, gated and audited like every write. Cancelling a protective child of
    /// a bracket (its take-profit or stop-loss) alone would leave the position unprotected: it
    /// needs the approval of a `cancel` preview of that very order, and without one it is
    /// refused with `ORDER_CANCEL_NEEDS_APPROVAL` before the writer is called. An order is
    /// protective when the gateway's own completed bracket submits list it as a child, or when
    /// the writer reports it hangs from a parent (brackets recovered after a crash, or placed
    /// outside the gateway). An approval given for any cancel is checked and consumed.
    ///
    /// # Errors
    /// The paper gates, `ORDER_IDEMPOTENCY_*`, `ORDER_CANCEL_NEEDS_APPROVAL`, `APPROVAL_*`
    /// (`APPROVAL_ORDER_MISMATCH` for an approval of another order's cancel),
    /// `ORDER_PREVIEW_*`, `ORDER_DIGEST_MISMATCH`, `AUDIT_WRITE_FAILED`, `ORDER_NOT_FOUND`,
    /// writer errors, `WORKFLOW_STORE_FAILED`.
    pub async fn paper_cancel(
        &self,
        context: &CallContext,
        raw: RawPaperCancel,
    ) -> Result<PaperOrderView, GatewayError> {
        let operation = WriteOperation::PaperCancel;
        let scope = Scope::OrdersPaperCancel;
        let spec = CallSpec::write_of("paper order cancel", Some(scope), &raw);
        self.keyed_audited(context, spec, |note, progress| async move {
            let order_id = order_input::order_id(&raw.order_id)?;
            let approval_id = raw
                .approval_id
                .as_deref()
                .map(order_input::approval_id)
                .transpose()?;
            note.link(|links| links.link_broker_order(&order_id));
            let (account, record_key) = self
                .gated_key(&raw.account, &raw.idempotency_key, operation, &note)
                .await?;
            // Without an approval the fingerprint is what it always was, so records stored
            // before approvals could be given still replay.
            let fingerprint = match &approval_id {
                None => Fingerprint::of(&[operation.as_str(), order_id.as_str()]),
                Some(approval_id) => {
                    Fingerprint::of(&[operation.as_str(), order_id.as_str(), approval_id.as_str()])
                }
            };
            if let Some(view) = self
                .settled(context, &note, &record_key, &fingerprint, &progress)
                .await?
            {
                return Ok(view);
            }
            let approval = match approval_id {
                Some(approval_id) => {
                    let (approval, preview) = self
                        .usable_approval(context, &approval_id, &account, "cancel")
                        .await?;
                    note.link(|links| links.link_approval(&approval));
                    if preview.kind.target_order() != Some(&order_id) {
                        return Err(GatewayError::ApprovalForAnotherOrder);
                    }
                    Some(approval)
                }
                None => {
                    if let Some(leg) = self.protective_leg(&account, &order_id).await? {
                        return Err(GatewayError::CancelNeedsApproval { leg });
                    }
                    None
                }
            };
            let write = WriteContext {
                context,
                note: &note,
                progress: &progress,
                scope,
                account: &account,
                record_key,
                fingerprint,
                approval: approval.as_ref(),
            };
            let mut view = base_view(self, &write);
            let writer = self.paper_writer();
            let account_id = account.id.clone();
            self.keyed_write(&write, async move {
                let ack = writer.cancel(&account_id, &order_id).await?;
                view.orders = vec![PlacedOrderView {
                    leg: "order".to_owned(),
                    order_id: ack.order_id.to_string(),
                    broker_status: "PendingCancel".to_owned(),
                }];
                view.broker_message = Some(ack.message.chars().take(120).collect());
                Ok(view)
            })
            .await
        })
        .await
    }

    /// [`Gateway::audited`] for a keyed write: the body gets a [`WriteProgress`], and whatever
    /// fails after the writer was called (the final audit event included) is explained by it.
    async fn keyed_audited<F, Fut>(
        &self,
        context: &CallContext,
        spec: CallSpec,
        body: F,
    ) -> Result<PaperOrderView, GatewayError>
    where
        F: FnOnce(Arc<AuditNote>, Arc<WriteProgress>) -> Fut,
        Fut: Future<Output = Result<PaperOrderView, GatewayError>>,
    {
        let progress = Arc::new(WriteProgress::default());
        let for_body = Arc::clone(&progress);
        self.audited(context, spec, |note| body(note, for_body))
            .await
            .map_err(|error| progress.explain(error))
    }

    /// The parsed idempotency key and the account behind the paper gates, as a record key.
    async fn gated_key(
        &self,
        raw_account: &str,
        raw_key: &str,
        operation: WriteOperation,
        note: &AuditNote,
    ) -> Result<(Account, RecordKey), GatewayError> {
        let key = order_input::idempotency_key(raw_key)?;
        note.link(|links| links.link_idempotency_key(&key));
        let account = self
            .paper_account(&AccountSelector::parse(raw_account)?, note)
            .await?;
        let record_key = RecordKey {
            account_id: account.id.clone(),
            operation,
            key,
        };
        Ok((account, record_key))
    }

    /// What the stored record under the key says: `Ok(Some(view))` replays a success,
    /// `Err` replays a failure or refuses (conflict, pending, needs review), `Ok(None)` means
    /// no record: proceed. A pending record older than the recovery grace is recovered first.
    async fn settled(
        &self,
        context: &CallContext,
        note: &AuditNote,
        record_key: &RecordKey,
        fingerprint: &Fingerprint,
        progress: &WriteProgress,
    ) -> Result<Option<PaperOrderView>, GatewayError> {
        let mut existing = self.workflow().idempotency(record_key).await?;
        if let Some(record) = &existing
            && record.state == IdempotencyState::Pending
            && &record.fingerprint == fingerprint
            && self.is_past_grace(record)
        {
            // An earlier call reached the writer: from here on nothing may be reported as
            // "nothing was done". A replay below refines this to recorded.
            progress.set(WriteFate::Unknown);
            let recovered = self.recover_record(context, record).await;
            existing = self.workflow().idempotency(record_key).await?;
            if let Err(error) = recovered {
                if existing
                    .as_ref()
                    .is_some_and(|record| record.state == IdempotencyState::Completed)
                {
                    progress.set(WriteFate::Recorded { accepted: true });
                }
                return Err(error);
            }
        }
        let decision = decide(existing.as_ref(), fingerprint);
        if let (IdempotencyDecision::Replay { .. }, Some(record)) = (&decision, &existing) {
            self.link_replayed(note, record).await;
        }
        match decision {
            IdempotencyDecision::Proceed => Ok(None),
            decision => refusal_or_replay(decision, progress).map(Some),
        }
    }

    /// Links a replayed record's approval and the broker orders its outcome names to the
    /// replaying call's event, so a replay joins the same approval and orders in the export as
    /// the first call. Best effort: a link that cannot be read is left out, the replay stands.
    async fn link_replayed(&self, note: &AuditNote, record: &IdempotencyRecord) {
        if let Some(approval_id) = &record.approval_id
            && let Ok(Some(approval)) = self.workflow().approval(approval_id).await
        {
            note.link(|links| links.link_approval(&approval));
        }
        if let Some(view) = record
            .outcome
            .as_deref()
            .filter(|_| record.state == IdempotencyState::Completed)
            .and_then(|outcome| replayed_success(outcome).ok())
        {
            note.link(|links| link_placed_orders(links, &view));
        }
    }

    /// `Some("stop-loss")`, `Some("take-profit")` or `Some("protective")` when `order_id` is a
    /// protective child of a bracket: by this gateway's completed bracket submits for
    /// `account` first, then by the writer's report that the order hangs from a parent (which
    /// covers brackets completed by recovery, whose record names only the entry, and brackets
    /// placed outside the gateway). A stored outcome that does not parse, or a writer that
    /// cannot be asked, fails closed: nothing is cancelled.
    async fn protective_leg(
        &self,
        account: &Account,
        order_id: &BrokerOrderId,
    ) -> Result<Option<&'static str>, GatewayError> {
        let brackets = self
            .workflow()
            .completed(&account.id, WriteOperation::PaperBracketSubmit)
            .await?;
        for record in brackets {
            let Some(outcome) = record.outcome.as_deref() else {
                continue;
            };
            let view = replayed_success(outcome)?;
            if let Some(placed) = view
                .orders
                .iter()
                .find(|placed| placed.order_id == order_id.as_str())
            {
                match placed.leg.as_str() {
                    "stop_loss" => return Ok(Some("stop-loss")),
                    "take_profit" => return Ok(Some("take-profit")),
                    _ => {}
                }
            }
        }
        let working = self.paper_writer().order(&account.id, order_id).await?;
        Ok(working
            .and_then(|order| order.parent_ref)
            .map(|_| "protective child"))
    }

    /// The approval and its preview, checked for use by `account` on a `kind` preview.
    async fn usable_approval(
        &self,
        context: &CallContext,
        approval_id: &ApprovalId,
        account: &Account,
        kind: &'static str,
    ) -> Result<(Approval, Preview), GatewayError> {
        let approval = self
            .workflow()
            .approval(approval_id)
            .await?
            .ok_or(GatewayError::ApprovalNotFound)?;
        let now = self.clock().now();
        self.expire_if_due(context, &approval).await?;
        let preview = self
            .workflow()
            .preview(&approval.preview_id)
            .await?
            .ok_or(GatewayError::PreviewNotFound)?;
        let digest_key = self.digest_key();
        approval
            .check_usable(
                now,
                &account.id,
                &preview.kind.digest(&digest_key, &preview.legs),
            )
            .map_err(GatewayError::Approval)?;
        if preview.kind.as_str() != kind {
            return Err(GatewayError::PreviewKindMismatch {
                expected: kind,
                found: preview.kind.as_str(),
            });
        }
        if preview.account_id() != Some(&account.id) {
            return Err(GatewayError::Approval(
                crate::domain::approval::ApprovalRefusal::AccountMismatch,
            ));
        }
        if !preview.digest_matches(&digest_key) || preview.digest != approval.digest {
            return Err(GatewayError::DigestMismatch);
        }
        if preview.is_expired(now) {
            return Err(GatewayError::PreviewExpired);
        }
        Ok((approval, preview))
    }

    /// Steps 4–7 of the module docs around one writer call.
    async fn keyed_write(
        &self,
        write: &WriteContext<'_>,
        act: impl Future<Output = Result<PaperOrderView, WriteError>>,
    ) -> Result<PaperOrderView, GatewayError> {
        let key = &write.record_key;
        let approval_id = write.approval.map(|approval| approval.id.clone());
        self.record_linked_step(
            write.context,
            "paper order intent",
            (Some(write.scope), Some(&write.account.id)),
            json!({
                "operation": key.operation.as_str(),
                "idempotency_key": key.key.as_str(),
                "approval_id": approval_id.as_ref().map(ApprovalId::as_str),
                "writer": self.paper_writer().name(),
            }),
            None,
            &write.note.links(),
        )
        .await?;
        let record = IdempotencyRecord {
            account_id: key.account_id.clone(),
            operation: key.operation,
            key: key.key.clone(),
            fingerprint: write.fingerprint,
            approval_id: approval_id.clone(),
            state: IdempotencyState::Pending,
            outcome: None,
            started_at: self.clock().now(),
            finished_at: None,
        };
        match self.workflow().begin(&record).await? {
            BeginOutcome::Started => {}
            BeginOutcome::Existing(existing) => {
                // Another request with the key got there first.
                return refusal_or_replay(
                    decide(Some(&existing), &write.fingerprint),
                    write.progress,
                );
            }
            BeginOutcome::ApprovalUnavailable => {
                return Err(self.approval_unavailable(approval_id.as_ref()).await);
            }
        }
        let outcome = act.await;
        // From here on the writer has been called: every later failure names this fate.
        write.progress.set(match &outcome {
            Ok(_) => WriteFate::Unrecorded { accepted: true },
            Err(error) if error.is_definitive() => WriteFate::Unrecorded { accepted: false },
            Err(_) => WriteFate::Unknown,
        });
        match outcome {
            Ok(view) => {
                write.note.link(|links| link_placed_orders(links, &view));
                let outcome = success_outcome(&view)?;
                self.workflow()
                    .complete(key, &outcome, self.clock().now())
                    .await?;
                write.progress.set(WriteFate::Recorded { accepted: true });
                if let Some(approval_id) = &approval_id {
                    self.record_linked_step(
                        write.context,
                        "approval consumed",
                        (None, Some(&write.account.id)),
                        json!({
                            "approval_id": approval_id.as_str(),
                            "operation": key.operation.as_str(),
                            "idempotency_key": key.key.as_str(),
                        }),
                        None,
                        &write.note.links(),
                    )
                    .await?;
                }
                Ok(view)
            }
            Err(WriteError::NotSent(cause)) => {
                Err(self.release_not_sent(write, &record, cause).await)
            }
            Err(error) if error.is_definitive() => {
                let error = GatewayError::Write(error);
                self.workflow()
                    .fail(key, &failure_outcome(&error), self.clock().now())
                    .await?;
                write.progress.set(WriteFate::Recorded { accepted: false });
                Err(error)
            }
            Err(error) => {
                tracing::warn!(
                    operation = key.operation.as_str(),
                    "a paper write's outcome is unknown; it stays pending for recovery"
                );
                Err(GatewayError::Write(error))
            }
        }
    }

    /// A write the broker never received (`NotSent`, e.g. a 429) is transient, unlike a
    /// refusal: no outcome is stored, the pending record is released so the key and the
    /// approval stay usable, and the audit log records the attempt and its not-sent outcome.
    async fn release_not_sent(
        &self,
        write: &WriteContext<'_>,
        record: &IdempotencyRecord,
        cause: crate::ports::broker_reader::BrokerError,
    ) -> GatewayError {
        let key = &write.record_key;
        let released = self.workflow().release(key, record.started_at).await;
        if released.is_ok() {
            write.progress.set(WriteFate::Released);
        }
        let retry_not_before = match &cause {
            crate::ports::broker_reader::BrokerError::RateLimited {
                retry_after_seconds,
            } => i64::try_from(*retry_after_seconds)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .and_then(|wait| self.clock().now().checked_add_signed(wait)),
            _ => None,
        };
        let error = GatewayError::WriteNotSent {
            cause,
            key_released: released.is_ok(),
            retry_not_before,
        };
        let step = self
            .record_step(
                write.context,
                "paper order not sent",
                Some(write.scope),
                Some(&write.account.id),
                json!({
                    "operation": key.operation.as_str(),
                    "idempotency_key": key.key.as_str(),
                    "approval_id": record.approval_id.as_ref().map(ApprovalId::as_str),
                    "key_released": released.is_ok(),
                }),
                Some(&error),
            )
            .await;
        match step {
            Ok(()) => error,
            Err(audit) => audit,
        }
    }

    /// Why `begin` refused the approval: its status, or another write holding it.
    async fn approval_unavailable(&self, approval_id: Option<&ApprovalId>) -> GatewayError {
        let Some(approval_id) = approval_id else {
            return GatewayError::ApprovalInUse;
        };
        match self.workflow().approval(approval_id).await {
            Ok(Some(approval)) => match approval.effective_status(self.clock().now()) {
                ApprovalStatus::Approved => GatewayError::ApprovalInUse,
                ApprovalStatus::Consumed => {
                    GatewayError::Approval(crate::domain::approval::ApprovalRefusal::Consumed)
                }
                ApprovalStatus::Expired => {
                    GatewayError::Approval(crate::domain::approval::ApprovalRefusal::Expired)
                }
                ApprovalStatus::Revoked => {
                    GatewayError::Approval(crate::domain::approval::ApprovalRefusal::Revoked)
                }
            },
            Ok(None) => GatewayError::ApprovalNotFound,
            Err(error) => GatewayError::Store(error),
        }
    }
}

/// Links the broker order ids an outcome names (ids the broker gave, so they parse).
fn link_placed_orders(links: &mut crate::domain::audit::links::AuditLinks, view: &PaperOrderView) {
    for order in &view.orders {
        if let Ok(order_id) = crate::domain::ids::BrokerOrderId::parse(&order.order_id) {
            links.link_broker_order(&order_id);
        }
    }
}

/// Turns a non-proceed decision into the replayed view or the refusal; a replay tells
/// `progress` that an earlier call's outcome is on record.
fn refusal_or_replay(
    decision: IdempotencyDecision,
    progress: &WriteProgress,
) -> Result<PaperOrderView, GatewayError> {
    match decision {
        IdempotencyDecision::Replay { outcome, succeeded } => {
            progress.set(WriteFate::Recorded {
                accepted: succeeded,
            });
            if succeeded {
                replayed_success(&outcome)
            } else {
                Err(replayed_failure(&outcome))
            }
        }
        IdempotencyDecision::Conflict => Err(GatewayError::IdempotencyConflict),
        IdempotencyDecision::InFlight { started_at } => {
            Err(GatewayError::IdempotencyPending { started_at })
        }
        IdempotencyDecision::NeedsReview | IdempotencyDecision::Proceed => {
            Err(GatewayError::IdempotencyNeedsReview)
        }
    }
}

/// The operation's name in outcome views.
pub(crate) fn operation_name(operation: WriteOperation) -> &'static str {
    match operation {
        WriteOperation::PaperSubmit => "submit",
        WriteOperation::PaperBracketSubmit => "bracket_submit",
        WriteOperation::PaperModify => "modify",
        WriteOperation::PaperCancel => "cancel",
    }
}
