//! Identifiers: each parser accepts exactly its documented alphabet, and a masked account id
//! never shows more than its last four digits.

use ibkr_agent_gateway::domain::ids::{AccountId, ContractId, IdempotencyKey};
use proptest::prelude::*;
use regex::Regex;

use crate::strategies::hostile_text;

const ACCOUNT_ID_SHAPE: &str = r"\A[A-Z]{1,3}[0-9]{3,12}\z";
const IDEMPOTENCY_KEY_SHAPE: &str = r"\A[A-Za-z0-9._-]{1,64}\z";
const CONTRACT_ID_SHAPE: &str = r"\A[0-9]{1,18}\z";

fn valid_account_id() -> impl Strategy<Value = String> {
    "[A-Z]{1,3}[0-9]{3,12}"
}

proptest! {
    #[test]
    fn account_ids_accept_exactly_their_shape(
        raw in prop_oneof![hostile_text(), valid_account_id(), "[A-Z]{0,4}[0-9]{0,14}"],
    ) {
        let shape = Regex::new(ACCOUNT_ID_SHAPE).unwrap();
        let parsed = AccountId::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), shape.is_match(&raw), "input {:?}", raw);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.expose(), raw.as_str());
        }
    }

    #[test]
    fn masked_account_ids_show_at_most_the_last_four_digits(raw in valid_account_id()) {
        let id = AccountId::parse(&raw).unwrap();
        let letters: String = raw.chars().take_while(char::is_ascii_uppercase).collect();
        let digits = &raw[letters.len()..];
        let last_four = &digits[digits.len().saturating_sub(4)..];
        let masked = id.masked();
        let debug = format!("{id:?}");

        let shown_digits: String = masked.chars().filter(char::is_ascii_digit).collect();
        prop_assert_eq!(shown_digits.as_str(), last_four, "masked {:?}", masked);
        prop_assert!(masked.starts_with(&letters), "masked {:?}", masked);
        prop_assert!(masked.ends_with(last_four), "masked {:?}", masked);
        if digits.len() > 4 {
            prop_assert!(!masked.contains(digits), "masked {:?} shows the digit run", masked);
            prop_assert!(!debug.contains(digits), "debug {:?} shows the digit run", debug);
        }
        prop_assert!(!debug.contains(raw.as_str()), "debug {:?} shows the id", debug);
    }

    #[test]
    fn idempotency_keys_accept_exactly_their_alphabet(
        raw in prop_oneof![hostile_text(), "[A-Za-z0-9._-]{1,64}", "[A-Za-z0-9._-]{60,70}"],
    ) {
        let alphabet = Regex::new(IDEMPOTENCY_KEY_SHAPE).unwrap();
        let parsed = IdempotencyKey::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), alphabet.is_match(&raw), "input {:?}", raw);
        if let Ok(key) = parsed {
            prop_assert_eq!(key.as_str(), raw.as_str());
            prop_assert_eq!(key.to_string(), raw);
        }
    }

    #[test]
    fn contract_ids_accept_exactly_positive_integers(
        raw in prop_oneof![hostile_text(), "[0-9]{1,20}", "0{1,18}"],
    ) {
        let shape = Regex::new(CONTRACT_ID_SHAPE).unwrap();
        let expected = shape.is_match(&raw) && raw.bytes().any(|b| b != b'0');
        let parsed = ContractId::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), expected, "input {:?}", raw);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.value(), raw.parse::<u64>().unwrap());
        }
    }

    #[test]
    fn contract_ids_round_trip_through_text(value in 1u64..=999_999_999_999_999_999) {
        let id = ContractId::parse(&value.to_string()).unwrap();
        prop_assert_eq!(id.value(), value);
        prop_assert_eq!(ContractId::new(value), Ok(id));
        prop_assert_eq!(id.to_string(), value.to_string());
    }
}
