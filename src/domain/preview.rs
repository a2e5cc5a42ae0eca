//! Order previews: the preview policy an intent must pass, the broker's what-if figures, and the
//! stored preview an approval later binds to.
//!
//! A preview is non-executable: it is a record in the gateway, never an order at the broker.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use thiserror::Error;

use super::audit::{Actor, Surface};
use super::ids::{AccountId, BrokerOrderId, PreviewId};
use super::instrument::{AssetClass, Contract};
use super::money::{Currency, Money};
use super::order::OrderType;
use super::order_intent::{DigestKey, OrderDigest, OrderIntent};

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
    #[error("notional {notional} {currency} is over order_preview.max_notional {max}")]
    NotionalOverMax {
        /// The order's notional.
        notional: Decimal,
        /// Its currency.
        currency: Currency,
        /// Allowed.
        max: Decimal,
    },
    /// No price is known to bound the notional (a market or trailing order without a quote).
    #[error("no price is known to check order_preview.max_notional; use a limit or stop price")]
    NotionalUnknown,
    /// The order's notional does not fit in a decimal.
    #[error("the order's notional is too large to compute")]
    NotionalOverflow,
}

impl PreviewPolicy {
    /// Checks one leg against the policy. `reference_price` is the price used for the notional
    /// when the order names none (a market or trailing order): the latest quote, if any.
    ///
    /// # Errors
    /// The first [`PolicyViolation`].
    pub fn check(
        &self,
        intent: &OrderIntent,
        contract: &Contract,
        reference_price: Option<super::money::Price>,
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
        if let Some(max) = self.max_notional {
            let price = intent
                .committed_price()
                .or(reference_price)
                .ok_or(PolicyViolation::NotionalUnknown)?;
            let notional = intent
                .quantity()
                .notional(price, contract.multiplier, contract.currency)
                .map_err(|_| PolicyViolation::NotionalOverflow)?;
            if notional.amount() > max {
                return Err(PolicyViolation::NotionalOverMax {
                    notional: notional.amount(),
                    currency: contract.currency,
                    max,
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
}

impl PreviewKind {
    /// `order`, `bracket` or `modify`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Bracket => "bracket",
            Self::Modify { .. } => "modify",
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

    /// True when the stored legs still hash, under the deployment's `key`, to the stored digest
    /// (no row was edited, and the digest was made by this deployment).
    pub fn digest_matches(&self, key: &DigestKey) -> bool {
        !self.legs.is_empty() && OrderDigest::keyed(key, &self.legs) == self.digest
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

    fn intent(order_type: OrderType, quantity: &str, limit: Option<&str>) -> OrderIntent {
        OrderIntent::new(IntentParts {
            account_id: AccountId::parse("DU1234567").unwrap(),
            contract_id: ContractId::new(265_598).unwrap(),
            side: OrderSide::Buy,
            quantity: Quantity::parse(quantity).unwrap(),
            order_type,
            limit_price: limit.map(|raw| Price::parse(raw).unwrap()),
            stop_price: None,
            trailing: None,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }

    #[test]
    fn the_default_policy_refuses_market_orders_and_caps_size() {
        let policy = PreviewPolicy::default();
        let stock = contract(AssetClass::Stock);
        assert!(
            policy
                .check(&intent(OrderType::Limit, "10", Some("200")), &stock, None)
                .is_ok()
        );
        assert_eq!(
            policy.check(&intent(OrderType::Market, "1", None), &stock, None),
            Err(PolicyViolation::MarketOrdersNotAllowed)
        );
        assert!(matches!(
            policy.check(&intent(OrderType::Limit, "101", Some("1")), &stock, None),
            Err(PolicyViolation::QuantityOverMax { .. })
        ));
        assert!(matches!(
            policy.check(
                &intent(OrderType::Limit, "100", Some("500.01")),
                &stock,
                None
            ),
            Err(PolicyViolation::NotionalOverMax { .. })
        ));
        assert_eq!(
            policy.check(&intent(OrderType::Limit, "1.5", Some("1")), &stock, None),
            Err(PolicyViolation::FractionalNotAllowed)
        );
        assert_eq!(
            policy.check(
                &intent(OrderType::Limit, "1", Some("1")),
                &contract(AssetClass::Option),
                None
            ),
            Err(PolicyViolation::AssetClassNotAllowed(AssetClass::Option))
        );
    }

    #[test]
    fn a_market_order_needs_a_reference_price_for_the_notional_cap() {
        let policy = PreviewPolicy {
            allow_market_orders: true,
            ..PreviewPolicy::default()
        };
        let stock = contract(AssetClass::Stock);
        let market = intent(OrderType::Market, "10", None);
        assert_eq!(
            policy.check(&market, &stock, None),
            Err(PolicyViolation::NotionalUnknown)
        );
        assert!(
            policy
                .check(&market, &stock, Some(Price::parse("100").unwrap()))
                .is_ok()
        );
    }
}
