//! Exact decimal quantities: currencies, prices, quantities and money.
//!
//! Everything is `rust_decimal::Decimal`, never `f64`. Arithmetic is checked: an overflow is a
//! [`DecimalError`], never a panic. Parsing refuses inputs that would lose precision, so a value
//! written out and read back is the same value.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use thiserror::Error;

/// Why a decimal value was refused or an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecimalError {
    /// The text is not a decimal number, or has more precision than can be held exactly.
    #[error("not an exact decimal number")]
    Invalid,
    /// The value must not be negative here.
    #[error("must not be negative")]
    Negative,
    /// The result does not fit in a decimal.
    #[error("arithmetic overflow")]
    Overflow,
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        /// The left-hand currency.
        left: Currency,
        /// The right-hand currency.
        right: Currency,
    },
    /// A currency code is not three capital letters.
    #[error("currency must be three capital letters")]
    InvalidCurrency,
}

/// Parses a decimal without silently rounding: too many digits is an error, not a rounding.
///
/// # Errors
/// Returns [`DecimalError::Invalid`] for malformed or over-precise text.
pub fn parse_exact_decimal(raw: &str) -> Result<Decimal, DecimalError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.len() > 64 {
        return Err(DecimalError::Invalid);
    }
    // Only `[+-]digits[.digits]`: exponents and `_` separators, which `rust_decimal` would
    // take, are refused so that every input spells its number plainly.
    let unsigned = trimmed.strip_prefix(['-', '+']).unwrap_or(trimmed);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let plain = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !plain(whole) || !plain(fraction) || (unsigned.ends_with('.')) {
        return Err(DecimalError::Invalid);
    }
    Decimal::from_str_exact(trimmed).map_err(|_| DecimalError::Invalid)
}

/// An ISO 4217 currency code such as `USD`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses three capital ASCII letters.
    ///
    /// # Errors
    /// Returns [`DecimalError::InvalidCurrency`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, DecimalError> {
        match raw.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err(DecimalError::InvalidCurrency),
        }
    }

    /// The code as a string slice.
    pub fn as_str(&self) -> &str {
        // The constructor admits only ASCII capitals, so this never takes the fallback.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl FromStr for Currency {
    type Err = DecimalError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

/// A non-negative price per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(Decimal);

impl Price {
    /// Wraps a non-negative decimal.
    ///
    /// # Errors
    /// Returns [`DecimalError::Negative`] for a negative value.
    pub fn new(value: Decimal) -> Result<Self, DecimalError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(DecimalError::Negative);
        }
        Ok(Self(value))
    }

    /// Parses exact decimal text.
    ///
    /// # Errors
    /// Returns [`DecimalError`] for malformed, over-precise or negative input.
    pub fn parse(raw: &str) -> Result<Self, DecimalError> {
        Self::new(parse_exact_decimal(raw)?)
    }

    /// The decimal value.
    pub fn value(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A signed quantity of units: positive is long, negative is short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(Decimal);

impl Quantity {
    /// Wraps any decimal.
    pub fn new(value: Decimal) -> Self {
        Self(value)
    }

    /// Parses exact decimal text.
    ///
    /// # Errors
    /// Returns [`DecimalError::Invalid`] for malformed or over-precise input.
    pub fn parse(raw: &str) -> Result<Self, DecimalError> {
        Ok(Self(parse_exact_decimal(raw)?))
    }

    /// The decimal value.
    pub fn value(self) -> Decimal {
        self.0
    }

    /// `self + other`, or [`DecimalError::Overflow`].
    ///
    /// # Errors
    /// Returns [`DecimalError::Overflow`] when the sum does not fit.
    pub fn checked_add(self, other: Self) -> Result<Self, DecimalError> {
        self.0
            .checked_add(other.0)
            .map(Self)
            .ok_or(DecimalError::Overflow)
    }

    /// The notional value `|quantity| × price × multiplier` in `currency`.
    ///
    /// # Errors
    /// Returns [`DecimalError::Overflow`] when the product does not fit.
    pub fn notional(
        self,
        price: Price,
        multiplier: Decimal,
        currency: Currency,
    ) -> Result<Money, DecimalError> {
        let amount = self
            .0
            .abs()
            .checked_mul(price.0)
            .and_then(|value| value.checked_mul(multiplier))
            .ok_or(DecimalError::Overflow)?;
        Ok(Money::new(amount, currency))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An amount in one currency. Amounts may be negative (debits, losses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// An amount in a currency.
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// Parses exact decimal text as an amount in `currency`.
    ///
    /// # Errors
    /// Returns [`DecimalError::Invalid`] for malformed or over-precise input.
    pub fn parse(raw: &str, currency: Currency) -> Result<Self, DecimalError> {
        Ok(Self::new(parse_exact_decimal(raw)?, currency))
    }

    /// The amount.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    fn same_currency(&self, other: &Self) -> Result<(), DecimalError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(DecimalError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other` in the same currency.
    ///
    /// # Errors
    /// [`DecimalError::CurrencyMismatch`] or [`DecimalError::Overflow`].
    pub fn checked_add(&self, other: &Self) -> Result<Self, DecimalError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(DecimalError::Overflow)?;
        Ok(Self::new(amount, self.currency))
    }

    /// `self - other` in the same currency.
    ///
    /// # Errors
    /// [`DecimalError::CurrencyMismatch`] or [`DecimalError::Overflow`].
    pub fn checked_sub(&self, other: &Self) -> Result<Self, DecimalError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(DecimalError::Overflow)?;
        Ok(Self::new(amount, self.currency))
    }

    /// `self × factor`.
    ///
    /// # Errors
    /// [`DecimalError::Overflow`] when the product does not fit.
    pub fn checked_mul(&self, factor: Decimal) -> Result<Self, DecimalError> {
        let amount = self
            .amount
            .checked_mul(factor)
            .ok_or(DecimalError::Overflow)?;
        Ok(Self::new(amount, self.currency))
    }

    /// Rounds to `places` decimal places with banker's rounding (half to even), the rule
    /// accounting statements use, so repeated rounding does not drift in one direction.
    pub fn round_half_even(&self, places: u32) -> Self {
        Self::new(
            self.amount.round_dp_with_strategy(
                places,
                rust_decimal::RoundingStrategy::MidpointNearestEven,
            ),
            self.currency,
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn currencies_are_three_capitals() {
        assert_eq!(usd().as_str(), "USD");
        for raw in ["usd", "US", "USDT", "U$D", ""] {
            assert!(Currency::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn parsing_is_exact_and_refuses_lossy_input() {
        assert_eq!(Price::parse("189.125").unwrap().to_string(), "189.125");
        assert_eq!(Quantity::parse("-0.5").unwrap().to_string(), "-0.5");
        assert_eq!(parse_exact_decimal("0.1000").unwrap().to_string(), "0.1000");
        for raw in [
            "",
            "abc",
            "1e3",
            "1.2.3",
            "NaN",
            "0.12345678901234567890123456789012",
        ] {
            assert!(parse_exact_decimal(raw).is_err(), "{raw:?}");
        }
        assert_eq!(Price::parse("-1"), Err(DecimalError::Negative));
    }

    #[test]
    fn arithmetic_overflow_is_an_error() {
        let max = Money::new(Decimal::MAX, usd());
        assert_eq!(max.checked_add(&max), Err(DecimalError::Overflow));
        assert_eq!(max.checked_mul(Decimal::TWO), Err(DecimalError::Overflow));
        let quantity = Quantity::new(Decimal::MAX);
        assert_eq!(
            quantity.notional(Price::new(Decimal::TWO).unwrap(), Decimal::ONE, usd()),
            Err(DecimalError::Overflow)
        );
    }

    #[test]
    fn currencies_do_not_mix() {
        let eur = Currency::parse("EUR").unwrap();
        let result = Money::new(Decimal::ONE, usd()).checked_add(&Money::new(Decimal::ONE, eur));
        assert!(matches!(result, Err(DecimalError::CurrencyMismatch { .. })));
    }

    #[test]
    fn notional_uses_absolute_quantity_and_multiplier() {
        let notional = Quantity::parse("-2")
            .unwrap()
            .notional(Price::parse("3.15").unwrap(), Decimal::from(100), usd())
            .unwrap();
        assert_eq!(notional.amount().to_string(), "630.00");
    }

    #[test]
    fn rounding_is_half_even() {
        let value = Money::parse("2.345", usd()).unwrap().round_half_even(2);
        assert_eq!(value.amount().to_string(), "2.34");
        let value = Money::parse("2.355", usd()).unwrap().round_half_even(2);
        assert_eq!(value.amount().to_string(), "2.36");
    }
}
