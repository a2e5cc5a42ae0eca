//! Accounts, their mode (paper or live) and their balances.

use std::fmt;

use super::ids::AccountId;
use super::money::{Currency, Money};

/// Whether an account trades simulated or real money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountMode {
    /// IBKR's paper-trading simulation.
    Paper,
    /// Real money.
    Live,
}

impl AccountMode {
    /// `paper` or `live`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::Live => "live",
        }
    }
}

impl fmt::Display for AccountMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of account as the broker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// An individual account.
    Individual,
    /// A joint account.
    Joint,
    /// An advisor master or sub-account.
    Advisor,
    /// A type the gateway does not model.
    Other,
}

impl AccountKind {
    /// Lower-case name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Individual => "individual",
            Self::Joint => "joint",
            Self::Advisor => "advisor",
            Self::Other => "other",
        }
    }
}

/// A brokerage account visible to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The raw id; never printed (see [`AccountId`]).
    pub id: AccountId,
    /// Paper or live, as the broker reports it.
    pub mode: AccountMode,
    /// The currency balances are reported in.
    pub base_currency: Currency,
    /// The account kind.
    pub kind: AccountKind,
}

/// Balances and margin figures of one account, in its base currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// The account.
    pub account_id: AccountId,
    /// The base currency every figure below is in.
    pub base_currency: Currency,
    /// Net liquidation value.
    pub net_liquidation: Money,
    /// Settled and unsettled cash across currencies, converted to base.
    pub total_cash: Money,
    /// Buying power.
    pub buying_power: Money,
    /// Funds available for new positions.
    pub available_funds: Money,
    /// Excess liquidity over maintenance margin.
    pub excess_liquidity: Money,
    /// Initial margin requirement.
    pub initial_margin: Money,
    /// Maintenance margin requirement.
    pub maintenance_margin: Money,
    /// Gross value of positions.
    pub gross_position_value: Money,
    /// Cash held in each currency, in that currency.
    pub cash_balances: Vec<Money>,
}
