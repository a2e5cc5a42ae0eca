//! Order vocabulary (side, type, time in force, status) and the read models of working orders
//! and executions.

use std::fmt;

use chrono::{DateTime, Utc};

use super::ids::{AccountId, BrokerOrderId, ContractId, ExecutionId};
use super::instrument::ParseEnumError;
use super::money::{Money, Price, Quantity};

/// Declares a closed enum with one canonical code per variant and a case-insensitive parser.
macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The canonical code.
            pub fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code),+
                }
            }

            /// Parses a canonical code, ignoring case.
            ///
            /// # Errors
            /// Returns [`ParseEnumError`] for an unknown code.
            pub fn parse(raw: &str) -> Result<Self, ParseEnumError> {
                let raw = raw.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.code().eq_ignore_ascii_case(raw))
                    .ok_or(ParseEnumError {
                        kind: $kind,
                        expected: concat!($($code, " "),+),
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

coded_enum!(
    /// Buy or sell.
    OrderSide, "order side", {
        /// Buy.
        Buy => "BUY",
        /// Sell.
        Sell => "SELL",
    }
);

coded_enum!(
    /// The side of a listed order as the broker reports it. Read-only: an order is written with
    /// an [`OrderSide`], and only a buy or a sell converts back to one.
    ///
    /// It exists because the broker lists entries that are neither (IBKR reports an option
    /// position closed by expiry with the side `X`). Such an entry is listed with its side as
    /// reported rather than failing the whole list or being passed off as a buy or a sell.
    ReportedSide, "reported side", {
        /// Buy.
        Buy => "BUY",
        /// Sell.
        Sell => "SELL",
        /// An option that expired (IBKR's `X`); no order can be placed or changed with it.
        Expired => "EXPIRED",
    }
);

impl ReportedSide {
    /// The side an order can be written with: `None` for [`ReportedSide::Expired`].
    pub fn order_side(self) -> Option<OrderSide> {
        match self {
            Self::Buy => Some(OrderSide::Buy),
            Self::Sell => Some(OrderSide::Sell),
            Self::Expired => None,
        }
    }
}

impl From<OrderSide> for ReportedSide {
    fn from(side: OrderSide) -> Self {
        match side {
            OrderSide::Buy => Self::Buy,
            OrderSide::Sell => Self::Sell,
        }
    }
}

coded_enum!(
    /// Order type.
    OrderType, "order type", {
        /// Limit.
        Limit => "LMT",
        /// Market.
        Market => "MKT",
        /// Stop.
        Stop => "STP",
        /// Stop limit.
        StopLimit => "STP LMT",
        /// Trailing stop.
        TrailingStop => "TRAIL",
        /// A type the gateway does not model (reported by the broker, never placed by it).
        Other => "OTHER",
    }
);

coded_enum!(
    /// How long an order stays working.
    TimeInForce, "time in force", {
        /// Until the end of the trading day.
        Day => "DAY",
        /// Good till cancelled.
        GoodTillCancelled => "GTC",
        /// Immediate or cancel.
        ImmediateOrCancel => "IOC",
        /// At the opening auction.
        AtTheOpening => "OPG",
        /// A time in force the gateway does not model (reported by the broker only).
        Other => "OTHER",
    }
);

coded_enum!(
    /// The broker-side state of an order.
    OrderStatus, "order status", {
        /// Sent, not yet acknowledged.
        PendingSubmit => "PendingSubmit",
        /// A cancel was sent, not yet acknowledged.
        PendingCancel => "PendingCancel",
        /// Held by the broker until its conditions are met.
        PreSubmitted => "PreSubmitted",
        /// Working at the exchange.
        Submitted => "Submitted",
        /// Completely filled.
        Filled => "Filled",
        /// Cancelled.
        Cancelled => "Cancelled",
        /// Inactive (rejected or held).
        Inactive => "Inactive",
        /// A status the gateway does not model.
        Unknown => "Unknown",
    }
);

impl OrderStatus {
    /// True for states after which the order can no longer fill.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Filled | Self::Cancelled | Self::Inactive)
    }
}

/// A working or recently finished order as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOrder {
    /// Broker order id.
    pub order_id: BrokerOrderId,
    /// The account.
    pub account_id: AccountId,
    /// The contract.
    pub contract_id: ContractId,
    /// Symbol for display.
    pub symbol: String,
    /// Buy or sell as reported; an expired option is listed as [`ReportedSide::Expired`].
    pub side: ReportedSide,
    /// Order type.
    pub order_type: OrderType,
    /// Total quantity.
    pub quantity: Quantity,
    /// Quantity filled so far.
    pub filled_quantity: Quantity,
    /// Limit price, for limit types.
    pub limit_price: Option<Price>,
    /// Stop (trigger) price, for stop types.
    pub stop_price: Option<Price>,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Broker-side status.
    pub status: OrderStatus,
    /// When the order was last updated.
    pub updated_at: DateTime<Utc>,
    /// The client order id (`cOID`) it was placed with, when it had one (a bracket child may
    /// carry its parent's).
    pub client_order_id: Option<String>,
    /// The average fill price, once something filled and the source reports it.
    pub average_price: Option<Price>,
    /// The broker's text for a rejected or inactive order, when the source gives one.
    pub reason: Option<String>,
}

/// One fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Broker execution id.
    pub execution_id: ExecutionId,
    /// The broker's id of the order it filled, when the source names it (IBKR's trades
    /// answer documents only the client order id).
    pub order_id: Option<BrokerOrderId>,
    /// The client order id (`cOID`) the order was placed with, when it had one. Never put in
    /// `order_id`: it is the caller's id, not the broker's.
    pub client_order_id: Option<String>,
    /// The account.
    pub account_id: AccountId,
    /// The contract.
    pub contract_id: ContractId,
    /// Symbol for display.
    pub symbol: String,
    /// Buy or sell.
    pub side: OrderSide,
    /// Filled size.
    pub quantity: Quantity,
    /// Fill price.
    pub price: Price,
    /// Commission charged.
    pub commission: Money,
    /// When it filled.
    pub executed_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_case_insensitively() {
        for order_type in OrderType::ALL {
            assert_eq!(
                OrderType::parse(&order_type.code().to_lowercase()).unwrap(),
                *order_type
            );
        }
        assert_eq!(OrderSide::parse("buy").unwrap(), OrderSide::Buy);
        assert_eq!(
            TimeInForce::parse("GTC").unwrap(),
            TimeInForce::GoodTillCancelled
        );
        assert!(OrderType::parse("LIMIT").is_err());
    }

    #[test]
    fn only_a_buy_or_a_sell_converts_back_to_a_writable_side() {
        for side in OrderSide::ALL {
            assert_eq!(ReportedSide::from(*side).order_side(), Some(*side));
        }
        assert_eq!(ReportedSide::Expired.order_side(), None);
        assert_eq!(ReportedSide::Expired.code(), "EXPIRED");
    }

    #[test]
    fn terminal_statuses() {
        assert!(OrderStatus::Filled.is_terminal());
        assert!(!OrderStatus::Submitted.is_terminal());
    }
}
