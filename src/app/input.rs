//! Turning caller-supplied strings into validated commands, shared by every front end.
//!
//! Each function names the input field in its error, and no error echoes the refused text.

use chrono::{DateTime, NaiveDate, Utc};

use crate::app::error::GatewayError;
use crate::domain::ids::ContractId;
use crate::domain::instrument::{AssetClass, ContractQuery};
use crate::domain::market_data::{BarSize, BarsRequest, HistoryPeriod};
use crate::domain::money::Currency;

/// A contract id from text.
///
/// # Errors
/// [`GatewayError::InvalidInput`] for anything but a positive integer.
pub fn contract_id(raw: &str) -> Result<ContractId, GatewayError> {
    ContractId::parse(raw.trim())
        .map_err(|error| GatewayError::invalid_input("contract_id", error.reason()))
}

/// A contract query from its text and optional filters.
///
/// # Errors
/// [`GatewayError::InvalidInput`] naming the bad field.
pub fn contract_query(
    text: &str,
    asset_class: Option<&str>,
    currency: Option<&str>,
    exchange: Option<&str>,
) -> Result<ContractQuery, GatewayError> {
    let mut query =
        ContractQuery::new(text).map_err(|error| GatewayError::invalid_input("query", error))?;
    if let Some(raw) = asset_class {
        query.asset_class = Some(
            AssetClass::parse(raw)
                .map_err(|error| GatewayError::invalid_input("asset_class", error))?,
        );
    }
    if let Some(raw) = currency {
        query.currency = Some(
            Currency::parse(&raw.trim().to_ascii_uppercase())
                .map_err(|error| GatewayError::invalid_input("currency", error))?,
        );
    }
    if let Some(raw) = exchange {
        query = query
            .with_exchange(raw.trim())
            .map_err(|error| GatewayError::invalid_input("exchange", error))?;
    }
    Ok(query)
}

/// A history request from its parts.
///
/// # Errors
/// [`GatewayError::InvalidInput`] naming the bad field.
pub fn bars_request(contract: &str, period: &str, bar: &str) -> Result<BarsRequest, GatewayError> {
    let contract_id = contract_id(contract)?;
    let period = HistoryPeriod::parse(period)
        .map_err(|error| GatewayError::invalid_input("period", error))?;
    let bar_size =
        BarSize::parse(bar).map_err(|error| GatewayError::invalid_input("bar", error))?;
    BarsRequest::new(contract_id, period, bar_size)
        .map_err(|error| GatewayError::invalid_input("period", error))
}

/// A point in time: RFC 3339 (`2026-11-27T09:30:00Z`) or a UTC date (`2026-11-27`).
///
/// # Errors
/// [`GatewayError::InvalidInput`] for other text.
pub fn timestamp(field: &'static str, raw: &str) -> Result<DateTime<Utc>, GatewayError> {
    let raw = raw.trim();
    if let Ok(value) = DateTime::parse_from_rfc3339(raw) {
        return Ok(value.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|value| value.and_utc())
        .ok_or_else(|| {
            GatewayError::invalid_input(field, "must be an RFC 3339 time or a YYYY-MM-DD date")
        })
}

/// How a caller names an account: an `account_ref`, an operator alias or a raw account id.
/// Matching happens against the accounts the broker reports (`app::account_directory`).
#[derive(Clone, PartialEq, Eq)]
pub struct AccountSelector(String);

impl AccountSelector {
    /// Accepts 1 to 64 characters without control characters.
    ///
    /// # Errors
    /// [`GatewayError::InvalidInput`] for empty, oversize or control-character text.
    pub fn parse(raw: &str) -> Result<Self, GatewayError> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 64 || raw.chars().any(char::is_control) {
            return Err(GatewayError::invalid_input(
                "account",
                "must be an account_ref, an alias or an account id (1 to 64 characters)",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The selector text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccountSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The selector may be a raw account id.
        f.write_str("AccountSelector(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_accept_rfc3339_and_dates() {
        assert_eq!(
            timestamp("since", "2026-11-27").unwrap().to_rfc3339(),
            "2026-11-27T00:00:00+00:00"
        );
        assert_eq!(
            timestamp("since", "2026-11-27T10:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-27T09:00:00+00:00"
        );
        assert!(timestamp("since", "yesterday").is_err());
    }

    #[test]
    fn query_filters_are_validated_by_field() {
        let query = contract_query("vod", Some("stk"), Some("gbp"), Some("lse")).unwrap();
        assert_eq!(query.exchange.as_deref(), Some("LSE"));
        let error = contract_query("vod", Some("shares"), None, None).unwrap_err();
        assert!(matches!(
            error,
            GatewayError::InvalidInput {
                field: "asset_class",
                ..
            }
        ));
        let error = contract_query("vod", None, Some("pounds"), None).unwrap_err();
        assert!(matches!(
            error,
            GatewayError::InvalidInput {
                field: "currency",
                ..
            }
        ));
    }

    #[test]
    fn bar_requests_name_the_bad_field() {
        assert!(bars_request("265598", "1d", "1h").is_ok());
        assert!(matches!(
            bars_request("x", "1d", "1h"),
            Err(GatewayError::InvalidInput {
                field: "contract_id",
                ..
            })
        ));
        assert!(matches!(
            bars_request("1", "1d", "2h"),
            Err(GatewayError::InvalidInput { field: "bar", .. })
        ));
        assert!(matches!(
            bars_request("1", "1y", "1min"),
            Err(GatewayError::InvalidInput {
                field: "period",
                ..
            })
        ));
    }
}
