//! Every parser takes any text without panicking, and whatever it accepts is consistent with
//! its canonical spelling.

use ibkr_agent_gateway::domain::ids::{AccountId, ContractId, IdempotencyKey};
use ibkr_agent_gateway::domain::instrument::{AssetClass, ContractQuery};
use ibkr_agent_gateway::domain::market_data::{BarSize, HistoryPeriod};
use ibkr_agent_gateway::domain::money::{Currency, Price, parse_exact_decimal};
use ibkr_agent_gateway::domain::order::OrderType;
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use proptest::prelude::*;

use crate::strategies::hostile_text;

proptest! {
    /// A panic in any parser fails the case; the checks below pin what acceptance means.
    #[test]
    fn parsers_never_panic_on_hostile_text(raw in hostile_text()) {
        let _ = parse_exact_decimal(&raw);
        let _ = AccountId::parse(&raw);
        let _ = ContractId::parse(&raw);
        let _ = IdempotencyKey::parse(&raw);

        if let Ok(price) = Price::parse(&raw) {
            prop_assert!(!price.value().is_sign_negative() || price.value().is_zero());
        }
        if let Ok(currency) = Currency::parse(&raw) {
            prop_assert_eq!(currency.as_str(), raw.as_str());
            prop_assert!(raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase()));
        }
        if let Ok(scope) = Scope::parse(&raw) {
            prop_assert_eq!(scope.as_str(), raw.as_str());
        }
        if let Ok(set) = ScopeSet::parse(&raw) {
            prop_assert_eq!(ScopeSet::parse(&set.to_string()), Ok(set.clone()));
            prop_assert!(set.len() <= Scope::ALL.len());
        }
        if let Ok(class) = AssetClass::parse(&raw) {
            let upper = raw.trim().to_ascii_uppercase();
            prop_assert!(class.code() == upper || (upper == "FX" && class == AssetClass::Forex));
        }
        if let Ok(order_type) = OrderType::parse(&raw) {
            prop_assert!(order_type.code().eq_ignore_ascii_case(raw.trim()));
        }
        if let Ok(period) = HistoryPeriod::parse(&raw) {
            prop_assert_eq!(HistoryPeriod::parse(&period.to_string()), Ok(period));
            prop_assert!(period.duration() > chrono::Duration::zero());
        }
        if let Ok(size) = BarSize::parse(&raw) {
            prop_assert_eq!(size.as_str(), raw.trim());
        }
        if let Ok(query) = ContractQuery::new(&raw) {
            prop_assert_eq!(query.text(), raw.trim());
            prop_assert!((1..=64).contains(&query.text().chars().count()));
            prop_assert!(!query.text().chars().any(char::is_control));
            let _ = query.with_exchange(&raw);
        }
    }
}
