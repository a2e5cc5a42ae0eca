//! Lenient wire values: numbers that arrive as JSON numbers or as display strings, contract ids
//! that are numbers in one endpoint and strings in another, and untrusted broker text.
//!
//! The Client Portal Gateway formats many numeric fields for people: `"1,300"`, `"41.8M"`,
//! `"24.6%"`, `"C212.41"` (previous close) or `"H212.41"` (halted). These helpers accept exactly
//! those shapes and nothing looser, so a field that is really text is refused rather than read
//! as a number. Lenient parsing lives here and nowhere else in the crate (STYLE §5).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::domain::ids::ContractId;
use crate::domain::money::{Price, Quantity};

/// A numeric-looking wire value kept as text until its field says how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NumText(String);

impl NumText {
    /// The value as a plain decimal: sign, thousands separators and a `K`/`M`/`B` suffix are
    /// accepted; a price prefix or a percent sign is not.
    pub(crate) fn decimal(&self) -> Option<Decimal> {
        let parsed = parse_number(&self.0)?;
        (!parsed.percent && parsed.prefix.is_none()).then_some(parsed.value)
    }

    /// A non-negative price; a `C` (previous close) or `H` (halted) prefix is stripped.
    pub(crate) fn price(&self) -> Option<Price> {
        let parsed = parse_number(&self.0)?;
        if parsed.percent || parsed.scaled {
            return None;
        }
        Price::new(parsed.value).ok()
    }

    /// A signed quantity; thousands separators and `K`/`M`/`B` suffixes are accepted.
    pub(crate) fn quantity(&self) -> Option<Quantity> {
        self.decimal().map(Quantity::new)
    }

    /// A percentage as a fraction: `"24.6%"` and `"24.6"` both read as 0.246, because the
    /// gateway sends percent fields with or without the sign.
    pub(crate) fn percent_as_fraction(&self) -> Option<Decimal> {
        let parsed = parse_number(&self.0)?;
        if parsed.prefix.is_some() || parsed.scaled {
            return None;
        }
        parsed.value.checked_div(Decimal::ONE_HUNDRED)
    }

    /// The raw text, for tests.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for NumText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumTextVisitor)
    }
}

struct NumTextVisitor;

impl Visitor<'_> for NumTextVisitor {
    type Value = NumText;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a number or a numeric string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<NumText, E> {
        if value.len() > 64 {
            return Err(E::custom("numeric string too long"));
        }
        Ok(NumText(value.to_owned()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<NumText, E> {
        Ok(NumText(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<NumText, E> {
        Ok(NumText(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<NumText, E> {
        if !value.is_finite() {
            return Err(E::custom("number is not finite"));
        }
        // Rust prints the shortest text that reads back as the same f64, without an exponent.
        Ok(NumText(value.to_string()))
    }
}

/// A contract id sent as a JSON number or as a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireConid(pub(crate) u64);

impl WireConid {
    /// The validated id; zero is refused.
    pub(crate) fn contract_id(self) -> Option<ContractId> {
        ContractId::new(self.0).ok()
    }
}

impl<'de> Deserialize<'de> for WireConid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WireConidVisitor)
    }
}

struct WireConidVisitor;

impl Visitor<'_> for WireConidVisitor {
    type Value = WireConid;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a contract id as a number or a string of digits")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<WireConid, E> {
        Ok(WireConid(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<WireConid, E> {
        u64::try_from(value)
            .map(WireConid)
            .map_err(|_| E::custom("negative contract id"))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<WireConid, E> {
        // Integral floats (`265598.0`) appear in some recorded responses.
        if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < 1e18 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return Ok(WireConid(value as u64));
        }
        Err(E::custom("contract id is not a non-negative integer"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<WireConid, E> {
        let trimmed = value.trim();
        ContractId::parse(trimmed)
            .map(|id| WireConid(id.value()))
            .map_err(|_| E::custom("contract id is not a positive integer"))
    }
}

/// What [`parse_number`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ParsedNumber {
    value: Decimal,
    /// `C` (previous close) or `H` (halted).
    prefix: Option<char>,
    /// A `%` followed the number (the value is not divided here).
    percent: bool,
    /// A `K`, `M` or `B` suffix scaled the value.
    scaled: bool,
}

/// Reads `[C|H][+|-]digits[,ddd…][.digits][K|M|B|%]`; anything else is `None`.
fn parse_number(raw: &str) -> Option<ParsedNumber> {
    let mut text = raw.trim();
    let mut prefix = None;
    if let Some(rest) = text.strip_prefix('C') {
        prefix = Some('C');
        text = rest;
    } else if let Some(rest) = text.strip_prefix('H') {
        prefix = Some('H');
        text = rest;
    }
    let mut percent = false;
    let mut multiplier = Decimal::ONE;
    if let Some(rest) = text.strip_suffix('%') {
        percent = true;
        text = rest;
    } else if let Some(rest) = text.strip_suffix(['K', 'k']) {
        multiplier = Decimal::ONE_THOUSAND;
        text = rest;
    } else if let Some(rest) = text.strip_suffix('M') {
        multiplier = Decimal::from(1_000_000);
        text = rest;
    } else if let Some(rest) = text.strip_suffix('B') {
        multiplier = Decimal::from(1_000_000_000);
        text = rest;
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits = strip_thousands_separators(whole)?;
    if let Some(fraction) = fraction
        && (fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut normalized = String::with_capacity(unsigned.len() + 1);
    if negative {
        normalized.push('-');
    }
    normalized.push_str(&digits);
    if let Some(fraction) = fraction {
        normalized.push('.');
        normalized.push_str(fraction);
    }
    let value = Decimal::from_str_exact(&normalized)
        .or_else(|_| Decimal::from_str(&normalized))
        .ok()?
        .checked_mul(multiplier)?;
    Some(ParsedNumber {
        value,
        prefix,
        percent,
        scaled: multiplier != Decimal::ONE,
    })
}

/// `"1,300"` → `"1300"`; groups after the first must have exactly three digits.
fn strip_thousands_separators(whole: &str) -> Option<String> {
    if whole.is_empty() {
        return None;
    }
    let mut groups = whole.split(',');
    let first = groups.next()?;
    let is_digits = |group: &str| !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit());
    if !is_digits(first) {
        return None;
    }
    let mut digits = first.to_owned();
    for group in groups {
        if group.len() != 3 || !is_digits(group) || first.len() > 3 {
            return None;
        }
        digits.push_str(group);
    }
    Some(digits)
}

/// Broker-supplied text: control and invisible formatting characters dropped, whitespace
/// collapsed, at most `max_chars` characters kept (`domain::broker_text`).
pub(crate) fn clean_text(raw: &str, max_chars: usize) -> String {
    crate::domain::broker_text::clean(raw, max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(raw: &str) -> NumText {
        NumText(raw.to_owned())
    }

    fn dec(raw: &str) -> Decimal {
        Decimal::from_str(raw).unwrap()
    }

    #[test]
    fn numbers_arrive_as_numbers_or_strings() {
        let parsed: Vec<NumText> =
            serde_json::from_str(r#"[1300, "1,300", 212.4100036, "-0.0876", "+1.27"]"#).unwrap();
        assert_eq!(parsed[0].decimal(), Some(dec("1300")));
        assert_eq!(parsed[1].decimal(), Some(dec("1300")));
        assert_eq!(parsed[2].as_str(), "212.4100036");
        assert_eq!(parsed[3].decimal(), Some(dec("-0.0876")));
        assert_eq!(parsed[4].decimal(), Some(dec("1.27")));
        assert!(serde_json::from_str::<NumText>("true").is_err());
    }

    #[test]
    fn suffixes_scale_and_separators_group() {
        assert_eq!(num("12.5K").quantity().unwrap().value(), dec("12500.0"));
        assert_eq!(num("41.8M").decimal(), Some(dec("41800000.0")));
        assert_eq!(num("1,234,567.89").decimal(), Some(dec("1234567.89")));
        for bad in [
            "1,30", "12,3456", "1.2.3", "abc", "", "1 300", "1e3", ".5", "5.", "--1",
        ] {
            assert_eq!(num(bad).decimal(), None, "{bad:?}");
        }
    }

    #[test]
    fn prices_strip_close_and_halt_prefixes() {
        assert_eq!(num("C189.20").price().unwrap().value(), dec("189.20"));
        assert_eq!(num("H212.41").price().unwrap().value(), dec("212.41"));
        assert_eq!(num("212.41").price().unwrap().value(), dec("212.41"));
        assert_eq!(num("-1").price(), None, "prices are non-negative");
        assert_eq!(num("12K").price(), None, "a scaled value is not a price");
        assert_eq!(
            num("C189.20").decimal(),
            None,
            "a prefixed value is not a plain number"
        );
    }

    #[test]
    fn percents_become_fractions_with_or_without_the_sign() {
        assert_eq!(num("24.6%").percent_as_fraction(), Some(dec("0.246")));
        assert_eq!(num("24.6").percent_as_fraction(), Some(dec("0.246")));
        assert_eq!(num("24.6%").decimal(), None);
    }

    #[test]
    fn conids_are_numbers_or_digit_strings() {
        let parsed: Vec<WireConid> =
            serde_json::from_str(r#"[265598, "265598", 265598.0]"#).unwrap();
        assert!(parsed.iter().all(|conid| conid.0 == 265_598));
        for bad in [r#""265598/../x""#, "-1", r#""""#, "1.5"] {
            assert!(serde_json::from_str::<WireConid>(bad).is_err(), "{bad}");
        }
        assert_eq!(WireConid(0).contract_id(), None);
    }

    #[test]
    fn text_is_bounded_and_stripped_of_controls() {
        assert_eq!(clean_text("APPLE\u{0}\u{1b}[31m INC", 64), "APPLE[31m INC");
        assert_eq!(clean_text(&"x".repeat(500), 10).len(), 10);
    }
}
