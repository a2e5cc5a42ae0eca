//! The stored form of the broker's what-if figures: a JSON object with decimals as strings.
//!
//! The domain's `WhatIf` has no serde derives (wire types stay at the edges), so this private
//! DTO is the one place its JSON shape is defined.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::money::{Currency, Money};
use crate::domain::preview::WhatIf;

/// One stored what-if answer.
#[derive(Serialize, Deserialize)]
struct WhatIfJson {
    commission: Option<MoneyJson>,
    #[serde(with = "rust_decimal::serde::str_option")]
    initial_margin_change: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    initial_margin_after: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    maintenance_margin_change: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    maintenance_margin_after: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    equity_after: Option<Decimal>,
    warnings: Vec<String>,
}

/// An amount and its currency code.
#[derive(Serialize, Deserialize)]
struct MoneyJson {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    currency: String,
}

/// The JSON text of `what_if`, or `None` if it cannot be encoded (it always can: every field
/// is a string, a decimal or a list of strings).
pub(super) fn to_json(what_if: &WhatIf) -> Option<String> {
    let json = WhatIfJson {
        commission: what_if.commission.map(|money| MoneyJson {
            amount: money.amount(),
            currency: money.currency().as_str().to_owned(),
        }),
        initial_margin_change: what_if.initial_margin_change,
        initial_margin_after: what_if.initial_margin_after,
        maintenance_margin_change: what_if.maintenance_margin_change,
        maintenance_margin_after: what_if.maintenance_margin_after,
        equity_after: what_if.equity_after,
        warnings: what_if.warnings.clone(),
    };
    serde_json::to_string(&json).ok()
}

/// Parses what [`to_json`] wrote; `None` for anything else.
pub(super) fn from_json(text: &str) -> Option<WhatIf> {
    let json: WhatIfJson = serde_json::from_str(text).ok()?;
    let commission = match json.commission {
        None => None,
        Some(money) => Some(Money::new(
            money.amount,
            Currency::parse(&money.currency).ok()?,
        )),
    };
    Some(WhatIf {
        commission,
        initial_margin_change: json.initial_margin_change,
        initial_margin_after: json.initial_margin_after,
        maintenance_margin_change: json.maintenance_margin_change,
        maintenance_margin_after: json.maintenance_margin_after,
        equity_after: json.equity_after,
        warnings: json.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_round_trip_exactly() {
        let usd = Currency::parse("USD").unwrap();
        let full = WhatIf {
            commission: Some(Money::parse("1.050", usd).unwrap()),
            initial_margin_change: Some(Decimal::new(-12_345, 2)),
            initial_margin_after: Some(Decimal::new(1, 0)),
            maintenance_margin_change: Some(Decimal::new(7, 1)),
            maintenance_margin_after: Some(Decimal::new(100_000, 3)),
            equity_after: Some(Decimal::new(99_999_999, 4)),
            warnings: vec!["line one\nline \"two\"".to_owned(), "ünïcode".to_owned()],
        };
        for what_if in [full, WhatIf::default()] {
            let text = to_json(&what_if).unwrap();
            let back = from_json(&text).unwrap();
            assert_eq!(back, what_if);
            // Same scale too, not only the same value.
            assert_eq!(to_json(&back).unwrap(), text);
        }
    }

    #[test]
    fn decimals_are_strings_and_garbage_is_refused() {
        let what_if = WhatIf {
            equity_after: Some(Decimal::new(15, 1)),
            ..WhatIf::default()
        };
        assert!(
            to_json(&what_if)
                .unwrap()
                .contains(r#""equity_after":"1.5""#)
        );
        assert_eq!(from_json("not json"), None);
        assert_eq!(from_json("{}"), None);
    }
}
