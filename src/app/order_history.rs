//! `orders history`: every order the gateway placed, as the workflow store keeps it (approval,
//! preview, idempotency key, each recorded transition), joined with what the broker reports of
//! it now (its status in the account's order list, its fills).
//!
//! The stored history is the answer; the broker's part is best effort. An account the session
//! does not list, or whose orders or fills cannot be read, is named in
//! `broker_unavailable_for` and its orders come back as stored. Each involved account is read
//! with one order-list call and one executions call, whatever the number of its orders.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::app::audited::AuditNote;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input::AccountSelector;
use crate::app::order_history_views::{
    BrokerJoin, BrokerOrderNowView, FillMatch, HistoryAccountView, HistoryFillView,
    HistoryOrderView, OrderHistoryView,
};
use crate::domain::account::Account;
use crate::domain::order::{Execution, LiveOrder};
use crate::domain::order_lifecycle::{
    HistoryQuery, LifecycleState, OrderHistoryEntry, TrackedOrder,
};

/// How many orders a history answer holds when the caller does not say.
pub const DEFAULT_HISTORY_LIMIT: usize = 50;

/// The most orders one history answer holds.
pub const MAX_HISTORY_LIMIT: usize = 500;

/// The prefix of an account reference: a selector with it names a stored account even when
/// the broker session does not list it (or cannot be asked).
const REFERENCE_PREFIX: &str = "acct_";

/// A checked history request.
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    /// Only this account.
    pub account: Option<AccountSelector>,
    /// Only orders placed at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only orders in this state.
    pub state: Option<LifecycleState>,
    /// At most this many orders (1 to [`MAX_HISTORY_LIMIT`]).
    pub limit: usize,
}

/// What the broker reported of one account.
struct AccountReport {
    orders: Vec<LiveOrder>,
    executions: Vec<Execution>,
}

impl Gateway {
    /// The history of the orders the gateway placed, newest placed first, each joined with the
    /// broker's view of it now when the broker can be read.
    ///
    /// # Errors
    /// `INPUT_UNKNOWN_ACCOUNT` for an account selector that names no visible account and is
    /// no account reference; a broker error when the selector is no reference and the
    /// accounts cannot be listed; `WORKFLOW_STORE_FAILED` or `WORKFLOW_RECORD_CORRUPT` when
    /// the history cannot be read.
    pub(crate) async fn read_order_history(
        &self,
        request: &HistoryRequest,
        note: &AuditNote,
    ) -> Result<OrderHistoryView, GatewayError> {
        let accounts = self.broker().accounts().await;
        let account_ref = match &request.account {
            None => None,
            Some(selector) => Some(self.history_account_ref(selector, &accounts, note)?),
        };
        let entries = self
            .workflow()
            .order_history(&HistoryQuery {
                account_ref,
                since: request.since,
                state: request.state,
                limit: request.limit,
            })
            .await?;
        if entries.is_empty() {
            return Ok(OrderHistoryView {
                orders: Vec::new(),
                broker: BrokerJoin::NotAsked,
                broker_unavailable_for: Vec::new(),
            });
        }
        let visible: BTreeMap<String, &Account> = accounts
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|account| (self.directory().reference(&account.id), account))
            .collect();
        let mut reports: BTreeMap<&str, Option<AccountReport>> = BTreeMap::new();
        for entry in &entries {
            let account_ref = entry.order.key.account_ref.as_str();
            if reports.contains_key(account_ref) {
                continue;
            }
            let report = match visible.get(account_ref) {
                Some(account) => self.broker_report(account, &entries, request.since).await,
                None => None,
            };
            reports.insert(account_ref, report);
        }
        let orders = entries
            .iter()
            .map(|entry| {
                let account_ref = entry.order.key.account_ref.as_str();
                let identity = visible
                    .get(account_ref)
                    .map(|account| self.directory().identity(&account.id));
                let account = HistoryAccountView::new(account_ref, identity);
                let report = reports.get(account_ref).and_then(Option::as_ref);
                let broker_now = report
                    .and_then(|report| {
                        report
                            .orders
                            .iter()
                            .find(|listed| listed.order_id == entry.order.key.order_id)
                    })
                    .map(BrokerOrderNowView::from);
                let fills = report
                    .map(|report| fills_of(&entry.order, &report.executions))
                    .unwrap_or_default();
                HistoryOrderView::new(account, &entry.order, &entry.events, broker_now, fills)
            })
            .collect();
        let broker_unavailable_for: Vec<String> = reports
            .iter()
            .filter(|(_, report)| report.is_none())
            .map(|(account_ref, _)| (*account_ref).to_owned())
            .collect();
        Ok(OrderHistoryView {
            orders,
            broker: if broker_unavailable_for.is_empty() {
                BrokerJoin::Reported
            } else {
                BrokerJoin::Unavailable
            },
            broker_unavailable_for,
        })
    }

    /// The reference `selector` names: a visible account's (noted for the audit record), or
    /// the selector itself when it is a reference the session does not list.
    fn history_account_ref(
        &self,
        selector: &AccountSelector,
        accounts: &Result<Vec<Account>, crate::ports::broker_reader::BrokerError>,
        note: &AuditNote,
    ) -> Result<String, GatewayError> {
        let is_reference = selector.as_str().starts_with(REFERENCE_PREFIX);
        match accounts {
            Ok(accounts) => match self.directory().select(selector, accounts) {
                Ok(account) => {
                    note.record_account(&account.id);
                    Ok(self.directory().reference(&account.id))
                }
                Err(_) if is_reference => Ok(selector.as_str().to_owned()),
                Err(error) => Err(error),
            },
            Err(_) if is_reference => Ok(selector.as_str().to_owned()),
            Err(error) => Err(GatewayError::from(error.clone())),
        }
    }

    /// One order-list and one executions read of `account`, or `None` when either fails.
    /// Executions are asked from the request's `since`, else from the oldest placement of
    /// the account's orders in `entries`.
    async fn broker_report(
        &self,
        account: &Account,
        entries: &[OrderHistoryEntry],
        since: Option<DateTime<Utc>>,
    ) -> Option<AccountReport> {
        let account_ref = self.directory().reference(&account.id);
        let oldest = entries
            .iter()
            .filter(|entry| entry.order.key.account_ref == account_ref)
            .map(|entry| entry.order.placed_at)
            .min();
        let orders = self.broker().live_orders(&account.id).await.ok()?;
        let executions = self
            .broker()
            .executions(&account.id, since.or(oldest))
            .await
            .ok()?;
        Some(AccountReport { orders, executions })
    }
}

/// The fills of `order` among `executions`, oldest first: by order id when the broker names
/// one, else by client order id, contract and side.
fn fills_of(order: &TrackedOrder, executions: &[Execution]) -> Vec<HistoryFillView> {
    let mut fills: Vec<(&Execution, FillMatch)> = executions
        .iter()
        .filter_map(|execution| {
            match &execution.order_id {
                Some(order_id) => (*order_id == order.key.order_id).then_some(FillMatch::OrderId),
                None => {
                    let same_order = order.client_order_id.is_some()
                        && execution.client_order_id == order.client_order_id
                        && execution.contract_id == order.contract_id
                        && execution.side == order.side;
                    same_order.then_some(FillMatch::ClientOrderId)
                }
            }
            .map(|matched_by| (execution, matched_by))
        })
        .collect();
    fills.sort_by_key(|(execution, _)| execution.executed_at);
    fills
        .into_iter()
        .map(|(execution, matched_by)| HistoryFillView::new(execution, matched_by))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::ids::{AccountId, BrokerOrderId, ContractId, ExecutionId, IdempotencyKey};
    use crate::domain::money::{Currency, Money, Price, Quantity};
    use crate::domain::order::{OrderSide, OrderType};
    use crate::domain::order_lifecycle::{PollState, TrackedOrderKey, TradingMode};

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 15, minute, 0).unwrap()
    }

    fn order(order_id: &str, client_order_id: Option<&str>, side: OrderSide) -> TrackedOrder {
        TrackedOrder {
            key: TrackedOrderKey {
                mode: TradingMode::Live,
                account_ref: "acct_0123456789abcdef".to_owned(),
                order_id: BrokerOrderId::parse(order_id).unwrap(),
            },
            client_order_id: client_order_id.map(str::to_owned),
            idempotency_key: IdempotencyKey::parse("k-1").unwrap(),
            operation: "live_submit".to_owned(),
            leg: "order".to_owned(),
            approval_id: None,
            preview_id: None,
            contract_id: ContractId::new(265_598).unwrap(),
            symbol: "AAPL".to_owned(),
            side,
            order_type: OrderType::Limit,
            approved_quantity: Quantity::parse("10").unwrap(),
            state: LifecycleState::Submitted,
            filled_quantity: Quantity::parse("0").unwrap(),
            average_price: None,
            placed_at: at(0),
            updated_at: at(0),
            polling: PollState::default(),
        }
    }

    fn fill(
        id: &str,
        order_id: Option<&str>,
        client_order_id: Option<&str>,
        minute: u32,
    ) -> Execution {
        Execution {
            execution_id: ExecutionId::parse(id).unwrap(),
            order_id: order_id.map(|raw| BrokerOrderId::parse(raw).unwrap()),
            client_order_id: client_order_id.map(str::to_owned),
            account_id: AccountId::parse("U1234567").unwrap(),
            contract_id: ContractId::new(265_598).unwrap(),
            symbol: "AAPL".to_owned(),
            side: OrderSide::Buy,
            quantity: Quantity::parse("5").unwrap(),
            price: Price::parse("190.01").unwrap(),
            commission: Money::new(rust_decimal::Decimal::ONE, Currency::parse("USD").unwrap()),
            executed_at: at(minute),
        }
    }

    #[test]
    fn fills_match_by_order_id_else_by_client_order_id_contract_and_side() {
        let executions = [
            fill("e-late", Some("o-1"), None, 9),
            fill("e-other-order", Some("o-2"), Some("k-1"), 1),
            fill("e-by-coid", None, Some("k-1"), 5),
            fill("e-other-coid", None, Some("k-2"), 2),
        ];
        let found: Vec<(String, FillMatch)> =
            fills_of(&order("o-1", Some("k-1"), OrderSide::Buy), &executions)
                .into_iter()
                .map(|fill| (fill.execution_id, fill.matched_by))
                .collect();
        assert_eq!(
            found,
            [
                ("e-by-coid".to_owned(), FillMatch::ClientOrderId),
                ("e-late".to_owned(), FillMatch::OrderId),
            ]
        );
        // The other side of the same cOID (a bracket child) and an order without a cOID take
        // only fills that name them.
        let child = fills_of(&order("o-3", Some("k-1"), OrderSide::Sell), &executions);
        assert!(child.is_empty());
        let by_hand = fills_of(&order("o-1", None, OrderSide::Buy), &executions);
        assert_eq!(by_hand.len(), 1);
        assert_eq!(by_hand[0].matched_by, FillMatch::OrderId);
    }
}
