//! Instruments: asset classes, contracts, option details and greeks.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use thiserror::Error;

use super::ids::ContractId;
use super::money::{Currency, Price};

/// A string that is not one of the known enum spellings.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {kind}; expected one of: {expected}")]
pub struct ParseEnumError {
    /// What was being parsed, e.g. `asset class`.
    pub kind: &'static str,
    /// The accepted spellings, comma separated.
    pub expected: &'static str,
}

/// The broad class of an instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AssetClass {
    /// Common stock.
    Stock,
    /// Exchange-traded fund.
    Etf,
    /// Listed option.
    Option,
    /// Future.
    Future,
    /// Option on a future.
    FutureOption,
    /// Spot FX pair.
    Forex,
    /// Index (not tradable).
    Index,
    /// Bond.
    Bond,
    /// Cryptocurrency.
    Crypto,
    /// A class the gateway does not model (CFDs, warrants, funds, …), kept rather than refused.
    Other,
}

impl AssetClass {
    /// Every asset class, in display order.
    pub const ALL: [Self; 10] = [
        Self::Stock,
        Self::Etf,
        Self::Option,
        Self::Future,
        Self::FutureOption,
        Self::Forex,
        Self::Index,
        Self::Bond,
        Self::Crypto,
        Self::Other,
    ];

    /// The gateway's code for the class (IBKR's security type where there is one).
    pub fn code(self) -> &'static str {
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
            Self::Other => "OTHER",
        }
    }

    /// Parses a code, case-insensitively; `FX` is accepted for `CASH`.
    ///
    /// # Errors
    /// Returns [`ParseEnumError`] for an unknown code.
    pub fn parse(raw: &str) -> Result<Self, ParseEnumError> {
        let upper = raw.trim().to_ascii_uppercase();
        if upper == "FX" {
            return Ok(Self::Forex);
        }
        Self::ALL
            .into_iter()
            .find(|class| class.code() == upper)
            .ok_or(ParseEnumError {
                kind: "asset class",
                expected: "STK, ETF, OPT, FUT, FOP, CASH (or FX), IND, BOND, CRYPTO, OTHER",
            })
    }
}

impl fmt::Display for AssetClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptionRight {
    /// The right to buy.
    Call,
    /// The right to sell.
    Put,
}

impl OptionRight {
    /// `C` or `P`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Call => "C",
            Self::Put => "P",
        }
    }
}

/// The terms of an option contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionTerms {
    /// The underlying contract.
    pub underlying: ContractId,
    /// Last trading day.
    pub expiry: NaiveDate,
    /// Strike price.
    pub strike: Price,
    /// Call or put.
    pub right: OptionRight,
    /// Units of the underlying per contract (100 for US equity options).
    pub multiplier: Decimal,
}

/// Option sensitivities. All values are exact decimals as reported by the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeks {
    /// Price change per unit change of the underlying.
    pub delta: Decimal,
    /// Delta change per unit change of the underlying.
    pub gamma: Decimal,
    /// Price change per calendar day.
    pub theta: Decimal,
    /// Price change per volatility point.
    pub vega: Decimal,
    /// Implied volatility as a fraction (0.25 is 25%).
    pub implied_volatility: Decimal,
}

/// A tradable (or quotable) instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    /// IBKR contract id.
    pub id: ContractId,
    /// Ticker or root symbol, e.g. `AAPL`, `EUR`.
    pub symbol: String,
    /// The exchange-local symbol that tells contracts of one symbol apart.
    pub local_symbol: String,
    /// Asset class.
    pub asset_class: AssetClass,
    /// Trading currency.
    pub currency: Currency,
    /// Primary listing exchange.
    pub exchange: String,
    /// Broker-supplied description; untrusted text, shown only in labelled fields.
    pub description: String,
    /// Units per contract for the notional (1 for stock, 100 for US equity options).
    pub multiplier: Decimal,
    /// Option terms, for options.
    pub option: Option<OptionTerms>,
}

/// Criteria for a contract search. Empty filters match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractQuery {
    text: String,
    /// Only this asset class.
    pub asset_class: Option<AssetClass>,
    /// Only this trading currency.
    pub currency: Option<Currency>,
    /// Only this exchange (case-insensitive).
    pub exchange: Option<String>,
}

/// Why a contract query was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractQueryError {
    /// The text is empty or longer than 64 characters.
    #[error("query must be 1 to 64 characters")]
    Length,
    /// The text has control characters.
    #[error("query must not contain control characters")]
    ControlCharacter,
    /// The exchange filter is not 1 to 16 letters, digits or dots.
    #[error("exchange must be 1 to 16 letters, digits or dots")]
    Exchange,
}

impl ContractQuery {
    /// A query for `text` (a symbol or words of a description) with no filters.
    ///
    /// # Errors
    /// Returns [`ContractQueryError`] for empty, oversize or control-character text.
    pub fn new(text: &str) -> Result<Self, ContractQueryError> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 64 {
            return Err(ContractQueryError::Length);
        }
        if text.chars().any(char::is_control) {
            return Err(ContractQueryError::ControlCharacter);
        }
        Ok(Self {
            text: text.to_owned(),
            asset_class: None,
            currency: None,
            exchange: None,
        })
    }

    /// Restricts to one exchange.
    ///
    /// # Errors
    /// Returns [`ContractQueryError::Exchange`] for a malformed exchange code.
    pub fn with_exchange(mut self, exchange: &str) -> Result<Self, ContractQueryError> {
        let valid = !exchange.is_empty()
            && exchange.len() <= 16
            && exchange
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.');
        if !valid {
            return Err(ContractQueryError::Exchange);
        }
        self.exchange = Some(exchange.to_ascii_uppercase());
        Ok(self)
    }

    /// The search text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when the contract passes every filter (the text is matched by the broker).
    pub fn filters_accept(&self, contract: &Contract) -> bool {
        self.asset_class
            .is_none_or(|class| class == contract.asset_class)
            && self
                .currency
                .is_none_or(|currency| currency == contract.currency)
            && self
                .exchange
                .as_deref()
                .is_none_or(|exchange| contract.exchange.eq_ignore_ascii_case(exchange))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_classes_round_trip_their_codes() {
        for class in AssetClass::ALL {
            assert_eq!(AssetClass::parse(class.code()).unwrap(), class);
        }
        assert_eq!(AssetClass::parse("fx").unwrap(), AssetClass::Forex);
        assert!(AssetClass::parse("SHARES").is_err());
    }

    #[test]
    fn queries_refuse_empty_oversize_and_control_text() {
        assert!(ContractQuery::new("  ").is_err());
        assert!(ContractQuery::new(&"A".repeat(65)).is_err());
        assert!(ContractQuery::new("AAPL\u{0}").is_err());
        assert!(
            ContractQuery::new("AAPL")
                .unwrap()
                .with_exchange("NASDAQ/..")
                .is_err()
        );
        assert_eq!(ContractQuery::new(" aapl ").unwrap().text(), "aapl");
    }
}
