//! Exact decimals: a value written out reads back as the same value, and parsing never rounds.

use ibkr_agent_gateway::domain::money::{
    DecimalError, Money, Price, Quantity, parse_exact_decimal,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::strategies::{any_currency, any_decimal, hostile_text};

/// Fails the case unless both decimals have the same sign, mantissa and scale (`==` on
/// `Decimal` ignores the scale, so `1.0 == 1.00`).
fn assert_identical(actual: Decimal, expected: Decimal) -> Result<(), TestCaseError> {
    prop_assert_eq!(actual.mantissa(), expected.mantissa());
    prop_assert_eq!(actual.scale(), expected.scale());
    Ok(())
}

/// The mathematical value of decimal text, in a canonical spelling (`-12.5`, `0`), read
/// without `rust_decimal` so it can judge it. `None` when the text is not a plain decimal:
/// an optional sign, at least one digit, and optionally a point followed by at least one digit.
fn canonical_value(text: &str) -> Option<String> {
    let text = text.trim().to_owned();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text.as_str()),
    };
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let has_point = unsigned.contains('.');
    if integer.is_empty()
        || (has_point && fraction.is_empty())
        || !all_digits(integer)
        || !all_digits(fraction)
    {
        return None;
    }
    let integer = integer.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    if integer.is_empty() && fraction.is_empty() {
        return Some("0".to_owned());
    }
    let sign = if negative { "-" } else { "" };
    let integer = if integer.is_empty() { "0" } else { integer };
    Some(if fraction.is_empty() {
        format!("{sign}{integer}")
    } else {
        format!("{sign}{integer}.{fraction}")
    })
}

/// Plain decimal text with its parts: optional sign, up to 40 integer and 40 fraction digits,
/// and optional surrounding blanks. Many of these cannot be held in 96 bits.
fn decimal_text() -> impl Strategy<Value = (String, String, String)> {
    (
        prop::sample::select(vec!["", "+", "-"]),
        prop_oneof!["[0-9]{0,40}", "0{0,40}[1-9][0-9]{0,5}", "[0-9]{0,3}"],
        prop::option::of(prop_oneof![
            "[0-9]{0,40}",
            "[0-9]{0,4}0{0,30}",
            "0{20,30}[1-9]"
        ]),
        prop::sample::select(vec!["", " ", "\t", " \n"]),
    )
        .prop_map(|(sign, integer, fraction, blank)| {
            let text = match &fraction {
                Some(fraction) => format!("{blank}{sign}{integer}.{fraction}{blank}"),
                None => format!("{blank}{sign}{integer}{blank}"),
            };
            (text, integer, fraction.unwrap_or_default())
        })
}

proptest! {
    #[test]
    fn quantities_round_trip_through_text(value in any_decimal()) {
        let text = value.to_string();
        let quantity = Quantity::parse(&text);
        prop_assert!(quantity.is_ok(), "refused {text}: {quantity:?}");
        let quantity = quantity.unwrap();
        assert_identical(quantity.value(), value)?;
        prop_assert_eq!(quantity.to_string(), text);
    }

    #[test]
    fn prices_round_trip_and_refuse_negatives(value in any_decimal()) {
        let text = value.to_string();
        let price = Price::parse(&text);
        if value.is_sign_negative() && !value.is_zero() {
            prop_assert_eq!(price, Err(DecimalError::Negative));
        } else {
            prop_assert!(price.is_ok(), "refused {text}: {price:?}");
            let price = price.unwrap();
            assert_identical(price.value(), value)?;
            prop_assert_eq!(price.to_string(), text);
        }
    }

    #[test]
    fn money_keeps_amount_and_currency(value in any_decimal(), currency in any_currency()) {
        let text = value.to_string();
        let money = Money::parse(&text, currency);
        prop_assert!(money.is_ok(), "refused {text}: {money:?}");
        let money = money.unwrap();
        assert_identical(money.amount(), value)?;
        prop_assert_eq!(money.currency(), currency);
        prop_assert_eq!(money.to_string(), format!("{text} {currency}"));
    }

    /// Accepted text keeps its value and its written precision; text that fits in a `Decimal`
    /// is accepted; nothing is ever rounded to make it fit.
    #[test]
    fn exact_parsing_never_rounds((text, integer, fraction) in decimal_text()) {
        let parsed = parse_exact_decimal(&text);
        let expected = canonical_value(&text);
        let significant_integer = integer.trim_start_matches('0');
        let fits = expected.is_some()
            && fraction.len() <= 28
            && significant_integer.len() + fraction.len() <= 28
            && text.trim().len() <= 64;
        match parsed {
            Ok(value) => {
                prop_assert_eq!(canonical_value(&value.to_string()), expected, "text {:?}", text);
                prop_assert_eq!(value.scale() as usize, fraction.len(), "text {:?}", text);
                let again = parse_exact_decimal(&value.to_string());
                prop_assert!(again.is_ok());
                assert_identical(again.unwrap(), value)?;
            }
            Err(error) => {
                prop_assert_eq!(error, DecimalError::Invalid);
                prop_assert!(!fits, "refused {:?}, which fits in a decimal", text);
            }
        }
    }

    /// Whatever text is accepted, from any source, means exactly the number it spells.
    #[test]
    fn accepted_text_of_any_shape_is_read_exactly(text in hostile_text()) {
        if let Ok(value) = parse_exact_decimal(&text) {
            let expected = canonical_value(&text);
            prop_assert!(expected.is_some(), "accepted {text:?}, which is not a plain decimal");
            prop_assert_eq!(canonical_value(&value.to_string()), expected);
        }
    }

    #[test]
    fn exponent_notation_is_refused(text in "[+-]?[0-9]{1,5}(\\.[0-9]{1,5})?[eE][+-]?[0-9]{1,3}") {
        prop_assert_eq!(parse_exact_decimal(&text), Err(DecimalError::Invalid));
    }
}

#[test]
fn the_reference_reader_agrees_with_known_spellings() {
    let cases = [
        ("-0.500", Some("-0.5")),
        ("+007", Some("7")),
        ("-0", Some("0")),
        (".5", None),
        ("5.", None),
        ("1_000", None),
        (".", None),
        ("1e3", None),
        ("--1", None),
    ];
    for (text, expected) in cases {
        assert_eq!(canonical_value(text).as_deref(), expected, "{text:?}");
    }
}
