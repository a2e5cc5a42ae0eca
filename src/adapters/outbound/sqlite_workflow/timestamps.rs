//! The stored form of times: RFC 3339, UTC, nanoseconds, `Z`. The text is fixed width, so SQL
//! orders and compares it as it would the times.

use chrono::{DateTime, SecondsFormat, Utc};

/// The stored text of `at`.
pub(super) fn to_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses RFC 3339 text; `None` for anything else.
pub(super) fn from_text(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_round_trip_and_sort_as_text() {
        let whole = Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0).unwrap();
        let fraction = whole + chrono::Duration::nanoseconds(1);
        let later = Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 1).unwrap();
        for at in [whole, fraction, later] {
            assert_eq!(from_text(&to_text(at)), Some(at));
        }
        assert!(to_text(whole) < to_text(fraction));
        assert!(to_text(fraction) < to_text(later));
        assert_eq!(to_text(whole).len(), to_text(fraction).len());
        assert_eq!(from_text("yesterday"), None);
    }
}
