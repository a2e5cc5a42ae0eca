//! Preview use cases: check an order (or bracket, or replacement) against the preview policy,
//! ask the broker's what-if, and store the preview with its digest and expiry.
//!
//! A preview is non-executable: it calls only `BrokerReader` reads and the what-if, never the
//! order writer's write methods.

use chrono::Duration;

use crate::app::audited::{CallContext, CallSpec};
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input::AccountSelector;
use crate::app::order_input::{self, RawBracketPreview, RawCancelPreview, RawOrderPreview};
use crate::app::order_views::PreviewView;
use crate::domain::ids::PreviewId;
use crate::domain::instrument::Contract;
use crate::domain::order_intent::{BracketIntent, IntentParts, OrderIntent};
use crate::domain::preview::{Preview, PreviewKind, ReferenceQuote, WhatIf};
use crate::domain::scope::Scope;
use crate::ports::broker_reader::BrokerError;
use crate::ports::order_writer::{WorkingOrder, WriteError};

/// A new id with `prefix`, time-ordered (UUIDv7) so ids sort by creation.
pub(crate) fn new_id(prefix: &str, gateway: &Gateway) -> String {
    let uuid = crate::app::audited::time_ordered_uuid(gateway.clock().now());
    format!("{prefix}_{}", uuid.simple())
}

impl Gateway {
    /// Previews one order, or with `modify_order_id` the replacement of a working paper order.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE`, `INPUT_*`, `ORDER_POLICY_REJECTED`, `ORDER_STOP_THROUGH_MARKET` (a
    /// stop that would trigger at once while market orders are off), `MARKET_DATA_UNAVAILABLE`
    /// (no usable quote to check the order against), `ORDER_MODIFY_NOT_ALLOWED`, broker errors
    /// (from the quote snapshot, or `BROKER_ORDER_REJECTED` from the what-if),
    /// `WORKFLOW_STORE_FAILED`, or `AUDIT_WRITE_FAILED`.
    pub async fn preview_order(
        &self,
        context: &CallContext,
        raw: RawOrderPreview,
    ) -> Result<PreviewView, GatewayError> {
        let spec = CallSpec::write_of("orders preview", Some(Scope::OrdersPreview), &raw);
        self.audited(context, spec, |note| async move {
            let account = self
                .select_account(&AccountSelector::parse(&raw.account)?, &note)
                .await?;
            let intent = order_input::order_intent(&raw, &account.id)?;
            let kind = match raw.modify_order_id.as_deref() {
                None => PreviewKind::Order,
                Some(order_id) => {
                    let order_id = order_input::order_id(order_id)?;
                    self.check_replacement(&order_id, &intent).await?;
                    PreviewKind::Modify { order_id }
                }
            };
            let contract = self.broker().contract(intent.contract_id()).await?;
            self.check_policy(std::slice::from_ref(&intent), &contract)
                .await?;
            self.store_preview(context, &note, kind, vec![intent], &contract, None)
                .await
        })
        .await
    }

    /// Previews a bracket: a limit entry, a take-profit limit and a stop-loss stop, stored as
    /// one group with one digest.
    ///
    /// # Errors
    /// As [`Gateway::preview_order`]; a bracket whose prices are out of order is
    /// `INPUT_INVALID`.
    pub async fn preview_bracket(
        &self,
        context: &CallContext,
        raw: RawBracketPreview,
    ) -> Result<PreviewView, GatewayError> {
        let spec = CallSpec::write_of("orders bracket preview", Some(Scope::OrdersPreview), &raw);
        self.audited(context, spec, |note| async move {
            let account = self
                .select_account(&AccountSelector::parse(&raw.account)?, &note)
                .await?;
            let (entry, take_profit, stop_loss) = order_input::bracket_parts(&raw, &account.id)?;
            let bracket = BracketIntent::new(entry, take_profit, stop_loss)
                .map_err(|error| GatewayError::invalid_input("bracket", error))?;
            let contract = self
                .broker()
                .contract(bracket.legs()[0].contract_id())
                .await?;
            self.check_policy(bracket.legs(), &contract).await?;
            self.store_preview(
                context,
                &note,
                PreviewKind::Bracket,
                bracket.legs().to_vec(),
                &contract,
                None,
            )
            .await
        })
        .await
    }

    /// Previews cancelling one working paper order on its own, for a person to approve. Only a
    /// bracket's protective child (take-profit or stop-loss) needs such an approval before
    /// `paper order cancel` will cancel it alone; the preview records the order as it stands
    /// now, asks the broker nothing else, and places or cancels nothing.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE`, `INPUT_*`, `ORDER_NOT_FOUND`, `BROKER_ORDER_REJECTED` (the order
    /// is finished), writer or broker read errors, `WORKFLOW_STORE_FAILED`, or
    /// `AUDIT_WRITE_FAILED`.
    pub async fn preview_cancel(
        &self,
        context: &CallContext,
        raw: RawCancelPreview,
    ) -> Result<PreviewView, GatewayError> {
        let spec = CallSpec::write_of("orders cancel preview", Some(Scope::OrdersPreview), &raw);
        self.audited(context, spec, |note| async move {
            let account = self
                .select_account(&AccountSelector::parse(&raw.account)?, &note)
                .await?;
            let order_id = order_input::order_id(&raw.order_id)?;
            note.link(|links| links.link_broker_order(&order_id));
            let working = self
                .writer_for(&account.id)
                .order(&account.id, &order_id)
                .await?
                .ok_or(GatewayError::Write(WriteError::OrderNotFound))?;
            if working.status.is_terminal() {
                return Err(GatewayError::Write(WriteError::Rejected {
                    reason: format!(
                        "the order is {} and can no longer be cancelled",
                        working.status
                    ),
                }));
            }
            let leg = standing_order(&working)?;
            let contract = self.broker().contract(leg.contract_id()).await?;
            self.store_preview(
                context,
                &note,
                PreviewKind::Cancel { order_id },
                vec![leg],
                &contract,
                Some(WhatIf::default()),
            )
            .await
        })
        .await
    }

    /// The preview policy for every leg, judged against one quote snapshot taken now (asked only
    /// when a leg's check needs it). A contract without market data leaves the quote unknown,
    /// and the policy fails closed where it needs one; any other broker failure is returned as
    /// is, and nothing is previewed.
    async fn check_policy(
        &self,
        legs: &[OrderIntent],
        contract: &Contract,
    ) -> Result<(), GatewayError> {
        let policy = self.preview_policy();
        let reference = if legs.iter().any(|leg| policy.needs_reference(leg)) {
            match self.broker().quote_snapshot(contract.id).await {
                Ok(quote) => ReferenceQuote::from_quote(&quote),
                Err(BrokerError::MarketDataUnavailable { .. }) => None,
                Err(error) => return Err(error.into()),
            }
        } else {
            None
        };
        for leg in legs {
            policy
                .check(leg, contract, reference.as_ref())
                .map_err(GatewayError::Policy)?;
        }
        Ok(())
    }

    /// A replacement may change only quantity, prices and time in force of a working order.
    pub(crate) async fn check_replacement(
        &self,
        order_id: &crate::domain::ids::BrokerOrderId,
        replacement: &OrderIntent,
    ) -> Result<(), GatewayError> {
        let working = self
            .writer_for(replacement.account_id())
            .order(replacement.account_id(), order_id)
            .await?
            .ok_or(GatewayError::Write(
                crate::ports::order_writer::WriteError::OrderNotFound,
            ))?;
        if working.account_id != *replacement.account_id() {
            return Err(GatewayError::ModifyNotAllowed { field: "account" });
        }
        if working.contract_id != replacement.contract_id() {
            return Err(GatewayError::ModifyNotAllowed { field: "contract" });
        }
        if working.side != replacement.side() {
            return Err(GatewayError::ModifyNotAllowed { field: "side" });
        }
        if working.order_type != replacement.order_type() {
            return Err(GatewayError::ModifyNotAllowed {
                field: "order type",
            });
        }
        if working.status.is_terminal() {
            return Err(GatewayError::Write(
                crate::ports::order_writer::WriteError::Rejected {
                    reason: format!("the order is {} and can no longer change", working.status),
                },
            ));
        }
        Ok(())
    }

    async fn store_preview(
        &self,
        context: &CallContext,
        note: &crate::app::audited::AuditNote,
        kind: PreviewKind,
        legs: Vec<OrderIntent>,
        contract: &Contract,
        what_if: Option<WhatIf>,
    ) -> Result<PreviewView, GatewayError> {
        let Some(account_id) = legs.first().map(|leg| leg.account_id().clone()) else {
            return Err(GatewayError::Internal {
                message: "a preview without legs".into(),
            });
        };
        let what_if = match what_if {
            Some(what_if) => what_if,
            None => self.broker().what_if(&account_id, &legs).await?,
        };
        let now = self.clock().now();
        let preview = Preview {
            id: PreviewId::parse(&new_id("prv", self)).map_err(|_| GatewayError::Internal {
                message: "a generated preview id did not parse".into(),
            })?,
            digest: kind.digest(&self.digest_key(), &legs),
            kind,
            legs,
            symbol: contract.symbol.clone(),
            what_if,
            created_at: now,
            expires_at: now
                + Duration::seconds(i64::from(self.preview_policy().expiration_seconds)),
            created_by: context.actor().clone(),
            surface: context.surface(),
        };
        self.workflow().insert_preview(&preview).await?;
        note.link(|links| links.link_preview(&preview.id));
        Ok(PreviewView::new(self.directory(), &preview))
    }
}

/// The working order as an intent, for a cancel preview to show and bind to. A trailing order
/// cannot be shown this way (the writer does not report its offset) and is refused.
fn standing_order(working: &WorkingOrder) -> Result<OrderIntent, GatewayError> {
    OrderIntent::new(IntentParts {
        account_id: working.account_id.clone(),
        contract_id: working.contract_id,
        side: working.side,
        quantity: working.quantity,
        order_type: working.order_type,
        limit_price: working.limit_price,
        stop_price: working.stop_price,
        trailing: None,
        time_in_force: working.time_in_force,
    })
    .map_err(|error| {
        GatewayError::invalid_input(
            "order_id",
            format!("this order cannot be previewed for a cancel: {error}"),
        )
    })
}
