//! Output views: what every front end shows. The only place domain values become output.
//!
//! Views name accounts by [`AccountView`] (reference, masked display, alias, mode), never by
//! raw id; decimals serialize as strings; broker-supplied text is length-bounded and kept in
//! fields labelled as broker text.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;

use crate::app::account_directory::AccountDirectory;
use crate::domain::account::{Account, AccountSummary};
use crate::domain::audit::AuditRecord;
use crate::domain::audit::chain::VerifyReport;
use crate::domain::instrument::{Contract, Greeks};
use crate::domain::market_data::{BarSeries, HistoryPeriod, Quote};
use crate::domain::money::{Money, Price, Quantity};
use crate::domain::order::{Execution, LiveOrder};
use crate::domain::portfolio::Position;
use crate::domain::session::SessionStatus;

/// The longest broker-supplied text passed through.
pub const MAX_BROKER_TEXT_CHARS: usize = 120;

fn bounded_broker_text(text: &str) -> String {
    crate::domain::broker_text::clean(text, MAX_BROKER_TEXT_CHARS)
}

fn timestamp(value: DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn price(value: Option<Price>) -> Option<Decimal> {
    value.map(Price::value)
}

fn quantity(value: Option<Quantity>) -> Option<Decimal> {
    value.map(Quantity::value)
}

/// Gateway health; touches no broker.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HealthView {
    /// Always `ok` when the gateway answers.
    pub status: &'static str,
    /// The gateway version.
    pub gateway_version: &'static str,
    /// The configured backend.
    pub backend: &'static str,
    /// The audit store, e.g. `sqlite audit.sqlite3`.
    pub audit_store: String,
    /// Where the audit key (which also keys account references) came from: `environment`,
    /// `development`, `ephemeral` or `provided`.
    pub audit_key: &'static str,
    /// The granted scopes.
    pub granted_scopes: Vec<&'static str>,
    /// True when any write scope is granted.
    pub write_scopes_granted: bool,
    /// Granted scopes that do nothing: the live order scopes while live trading is off.
    pub inert_scopes: Vec<&'static str>,
    /// Settings that weaken a safety property and are meant for testing only, each as
    /// `CODE: explanation`; empty in a sound deployment. Today: `REMOTE_MCP_INSECURE_ISSUER`,
    /// when remote MCP fetches the issuer's keys over plain http.
    pub warnings: Vec<&'static str>,
}

/// The warning `health` gives while remote MCP trusts keys fetched over plain http.
pub const INSECURE_REMOTE_ISSUER_WARNING: &str = "REMOTE_MCP_INSECURE_ISSUER: \
remote_mcp.allow_insecure_loopback_issuer is on, so bearer tokens are checked against keys \
fetched over plain http from a loopback issuer. This is for local testing only; turn it off \
and use an https issuer before any real use.";

/// The broker session as reported by the backend.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BackendStatusView {
    /// The configured backend.
    pub backend: &'static str,
    /// `usable`, `login_required`, `competing_session` or `unavailable`.
    pub state: &'static str,
    /// Authenticated.
    pub authenticated: bool,
    /// Connected to the broker.
    pub connected: bool,
    /// Another session competes.
    pub competing: bool,
    /// What a person should do, when the session is not usable.
    pub user_action: Option<String>,
}

impl BackendStatusView {
    /// Builds the view from a status report.
    pub fn new(backend: &'static str, status: &SessionStatus) -> Self {
        use crate::domain::session::SessionState;
        let user_action = match status.state {
            SessionState::Usable => None,
            SessionState::LoginRequired => Some(match &status.login_url {
                Some(url) => format!("log in to the broker gateway at {url}"),
                None => "log in to the broker gateway".to_owned(),
            }),
            SessionState::CompetingSession => Some(
                "another login holds the brokerage session; log out elsewhere, then log in again"
                    .to_owned(),
            ),
            SessionState::Unavailable => {
                Some("start the broker gateway or check the network".to_owned())
            }
        };
        Self {
            backend,
            state: status.state.as_str(),
            authenticated: status.authenticated,
            connected: status.connected,
            competing: status.competing,
            user_action,
        }
    }
}

/// What the broker session needs before account and market tools can work.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionRequirementsView {
    /// The configured backend.
    pub backend: &'static str,
    /// The session state now.
    pub state: &'static str,
    /// True when account, market and order tools can be used now.
    pub ready: bool,
    /// True when a person must log in at the broker's own login page.
    pub manual_login_required: bool,
    /// Where to log in, when known.
    pub login_url: Option<String>,
    /// What a person should do next, in order; empty when ready.
    pub steps: Vec<String>,
    /// A fixed reminder: the gateway never logs in on anyone's behalf.
    pub note: &'static str,
}

impl SessionRequirementsView {
    /// Builds the view from a status report.
    pub fn new(backend: &'static str, status: &SessionStatus) -> Self {
        use crate::domain::session::SessionState;
        let steps: Vec<String> = match status.state {
            SessionState::Usable => Vec::new(),
            SessionState::LoginRequired => vec![
                match &status.login_url {
                    Some(url) => {
                        format!("open {url} in a browser and log in with your IBKR credentials")
                    }
                    None => "open the broker gateway's login page and log in".to_owned(),
                },
                "complete two-factor authentication if asked".to_owned(),
                "call ibkr_backend_status until the state is usable".to_owned(),
            ],
            SessionState::CompetingSession => vec![
                "log out of other IBKR sessions (web, mobile, TWS) for this user".to_owned(),
                "log in again at the broker gateway".to_owned(),
            ],
            SessionState::Unavailable => vec![
                "start the broker gateway, or check that it is reachable".to_owned(),
                "then log in at its login page".to_owned(),
            ],
        };
        Self {
            backend,
            state: status.state.as_str(),
            ready: status.state == SessionState::Usable,
            manual_login_required: status.state != SessionState::Usable,
            login_url: status.login_url.clone(),
            steps,
            note: "the gateway never logs in, answers two-factor prompts or stores broker credentials",
        }
    }
}

/// How an account appears in every output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AccountView {
    /// Opaque, stable reference; accepted as input.
    pub account_ref: String,
    /// Masked id, e.g. `DU•••4567`.
    pub display: String,
    /// Operator alias, when configured; accepted as input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// `paper` or `live`.
    pub mode: &'static str,
    /// Base currency.
    pub base_currency: String,
    /// Account kind.
    pub kind: &'static str,
}

impl AccountView {
    /// Builds the view through the directory.
    pub fn new(directory: &AccountDirectory, account: &Account) -> Self {
        let identity = directory.identity(&account.id);
        Self {
            account_ref: identity.account_ref,
            display: identity.display,
            alias: identity.alias,
            mode: account.mode.as_str(),
            base_currency: account.base_currency.to_string(),
            kind: account.kind.as_str(),
        }
    }
}

/// An amount with its currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MoneyView {
    /// The amount, as a decimal string.
    pub amount: Decimal,
    /// The currency.
    pub currency: String,
}

impl From<Money> for MoneyView {
    fn from(money: Money) -> Self {
        Self {
            amount: money.amount(),
            currency: money.currency().to_string(),
        }
    }
}

/// Balances and margin of one account.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AccountSummaryView {
    /// The account.
    pub account: AccountView,
    /// Base currency of every figure.
    pub base_currency: String,
    /// Net liquidation value.
    pub net_liquidation: Decimal,
    /// Total cash.
    pub total_cash: Decimal,
    /// Buying power.
    pub buying_power: Decimal,
    /// Available funds.
    pub available_funds: Decimal,
    /// Excess liquidity.
    pub excess_liquidity: Decimal,
    /// Initial margin.
    pub initial_margin: Decimal,
    /// Maintenance margin.
    pub maintenance_margin: Decimal,
    /// Gross position value.
    pub gross_position_value: Decimal,
    /// Cash per currency.
    pub cash_balances: Vec<MoneyView>,
}

impl AccountSummaryView {
    /// Builds the view.
    pub fn new(account: AccountView, summary: &AccountSummary) -> Self {
        Self {
            account,
            base_currency: summary.base_currency.to_string(),
            net_liquidation: summary.net_liquidation.amount(),
            total_cash: summary.total_cash.amount(),
            buying_power: summary.buying_power.amount(),
            available_funds: summary.available_funds.amount(),
            excess_liquidity: summary.excess_liquidity.amount(),
            initial_margin: summary.initial_margin.amount(),
            maintenance_margin: summary.maintenance_margin.amount(),
            gross_position_value: summary.gross_position_value.amount(),
            cash_balances: summary
                .cash_balances
                .iter()
                .copied()
                .map(MoneyView::from)
                .collect(),
        }
    }
}

/// Option terms in outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct OptionTermsView {
    /// The underlying's contract id.
    pub underlying_contract_id: u64,
    /// Expiry date, `YYYY-MM-DD`.
    pub expiry: String,
    /// Strike.
    pub strike: Decimal,
    /// `C` or `P`.
    pub right: &'static str,
}

/// A contract in outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ContractView {
    /// IBKR contract id.
    pub contract_id: u64,
    /// Symbol.
    pub symbol: String,
    /// Exchange-local symbol.
    pub local_symbol: String,
    /// Asset class code.
    pub asset_class: &'static str,
    /// Trading currency.
    pub currency: String,
    /// Primary exchange.
    pub exchange: String,
    /// Units per contract.
    pub multiplier: Decimal,
    /// Broker-supplied description (untrusted text, at most 120 characters).
    #[schemars(extend("x-untrusted" = true))]
    pub broker_description: String,
    /// Option terms, for options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option: Option<OptionTermsView>,
}

impl From<&Contract> for ContractView {
    fn from(contract: &Contract) -> Self {
        Self {
            contract_id: contract.id.value(),
            symbol: bounded_broker_text(&contract.symbol),
            local_symbol: bounded_broker_text(&contract.local_symbol),
            asset_class: contract.asset_class.code(),
            currency: contract.currency.to_string(),
            exchange: bounded_broker_text(&contract.exchange),
            multiplier: contract.multiplier,
            broker_description: bounded_broker_text(&contract.description),
            option: contract.option.as_ref().map(|terms| OptionTermsView {
                underlying_contract_id: terms.underlying.value(),
                expiry: terms.expiry.format("%Y-%m-%d").to_string(),
                strike: terms.strike.value(),
                right: terms.right.code(),
            }),
        }
    }
}

/// Search results.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ContractsView {
    /// The matching contracts.
    pub contracts: Vec<ContractView>,
}

/// A position in outputs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PositionView {
    /// The contract.
    pub contract: ContractView,
    /// Signed quantity.
    pub quantity: Decimal,
    /// Average cost per unit.
    pub average_cost: Decimal,
    /// Mark price.
    pub market_price: Decimal,
    /// Market value.
    pub market_value: Decimal,
    /// Unrealized P&L.
    pub unrealized_pnl: Decimal,
    /// Realized P&L.
    pub realized_pnl: Decimal,
    /// Currency of the money figures.
    pub currency: String,
}

impl From<&Position> for PositionView {
    fn from(position: &Position) -> Self {
        Self {
            contract: ContractView::from(&position.contract),
            quantity: position.quantity.value(),
            average_cost: position.average_cost.value(),
            market_price: position.market_price.value(),
            market_value: position.market_value.amount(),
            unrealized_pnl: position.unrealized_pnl.amount(),
            realized_pnl: position.realized_pnl.amount(),
            currency: position.market_value.currency().to_string(),
        }
    }
}

/// Positions of one account.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PositionsView {
    /// The account.
    pub account: AccountView,
    /// The positions.
    pub positions: Vec<PositionView>,
}

/// Greeks in outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct GreeksView {
    /// Delta.
    pub delta: Decimal,
    /// Gamma.
    pub gamma: Decimal,
    /// Theta per day.
    pub theta: Decimal,
    /// Vega.
    pub vega: Decimal,
    /// Implied volatility as a fraction.
    pub implied_volatility: Decimal,
}

impl From<&Greeks> for GreeksView {
    fn from(greeks: &Greeks) -> Self {
        Self {
            delta: greeks.delta,
            gamma: greeks.gamma,
            theta: greeks.theta,
            vega: greeks.vega,
            implied_volatility: greeks.implied_volatility,
        }
    }
}

/// A quote snapshot in outputs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct QuoteView {
    /// The contract.
    pub contract: ContractView,
    /// `live`, `delayed`, `frozen`, `stale` or `unavailable`.
    pub status: &'static str,
    /// When the values were produced.
    pub as_of: String,
    /// Age in seconds at the time of the call.
    pub age_seconds: i64,
    /// Bid.
    pub bid: Option<Decimal>,
    /// Ask.
    pub ask: Option<Decimal>,
    /// Last.
    pub last: Option<Decimal>,
    /// Bid size.
    pub bid_size: Option<Decimal>,
    /// Ask size.
    pub ask_size: Option<Decimal>,
    /// Volume.
    pub volume: Option<Decimal>,
    /// Greeks, for options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeks: Option<GreeksView>,
    /// The fields the broker had not filled in when the quote was taken (`bid`, `ask`,
    /// `last`, `bid_size`, `ask_size`, `volume`, `greeks`, `status`); empty when complete. A
    /// listed field is `null` (or absent, for greeks); `status` listed means the broker did not
    /// say how current the data is, so it is reported `stale`.
    pub missing_fields: Vec<&'static str>,
}

impl QuoteView {
    /// Builds the view; `now` fixes the age.
    pub fn new(contract: &Contract, quote: &Quote, now: DateTime<Utc>) -> Self {
        Self {
            contract: ContractView::from(contract),
            status: quote.status.as_str(),
            as_of: timestamp(quote.as_of),
            age_seconds: quote.age_at(now).num_seconds(),
            bid: price(quote.bid),
            ask: price(quote.ask),
            last: price(quote.last),
            bid_size: quantity(quote.bid_size),
            ask_size: quantity(quote.ask_size),
            volume: quantity(quote.volume),
            greeks: quote.greeks.as_ref().map(GreeksView::from),
            missing_fields: quote.missing.iter().map(|field| field.as_str()).collect(),
        }
    }
}

/// One bar in outputs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BarView {
    /// Bar start.
    pub start: String,
    /// Open.
    pub open: Decimal,
    /// High.
    pub high: Decimal,
    /// Low.
    pub low: Decimal,
    /// Close.
    pub close: Decimal,
    /// Volume.
    pub volume: Decimal,
}

/// Historical bars in outputs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BarsView {
    /// The contract id.
    pub contract_id: u64,
    /// The period asked for.
    pub period: String,
    /// The bar size.
    pub bar_size: &'static str,
    /// Data status.
    pub status: &'static str,
    /// The bars, oldest first.
    pub bars: Vec<BarView>,
}

impl BarsView {
    /// Builds the view.
    pub fn new(series: &BarSeries, period: HistoryPeriod) -> Self {
        Self {
            contract_id: series.contract_id.value(),
            period: period.to_string(),
            bar_size: series.bar_size.as_str(),
            status: series.status.as_str(),
            bars: series
                .bars
                .iter()
                .map(|bar| BarView {
                    start: timestamp(bar.start),
                    open: bar.open.value(),
                    high: bar.high.value(),
                    low: bar.low.value(),
                    close: bar.close.value(),
                    volume: bar.volume.value(),
                })
                .collect(),
        }
    }
}

/// A working or recent order in outputs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderView {
    /// Broker order id.
    pub order_id: String,
    /// Contract id.
    pub contract_id: u64,
    /// Symbol.
    pub symbol: String,
    /// `BUY` or `SELL`, or `EXPIRED` for an expired option the broker lists (side `X`).
    pub side: &'static str,
    /// Order type code.
    pub order_type: &'static str,
    /// Quantity.
    pub quantity: Decimal,
    /// Filled quantity.
    pub filled_quantity: Decimal,
    /// Limit price.
    pub limit_price: Option<Decimal>,
    /// Stop price.
    pub stop_price: Option<Decimal>,
    /// Time in force.
    pub time_in_force: &'static str,
    /// Broker status.
    pub status: &'static str,
    /// Last update.
    pub updated_at: String,
}

impl From<&LiveOrder> for OrderView {
    fn from(order: &LiveOrder) -> Self {
        Self {
            order_id: order.order_id.to_string(),
            contract_id: order.contract_id.value(),
            symbol: bounded_broker_text(&order.symbol),
            side: order.side.code(),
            order_type: order.order_type.code(),
            quantity: order.quantity.value(),
            filled_quantity: order.filled_quantity.value(),
            limit_price: price(order.limit_price),
            stop_price: price(order.stop_price),
            time_in_force: order.time_in_force.code(),
            status: order.status.code(),
            updated_at: timestamp(order.updated_at),
        }
    }
}

/// Orders of one account.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrdersView {
    /// The account.
    pub account: AccountView,
    /// The orders.
    pub orders: Vec<OrderView>,
}

/// An execution in outputs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExecutionView {
    /// Broker execution id.
    pub execution_id: String,
    /// The broker's order id, `null` when the broker's answer does not name it (IBKR's trades
    /// answer names only the client order id).
    pub order_id: Option<String>,
    /// The client order id (`cOID`, the idempotency key for orders placed through this
    /// gateway) the order was placed with; `null` when it had none.
    pub client_order_id: Option<String>,
    /// Contract id.
    pub contract_id: u64,
    /// Symbol.
    pub symbol: String,
    /// `BUY` or `SELL`.
    pub side: &'static str,
    /// Quantity.
    pub quantity: Decimal,
    /// Price.
    pub price: Decimal,
    /// Commission.
    pub commission: MoneyView,
    /// When it filled.
    pub executed_at: String,
}

impl From<&Execution> for ExecutionView {
    fn from(execution: &Execution) -> Self {
        Self {
            execution_id: execution.execution_id.to_string(),
            order_id: execution.order_id.as_ref().map(ToString::to_string),
            client_order_id: execution.client_order_id.clone(),
            contract_id: execution.contract_id.value(),
            symbol: bounded_broker_text(&execution.symbol),
            side: execution.side.code(),
            quantity: execution.quantity.value(),
            price: execution.price.value(),
            commission: MoneyView::from(execution.commission),
            executed_at: timestamp(execution.executed_at),
        }
    }
}

/// Executions of one account.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExecutionsView {
    /// The account.
    pub account: AccountView,
    /// The executions, newest first.
    pub executions: Vec<ExecutionView>,
}

/// Accounts visible to the session.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AccountsView {
    /// The accounts.
    pub accounts: Vec<AccountView>,
}

/// One audit event as shown by `audit tail` and written by `audit export` (one line each).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditEventView {
    /// Position in the log.
    pub sequence: u64,
    /// UUIDv7.
    pub event_id: String,
    /// When, RFC 3339 UTC.
    pub occurred_at: String,
    /// Who.
    pub actor: String,
    /// Through which front end.
    pub surface: String,
    /// Command or tool.
    pub operation: String,
    /// Required scope.
    pub scope: Option<String>,
    /// `allow`, `deny` or `refuse`.
    pub decision: String,
    /// `completed`, `refused`, `denied_scope` or `failed`.
    pub status: String,
    /// Error code.
    pub error_code: Option<String>,
    /// Keyed hash of the account involved.
    pub account_id_hash: Option<String>,
    /// SHA-256 of the redacted input.
    pub input_hash: String,
    /// SHA-256 of the output.
    pub output_hash: Option<String>,
    /// What was redacted (JSON exactly as stored).
    #[schemars(with = "serde_json::Value")]
    pub redactions: Box<serde_json::value::RawValue>,
    /// Redacted metadata (JSON exactly as stored).
    #[schemars(with = "serde_json::Value")]
    pub metadata: Box<serde_json::value::RawValue>,
    /// The row's chain hash.
    pub chain_hash: String,
}

fn raw_json(text: &str) -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string(text.to_owned()).unwrap_or_else(|_| {
        // A stored value that is not JSON (a tampered row) is shown as a JSON string.
        let quoted = serde_json::Value::String(text.to_owned()).to_string();
        serde_json::value::RawValue::from_string(quoted).unwrap_or_default()
    })
}

impl From<&AuditRecord> for AuditEventView {
    fn from(record: &AuditRecord) -> Self {
        let columns = &record.columns;
        Self {
            sequence: columns.sequence,
            event_id: columns.event_id.clone(),
            occurred_at: columns.occurred_at.clone(),
            actor: columns.actor.clone(),
            surface: columns.surface.clone(),
            operation: columns.operation.clone(),
            scope: columns.scope.clone(),
            decision: columns.decision.clone(),
            status: columns.status.clone(),
            error_code: columns.error_code.clone(),
            account_id_hash: columns.account_id_hash.clone(),
            input_hash: columns.input_hash.clone(),
            output_hash: columns.output_hash.clone(),
            redactions: raw_json(&columns.redactions),
            metadata: raw_json(&columns.metadata),
            chain_hash: record.chain_hash.clone(),
        }
    }
}

/// The newest audit events, verified against each other as read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditTailView {
    /// Newest first.
    pub events: Vec<AuditEventView>,
    /// True: every event shown links to its predecessor under the audit key.
    pub verified: bool,
}

/// The last line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ExportTrailerView {
    /// Lines exported (the trailer excluded).
    pub count: u64,
    /// SHA-256 over the exported lines, each with its trailing newline.
    pub sha256: String,
    /// The chain hash of the last row in the range, or `None` for an empty range.
    pub chain_head: Option<String>,
    /// The sequence of the last row in the range.
    pub last_sequence: Option<u64>,
}

/// The result of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct VerifyReportView {
    /// Rows read.
    pub events_scanned: u64,
    /// True when the whole chain verifies and matches every expectation.
    pub chain_valid: bool,
    /// The first sequence that does not verify.
    pub first_break_at_sequence: Option<u64>,
    /// The chain hash of the last row.
    pub head: Option<String>,
    /// True when an anchor (`expect_head`/`expect_count` from an earlier export trailer) was
    /// given and the log still holds that prefix unchanged.
    pub anchor_verified: bool,
    /// Signed checkpoints (from `--checkpoints`) whose prefix the log still holds.
    pub checkpoints_verified: u64,
    /// The last sequence a verified checkpoint vouches for.
    pub verified_through_checkpoint: Option<u64>,
    /// When the log was purged: the last purged sequence (the chain resumes after it).
    pub purged_through: Option<u64>,
    /// True when the HMAC chain itself was checked; false for a check with the public key
    /// alone, which vouches only for rows up to the last checkpoint.
    pub keyed: bool,
}

impl From<VerifyReport> for VerifyReportView {
    fn from(report: VerifyReport) -> Self {
        Self {
            events_scanned: report.events_scanned,
            chain_valid: report.chain_valid,
            first_break_at_sequence: report.first_break_at_sequence,
            head: report.head,
            anchor_verified: false,
            checkpoints_verified: 0,
            verified_through_checkpoint: None,
            purged_through: None,
            keyed: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_text_is_bounded_and_stripped_of_controls() {
        let text = format!("IGNORE PREVIOUS\u{7}{}", "x".repeat(500));
        let bounded = bounded_broker_text(&text);
        assert_eq!(bounded.chars().count(), MAX_BROKER_TEXT_CHARS);
        assert!(!bounded.contains('\u{7}'));
    }
}
