//! Input pieces shared by several use cases: the account argument, the contract query, the
//! patterns that document accepted forms, and the closed vocabularies (asset classes, bar
//! sizes) whose schemas list their values.
//!
//! Patterns and enums document what the app accepts; the use case parses every value again
//! into domain types and names the field when it refuses one. Fields that the CLI hands over
//! as text but MCP clients send as numbers (`contract_id`) are text here, with the schema of
//! the number: the number is turned into text exactly, then parsed like the CLI's.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::app::operation::RawContractQuery;

/// The largest integer a JSON number carries exactly (2^53 - 1), the ceiling of ids and
/// sequence numbers.
pub const MAX_JSON_INTEGER: u64 = 9_007_199_254_740_991;

/// A point in time: RFC 3339 or a UTC date.
pub(crate) const TIME_PATTERN: &str =
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2}))?$";

/// A plain non-negative decimal as a string: no sign, exponent or separators.
pub(crate) const DECIMAL_PATTERN: &str = r"^[0-9]{1,15}(\.[0-9]{1,10})?$";

/// A gateway or broker id: letters, digits, `_` and `-`.
pub(crate) const ID_PATTERN: &str = r"^[A-Za-z0-9_-]{1,64}$";

/// The caller's idempotency key; it becomes the order's client order id (`cOID`).
pub(crate) const IDEMPOTENCY_KEY_PATTERN: &str = r"^[A-Za-z0-9._-]{1,64}$";

/// Reads a JSON integer (or text) as its exact decimal text.
pub(crate) fn number_as_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(u64),
        Text(String),
    }
    Ok(match NumberOrText::deserialize(deserializer)? {
        NumberOrText::Number(number) => number.to_string(),
        NumberOrText::Text(text) => text,
    })
}

/// No input.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// One account.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[serde(rename(serialize = "account", deserialize = "account_id"))]
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
}

impl AccountInput {
    /// The account named by `account` (a reference, alias or id).
    pub fn new(account: impl Into<String>) -> Self {
        Self {
            account_id: account.into(),
        }
    }
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

/// A contract query with optional filters.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractQueryInput {
    /// Symbol, contract id or words of the description, e.g. AAPL.
    #[schemars(length(min = 1, max = 64))]
    pub query: String,
    /// Only this asset class.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<AssetClassArgument>")]
    pub asset_class: Option<String>,
    /// Only this trading currency (ISO 4217, e.g. USD).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z]{3}$"))]
    pub currency: Option<String>,
    /// Only this exchange, e.g. NASDAQ or LSE.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9.]{1,16}$"))]
    pub exchange: Option<String>,
}

impl From<RawContractQuery> for ContractQueryInput {
    fn from(raw: RawContractQuery) -> Self {
        Self {
            query: raw.query,
            asset_class: raw.asset_class,
            currency: raw.currency,
            exchange: raw.exchange,
        }
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
