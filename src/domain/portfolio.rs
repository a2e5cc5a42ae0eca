//! Positions with cost basis and profit and loss.

use super::ids::AccountId;
use super::instrument::Contract;
use super::money::{Money, Price, Quantity};

/// A holding in one contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The account holding it.
    pub account_id: AccountId,
    /// The instrument.
    pub contract: Contract,
    /// Signed size: negative is short.
    pub quantity: Quantity,
    /// Average cost per unit (including the multiplier's effect as IBKR reports it: per unit).
    pub average_cost: Price,
    /// The mark price.
    pub market_price: Price,
    /// Quantity × mark × multiplier, in the contract currency.
    pub market_value: Money,
    /// Unrealized profit or loss, in the contract currency.
    pub unrealized_pnl: Money,
    /// Realized profit or loss today, in the contract currency.
    pub realized_pnl: Money,
}
