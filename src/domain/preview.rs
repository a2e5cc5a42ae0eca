//! Order previews: the preview policy an intent must pass, the broker's what-if figures, and the
//! stored preview an approval later binds to.
//!
//! A preview is non-executable: it is a record in the gateway, never an order at the broker.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use thiserror::Error;

use super::audit::{Actor, Surface};
use super::error_code::ErrorCode;
use super::ids::{AccountId, BrokerOrderId, PreviewId};
use super::instrument::{AssetClass, Contract};
use super::market_data::{DataStatus, Quote};
use super::money::{Currency, Money, Price};
use super::order::{OrderSide, OrderType};
use super::order_intent::{DigestKey, OrderDigest, OrderIntent, TrailingOffset};

/// The default lifetime of a preview.
pub const DEFAULT_PREVIEW_EXPIRATION_SECONDS: u32 = 300;

/// The operator's preview policy (config `order_preview`). An intent that breaks it is refused
/// before the broker is asked anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewPolicy {
    /// How long a preview stays usable, in seconds.
    pub expiration_seconds: u32,
    /// Asset classes that may be previewed.
    pub allowed_asset_classes: BTreeSet<AssetClass>,
    /// The largest quantity of one order (of each leg).
    pub max_quantity: Decimal,
    /// The largest notional of one order, in the contract's currency (`None`: no cap).
    pub max_notional: Option<Decimal>,
    /// Whether quantities with a fractional part are allowed.
    pub allow_fractional: bool,
    /// Whether market orders are allowed.
    pub allow_market_orders: bool,
}

impl Default for PreviewPolicy {
    /// Stocks and ETFs, at most 100 units and 50,000 of notional a leg, whole units, no
    /// market orders.
    fn default() -> Self {
        Self {
            expiration_seconds: DEFAULT_PREVIEW_EXPIRATION_SECONDS,
            allowed_asset_classes: [AssetClass::Stock, AssetClass::Etf].into_iter().collect(),
            max_quantity: Decimal::from(100),
            max_notional: Some(Decimal::from(50_000)),
            allow_fractional: false,
            allow_market_orders: false,
        }
    }
}

/// Which rule of the preview policy an intent breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyViolation {
    /// Market orders are off.
    #[error("market orders are not allowed by order_preview.allow_market_orders")]
    MarketOrdersNotAllowed,
    /// The asset class is not allowed.
    #[error("asset class {0} is not in order_preview.allowed_asset_classes")]
    AssetClassNotAllowed(AssetClass),
    /// The quantity is over the cap.
    #[error("quantity {quantity} is over order_preview.max_quantity {max}")]
    QuantityOverMax {
        /// Asked.
        quantity: Decimal,
        /// Allowed.
        max: Decimal,
    },
    /// The quantity has a fractional part and fractions are off.
    #[error("fractional quantities are not allowed by order_preview.allow_fractional")]
    FractionalNotAllowed,
    /// The notional is over the cap.
    #[error(
        "notional {notional} {currency} is over order_preview.max_notional {max} (priced at {price}, the higher of the order's own prices and the current quote)"
    )]
    NotionalOverMax {
        /// The order's notional.
        notional: Decimal,
        /// Its currency.
        currency: Currency,
        /// Allowed.
        max: Decimal,
        /// The price the notional was computed at.
        price: Price,
    },
    /// A stop's trigger is already through the market, so the order would trigger at once.
    #[error(
        "the {side} stop at {stop} is already through the market (quote {market}), so it would trigger at once and trade at the market; order_preview.allow_market_orders is off"
    )]
    StopThroughMarket {
        /// The order's side.
        side: OrderSide,
        /// The trigger price.
        stop: Price,
        /// The quote price the trigger is through.
        market: Price,
    },
    /// No usable quote is known, so the notional cap or the stop rule cannot be checked.
    #[error(
        "no usable quote (a live, delayed or frozen bid, ask or last price) for the contract, so order_preview.max_notional and the stop rules cannot be checked; nothing was previewed"
    )]
    ReferenceQuoteUnavailable,
    /// The order's notional does not fit in a decimal.
    #[error("the order's notional is too large to compute")]
    NotionalOverflow,
}

impl PolicyViolation {
    /// The stable code: a missing quote is `MARKET_DATA_UNAVAILABLE`, a stop through the market
    /// `ORDER_STOP_THROUGH_MARKET`, every other rule `ORDER_POLICY_REJECTED`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::ReferenceQuoteUnavailable => ErrorCode::MarketDataUnavailable,
            Self::StopThroughMarket { .. } => ErrorCode::OrderStopThroughMarket,
            _ => ErrorCode::OrderPolicyRejected,
        }
    }
}

/// The market an order is judged against: the lowest and the highest of a usable quote's bid,
/// ask and last prices.
///
/// Both ends are kept so every check can take the side that is worse for the operator: the
/// notional cap prices at the highest, a buy stop is through the market when any quote price
/// reaches it, a sell stop when any quote price is at or below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceQuote {
    low: Price,
    high: Price,
}

impl ReferenceQuote {
    /// The reference of some prices; zero prices are ignored (no real quote is zero). `None`
    /// when no positive price is left.
    pub fn from_prices(prices: impl IntoIterator<Item = Price>) -> Option<Self> {
        prices
            .into_iter()
            .filter(|price| price.value() > Decimal::ZERO)
            .fold(None, |reference: Option<Self>, price| {
                Some(match reference {
                    None => Self {
                        low: price,
                        high: price,
                    },
                    Some(known) => Self {
                        low: known.low.min(price),
                        high: known.high.max(price),
                    },
                })
            })
    }

    /// The reference of a quote snapshot: its bid, ask and last. `None` when the quote is stale
    /// or unavailable, or has no positive price.
    pub fn from_quote(quote: &Quote) -> Option<Self> {
        match quote.status {
            DataStatus::Live | DataStatus::Delayed | DataStatus::Frozen => {
                Self::from_prices([quote.bid, quote.ask, quote.last].into_iter().flatten())
            }
            DataStatus::Stale | DataStatus::Unavailable => None,
        }
    }

    /// The lowest quote price.
    pub fn low(&self) -> Price {
        self.low
    }

    /// The highest quote price.
    pub fn high(&self) -> Price {
        self.high
    }
}

/// True for the order types with a trigger: `STP`, `STP LMT` and `TRAIL`.
pub fn is_stop_type(order_type: OrderType) -> bool {
    matches!(
        order_type,
        OrderType::Stop | OrderType::StopLimit | OrderType::TrailingStop
    )
}

/// The quote price a stop's trigger is already through, if it is: for a buy stop the highest
/// quote price when it is at or above the trigger, for a sell stop the lowest when it is at or
/// below. A trailing stop without an initial stop price starts one offset away from the market,
/// so it is never through.
pub fn stop_through_market(intent: &OrderIntent, reference: &ReferenceQuote) -> Option<Price> {
    if !is_stop_type(intent.order_type()) {
        return None;
    }
    let stop = intent.stop_price()?;
    match intent.side() {
        OrderSide::Buy => (reference.high >= stop).then_some(reference.high),
        OrderSide::Sell => (reference.low <= stop).then_some(reference.low),
    }
}

/// The price the notional cap uses: the highest of the order's own limit and stop prices, the
/// highest quote price and, for a buy trailing stop without an initial stop price, the trigger it
/// starts at (the highest quote price plus the offset).
///
/// An order can trade at the market whatever its own prices say (a marketable limit, a stop that
/// triggers), and a buy stop above the market trades at its trigger, so no price below this one
/// bounds what the order can cost.
///
/// # Errors
/// [`PolicyViolation::NotionalOverflow`] when the trailing start does not fit in a decimal.
pub fn cap_price(
    intent: &OrderIntent,
    reference: &ReferenceQuote,
) -> Result<Price, PolicyViolation> {
    let mut price = reference.high;
    for own in [intent.limit_price(), intent.stop_price()]
        .into_iter()
        .flatten()
    {
        price = price.max(own);
    }
    if intent.order_type() == OrderType::TrailingStop
        && intent.side() == OrderSide::Buy
        && intent.stop_price().is_none()
    {
        let start = match intent.trailing() {
            Some(TrailingOffset::Amount(amount)) => {
                reference.high.value().checked_add(amount.value())
            }
            Some(TrailingOffset::Percent(percent)) => percent
                .checked_div(Decimal::ONE_HUNDRED)
                .and_then(|share| share.checked_add(Decimal::ONE))
                .and_then(|factor| reference.high.value().checked_mul(factor)),
            None => Some(reference.high.value()),
        }
        .ok_or(PolicyViolation::NotionalOverflow)?;
        let start = Price::new(start).map_err(|_| PolicyViolation::NotionalOverflow)?;
        price = price.max(start);
    }
    Ok(price)
}

impl PreviewPolicy {
    /// True when checking `intent` needs the current quote: always under a notional cap (any
    /// order can trade at the market), and for a stop-type order while market orders are off
    /// (to tell whether its trigger is already through the market).
    pub fn needs_reference(&self, intent: &OrderIntent) -> bool {
        self.max_notional.is_some()
            || (is_stop_type(intent.order_type()) && !self.allow_market_orders)
    }

    /// Checks one leg against the policy, with `reference` the current quote (`None` when no
    /// usable quote is known).
    ///
    /// - A market order needs `allow_market_orders`; so does a stop whose trigger is already
    ///   through the market, because it would trigger at once.
    /// - The notional cap prices the order at [`cap_price`]: never below the current quote.
    /// - When [`PreviewPolicy::needs_reference`] and there is no quote, the check fails closed.
    ///
    /// # Errors
    /// The first [`PolicyViolation`].
    pub fn check(
        &self,
        intent: &OrderIntent,
        contract: &Contract,
        reference: Option<&ReferenceQuote>,
    ) -> Result<(), PolicyViolation> {
        if intent.order_type() == OrderType::Market && !self.allow_market_orders {
            return Err(PolicyViolation::MarketOrdersNotAllowed);
        }
        if !self.allowed_asset_classes.contains(&contract.asset_class) {
            return Err(PolicyViolation::AssetClassNotAllowed(contract.asset_class));
        }
        let quantity = intent.quantity().value();
        if quantity > self.max_quantity {
            return Err(PolicyViolation::QuantityOverMax {
                quantity,
                max: self.max_quantity,
            });
        }
        if !self.allow_fractional && quantity.fract() != Decimal::ZERO {
            return Err(PolicyViolation::FractionalNotAllowed);
        }
        if !self.needs_reference(intent) {
            return Ok(());
        }
        let reference = reference.ok_or(PolicyViolation::ReferenceQuoteUnavailable)?;
        if !self.allow_market_orders
            && let Some(market) = stop_through_market(intent, reference)
            && let Some(stop) = intent.stop_price()
        {
            return Err(PolicyViolation::StopThroughMarket {
                side: intent.side(),
                stop,
                market,
            });
        }
        if let Some(max) = self.max_notional {
            let price = cap_price(intent, reference)?;
            let notional = intent
                .quantity()
                .notional(price, contract.multiplier, contract.currency)
                .map_err(|_| PolicyViolation::NotionalOverflow)?;
            if notional.amount() > max {
                return Err(PolicyViolation::NotionalOverMax {
                    notional: notional.amount(),
                    currency: contract.currency,
                    max,
                    price,
                });
            }
        }
        Ok(())
    }
}

/// The broker's what-if answer for an order or a bracket: cost and margin impact, in the
/// account's currency. Figures the broker did not give are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WhatIf {
    /// Commission (the upper end when the broker gives a range).
    pub commission: Option<Money>,
    /// Change of initial margin.
    pub initial_margin_change: Option<Decimal>,
    /// Initial margin after the order.
    pub initial_margin_after: Option<Decimal>,
    /// Change of maintenance margin.
    pub maintenance_margin_change: Option<Decimal>,
    /// Maintenance margin after the order.
    pub maintenance_margin_after: Option<Decimal>,
    /// Equity with loan after the order.
    pub equity_after: Option<Decimal>,
    /// The broker's warning texts, as given.
    pub warnings: Vec<String>,
}

/// What a preview proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewKind {
    /// One new order.
    Order,
    /// A bracket: entry, take-profit and stop-loss, approved and placed as one group.
    Bracket,
    /// New values for a working order (quantity, prices, time in force).
    Modify {
        /// The working order it replaces.
        order_id: BrokerOrderId,
    },
    /// Cancelling one working order on its own. Only a bracket's protective child (its
    /// take-profit or stop-loss) needs this: cancelling it alone leaves the position
    /// unprotected, so a person approves it first. The one leg is the working order as it
    /// stood when the preview was made, for the approver to see.
    Cancel {
        /// The working order to cancel.
        order_id: BrokerOrderId,
    },
}

impl PreviewKind {
    /// `order`, `bracket`, `modify` or `cancel`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Bracket => "bracket",
            Self::Modify { .. } => "modify",
            Self::Cancel { .. } => "cancel",
        }
    }

    /// The working order a `modify` or `cancel` preview is about.
    pub fn target_order(&self) -> Option<&BrokerOrderId> {
        match self {
            Self::Modify { order_id } | Self::Cancel { order_id } => Some(order_id),
            Self::Order | Self::Bracket => None,
        }
    }

    /// The digest a preview of this kind carries for `legs` under `key`. A cancel's digest
    /// also covers the word `cancel` and the order id, so its approval can never pass for an
    /// order, bracket or modify preview of the same legs, even in an edited store; the other
    /// kinds keep the plain digest of their legs, so previews stored before cancels existed
    /// still verify.
    pub fn digest(&self, key: &DigestKey, legs: &[OrderIntent]) -> OrderDigest {
        match self {
            Self::Cancel { order_id } => {
                OrderDigest::keyed_in_context(key, &format!("cancel {order_id}"), legs)
            }
            Self::Order | Self::Bracket | Self::Modify { .. } => OrderDigest::keyed(key, legs),
        }
    }
}

/// A stored preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Its id.
    pub id: PreviewId,
    /// What it proposes.
    pub kind: PreviewKind,
    /// The legs: one, or three for a bracket (entry first).
    pub legs: Vec<OrderIntent>,
    /// The digest of the legs as computed when the preview was made.
    pub digest: OrderDigest,
    /// The contract's symbol, for display.
    pub symbol: String,
    /// The broker's what-if figures.
    pub what_if: WhatIf,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops being usable.
    pub expires_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: Actor,
    /// Through which front end.
    pub surface: Surface,
}

impl Preview {
    /// The account every leg is for.
    pub fn account_id(&self) -> Option<&AccountId> {
        self.legs.first().map(OrderIntent::account_id)
    }

    /// True once `now` is at or past the expiry.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// True when the stored kind and legs still hash, under the deployment's `key`, to the
    /// stored digest (no row was edited, and the digest was made by this deployment).
    pub fn digest_matches(&self, key: &DigestKey) -> bool {
        !self.legs.is_empty() && self.kind.digest(key, &self.legs) == self.digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::ContractId;
    use crate::domain::money::{Price, Quantity};
    use crate::domain::order::{OrderSide, TimeInForce};
    use crate::domain::order_intent::IntentParts;

    fn contract(asset_class: AssetClass) -> Contract {
        Contract {
            id: ContractId::new(265_598).unwrap(),
            symbol: "AAPL".into(),
            local_symbol: "AAPL".into(),
            asset_class,
            currency: Currency::parse("USD").unwrap(),
            exchange: "NASDAQ".into(),
            description: "APPLE INC".into(),
            multiplier: Decimal::ONE,
            option: None,
        }
    }

    fn price(raw: &str) -> Price {
        Price::parse(raw).unwrap()
    }

    fn intent(order_type: OrderType, quantity: &str, limit: Option<&str>) -> OrderIntent {
        order(OrderSide::Buy, order_type, quantity, limit, None, None)
    }

    fn order(
        side: OrderSide,
        order_type: OrderType,
        quantity: &str,
        limit: Option<&str>,
        stop: Option<&str>,
        trailing: Option<TrailingOffset>,
    ) -> OrderIntent {
        OrderIntent::new(IntentParts {
            account_id: AccountId::parse("DU1234567").unwrap(),
            contract_id: ContractId::new(265_598).unwrap(),
            side,
            quantity: Quantity::parse(quantity).unwrap(),
            order_type,
            limit_price: limit.map(price),
            stop_price: stop.map(price),
            trailing,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }

    /// A quote of bid 548.18, ask 548.22, last 548.20.
    fn spy_quote() -> ReferenceQuote {
        ReferenceQuote::from_prices([price("548.18"), price("548.22"), price("548.20")]).unwrap()
    }

    fn cheap_quote() -> ReferenceQuote {
        ReferenceQuote::from_prices([price("1")]).unwrap()
    }

    #[test]
    fn the_default_policy_refuses_market_orders_and_caps_size() {
        let policy = PreviewPolicy::default();
        let stock = contract(AssetClass::Stock);
        let quote = cheap_quote();
        let quote = Some(&quote);
        assert!(
            policy
                .check(&intent(OrderType::Limit, "10", Some("200")), &stock, quote)
                .is_ok()
        );
        assert_eq!(
            policy.check(&intent(OrderType::Market, "1", None), &stock, quote),
            Err(PolicyViolation::MarketOrdersNotAllowed)
        );
        assert!(matches!(
            policy.check(&intent(OrderType::Limit, "101", Some("1")), &stock, quote),
            Err(PolicyViolation::QuantityOverMax { .. })
        ));
        assert!(matches!(
            policy.check(
                &intent(OrderType::Limit, "100", Some("500.01")),
                &stock,
                quote
            ),
            Err(PolicyViolation::NotionalOverMax { .. })
        ));
        assert_eq!(
            policy.check(&intent(OrderType::Limit, "1.5", Some("1")), &stock, quote),
            Err(PolicyViolation::FractionalNotAllowed)
        );
        assert_eq!(
            policy.check(
                &intent(OrderType::Limit, "1", Some("1")),
                &contract(AssetClass::Option),
                quote
            ),
            Err(PolicyViolation::AssetClassNotAllowed(AssetClass::Option))
        );
    }

    #[test]
    fn under_a_notional_cap_every_order_needs_a_quote() {
        let stock = contract(AssetClass::Stock);
        let market_allowed = PreviewPolicy {
            allow_market_orders: true,
            ..PreviewPolicy::default()
        };
        for (policy, order) in [
            (&market_allowed, intent(OrderType::Market, "10", None)),
            (
                &PreviewPolicy::default(),
                intent(OrderType::Limit, "10", Some("100")),
            ),
        ] {
            assert!(policy.needs_reference(&order));
            assert_eq!(
                policy.check(&order, &stock, None),
                Err(PolicyViolation::ReferenceQuoteUnavailable)
            );
            assert!(policy.check(&order, &stock, Some(&cheap_quote())).is_ok());
        }
        assert_eq!(
            PolicyViolation::ReferenceQuoteUnavailable.code(),
            ErrorCode::MarketDataUnavailable
        );
        // Without a cap, only a stop needs the quote (to see whether it is through the market).
        let uncapped = PreviewPolicy {
            max_notional: None,
            ..PreviewPolicy::default()
        };
        let limit = intent(OrderType::Limit, "10", Some("100"));
        assert!(!uncapped.needs_reference(&limit));
        assert!(uncapped.check(&limit, &stock, None).is_ok());
        let stop = order(OrderSide::Sell, OrderType::Stop, "1", None, Some("1"), None);
        assert!(uncapped.needs_reference(&stop));
        assert_eq!(
            uncapped.check(&stop, &stock, None),
            Err(PolicyViolation::ReferenceQuoteUnavailable)
        );
    }

    #[test]
    fn a_buy_stop_far_below_the_market_is_refused_and_priced_at_the_market() {
        let stock = contract(AssetClass::Stock);
        let quote = spy_quote();
        // The exploit: 90 × a stop of 0.01 is 0.90 of notional, but the order would trigger at
        // once and buy 90 × 548.22 = 49,339.80... for a stop through the market.
        let exploit = order(
            OrderSide::Buy,
            OrderType::Stop,
            "90",
            None,
            Some("0.01"),
            None,
        );
        let error = PreviewPolicy::default()
            .check(&exploit, &stock, Some(&quote))
            .unwrap_err();
        assert_eq!(
            error,
            PolicyViolation::StopThroughMarket {
                side: OrderSide::Buy,
                stop: price("0.01"),
                market: price("548.22"),
            }
        );
        assert_eq!(error.code(), ErrorCode::OrderStopThroughMarket);
        // With market orders allowed it is priced at the quote, not at its trigger.
        let allowed = PreviewPolicy {
            allow_market_orders: true,
            ..PreviewPolicy::default()
        };
        assert!(allowed.check(&exploit, &stock, Some(&quote)).is_ok());
        let big = order(
            OrderSide::Buy,
            OrderType::Stop,
            "100",
            None,
            Some("0.01"),
            None,
        );
        assert_eq!(
            allowed.check(&big, &stock, Some(&quote)),
            Err(PolicyViolation::NotionalOverMax {
                notional: Decimal::from(54_822),
                currency: stock.currency,
                max: Decimal::from(50_000),
                price: price("548.22"),
            })
        );
    }

    #[test]
    fn a_sell_stop_above_the_market_and_a_tiny_trailing_stop_price_are_through_it() {
        let policy = PreviewPolicy::default();
        let stock = contract(AssetClass::Stock);
        let quote = spy_quote();
        let sell_above = order(
            OrderSide::Sell,
            OrderType::Stop,
            "1",
            None,
            Some("900"),
            None,
        );
        assert!(matches!(
            policy.check(&sell_above, &stock, Some(&quote)),
            Err(PolicyViolation::StopThroughMarket { market, .. }) if market == price("548.18")
        ));
        // A sell stop exactly at the bid triggers too.
        let sell_at_bid = order(
            OrderSide::Sell,
            OrderType::Stop,
            "1",
            None,
            Some("548.18"),
            None,
        );
        assert!(policy.check(&sell_at_bid, &stock, Some(&quote)).is_err());
        let sell_below = order(
            OrderSide::Sell,
            OrderType::Stop,
            "1",
            None,
            Some("548.17"),
            None,
        );
        assert!(policy.check(&sell_below, &stock, Some(&quote)).is_ok());
        let trail = Some(TrailingOffset::Amount(price("0.01")));
        let buy_trail = order(
            OrderSide::Buy,
            OrderType::TrailingStop,
            "1",
            None,
            Some("0.01"),
            trail,
        );
        assert!(matches!(
            policy.check(&buy_trail, &stock, Some(&quote)),
            Err(PolicyViolation::StopThroughMarket { .. })
        ));
        let stop_limit = order(
            OrderSide::Buy,
            OrderType::StopLimit,
            "1",
            Some("549"),
            Some("0.01"),
            None,
        );
        assert!(matches!(
            policy.check(&stop_limit, &stock, Some(&quote)),
            Err(PolicyViolation::StopThroughMarket { .. })
        ));
    }

    #[test]
    fn the_cap_price_is_the_worst_of_the_orders_prices_and_the_quote() {
        let quote = spy_quote();
        let cases = [
            // A buy stop above the market trades at its trigger.
            (
                order(
                    OrderSide::Buy,
                    OrderType::Stop,
                    "1",
                    None,
                    Some("600"),
                    None,
                ),
                "600",
            ),
            // A sell limit far below the market trades near the quote.
            (
                order(
                    OrderSide::Sell,
                    OrderType::Limit,
                    "1",
                    Some("1"),
                    None,
                    None,
                ),
                "548.22",
            ),
            (
                order(
                    OrderSide::Buy,
                    OrderType::StopLimit,
                    "1",
                    Some("700"),
                    Some("600"),
                    None,
                ),
                "700",
            ),
            // A buy trailing stop starts one offset above the market.
            (
                order(
                    OrderSide::Buy,
                    OrderType::TrailingStop,
                    "1",
                    None,
                    None,
                    Some(TrailingOffset::Amount(price("10"))),
                ),
                "558.22",
            ),
            (
                order(
                    OrderSide::Buy,
                    OrderType::TrailingStop,
                    "1",
                    None,
                    None,
                    Some(TrailingOffset::Percent(Decimal::from(10))),
                ),
                "603.042",
            ),
            (
                order(
                    OrderSide::Sell,
                    OrderType::TrailingStop,
                    "1",
                    None,
                    None,
                    Some(TrailingOffset::Amount(price("10"))),
                ),
                "548.22",
            ),
        ];
        for (intent, expected) in cases {
            assert_eq!(
                cap_price(&intent, &quote).unwrap().value().normalize(),
                price(expected).value().normalize(),
                "{}",
                intent.canonical()
            );
        }
    }

    #[test]
    fn a_stale_or_empty_quote_is_not_a_reference() {
        let quote = |status, bid: Option<&str>| Quote {
            contract_id: ContractId::new(1).unwrap(),
            bid: bid.map(price),
            ask: None,
            last: Some(price("0")),
            bid_size: None,
            ask_size: None,
            volume: None,
            status,
            as_of: DateTime::from_timestamp(0, 0).unwrap(),
            greeks: None,
            missing: Vec::new(),
        };
        assert!(ReferenceQuote::from_quote(&quote(DataStatus::Live, None)).is_none());
        assert!(ReferenceQuote::from_quote(&quote(DataStatus::Stale, Some("5"))).is_none());
        assert!(ReferenceQuote::from_quote(&quote(DataStatus::Unavailable, Some("5"))).is_none());
        let frozen = ReferenceQuote::from_quote(&quote(DataStatus::Frozen, Some("5"))).unwrap();
        assert_eq!((frozen.low(), frozen.high()), (price("5"), price("5")));
    }

    #[test]
    fn a_cancel_digest_never_passes_for_another_kind_or_order() {
        use crate::domain::audit::chain::ChainKey;
        use crate::domain::secret::SecretBytes;
        let key_from = |byte: u8| {
            DigestKey::derive(&ChainKey::new(&SecretBytes::new(vec![byte; 32])).unwrap())
        };
        let key = || key_from(42);
        let legs = vec![intent(OrderType::Limit, "10", Some("100"))];
        let order_id = |raw: &str| BrokerOrderId::parse(raw).unwrap();
        let cancel = PreviewKind::Cancel {
            order_id: order_id("lc-3"),
        };
        let digest = cancel.digest(&key(), &legs);
        for other in [
            PreviewKind::Order,
            PreviewKind::Bracket,
            PreviewKind::Modify {
                order_id: order_id("lc-3"),
            },
            PreviewKind::Cancel {
                order_id: order_id("lc-4"),
            },
        ] {
            assert_ne!(other.digest(&key(), &legs), digest, "{other:?}");
        }
        assert_eq!(cancel.digest(&key(), &legs), digest);
        assert_ne!(cancel.digest(&key_from(7), &legs), digest);
        // The other kinds keep the plain digest, so previews stored earlier still verify.
        assert_eq!(
            PreviewKind::Order.digest(&key(), &legs),
            OrderDigest::keyed(&key(), &legs)
        );
        // A stored cancel preview whose kind was edited to `order` no longer verifies.
        let stored = Preview {
            id: PreviewId::parse("prv_1").unwrap(),
            kind: cancel,
            legs: legs.clone(),
            digest,
            symbol: "AAPL".into(),
            what_if: WhatIf::default(),
            created_at: DateTime::from_timestamp(0, 0).unwrap(),
            expires_at: DateTime::from_timestamp(60, 0).unwrap(),
            created_by: Actor::System,
            surface: Surface::Cli,
        };
        assert!(stored.digest_matches(&key()));
        let edited = Preview {
            kind: PreviewKind::Order,
            ..stored
        };
        assert!(!edited.digest_matches(&key()));
    }
}
