//! Wire types of the Client Portal Gateway and their conversion to validated domain values.
//!
//! Every struct here accepts what the gateway is documented to send and more: unknown fields
//! are ignored, numbers may be strings, optional fields may be `null`. Every conversion
//! (`try_into_domain` and friends) is strict: a value the domain cannot hold is an
//! `InvalidResponse`, never a guess. Nothing is passed on as untyped JSON.

pub(crate) mod accounts;
pub(crate) mod contracts;
pub(crate) mod market;
pub(crate) mod order_write;
pub(crate) mod orders;
pub(crate) mod positions;
pub(crate) mod wire_order;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::errors::GatewayFault;
use super::lenient::NumText;

/// Deserializes a JSON value into a wire type; a shape mismatch is an invalid response.
pub(crate) fn parse<T: DeserializeOwned>(
    value: Value,
    what: &'static str,
) -> Result<T, GatewayFault> {
    serde_json::from_value(value).map_err(|_| {
        GatewayFault::Broker(crate::ports::broker_reader::BrokerError::InvalidResponse {
            detail: format!("the gateway's {what} answer has an unexpected shape"),
        })
    })
}

/// Epoch milliseconds (number or digit string) as a UTC time.
pub(crate) fn epoch_millis(raw: &NumText) -> Option<DateTime<Utc>> {
    let value = raw.decimal()?;
    if !value.fract().is_zero() {
        return None;
    }
    let millis: i64 = value.try_into().ok()?;
    DateTime::from_timestamp_millis(millis)
}

/// `YYYYMMDD` as a date.
pub(crate) fn yyyymmdd(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    if raw.len() != 8 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y%m%d").ok()
}

/// `YYYYMMDD-hh:mm:ss` in UTC.
pub(crate) fn utc_date_time(raw: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(raw.trim(), "%Y%m%d-%H:%M:%S")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_their_documented_shapes() {
        let millis: NumText = serde_json::from_str("1752071887000").unwrap();
        assert_eq!(
            epoch_millis(&millis).unwrap().to_rfc3339(),
            "2025-07-09T14:38:07+00:00"
        );
        let text: NumText = serde_json::from_str(r#""1752071887000""#).unwrap();
        assert_eq!(epoch_millis(&text), epoch_millis(&millis));
        assert_eq!(yyyymmdd("20251219").unwrap().to_string(), "2025-12-19");
        assert_eq!(yyyymmdd("2025-12-19"), None);
        assert_eq!(utc_date_time("20250709-14:38:07"), epoch_millis(&millis));
    }
}
