//! Raw inputs of the order workflows, exactly as a front end received them, and their parsing
//! into domain values. Every error names the field and never echoes the refused text.

use serde::Serialize;

use crate::app::error::GatewayError;
use crate::domain::ids::{
    AccountId, ApprovalId, BrokerOrderId, ContractId, IdempotencyKey, PreviewId,
};
use crate::domain::money::{Price, Quantity, parse_exact_decimal};
use crate::domain::order::{OrderSide, OrderType, TimeInForce};
use crate::domain::order_intent::{IntentParts, OrderIntent, TrailingOffset};

/// An order to preview. With `modify_order_id` it is the replacement for that working order:
/// account, contract, side and type must stay the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawOrderPreview {
    /// Account reference, alias or id.
    pub account: String,
    /// Contract id.
    pub contract_id: String,
    /// `BUY` or `SELL`.
    pub side: String,
    /// Units.
    pub quantity: String,
    /// `LMT`, `MKT`, `STP`, `STP LMT` or `TRAIL`.
    pub order_type: String,
    /// Limit price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<String>,
    /// Stop price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<String>,
    /// Trailing distance in price units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailing_amount: Option<String>,
    /// Trailing distance in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailing_percent: Option<String>,
    /// `DAY` (default), `GTC`, `IOC` or `OPG`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<String>,
    /// The working order this preview would replace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modify_order_id: Option<String>,
}

/// A bracket to preview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawBracketPreview {
    /// Account reference, alias or id.
    pub account: String,
    /// Contract id.
    pub contract_id: String,
    /// The entry's side.
    pub side: String,
    /// Units of every leg.
    pub quantity: String,
    /// The entry's limit price.
    pub entry_price: String,
    /// The take-profit limit price.
    pub take_profit_price: String,
    /// The stop-loss stop price.
    pub stop_loss_price: String,
    /// `DAY` (default), `GTC`, `IOC` or `OPG`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<String>,
}

/// A paper submit (one order or a bracket): the preview is loaded server-side from the approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawPaperSubmit {
    /// Account reference, alias or id.
    pub account: String,
    /// The approval to use.
    pub approval_id: String,
    /// The caller's idempotency key (sent to the broker as `cOID`).
    pub idempotency_key: String,
}

/// A paper modify: the new values come from the approved `modify` preview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawPaperModify {
    /// Account reference, alias or id.
    pub account: String,
    /// The working order.
    pub order_id: String,
    /// The approval of the replacement preview.
    pub approval_id: String,
    /// The caller's idempotency key.
    pub idempotency_key: String,
}

/// A paper cancel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RawPaperCancel {
    /// Account reference, alias or id.
    pub account: String,
    /// The working order.
    pub order_id: String,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// The approval of a `cancel` preview of this order: needed to cancel a bracket's
    /// protective child alone, and consumed whenever it is given.
    pub approval_id: Option<String>,
}

/// A cancel preview as the front ends hand it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawCancelPreview {
    /// Account reference, alias or id.
    pub account: String,
    /// The working order to cancel.
    pub order_id: String,
}

/// Parses a preview id.
///
/// # Errors
/// `INPUT_INVALID` naming `preview_id`.
pub fn preview_id(raw: &str) -> Result<PreviewId, GatewayError> {
    PreviewId::parse(raw.trim())
        .map_err(|error| GatewayError::invalid_input("preview_id", error.reason()))
}

/// Parses an approval id.
///
/// # Errors
/// `INPUT_INVALID` naming `approval_id`.
pub fn approval_id(raw: &str) -> Result<ApprovalId, GatewayError> {
    ApprovalId::parse(raw.trim())
        .map_err(|error| GatewayError::invalid_input("approval_id", error.reason()))
}

/// Parses an idempotency key: 1–64 characters of `[A-Za-z0-9._-]`, with no word (a run of
/// letters and digits) shaped like an account id. A submit's key is the order's client order
/// id at the broker, and broker text comes back with account-shaped words masked: such a key
/// could not be recognised when the order is listed, found after a crash, or told apart from
/// an order the gateway never placed.
///
/// # Errors
/// `INPUT_INVALID` naming `idempotency_key`.
pub fn idempotency_key(raw: &str) -> Result<IdempotencyKey, GatewayError> {
    let key = IdempotencyKey::parse(raw).map_err(|_| {
        GatewayError::invalid_input(
            "idempotency_key",
            "must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'",
        )
    })?;
    if raw
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| AccountId::parse(word).is_ok())
    {
        return Err(GatewayError::invalid_input(
            "idempotency_key",
            "must not contain a word shaped like an account id (1 to 3 capital letters then 3 \
             to 12 digits, such as AB1234): the broker masks such words, so the order could not \
             be recognised later; use lower case or another separator",
        ));
    }
    Ok(key)
}

/// Parses a broker order id.
///
/// # Errors
/// `INPUT_INVALID` naming `order_id`.
pub fn order_id(raw: &str) -> Result<BrokerOrderId, GatewayError> {
    BrokerOrderId::parse(raw.trim())
        .map_err(|error| GatewayError::invalid_input("order_id", error.reason()))
}

fn price(field: &'static str, raw: Option<&str>) -> Result<Option<Price>, GatewayError> {
    raw.map(|raw| {
        Price::parse(raw.trim()).map_err(|_| {
            GatewayError::invalid_input(field, "must be a plain non-negative decimal, e.g. 205.25")
        })
    })
    .transpose()
}

fn time_in_force(raw: Option<&str>) -> Result<TimeInForce, GatewayError> {
    match raw {
        None => Ok(TimeInForce::Day),
        Some(raw) => TimeInForce::parse(raw)
            .ok()
            .filter(|tif| *tif != TimeInForce::Other)
            .ok_or_else(|| {
                GatewayError::invalid_input("time_in_force", "use DAY, GTC, IOC or OPG")
            }),
    }
}

fn quantity(raw: &str) -> Result<Quantity, GatewayError> {
    Quantity::parse(raw.trim()).map_err(|_| {
        GatewayError::invalid_input("quantity", "must be a plain decimal number, e.g. 10")
    })
}

fn side(raw: &str) -> Result<OrderSide, GatewayError> {
    OrderSide::parse(raw).map_err(|_| GatewayError::invalid_input("side", "use BUY or SELL"))
}

/// Builds the intent of a raw order for `account`.
///
/// # Errors
/// `INPUT_INVALID` naming the first bad field.
pub fn order_intent(
    raw: &RawOrderPreview,
    account: &AccountId,
) -> Result<OrderIntent, GatewayError> {
    let order_type = OrderType::parse(&raw.order_type)
        .ok()
        .filter(|kind| *kind != OrderType::Other)
        .ok_or_else(|| {
            GatewayError::invalid_input("order_type", "use LMT, MKT, STP, STP LMT or TRAIL")
        })?;
    let trailing = match (
        raw.trailing_amount.as_deref(),
        raw.trailing_percent.as_deref(),
    ) {
        (Some(_), Some(_)) => {
            return Err(GatewayError::invalid_input(
                "trailing_amount",
                "give trailing_amount or trailing_percent, not both",
            ));
        }
        (Some(amount), None) => price("trailing_amount", Some(amount))?.map(TrailingOffset::Amount),
        (None, Some(percent)) => Some(TrailingOffset::Percent(
            parse_exact_decimal(percent.trim()).map_err(|_| {
                GatewayError::invalid_input("trailing_percent", "must be a plain decimal number")
            })?,
        )),
        (None, None) => None,
    };
    OrderIntent::new(IntentParts {
        account_id: account.clone(),
        contract_id: contract(&raw.contract_id)?,
        side: side(&raw.side)?,
        quantity: quantity(&raw.quantity)?,
        order_type,
        limit_price: price("limit_price", raw.limit_price.as_deref())?,
        stop_price: price("stop_price", raw.stop_price.as_deref())?,
        trailing,
        time_in_force: time_in_force(raw.time_in_force.as_deref())?,
    })
    .map_err(|error| GatewayError::invalid_input("order", error))
}

/// The parts of a raw bracket: the entry intent and the two exit prices.
///
/// # Errors
/// `INPUT_INVALID` naming the first bad field.
pub fn bracket_parts(
    raw: &RawBracketPreview,
    account: &AccountId,
) -> Result<(OrderIntent, Price, Price), GatewayError> {
    let required = |field: &'static str, raw: &str| -> Result<Price, GatewayError> {
        price(field, Some(raw))?.ok_or_else(|| GatewayError::invalid_input(field, "is required"))
    };
    let entry = OrderIntent::new(IntentParts {
        account_id: account.clone(),
        contract_id: contract(&raw.contract_id)?,
        side: side(&raw.side)?,
        quantity: quantity(&raw.quantity)?,
        order_type: OrderType::Limit,
        limit_price: Some(required("entry_price", &raw.entry_price)?),
        stop_price: None,
        trailing: None,
        time_in_force: time_in_force(raw.time_in_force.as_deref())?,
    })
    .map_err(|error| GatewayError::invalid_input("order", error))?;
    Ok((
        entry,
        required("take_profit_price", &raw.take_profit_price)?,
        required("stop_loss_price", &raw.stop_loss_price)?,
    ))
}

fn contract(raw: &str) -> Result<ContractId, GatewayError> {
    crate::app::input::contract_id(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_an_account_shaped_word_are_refused() {
        for good in ["strat-a-0001", "ord001", "run.7", "A12", "live_1"] {
            assert!(idempotency_key(good).is_ok(), "{good}");
        }
        for bad in ["ORD001", "run-U1234567-1", "DU1234567", "x.AB123456"] {
            let error = idempotency_key(bad).unwrap_err();
            assert_eq!(error.code().as_str(), "INPUT_INVALID", "{bad}");
            assert!(!error.to_string().contains(bad), "{bad}");
        }
    }

    fn raw() -> RawOrderPreview {
        RawOrderPreview {
            account: "DU1234567".into(),
            contract_id: "265598".into(),
            side: "buy".into(),
            quantity: "10".into(),
            order_type: "LMT".into(),
            limit_price: Some("205.5".into()),
            ..RawOrderPreview::default()
        }
    }

    #[test]
    fn a_limit_order_parses() {
        let account = AccountId::parse("DU1234567").unwrap();
        let intent = order_intent(&raw(), &account).unwrap();
        assert_eq!(intent.side(), OrderSide::Buy);
        assert_eq!(intent.time_in_force(), TimeInForce::Day);
    }

    #[test]
    fn bad_fields_are_named_without_echo() {
        let account = AccountId::parse("DU1234567").unwrap();
        let mut bad = raw();
        bad.limit_price = Some("1e3".into());
        let error = order_intent(&bad, &account).unwrap_err();
        assert!(error.to_string().starts_with("limit_price"), "{error}");
        assert!(!error.to_string().contains("1e3"));
        let mut bad = raw();
        bad.order_type = "MOC".into();
        assert!(
            order_intent(&bad, &account)
                .unwrap_err()
                .to_string()
                .starts_with("order_type")
        );
        assert!(idempotency_key("a/b").is_err());
        assert!(idempotency_key(&"k".repeat(65)).is_err());
    }
}
