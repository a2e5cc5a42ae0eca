//! Approval use cases: create an approval for an existing, unexpired preview; list, show and
//! revoke approvals.
//!
//! Who may approve is a policy on the call's principal: the operator (at the CLI or through the
//! library) may, without any scope, so an operator can approve without granting agents the
//! power to approve themselves; an agent (an MCP client) needs `ibkr:approvals:create`. Either
//! way the approval records who created it, what kind of approver that was ([`ApproverKind`])
//! and through which surface.
//!
//! A preview gets at most one approval that is usable or was used: the store refuses another
//! (`APPROVAL_ALREADY_GRANTED`) unless every earlier one was revoked or expired unused, so one
//! preview never places two orders.

use chrono::Duration;
use serde::Serialize;
use serde_json::json;

use crate::app::audited::{CallContext, CallSpec};
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::order_input;
use crate::app::order_views::{ApprovalView, ApprovalsView};
use crate::app::principal::PrincipalKind;
use crate::domain::approval::{
    Approval, ApprovalRefusal, ApprovalStatus, ApproverKind, DEFAULT_APPROVAL_TTL_SECONDS,
    MAX_APPROVAL_TTL_SECONDS,
};
use crate::domain::ids::ApprovalId;
use crate::domain::order_intent::DigestKey;
use crate::domain::scope::Scope;
use crate::ports::workflow_store::InsertApproval;

/// The most approvals `approvals list` returns.
pub const MAX_APPROVALS_LISTED: usize = 200;

/// A request to approve a preview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawApprovalCreate {
    /// The preview to approve.
    pub preview_id: String,
    /// The approval's lifetime in seconds (default 300, at most 86400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u32>,
}

/// What kind of approver `context` is. The CLI is the operator's own surface; a program
/// embedding the library is the operator's too (it holds the deployment's key and its own
/// configuration) until callers carry their own principals; MCP callers are agents.
pub(crate) fn approver_kind(context: &CallContext) -> ApproverKind {
    match context.principal().kind() {
        PrincipalKind::Operator => ApproverKind::Operator,
        PrincipalKind::Agent | PrincipalKind::System => ApproverKind::Agent,
    }
}

/// The scope approval management needs from `context`'s principal: none for the operator,
/// `ibkr:approvals:create` for an agent (see [`crate::app::principal::Principal::approval_scope`]).
fn approval_scope(context: &CallContext) -> Option<Scope> {
    context.principal().approval_scope()
}

impl Gateway {
    /// Approves an existing, unexpired preview whose stored order still matches its digest.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` (for an agent), `INPUT_INVALID`, `ORDER_PREVIEW_NOT_FOUND`,
    /// `ORDER_PREVIEW_EXPIRED`, `ORDER_DIGEST_MISMATCH`, `APPROVAL_ALREADY_GRANTED`,
    /// `WORKFLOW_STORE_FAILED`, or `AUDIT_WRITE_FAILED`.
    pub async fn create_approval(
        &self,
        context: &CallContext,
        raw: RawApprovalCreate,
    ) -> Result<ApprovalView, GatewayError> {
        let spec = CallSpec::write_of("approvals create", approval_scope(context), &raw);
        self.audited(context, spec, |note| async move {
            let preview_id = order_input::preview_id(&raw.preview_id)?;
            let ttl = raw.ttl_seconds.unwrap_or(DEFAULT_APPROVAL_TTL_SECONDS);
            if !(1..=MAX_APPROVAL_TTL_SECONDS).contains(&ttl) {
                return Err(GatewayError::invalid_input(
                    "ttl_seconds",
                    format!("must be from 1 to {MAX_APPROVAL_TTL_SECONDS}"),
                ));
            }
            let preview = self
                .workflow()
                .preview(&preview_id)
                .await?
                .ok_or(GatewayError::PreviewNotFound)?;
            note.link(|links| links.link_preview(&preview.id));
            let account = preview
                .account_id()
                .cloned()
                .ok_or(GatewayError::DigestMismatch)?;
            note.record_account(&account);
            let now = self.clock().now();
            if preview.is_expired(now) {
                return Err(GatewayError::PreviewExpired);
            }
            if !preview.digest_matches(&self.digest_key()) {
                return Err(GatewayError::DigestMismatch);
            }
            let approval = Approval {
                id: ApprovalId::parse(&crate::app::previews::new_id("apr", self)).map_err(
                    |_| GatewayError::Internal {
                        message: "a generated approval id did not parse".into(),
                    },
                )?,
                preview_id,
                account_id: account,
                digest: preview.digest,
                status: ApprovalStatus::Approved,
                created_by: context.actor().clone(),
                approver: approver_kind(context),
                surface: context.surface(),
                created_at: now,
                expires_at: now + Duration::seconds(i64::from(ttl)),
                closed_at: None,
            };
            match self.workflow().insert_approval(&approval).await? {
                InsertApproval::Inserted => {}
                InsertApproval::PreviewAlreadyApproved => {
                    return Err(GatewayError::ApprovalAlreadyGranted);
                }
            }
            note.link(|links| links.link_approval(&approval));
            Ok(ApprovalView::new(self.directory(), &approval, now))
        })
        .await
    }

    /// Approvals, newest first, with their status as of now; approvals found past their expiry
    /// are marked expired (and audited) on the way.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE` (for an agent), `WORKFLOW_STORE_FAILED`, `AUDIT_WRITE_FAILED`.
    pub async fn list_approvals(
        &self,
        context: &CallContext,
    ) -> Result<ApprovalsView, GatewayError> {
        let spec = CallSpec::write("approvals list", approval_scope(context), json!({}));
        self.audited(context, spec, |_note| async move {
            let approvals = self.workflow().approvals(MAX_APPROVALS_LISTED).await?;
            let now = self.clock().now();
            for approval in &approvals {
                self.expire_if_due(context, approval).await?;
            }
            Ok(ApprovalsView {
                approvals: approvals
                    .iter()
                    .map(|approval| ApprovalView::new(self.directory(), approval, now))
                    .collect(),
            })
        })
        .await
    }

    /// One approval.
    ///
    /// # Errors
    /// `APPROVAL_NOT_FOUND`, plus those of [`Gateway::list_approvals`].
    pub async fn show_approval(
        &self,
        context: &CallContext,
        approval_id: &str,
    ) -> Result<ApprovalView, GatewayError> {
        let spec = CallSpec::write(
            "approvals show",
            approval_scope(context),
            json!({ "approval_id": approval_id }),
        );
        self.audited(context, spec, |note| async move {
            let approval = self.stored_approval(approval_id, &note).await?;
            self.expire_if_due(context, &approval).await?;
            Ok(ApprovalView::new(
                self.directory(),
                &approval,
                self.clock().now(),
            ))
        })
        .await
    }

    /// Revokes an approval that is still usable.
    ///
    /// # Errors
    /// `APPROVAL_NOT_FOUND`; `APPROVAL_CONSUMED`, `APPROVAL_EXPIRED` or `APPROVAL_REVOKED`
    /// when it is no longer usable; `APPROVAL_IN_USE` while a write holds it; plus those of
    /// [`Gateway::list_approvals`].
    pub async fn revoke_approval(
        &self,
        context: &CallContext,
        approval_id: &str,
    ) -> Result<ApprovalView, GatewayError> {
        let spec = CallSpec::write(
            "approvals revoke",
            approval_scope(context),
            json!({ "approval_id": approval_id }),
        );
        self.audited(context, spec, |note| async move {
            let approval = self.stored_approval(approval_id, &note).await?;
            let now = self.clock().now();
            match approval.effective_status(now) {
                ApprovalStatus::Approved => {}
                ApprovalStatus::Consumed => {
                    return Err(GatewayError::Approval(ApprovalRefusal::Consumed));
                }
                ApprovalStatus::Expired => {
                    self.expire_if_due(context, &approval).await?;
                    return Err(GatewayError::Approval(ApprovalRefusal::Expired));
                }
                ApprovalStatus::Revoked => {
                    return Err(GatewayError::Approval(ApprovalRefusal::Revoked));
                }
            }
            if !self
                .workflow()
                .close_approval(&approval.id, ApprovalStatus::Revoked, now)
                .await?
            {
                return Err(GatewayError::ApprovalInUse);
            }
            let revoked = self
                .workflow()
                .approval(&approval.id)
                .await?
                .ok_or(GatewayError::ApprovalNotFound)?;
            Ok(ApprovalView::new(self.directory(), &revoked, now))
        })
        .await
    }

    /// The approval a caller names, noted for the audit record.
    async fn stored_approval(
        &self,
        raw_id: &str,
        note: &crate::app::audited::AuditNote,
    ) -> Result<Approval, GatewayError> {
        let id = order_input::approval_id(raw_id)?;
        let approval = self
            .workflow()
            .approval(&id)
            .await?
            .ok_or(GatewayError::ApprovalNotFound)?;
        note.record_account(&approval.account_id);
        note.link(|links| links.link_approval(&approval));
        Ok(approval)
    }

    /// The key order digests are made and checked with, derived from the audit key.
    pub(crate) fn digest_key(&self) -> DigestKey {
        DigestKey::derive(self.chain_key())
    }

    /// Marks a stored-approved approval that is past its expiry as expired, with an audit
    /// event. Does nothing for any other approval.
    pub(crate) async fn expire_if_due(
        &self,
        context: &CallContext,
        approval: &Approval,
    ) -> Result<(), GatewayError> {
        let now = self.clock().now();
        if approval.status != ApprovalStatus::Approved
            || approval.effective_status(now) != ApprovalStatus::Expired
        {
            return Ok(());
        }
        if self
            .workflow()
            .close_approval(&approval.id, ApprovalStatus::Expired, now)
            .await?
        {
            self.record_step(
                context,
                "approval expired",
                None,
                Some(&approval.account_id),
                json!({ "approval_id": approval.id.as_str(), "preview_id": approval.preview_id.as_str() }),
                None,
            )
            .await?;
        }
        Ok(())
    }
}
