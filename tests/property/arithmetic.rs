//! Checked arithmetic: every sum, difference and product is either right or `Overflow`, never a
//! panic, and amounts in different currencies never combine.

use ibkr_agent_gateway::domain::money::{Currency, DecimalError, Money, Price, Quantity};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::strategies::{MAX_MANTISSA, any_currency, any_decimal, decimal, small_decimal};

/// The exact representation (mantissa and scale) of a result, so that `1.0` and `1.00` differ.
fn exact(result: Result<Decimal, DecimalError>) -> Result<(i128, u32), DecimalError> {
    result.map(|value| (value.mantissa(), value.scale()))
}

/// What `Decimal`'s own checked operation gives, with `None` as the gateway's overflow error.
fn reference(result: Option<Decimal>) -> Result<(i128, u32), DecimalError> {
    exact(result.ok_or(DecimalError::Overflow))
}

/// The exact value `mantissa × 10^-scale` when a `Decimal` can hold it without rounding.
fn representable(mantissa: i128, scale: u32) -> Option<Decimal> {
    (mantissa.abs() <= MAX_MANTISSA && scale <= 28).then(|| decimal(mantissa, scale))
}

fn two_distinct_currencies() -> impl Strategy<Value = (Currency, Currency)> {
    (any_currency(), any_currency())
        .prop_filter("distinct currencies", |(left, right)| left != right)
}

proptest! {
    #[test]
    fn money_add_is_checked(
        left in any_decimal(),
        right in any_decimal(),
        currency in any_currency(),
    ) {
        let sum = Money::new(left, currency).checked_add(&Money::new(right, currency));
        if let Ok(money) = &sum {
            prop_assert_eq!(money.currency(), currency);
        }
        prop_assert_eq!(exact(sum.map(|money| money.amount())), reference(left.checked_add(right)));
    }

    #[test]
    fn money_sub_is_checked(
        left in any_decimal(),
        right in any_decimal(),
        currency in any_currency(),
    ) {
        let difference = Money::new(left, currency).checked_sub(&Money::new(right, currency));
        if let Ok(money) = &difference {
            prop_assert_eq!(money.currency(), currency);
        }
        prop_assert_eq!(
            exact(difference.map(|money| money.amount())),
            reference(left.checked_sub(right))
        );
    }

    #[test]
    fn money_mul_is_checked(
        amount in any_decimal(),
        factor in any_decimal(),
        currency in any_currency(),
    ) {
        let product = Money::new(amount, currency).checked_mul(factor);
        if let Ok(money) = &product {
            prop_assert_eq!(money.currency(), currency);
        }
        prop_assert_eq!(
            exact(product.map(|money| money.amount())),
            reference(amount.checked_mul(factor))
        );
    }

    #[test]
    fn quantity_add_is_checked(left in any_decimal(), right in any_decimal()) {
        let sum = Quantity::new(left).checked_add(Quantity::new(right));
        prop_assert_eq!(exact(sum.map(Quantity::value)), reference(left.checked_add(right)));
    }

    #[test]
    fn notional_is_checked(
        quantity in any_decimal(),
        price in any_decimal(),
        multiplier in any_decimal(),
        currency in any_currency(),
    ) {
        let price = Price::new(price.abs()).unwrap();
        let notional = Quantity::new(quantity).notional(price, multiplier, currency);
        if let Ok(money) = &notional {
            prop_assert_eq!(money.currency(), currency);
        }
        let expected = quantity
            .abs()
            .checked_mul(price.value())
            .and_then(|value| value.checked_mul(multiplier));
        prop_assert_eq!(exact(notional.map(|money| money.amount())), reference(expected));
    }

    /// Against integer arithmetic, independent of `rust_decimal`: whenever the exact result fits
    /// in a `Decimal`, that is the result.
    #[test]
    fn small_sums_and_differences_are_exact(
        (left, left_mantissa, left_scale) in small_decimal(28),
        (right, right_mantissa, right_scale) in small_decimal(28),
        currency in any_currency(),
    ) {
        let scale = left_scale.max(right_scale);
        let left_scaled = left_mantissa * 10i128.pow(scale - left_scale);
        let right_scaled = right_mantissa * 10i128.pow(scale - right_scale);
        let (left_money, right_money) = (Money::new(left, currency), Money::new(right, currency));
        if let Some(expected) = representable(left_scaled + right_scaled, scale) {
            prop_assert_eq!(left_money.checked_add(&right_money).map(|m| m.amount()), Ok(expected));
            let quantity_sum = Quantity::new(left).checked_add(Quantity::new(right));
            prop_assert_eq!(quantity_sum.map(Quantity::value), Ok(expected));
        }
        if let Some(expected) = representable(left_scaled - right_scaled, scale) {
            prop_assert_eq!(left_money.checked_sub(&right_money).map(|m| m.amount()), Ok(expected));
        }
    }

    #[test]
    fn small_products_and_notionals_are_exact(
        (quantity, quantity_mantissa, quantity_scale) in small_decimal(9),
        (price, price_mantissa, price_scale) in small_decimal(9),
        (multiplier, multiplier_mantissa, multiplier_scale) in small_decimal(9),
        currency in any_currency(),
    ) {
        let product = Money::new(quantity, currency).checked_mul(price);
        let expected =
            representable(quantity_mantissa * price_mantissa, quantity_scale + price_scale);
        prop_assert!(expected.is_some(), "two i32 mantissas and 18 places always fit");
        prop_assert_eq!(product.map(|money| money.amount()).ok(), expected);

        let price = Price::new(price.abs()).unwrap();
        let notional = Quantity::new(quantity).notional(price, multiplier, currency);
        let expected = representable(
            quantity_mantissa.abs() * price_mantissa.abs() * multiplier_mantissa,
            quantity_scale + price_scale + multiplier_scale,
        );
        prop_assert!(expected.is_some(), "three i32 mantissas and 27 places always fit");
        prop_assert_eq!(notional.map(|money| money.amount()).ok(), expected);
    }

    #[test]
    fn different_currencies_never_combine(
        left in any_decimal(),
        right in any_decimal(),
        (left_currency, right_currency) in two_distinct_currencies(),
    ) {
        let left_money = Money::new(left, left_currency);
        let right_money = Money::new(right, right_currency);
        let mismatch =
            DecimalError::CurrencyMismatch { left: left_currency, right: right_currency };
        prop_assert_eq!(left_money.checked_add(&right_money), Err(mismatch.clone()));
        prop_assert_eq!(left_money.checked_sub(&right_money), Err(mismatch));
    }
}
