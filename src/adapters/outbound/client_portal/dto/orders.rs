//! Working orders (`/iserver/account/orders`) and executions (`/iserver/account/trades`).

use serde::Deserialize;
use serde_json::Value;

use super::order_write::broker_text;
use super::wire_order::{WireSide, read_order_type};
use super::{epoch_millis, utc_date_time};
use crate::adapters::outbound::client_portal::errors::GatewayFault;
use crate::adapters::outbound::client_portal::lenient::{NumText, WireConid, clean_text};
use crate::domain::ids::{AccountId, BrokerOrderId, ContractId, ExecutionId};
use crate::domain::money::{Currency, Money};
use crate::domain::order::{Execution, LiveOrder, OrderStatus, OrderType, TimeInForce};

/// The longest symbol kept.
const MAX_SYMBOL_CHARS: usize = 64;
/// The longest client order id passed on (the gateway's own keys are at most 64 characters).
const MAX_CLIENT_ORDER_ID_CHARS: usize = 64;

/// An id sent as a number or a string (`orderId` is an integer here, a numeric string in
/// placement answers).
#[derive(Debug, Clone, PartialEq, Eq)]
struct WireId(String);

impl<'de> Deserialize<'de> for WireId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(Self(text)),
            Value::Number(number) if number.is_u64() || number.is_i64() => {
                Ok(Self(number.to_string()))
            }
            _ => Err(serde::de::Error::custom(
                "an id must be a string or an integer",
            )),
        }
    }
}

/// `GET /iserver/account/orders`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OrdersDto {
    #[serde(default)]
    orders: Option<Vec<OrderDto>>,
    #[serde(default)]
    snapshot: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
struct OrderDto {
    #[serde(default)]
    acct: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default, rename = "orderId")]
    order_id: Option<WireId>,
    #[serde(default)]
    conid: Option<WireConid>,
    #[serde(default)]
    ticker: Option<String>,
    #[serde(default)]
    side: Option<String>,
    #[serde(default, rename = "origOrderType")]
    original_order_type: Option<String>,
    #[serde(default, rename = "orderType")]
    order_type: Option<String>,
    #[serde(default)]
    price: Option<NumText>,
    #[serde(default, rename = "auxPrice")]
    aux_price: Option<NumText>,
    #[serde(default, rename = "timeInForce")]
    time_in_force: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "totalSize")]
    total_size: Option<NumText>,
    #[serde(default, rename = "filledQuantity")]
    filled_quantity: Option<NumText>,
    #[serde(default, rename = "lastExecutionTime_r")]
    last_execution_millis: Option<NumText>,
    /// The volume-weighted fill price, sent (as text) only once something filled.
    #[serde(default, rename = "avgPrice")]
    average_price: Option<NumText>,
    /// The `cOID` the order was placed with; absent for orders placed without one (in TWS).
    #[serde(default)]
    order_ref: Option<String>,
}

impl OrdersDto {
    /// True when the gateway had no order snapshot ready (the first call of a session may
    /// come back empty with `snapshot: false`; asking again shortly after fills it).
    pub(crate) fn is_unprimed(&self) -> bool {
        self.snapshot == Some(false) && self.orders.as_ref().is_none_or(Vec::is_empty)
    }

    /// The orders of `account`; orders of other accounts are dropped, never returned.
    pub(crate) fn try_into_domain(
        self,
        account: &AccountId,
    ) -> Result<Vec<LiveOrder>, GatewayFault> {
        let mut orders = Vec::new();
        for order in self.orders.unwrap_or_default() {
            let owner = order
                .acct
                .as_deref()
                .or(order.account.as_deref())
                .map(str::trim)
                .ok_or_else(|| GatewayFault::invalid("an order has no account"))?;
            if owner != account.expose() {
                continue;
            }
            orders.push(order.try_into_domain(account)?);
        }
        // Newest first; the order id breaks ties, so the order is stable.
        orders.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.order_id.as_str().cmp(b.order_id.as_str()))
        });
        Ok(orders)
    }
}

fn required<'a>(raw: Option<&'a str>, what: &'static str) -> Result<&'a str, GatewayFault> {
    raw.map(str::trim)
        .filter(|text| !text.is_empty())
        .ok_or_else(|| {
            GatewayFault::Broker(crate::ports::broker_reader::BrokerError::InvalidResponse {
                detail: format!("an order or fill has no {what}"),
            })
        })
}

/// The side of an order or fill, read through the one wire mapping.
fn side(raw: Option<&str>) -> Result<WireSide, GatewayFault> {
    WireSide::parse(required(raw, "side")?).ok_or_else(|| {
        GatewayFault::invalid("an order or fill has a side this gateway does not model")
    })
}

/// The `cOID` an order or fill names (`order_ref`), made safe like any broker text: an
/// account-shaped word in it is masked, control characters dropped, length bounded. Blank
/// means none.
fn client_order_id(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|reference| !reference.is_empty())
        .map(|reference| clean_text(&broker_text(reference), MAX_CLIENT_ORDER_ID_CHARS))
}

fn contract_id(raw: Option<WireConid>) -> Result<ContractId, GatewayFault> {
    raw.and_then(WireConid::contract_id)
        .ok_or_else(|| GatewayFault::invalid("an order or fill has no valid conid"))
}

impl OrderDto {
    fn try_into_domain(self, account: &AccountId) -> Result<LiveOrder, GatewayFault> {
        let malformed = |what: &'static str| {
            GatewayFault::Broker(crate::ports::broker_reader::BrokerError::InvalidResponse {
                detail: format!("an order has a malformed {what}"),
            })
        };
        let order_id = self
            .order_id
            .as_ref()
            .and_then(|id| BrokerOrderId::parse(id.0.trim()).ok())
            .ok_or_else(|| malformed("order id"))?;
        let raw_type = self
            .original_order_type
            .as_deref()
            .or(self.order_type.as_deref())
            .ok_or_else(|| malformed("order type"))?;
        // Types and times in force the gateway does not model map to explicit `Other`
        // variants: the order is still listed, never silently dropped.
        let order_type = read_order_type(raw_type);
        let time_in_force =
            TimeInForce::parse(required(self.time_in_force.as_deref(), "time in force")?)
                .unwrap_or(TimeInForce::Other);
        // Unknown statuses (`WarnState`, anything new) map to the explicit unknown status.
        let status = OrderStatus::parse(required(self.status.as_deref(), "status")?)
            .unwrap_or(OrderStatus::Unknown);
        let quantity = self
            .total_size
            .as_ref()
            .and_then(NumText::quantity)
            .ok_or_else(|| malformed("total size"))?;
        let filled_quantity = match &self.filled_quantity {
            Some(raw) => raw.quantity().ok_or_else(|| malformed("filled quantity"))?,
            None => crate::domain::money::Quantity::new(rust_decimal::Decimal::ZERO),
        };
        let price = self
            .price
            .as_ref()
            .map(|raw| raw.price().ok_or_else(|| malformed("price")))
            .transpose()?;
        let aux_price = self
            .aux_price
            .as_ref()
            .map(|raw| raw.price().ok_or_else(|| malformed("aux price")))
            .transpose()?;
        // The Client Portal puts the stop trigger of a plain stop order in `price`.
        let (limit_price, stop_price) = match order_type {
            OrderType::Limit => (price, None),
            OrderType::Market => (None, None),
            OrderType::Stop => (None, aux_price.or(price)),
            OrderType::StopLimit => (price, aux_price),
            OrderType::TrailingStop => (None, aux_price.or(price)),
            // An unmodelled type keeps whatever prices the broker reported, unlabelled.
            OrderType::Other => (price, aux_price),
        };
        // Sent only after fills. Before any fill it means nothing (whatever its text), so it is
        // neither read nor reported; after one, it must be a price.
        let average_price = if filled_quantity.value().is_zero() {
            None
        } else {
            self.average_price
                .as_ref()
                .map(|raw| raw.price().ok_or_else(|| malformed("average price")))
                .transpose()?
        };
        let updated_at = self
            .last_execution_millis
            .as_ref()
            .and_then(epoch_millis)
            .ok_or_else(|| malformed("update time"))?;
        Ok(LiveOrder {
            order_id,
            account_id: account.clone(),
            contract_id: contract_id(self.conid)?,
            symbol: clean_text(
                required(self.ticker.as_deref(), "symbol")?,
                MAX_SYMBOL_CHARS,
            ),
            // As reported: an expired option (`X`) stays in the list, marked as such.
            side: side(self.side.as_deref())?.reported(),
            order_type,
            quantity,
            filled_quantity,
            limit_price,
            stop_price,
            time_in_force,
            status,
            updated_at,
            client_order_id: client_order_id(self.order_ref.as_deref()),
            average_price,
            // The list documents no field with the broker's reason for an inactive or
            // rejected order (`order_ccp_status` is an internal code), so none is reported.
            reason: None,
        })
    }
}

/// One element of `GET /iserver/account/trades`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TradeDto {
    #[serde(default)]
    execution_id: Option<String>,
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default)]
    side: Option<String>,
    #[serde(default)]
    trade_time: Option<String>,
    #[serde(default)]
    trade_time_r: Option<NumText>,
    #[serde(default)]
    size: Option<NumText>,
    #[serde(default)]
    price: Option<NumText>,
    /// Not in the published schema, but sent by some gateway versions; preferred when present.
    #[serde(default)]
    order_id: Option<WireId>,
    /// The `cOID` the order was placed with.
    #[serde(default)]
    order_ref: Option<String>,
    #[serde(default)]
    commission: Option<NumText>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default, rename = "accountCode")]
    account_code: Option<String>,
    #[serde(default)]
    conid: Option<WireConid>,
}

impl TradeDto {
    /// The account the fill belongs to.
    pub(crate) fn owner(&self) -> Option<&str> {
        self.account
            .as_deref()
            .or(self.account_code.as_deref())
            .map(str::trim)
    }

    /// The conid, for looking up the contract's currency.
    pub(crate) fn contract_id(&self) -> Result<ContractId, GatewayFault> {
        contract_id(self.conid)
    }

    /// The domain execution; `currency` is the contract's (the answer carries none), in which
    /// the commission is reported.
    pub(crate) fn try_into_domain(
        &self,
        account: &AccountId,
        currency: Currency,
    ) -> Result<Execution, GatewayFault> {
        let malformed = |what: &'static str| {
            GatewayFault::Broker(crate::ports::broker_reader::BrokerError::InvalidResponse {
                detail: format!("a fill has a malformed {what}"),
            })
        };
        let execution_id =
            ExecutionId::parse(required(self.execution_id.as_deref(), "execution id")?)
                .map_err(|_| malformed("execution id"))?;
        // The documented answer names the order only by its `cOID` (`order_ref`); some gateway
        // versions add the broker's `order_id`. Each goes in its own field: a `cOID` is the
        // caller's id and never stands in for the broker's. A fill of an order placed without
        // a `cOID` (in TWS, say) has neither, and is still a fill.
        let order_id = match self.order_id.as_ref().map(|id| id.0.trim()) {
            None | Some("") => None,
            Some(id) => Some(BrokerOrderId::parse(id).map_err(|_| malformed("order id"))?),
        };
        let client_order_id = client_order_id(self.order_ref.as_deref());
        let executed_at = match &self.trade_time_r {
            Some(raw) => epoch_millis(raw),
            None => self.trade_time.as_deref().and_then(utc_date_time),
        }
        .ok_or_else(|| malformed("trade time"))?;
        let quantity = self
            .size
            .as_ref()
            .and_then(NumText::quantity)
            .ok_or_else(|| malformed("size"))?;
        let price = self
            .price
            .as_ref()
            .and_then(NumText::price)
            .ok_or_else(|| malformed("price"))?;
        let commission = match &self.commission {
            Some(raw) => raw.decimal().ok_or_else(|| malformed("commission"))?,
            None => rust_decimal::Decimal::ZERO,
        };
        Ok(Execution {
            execution_id,
            order_id,
            client_order_id,
            account_id: account.clone(),
            contract_id: self.contract_id()?,
            symbol: clean_text(
                required(self.symbol.as_deref(), "symbol")?,
                MAX_SYMBOL_CHARS,
            ),
            side: side(self.side.as_deref())?.order_side().ok_or_else(|| {
                GatewayFault::invalid("a fill has a side that is not a buy or a sell")
            })?,
            quantity,
            price,
            commission: Money::new(commission, currency),
            executed_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::{OrderSide, ReportedSide};

    fn account() -> AccountId {
        AccountId::parse("DU1234567").unwrap()
    }

    const ORDERS: &str = r#"{"orders": [
        {"acct": "DU1234567", "orderId": 1584220473, "conid": 265598, "ticker": "AAPL", "side": "BUY",
         "orderType": "Limit", "origOrderType": "LIMIT", "price": "205.00", "timeInForce": "DAY",
         "status": "Submitted", "totalSize": 100.0, "filledQuantity": 0.0, "lastExecutionTime_r": 1752071462000},
        {"acct": "DU1234567", "orderId": "1584220474", "conid": "265598", "ticker": "AAPL", "side": "SELL",
         "orderType": "Stop", "price": "190.00", "timeInForce": "GTC", "status": "WarnState",
         "totalSize": "1,000", "lastExecutionTime_r": 1752071463000},
        {"acct": "U7654321", "orderId": 1, "conid": 8314, "ticker": "IBM", "side": "BUY",
         "origOrderType": "MARKET", "timeInForce": "DAY", "status": "Filled", "totalSize": 1,
         "lastExecutionTime_r": 1752071462000}
    ], "snapshot": true}"#;

    #[test]
    fn orders_of_other_accounts_are_dropped_and_types_mapped() {
        let dto: OrdersDto = serde_json::from_str(ORDERS).unwrap();
        assert!(!dto.is_unprimed());
        let orders = dto.try_into_domain(&account()).unwrap();
        assert_eq!(orders.len(), 2);
        let stop = &orders[0];
        assert_eq!(stop.order_type, OrderType::Stop);
        assert_eq!(stop.stop_price.unwrap().to_string(), "190.00");
        assert_eq!(stop.limit_price, None);
        assert_eq!(stop.status, OrderStatus::Unknown);
        assert_eq!(stop.quantity.to_string(), "1000");
        let limit = &orders[1];
        assert_eq!(limit.limit_price.unwrap().to_string(), "205.00");
        assert_eq!(limit.order_id.as_str(), "1584220473");
    }

    #[test]
    fn unknown_order_types_and_times_in_force_are_kept_as_other() {
        let mut dto: Value = serde_json::from_str(ORDERS).unwrap();
        dto["orders"][0]["origOrderType"] = Value::String("MIDPRICE".into());
        dto["orders"][0]["timeInForce"] = Value::String("CLOSE".into());
        let dto: OrdersDto = serde_json::from_value(dto).unwrap();
        let orders = dto.try_into_domain(&account()).unwrap();
        assert!(
            orders
                .iter()
                .any(|order| order.order_type == OrderType::Other
                    && order.time_in_force == TimeInForce::Other),
            "{orders:?}"
        );
    }

    #[test]
    fn an_expired_option_stays_in_the_list_with_its_side_as_reported() {
        let mut dto: Value = serde_json::from_str(ORDERS).unwrap();
        dto["orders"][0]["side"] = Value::String("X".into());
        let dto: OrdersDto = serde_json::from_value(dto).unwrap();
        let orders = dto.try_into_domain(&account()).unwrap();
        assert_eq!(orders.len(), 2, "no order is dropped: {orders:?}");
        let expired = &orders[1];
        assert_eq!(expired.order_id.as_str(), "1584220473");
        assert_eq!(expired.side, ReportedSide::Expired);
        assert_eq!(expired.side.order_side(), None);
        assert_eq!(orders[0].side, ReportedSide::Sell);
    }

    #[test]
    fn a_side_outside_the_wire_table_is_refused() {
        let mut dto: Value = serde_json::from_str(ORDERS).unwrap();
        dto["orders"][0]["side"] = Value::String("SHORT".into());
        let dto: OrdersDto = serde_json::from_value(dto).unwrap();
        assert!(dto.try_into_domain(&account()).is_err());
    }

    #[test]
    fn every_side_spelling_reads_the_same_in_the_list() {
        for (raw, expected) in [
            ("BOT", ReportedSide::Buy),
            ("bot", ReportedSide::Buy),
            ("b", ReportedSide::Buy),
            ("SLD", ReportedSide::Sell),
            ("Sld", ReportedSide::Sell),
            ("sell", ReportedSide::Sell),
        ] {
            let mut dto: Value = serde_json::from_str(ORDERS).unwrap();
            dto["orders"][0]["side"] = Value::String(raw.into());
            let dto: OrdersDto = serde_json::from_value(dto).unwrap();
            let orders = dto.try_into_domain(&account()).unwrap();
            assert_eq!(orders[1].side, expected, "{raw}");
        }
    }

    #[test]
    fn an_unknown_type_with_an_expired_side_leaves_the_rest_of_the_list_intact() {
        let mut dto: Value = serde_json::from_str(ORDERS).unwrap();
        dto["orders"][0]["origOrderType"] = Value::String("MIDPRICE".into());
        dto["orders"][0]["orderType"] = Value::String("Midprice".into());
        dto["orders"][1]["side"] = Value::String("X".into());
        let dto: OrdersDto = serde_json::from_value(dto).unwrap();
        let orders = dto.try_into_domain(&account()).unwrap();
        assert_eq!(orders.len(), 2, "{orders:?}");
        assert_eq!(orders[1].order_type, OrderType::Other);
        // The prices of an unmodelled type are kept as the broker reported them.
        assert_eq!(orders[1].limit_price.unwrap().to_string(), "205.00");
        assert_eq!(orders[0].side, ReportedSide::Expired);
        assert_eq!(orders[0].order_type, OrderType::Stop);
    }

    /// The two rows of the reference's example answer (cpapi.md §6.1), on a synthetic account.
    const REFERENCE_ROWS: &str = r##"{"orders": [
        {"acct": "DU1234567", "account": "DU1234567", "orderId": 1584220473, "conid": 265598,
         "conidex": "265598", "ticker": "AAPL", "description1": "AAPL", "secType": "STK",
         "listingExchange": "NASDAQ.NMS", "companyName": "APPLE INC", "side": "BUY",
         "orderType": "Limit", "origOrderType": "LIMIT", "price": "205.00", "timeInForce": "DAY",
         "status": "Submitted", "order_ccp_status": "Submitted", "totalSize": 100.0,
         "filledQuantity": 0.0, "remainingQuantity": 100.0, "sizeAndFills": "0/100",
         "orderDesc": "Buy 100 Limit 205.00, Day", "cashCcy": "USD",
         "lastExecutionTime": "250709143102", "lastExecutionTime_r": 1752071462000,
         "order_ref": "strat-a-0001", "outsideRTH": false, "supportsTaxOpt": "1",
         "isEventTrading": "0", "bgColor": "#000000", "fgColor": "#00F000"},
        {"acct": "DU1234567", "account": "DU1234567", "orderId": 1584220388, "conid": 756733,
         "conidex": "756733", "ticker": "SPY", "description1": "SPY", "secType": "STK",
         "listingExchange": "ARCA", "companyName": "SPDR S&P 500 ETF TRUST", "side": "SELL",
         "orderType": "Market", "origOrderType": "MARKET", "avgPrice": "624.81",
         "timeInForce": "DAY", "status": "Filled", "order_ccp_status": "Filled",
         "totalSize": 10.0, "filledQuantity": 10.0, "remainingQuantity": 0.0,
         "sizeAndFills": "10", "orderDesc": "Sold 10 Market, Day", "cashCcy": "USD",
         "lastExecutionTime": "250709140511", "lastExecutionTime_r": 1752069911000,
         "order_ref": "strat-a-0000", "supportsTaxOpt": "1", "isEventTrading": "0",
         "bgColor": "#FFFFFF", "fgColor": "#000000"}
    ], "snapshot": true}"##;

    fn reference_orders(edit: impl FnOnce(&mut Value)) -> Result<Vec<LiveOrder>, GatewayFault> {
        let mut dto: Value = serde_json::from_str(REFERENCE_ROWS).unwrap();
        edit(&mut dto);
        serde_json::from_value::<OrdersDto>(dto)
            .unwrap()
            .try_into_domain(&account())
    }

    #[test]
    fn the_reference_rows_carry_their_client_order_ids_and_the_fill_price() {
        let orders = reference_orders(|_| {}).unwrap();
        let found: Vec<_> = orders
            .iter()
            .map(|order| {
                (
                    order.order_id.as_str(),
                    order.status,
                    order.filled_quantity.to_string(),
                    order.client_order_id.as_deref(),
                    order.average_price.map(|price| price.to_string()),
                    order.reason.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (
                    "1584220473",
                    OrderStatus::Submitted,
                    "0".to_owned(),
                    Some("strat-a-0001"),
                    None,
                    None
                ),
                (
                    "1584220388",
                    OrderStatus::Filled,
                    "10".to_owned(),
                    Some("strat-a-0000"),
                    Some("624.81".to_owned()),
                    None
                ),
            ]
        );
    }

    #[test]
    fn an_average_price_sent_as_a_number_reads_the_same() {
        let orders = reference_orders(|dto| {
            dto["orders"][1]["avgPrice"] = serde_json::json!(624.81);
        })
        .unwrap();
        assert_eq!(orders[1].average_price.unwrap().to_string(), "624.81");
    }

    #[test]
    fn a_malformed_average_price_after_a_fill_is_refused() {
        for bad in ["n/a", "-1.00", "", "1.2K"] {
            let error = reference_orders(|dto| {
                dto["orders"][1]["avgPrice"] = Value::String(bad.into());
            })
            .unwrap_err();
            let error = format!("{error:?}");
            assert!(error.contains("average price"), "{bad}: {error}");
        }
    }

    #[test]
    fn an_average_price_before_any_fill_is_ignored() {
        let orders = reference_orders(|dto| {
            dto["orders"][0]["avgPrice"] = Value::String("0.00".into());
        })
        .unwrap();
        assert_eq!(orders[0].average_price, None);
        // A filled order without one reports none rather than failing the list.
        let orders = reference_orders(|dto| {
            dto["orders"][1].as_object_mut().unwrap().remove("avgPrice");
        })
        .unwrap();
        assert_eq!(orders[1].average_price, None);
    }

    #[test]
    fn a_missing_or_blank_order_ref_is_no_client_order_id_and_account_words_are_masked() {
        let orders = reference_orders(|dto| {
            dto["orders"][0]
                .as_object_mut()
                .unwrap()
                .remove("order_ref");
            dto["orders"][1]["order_ref"] = Value::String("  ".into());
        })
        .unwrap();
        assert_eq!(orders[0].client_order_id, None);
        assert_eq!(orders[1].client_order_id, None);
        let orders = reference_orders(|dto| {
            dto["orders"][0]["order_ref"] = Value::String(" hand-DU7654320\n".into());
            dto["orders"][1]["order_ref"] = Value::String("x".repeat(100));
        })
        .unwrap();
        let masked = orders[0].client_order_id.as_deref().unwrap();
        assert!(!masked.contains("DU7654320"), "{masked}");
        assert!(masked.starts_with("hand-DU"), "{masked}");
        assert_eq!(
            orders[1]
                .client_order_id
                .as_ref()
                .map(|id| id.chars().count()),
            Some(MAX_CLIENT_ORDER_ID_CHARS)
        );
    }

    #[test]
    fn a_fill_has_a_writable_side_or_is_refused() {
        let usd = Currency::parse("USD").unwrap();
        let fill = |side: &str| {
            let dto: TradeDto = serde_json::from_value(serde_json::json!({
                "execution_id": "0000e1a7.686e5b21.01.01", "symbol": "AAPL", "side": side,
                "trade_time_r": 1752071887000_u64, "size": 100, "price": "205.00",
                "account": "DU1234567", "conid": 265598
            }))
            .unwrap();
            dto.try_into_domain(&account(), usd)
        };
        assert_eq!(fill("BOT").unwrap().side, OrderSide::Buy);
        assert_eq!(fill("sld").unwrap().side, OrderSide::Sell);
        assert!(fill("X").is_err(), "an expiry is not a buy or a sell");
    }

    #[test]
    fn an_empty_first_answer_is_unprimed() {
        let dto: OrdersDto = serde_json::from_str(r#"{"orders": [], "snapshot": false}"#).unwrap();
        assert!(dto.is_unprimed());
    }

    #[test]
    fn fills_keep_the_broker_order_id_and_the_client_order_id_apart() {
        let usd = Currency::parse("USD").unwrap();
        let mut trade: Value = serde_json::from_str(
            r#"{"execution_id": "0000e1a7.686e5b21.01.01", "symbol": "AAPL", "side": "B",
                "trade_time": "20250709-14:38:07", "trade_time_r": 1752071887000, "size": 100,
                "price": "205.00", "order_ref": "strat-a-0001", "commission": "1.00",
                "account": "DU1234567", "conid": 265598}"#,
        )
        .unwrap();
        let dto: TradeDto = serde_json::from_value(trade.clone()).unwrap();
        let fill = dto.try_into_domain(&account(), usd).unwrap();
        assert_eq!(fill.order_id, None, "the cOID is not the broker's order id");
        assert_eq!(fill.client_order_id.as_deref(), Some("strat-a-0001"));
        assert_eq!(fill.commission.to_string(), "1.00 USD");
        trade["order_id"] = Value::from(1_584_220_473_u64);
        let dto: TradeDto = serde_json::from_value(trade.clone()).unwrap();
        let fill = dto.try_into_domain(&account(), usd).unwrap();
        assert_eq!(fill.order_id.unwrap().as_str(), "1584220473");
        assert_eq!(fill.client_order_id.as_deref(), Some("strat-a-0001"));
        // An order placed without a cOID (in TWS): a fill all the same, with neither id.
        trade.as_object_mut().unwrap().remove("order_id");
        trade["order_ref"] = Value::String(String::new());
        let dto: TradeDto = serde_json::from_value(trade.clone()).unwrap();
        let fill = dto.try_into_domain(&account(), usd).unwrap();
        assert_eq!((fill.order_id, fill.client_order_id), (None, None));
        trade["order_id"] = Value::String("not an id".into());
        let dto: TradeDto = serde_json::from_value(trade).unwrap();
        assert!(dto.try_into_domain(&account(), usd).is_err());
    }
}
