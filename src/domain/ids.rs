//! Identifier newtypes with validating constructors.
//!
//! Every identifier that crosses a boundary is parsed once, here, so that a use case can never
//! be called with a string that would break a URL path, a SQL statement or a broker order tag.

use std::fmt;

use thiserror::Error;

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {kind}: {reason}")]
pub struct ParseIdError {
    kind: &'static str,
    reason: &'static str,
}

impl ParseIdError {
    fn new(kind: &'static str, reason: &'static str) -> Self {
        Self { kind, reason }
    }

    /// The kind of identifier that was refused, e.g. `account id`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// A short, fixed explanation that never echoes the refused input.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// Checks a token made of `[A-Za-z0-9]` plus the given extra characters, 1 to `max` long.
fn check_token(
    kind: &'static str,
    raw: &str,
    max: usize,
    extra: &[char],
) -> Result<(), ParseIdError> {
    if raw.is_empty() {
        return Err(ParseIdError::new(kind, "must not be empty"));
    }
    if raw.len() > max {
        return Err(ParseIdError::new(kind, "is too long"));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    {
        return Err(ParseIdError::new(
            kind,
            "contains a character that is not allowed",
        ));
    }
    Ok(())
}

/// An Interactive Brokers account id such as `DU1234567` or `U7654321`.
///
/// The raw id is sensitive: outputs name accounts by reference and masked display instead
/// (see `app::account_directory`). `Debug` prints the masked form so a stray `{:?}` cannot leak it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Parses `^[A-Z]{1,3}[0-9]{3,12}$`, the shape of IBKR individual, paper and advisor ids.
    ///
    /// # Errors
    /// Returns [`ParseIdError`] when the input has another shape.
    pub fn parse(raw: &str) -> Result<Self, ParseIdError> {
        const KIND: &str = "account id";
        let letters = raw.chars().take_while(|c| c.is_ascii_uppercase()).count();
        let digits = &raw[letters..];
        if !(1..=3).contains(&letters) {
            return Err(ParseIdError::new(
                KIND,
                "must start with 1 to 3 capital letters",
            ));
        }
        if !(3..=12).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(ParseIdError::new(KIND, "must end with 3 to 12 digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The raw id. Only adapters that talk to the broker and the keyed hash may call this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the id has a paper-account prefix (`DU` or `DF`).
    pub fn is_paper_shaped(&self) -> bool {
        self.0.starts_with("DU") || self.0.starts_with("DF")
    }

    /// A masked form such as `DU•••4567`: the letter prefix and the last four digits.
    pub fn masked(&self) -> String {
        let letters: String = self
            .0
            .chars()
            .take_while(char::is_ascii_uppercase)
            .collect();
        let digits = &self.0[letters.len()..];
        let tail_start = digits.len().saturating_sub(4);
        format!("{letters}\u{2022}\u{2022}\u{2022}{}", &digits[tail_start..])
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.masked())
    }
}

/// An IBKR contract id (`conid`): a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContractId(u64);

impl ContractId {
    /// Wraps a positive integer.
    ///
    /// # Errors
    /// Returns [`ParseIdError`] for zero.
    pub fn new(value: u64) -> Result<Self, ParseIdError> {
        if value == 0 {
            return Err(ParseIdError::new(
                "contract id",
                "must be a positive integer",
            ));
        }
        Ok(Self(value))
    }

    /// Parses a decimal integer of at most 18 digits.
    ///
    /// # Errors
    /// Returns [`ParseIdError`] for anything that is not a positive integer.
    pub fn parse(raw: &str) -> Result<Self, ParseIdError> {
        const KIND: &str = "contract id";
        if raw.is_empty() || raw.len() > 18 || !raw.chars().all(|c| c.is_ascii_digit()) {
            return Err(ParseIdError::new(KIND, "must be a positive integer"));
        }
        let value = raw
            .parse::<u64>()
            .map_err(|_| ParseIdError::new(KIND, "must be a positive integer"))?;
        Self::new(value)
    }

    /// The numeric value.
    pub fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ContractId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Declares a string token newtype with a validating `parse`, `as_str` and `Display`.
macro_rules! token_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $max:literal, $extra:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Parses a ", $kind, ".")]
            ///
            /// # Errors
            /// Returns [`ParseIdError`] when the input is empty, too long or has a character
            /// outside the allowed set.
            pub fn parse(raw: &str) -> Result<Self, ParseIdError> {
                check_token($kind, raw, $max, $extra)?;
                Ok(Self(raw.to_owned()))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token_id!(
    /// An order id assigned by the broker.
    BrokerOrderId, "broker order id", 64, &['-', '_']
);
token_id!(
    /// The id of a stored order preview.
    PreviewId, "preview id", 64, &['-', '_']
);
token_id!(
    /// The id of a stored approval.
    ApprovalId, "approval id", 64, &['-', '_']
);
token_id!(
    /// A caller-chosen idempotency key; it is sent to IBKR as `cOID`, so its alphabet is narrow.
    IdempotencyKey, "idempotency key", 64, &['.', '_', '-']
);
token_id!(
    /// The id of one request through the gateway, for correlation.
    RequestId, "request id", 64, &['-', '_']
);
token_id!(
    /// An execution (fill) id assigned by the broker.
    ExecutionId, "execution id", 64, &['-', '_', '.']
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_accept_ibkr_shapes() {
        for raw in ["DU1234567", "U7654321", "DF123456", "F1234567"] {
            assert!(AccountId::parse(raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn account_ids_refuse_other_shapes() {
        for raw in [
            "",
            "du1234567",
            "1234567",
            "DU12",
            "ABCD1234",
            "DU1234567/../x",
            "DU 1234567",
            "DU1234567890123",
        ] {
            assert!(AccountId::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn account_ids_mask_all_but_prefix_and_last_four() {
        let id = AccountId::parse("DU1234567").unwrap();
        assert_eq!(id.masked(), "DU\u{2022}\u{2022}\u{2022}4567");
        assert!(!format!("{id:?}").contains("1234567"));
        assert!(id.is_paper_shaped());
        assert!(!AccountId::parse("U7654321").unwrap().is_paper_shaped());
    }

    #[test]
    fn contract_ids_are_positive_integers() {
        assert_eq!(ContractId::parse("265598").unwrap().value(), 265_598);
        for raw in ["0", "-1", "1.5", "", "abc", "1234567890123456789"] {
            assert!(ContractId::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn idempotency_keys_follow_the_coid_alphabet() {
        assert!(IdempotencyKey::parse("order-1.retry_2").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(64)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(65)).is_err());
        assert!(IdempotencyKey::parse("a/b").is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(PreviewId::parse("prv.1").is_err());
    }

    #[test]
    fn errors_never_echo_the_input() {
        let error = AccountId::parse("SECRET-VALUE").unwrap_err();
        assert!(!error.to_string().contains("SECRET"));
    }
}
