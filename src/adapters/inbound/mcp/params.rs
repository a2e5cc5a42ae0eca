//! Typed tool inputs: one struct per argument shape, whose JSON Schema (doc comments, bounds,
//! enums, patterns, `additionalProperties: false`) is the tool's `inputSchema`, and the
//! conversion of each into the app's [`Operation`] vocabulary.
//!
//! Patterns document the forms the app accepts; the app re-validates every value and names the
//! field when it refuses one.

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use crate::app::approvals::RawApprovalCreate;
use crate::app::audit_reads::RawExportRange;
use crate::app::operation::{Operation, RawContractQuery};
use crate::app::order_input::{
    RawBracketPreview, RawCancelPreview, RawOrderPreview, RawPaperCancel, RawPaperModify,
    RawPaperSubmit,
};

/// The largest integer a JSON number carries exactly (2^53 - 1), the ceiling of ids and
/// sequence numbers.
pub(crate) const MAX_JSON_INTEGER: u64 = 9_007_199_254_740_991;

/// The most audit events one `ibkr_audit_export` call returns.
pub(crate) const MAX_EXPORT_EVENTS: u64 = 500;

/// What a tool call runs once its arguments are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolCall {
    /// A read through [`crate::app::Gateway::execute_as`].
    Read(Operation),
    /// An audit export through [`crate::app::Gateway::export_audit_as`], over an inclusive
    /// sequence range already bounded to [`MAX_EXPORT_EVENTS`].
    AuditExport(RawExportRange),
    /// [`crate::app::Gateway::preview_order`].
    OrderPreview(RawOrderPreview),
    /// [`crate::app::Gateway::preview_bracket`].
    BracketPreview(RawBracketPreview),
    /// [`crate::app::Gateway::preview_cancel`].
    CancelPreview(RawCancelPreview),
    /// [`crate::app::Gateway::create_approval`].
    ApprovalCreate(RawApprovalCreate),
    /// [`crate::app::Gateway::paper_submit`].
    PaperSubmit(RawPaperSubmit),
    /// [`crate::app::Gateway::paper_bracket_submit`].
    PaperBracketSubmit(RawPaperSubmit),
    /// [`crate::app::Gateway::paper_modify`].
    PaperModify(RawPaperModify),
    /// [`crate::app::Gateway::paper_cancel`].
    PaperCancel(RawPaperCancel),
}

/// A tool without arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArguments {}

/// Arguments naming one account.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountArguments {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub(crate) account_id: String,
}

// An asset class code. (Plain comments: a doc comment would repeat in the schema.)
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[schemars(inline)]
pub(crate) enum AssetClassArgument {
    #[serde(rename = "STK")]
    Stock,
    #[serde(rename = "ETF")]
    Etf,
    #[serde(rename = "OPT")]
    Option,
    #[serde(rename = "FUT")]
    Future,
    #[serde(rename = "FOP")]
    FutureOption,
    #[serde(rename = "CASH")]
    Forex,
    #[serde(rename = "IND")]
    Index,
    #[serde(rename = "BOND")]
    Bond,
    #[serde(rename = "CRYPTO")]
    Crypto,
}

impl AssetClassArgument {
    fn code(self) -> &'static str {
        match self {
            Self::Stock => "STK",
            Self::Etf => "ETF",
            Self::Option => "OPT",
            Self::Future => "FUT",
            Self::FutureOption => "FOP",
            Self::Forex => "CASH",
            Self::Index => "IND",
            Self::Bond => "BOND",
            Self::Crypto => "CRYPTO",
        }
    }
}

/// A contract query with optional filters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContractQueryArguments {
    /// Symbol, contract id or words of the description, e.g. AAPL.
    #[schemars(length(min = 1, max = 64))]
    pub(crate) query: String,
    /// Only this asset class.
    pub(crate) asset_class: Option<AssetClassArgument>,
    /// Only this trading currency (ISO 4217, e.g. USD).
    #[schemars(regex(pattern = r"^[A-Za-z]{3}$"))]
    pub(crate) currency: Option<String>,
    /// Only this exchange, e.g. NASDAQ or LSE.
    #[schemars(regex(pattern = r"^[A-Za-z0-9.]{1,16}$"))]
    pub(crate) exchange: Option<String>,
}

impl ContractQueryArguments {
    fn into_raw(self) -> RawContractQuery {
        RawContractQuery {
            query: self.query,
            asset_class: self.asset_class.map(|class| class.code().to_owned()),
            currency: self.currency,
            exchange: self.exchange,
        }
    }

    /// `ibkr_contracts_search`.
    pub(crate) fn search(self) -> ToolCall {
        ToolCall::Read(Operation::ContractsSearch(self.into_raw()))
    }

    /// `ibkr_contract_resolve`.
    pub(crate) fn resolve(self) -> ToolCall {
        ToolCall::Read(Operation::ContractsResolve(self.into_raw()))
    }
}

/// Arguments of a quote snapshot.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SnapshotArguments {
    /// IBKR contract id (conid), e.g. from ibkr_contracts_search.
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub(crate) contract_id: u64,
    /// Fail with MARKET_DATA_STALE when the quote is older than this many seconds.
    #[schemars(range(min = 0, max = 86_400))]
    pub(crate) max_age_seconds: Option<u32>,
}

impl SnapshotArguments {
    /// `ibkr_market_snapshot`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::Read(Operation::MarketSnapshot {
            contract_id: self.contract_id.to_string(),
            max_age_seconds: self.max_age_seconds,
        })
    }
}

// A bar size.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[schemars(inline)]
pub(crate) enum BarArgument {
    #[serde(rename = "1min")]
    OneMinute,
    #[serde(rename = "5min")]
    FiveMinutes,
    #[serde(rename = "15min")]
    FifteenMinutes,
    #[serde(rename = "30min")]
    ThirtyMinutes,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "1d")]
    OneDay,
    #[serde(rename = "1w")]
    OneWeek,
}

impl BarArgument {
    fn as_str(self) -> &'static str {
        match self {
            Self::OneMinute => "1min",
            Self::FiveMinutes => "5min",
            Self::FifteenMinutes => "15min",
            Self::ThirtyMinutes => "30min",
            Self::OneHour => "1h",
            Self::OneDay => "1d",
            Self::OneWeek => "1w",
        }
    }
}

/// Arguments of a history request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BarsArguments {
    /// IBKR contract id (conid), e.g. from ibkr_contracts_search.
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub(crate) contract_id: u64,
    /// How far back: 1-999 then min, h, d, w, m (30 days) or y, e.g. 5d; at most 1000 bars.
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,2}(min|h|d|w|m|y)$"))]
    pub(crate) period: String,
    /// Bar size.
    pub(crate) bar: BarArgument,
}

impl BarsArguments {
    /// `ibkr_historical_bars`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::Read(Operation::MarketBars {
            contract_id: self.contract_id.to_string(),
            period: self.period,
            bar: self.bar.as_str().to_owned(),
        })
    }
}

/// A point in time: RFC 3339 or a UTC date.
const TIME_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2}))?$";

/// Arguments of the executions list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecutionsArguments {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub(crate) account_id: String,
    /// Only fills at or after this time: RFC 3339 or YYYY-MM-DD (UTC).
    #[schemars(regex(pattern = TIME_PATTERN))]
    pub(crate) since: Option<String>,
}

impl ExecutionsArguments {
    /// `ibkr_executions_list`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::Read(Operation::ExecutionsList {
            account: self.account_id,
            since: self.since,
        })
    }
}

fn default_tail_limit() -> u32 {
    20
}

/// Arguments of the audit tail.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditTailArguments {
    /// How many events, newest first.
    #[serde(default = "default_tail_limit")]
    #[schemars(range(min = 1, max = 1000))]
    pub(crate) limit: u32,
}

impl AuditTailArguments {
    /// `ibkr_audit_tail`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::Read(Operation::AuditTail {
            limit: usize::try_from(self.limit).unwrap_or(usize::MAX),
        })
    }
}

/// Arguments of the audit export.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditExportArguments {
    /// First sequence number (default 1).
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub(crate) from_seq: Option<u64>,
    /// Last sequence number, at most from_seq + 499 (default: that bound).
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub(crate) to_seq: Option<u64>,
    /// Only events at or after this time: RFC 3339 or YYYY-MM-DD (UTC).
    #[schemars(regex(pattern = TIME_PATTERN))]
    pub(crate) since: Option<String>,
}

impl AuditExportArguments {
    /// `ibkr_audit_export`: the range bounded to [`MAX_EXPORT_EVENTS`] events.
    ///
    /// # Errors
    /// A message naming `to_seq` when the range is wider than the bound.
    pub(crate) fn into_call(self) -> Result<ToolCall, String> {
        let from_seq = self.from_seq.unwrap_or(1);
        let last_allowed = from_seq.saturating_add(MAX_EXPORT_EVENTS - 1);
        let to_seq = match self.to_seq {
            Some(to_seq) if to_seq > last_allowed => {
                return Err(format!(
                    "`to_seq` must be at most from_seq + {}: one call exports at most {MAX_EXPORT_EVENTS} events; page with from_seq",
                    MAX_EXPORT_EVENTS - 1
                ));
            }
            Some(to_seq) => to_seq,
            None => last_allowed,
        };
        Ok(ToolCall::AuditExport(RawExportRange {
            from_seq: Some(from_seq),
            to_seq: Some(to_seq),
            since: self.since,
        }))
    }
}

/// A plain non-negative decimal as a string: no sign, exponent or separators.
const DECIMAL_PATTERN: &str = r"^[0-9]{1,15}(\.[0-9]{1,10})?$";

/// A gateway or broker id: letters, digits, `_` and `-`.
const ID_PATTERN: &str = r"^[A-Za-z0-9_-]{1,64}$";

/// The caller's idempotency key; it becomes the order's client order id (`cOID`).
const IDEMPOTENCY_KEY_PATTERN: &str = r"^[A-Za-z0-9._-]{1,64}$";

// An order side.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[schemars(inline)]
pub(crate) enum SideArgument {
    #[serde(rename = "BUY")]
    Buy,
    #[serde(rename = "SELL")]
    Sell,
}

impl SideArgument {
    fn code(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
        }
    }
}

// An order type.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[schemars(inline)]
pub(crate) enum OrderTypeArgument {
    #[serde(rename = "LMT")]
    Limit,
    #[serde(rename = "MKT")]
    Market,
    #[serde(rename = "STP")]
    Stop,
    #[serde(rename = "STP LMT")]
    StopLimit,
    #[serde(rename = "TRAIL")]
    TrailingStop,
}

impl OrderTypeArgument {
    fn code(self) -> &'static str {
        match self {
            Self::Limit => "LMT",
            Self::Market => "MKT",
            Self::Stop => "STP",
            Self::StopLimit => "STP LMT",
            Self::TrailingStop => "TRAIL",
        }
    }
}

// A time in force. (Serialize: the schema shows the default.)
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(inline)]
pub(crate) enum TimeInForceArgument {
    #[default]
    #[serde(rename = "DAY")]
    Day,
    #[serde(rename = "GTC")]
    GoodTillCancelled,
    #[serde(rename = "IOC")]
    ImmediateOrCancel,
    #[serde(rename = "OPG")]
    AtTheOpening,
}

impl TimeInForceArgument {
    fn code(self) -> &'static str {
        match self {
            Self::Day => "DAY",
            Self::GoodTillCancelled => "GTC",
            Self::ImmediateOrCancel => "IOC",
            Self::AtTheOpening => "OPG",
        }
    }
}

/// Arguments of an order preview.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderPreviewArguments {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub(crate) account_id: String,
    /// IBKR contract id (conid), e.g. from ibkr_contracts_search.
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub(crate) contract_id: u64,
    /// BUY or SELL.
    pub(crate) side: SideArgument,
    /// Units, as a decimal string, e.g. "10".
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub(crate) quantity: String,
    /// LMT needs limit_price; STP stop_price; STP LMT both; TRAIL one trailing_* value.
    pub(crate) order_type: OrderTypeArgument,
    /// Limit price, as a decimal string, e.g. "205.25".
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub(crate) limit_price: Option<String>,
    /// Stop (trigger) price, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub(crate) stop_price: Option<String>,
    /// TRAIL distance in price units, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub(crate) trailing_amount: Option<String>,
    /// TRAIL distance in percent, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub(crate) trailing_percent: Option<String>,
    /// How long the order works.
    #[serde(default)]
    pub(crate) time_in_force: TimeInForceArgument,
    /// A working paper order this preview would replace (same account, contract, side, type).
    #[schemars(regex(pattern = ID_PATTERN))]
    pub(crate) modify_order_id: Option<String>,
}

impl OrderPreviewArguments {
    /// `ibkr_order_preview`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::OrderPreview(RawOrderPreview {
            account: self.account_id,
            contract_id: self.contract_id.to_string(),
            side: self.side.code().to_owned(),
            quantity: self.quantity,
            order_type: self.order_type.code().to_owned(),
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            trailing_amount: self.trailing_amount,
            trailing_percent: self.trailing_percent,
            time_in_force: Some(self.time_in_force.code().to_owned()),
            modify_order_id: self.modify_order_id,
        })
    }
}

/// Arguments of a bracket preview.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BracketPreviewArguments {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub(crate) account_id: String,
    /// IBKR contract id (conid), e.g. from ibkr_contracts_search.
    #[schemars(range(min = 1, max = MAX_JSON_INTEGER))]
    pub(crate) contract_id: u64,
    /// The entry's side, BUY or SELL; the exits take the other side.
    pub(crate) side: SideArgument,
    /// Units of every leg, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub(crate) quantity: String,
    /// The entry's limit price, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub(crate) entry_price: String,
    /// The take-profit limit price, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub(crate) take_profit_price: String,
    /// The stop-loss stop price, as a decimal string.
    #[schemars(regex(pattern = DECIMAL_PATTERN))]
    pub(crate) stop_loss_price: String,
    /// How long the orders work.
    #[serde(default)]
    pub(crate) time_in_force: TimeInForceArgument,
}

impl BracketPreviewArguments {
    /// `ibkr_bracket_order_preview`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::BracketPreview(RawBracketPreview {
            account: self.account_id,
            contract_id: self.contract_id.to_string(),
            side: self.side.code().to_owned(),
            quantity: self.quantity,
            entry_price: self.entry_price,
            take_profit_price: self.take_profit_price,
            stop_loss_price: self.stop_loss_price,
            time_in_force: Some(self.time_in_force.code().to_owned()),
        })
    }
}

/// Arguments of an approval.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalCreateArguments {
    /// The preview_id a person reviewed and approves.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub(crate) preview_id: String,
    /// How long the approval stays usable, in seconds (default 300).
    #[schemars(range(min = 1, max = 86_400))]
    pub(crate) ttl_seconds: Option<u32>,
}

impl ApprovalCreateArguments {
    /// `ibkr_approvals_create`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::ApprovalCreate(RawApprovalCreate {
            preview_id: self.preview_id,
            ttl_seconds: self.ttl_seconds,
        })
    }
}

/// Arguments of a paper submit, of one order or a bracket.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaperSubmitArguments {
    /// The paper account: an account_ref, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub(crate) account_id: String,
    /// The approval_id a person created for the preview.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub(crate) approval_id: String,
    /// Your key for this request; the same key replays its first outcome instead of acting again.
    #[schemars(regex(pattern = IDEMPOTENCY_KEY_PATTERN))]
    pub(crate) idempotency_key: String,
}

impl PaperSubmitArguments {
    fn into_raw(self) -> RawPaperSubmit {
        RawPaperSubmit {
            account: self.account_id,
            approval_id: self.approval_id,
            idempotency_key: self.idempotency_key,
        }
    }

    /// `ibkr_paper_order_submit`.
    pub(crate) fn submit(self) -> ToolCall {
        ToolCall::PaperSubmit(self.into_raw())
    }

    /// `ibkr_paper_bracket_order_submit`.
    pub(crate) fn bracket_submit(self) -> ToolCall {
        ToolCall::PaperBracketSubmit(self.into_raw())
    }
}

/// Arguments of a paper modify.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaperModifyArguments {
    /// The paper account: an account_ref, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub(crate) account_id: String,
    /// The working order's order_id.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub(crate) order_id: String,
    /// The approval of a preview made with modify_order_id set to this order.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub(crate) approval_id: String,
    /// Your key for this request; the same key replays its first outcome instead of acting again.
    #[schemars(regex(pattern = IDEMPOTENCY_KEY_PATTERN))]
    pub(crate) idempotency_key: String,
}

impl PaperModifyArguments {
    /// `ibkr_paper_order_modify`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::PaperModify(RawPaperModify {
            account: self.account_id,
            order_id: self.order_id,
            approval_id: self.approval_id,
            idempotency_key: self.idempotency_key,
        })
    }
}

/// Arguments of a paper cancel.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaperCancelArguments {
    /// The paper account: an account_ref, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub(crate) account_id: String,
    /// The working order's order_id.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub(crate) order_id: String,
    /// Your key for this request; the same key replays its first outcome instead of acting again.
    #[schemars(regex(pattern = IDEMPOTENCY_KEY_PATTERN))]
    pub(crate) idempotency_key: String,
    /// Needed only to cancel a bracket's take-profit or stop-loss alone: the approval of an
    /// ibkr_order_cancel_preview of this order.
    #[serde(default)]
    #[schemars(regex(pattern = ID_PATTERN))]
    pub(crate) approval_id: Option<String>,
}

impl PaperCancelArguments {
    /// `ibkr_paper_order_cancel`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::PaperCancel(RawPaperCancel {
            account: self.account_id,
            order_id: self.order_id,
            idempotency_key: self.idempotency_key,
            approval_id: self.approval_id,
        })
    }
}

/// Arguments of a cancel preview.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CancelPreviewArguments {
    /// The paper account: an account_ref, an operator alias, or an account id.
    #[schemars(length(min = 1, max = 64))]
    pub(crate) account_id: String,
    /// The working order's order_id.
    #[schemars(regex(pattern = ID_PATTERN))]
    pub(crate) order_id: String,
}

impl CancelPreviewArguments {
    /// `ibkr_order_cancel_preview`.
    pub(crate) fn into_call(self) -> ToolCall {
        ToolCall::CancelPreview(RawCancelPreview {
            account: self.account_id,
            order_id: self.order_id,
        })
    }
}
