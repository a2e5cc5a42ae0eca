//! Market data: quotes with a data status and an age, and historical bars.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use thiserror::Error;

use super::ids::ContractId;
use super::instrument::{Greeks, ParseEnumError};
use super::money::{Price, Quantity};

/// How current a quote is, as the source reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataStatus {
    /// Real-time, streaming.
    Live,
    /// Delayed by the exchange's delay (usually 15 minutes) for lack of a subscription.
    Delayed,
    /// The last values of a closed session.
    Frozen,
    /// Older than the source considers current.
    Stale,
    /// No usable data.
    Unavailable,
}

impl DataStatus {
    /// Lower-case name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Delayed => "delayed",
            Self::Frozen => "frozen",
            Self::Stale => "stale",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for DataStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quote field the source had not filled in when the quote was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuoteField {
    /// Best bid.
    Bid,
    /// Best ask.
    Ask,
    /// Last trade.
    Last,
    /// Size at the bid.
    BidSize,
    /// Size at the ask.
    AskSize,
    /// Session volume.
    Volume,
    /// The option greeks (reported only as a complete set).
    Greeks,
    /// The source's own statement of how current the data is; without it the quote is
    /// reported [`DataStatus::Stale`] (not known to be current).
    Status,
}

impl QuoteField {
    /// Snake-case name used in outputs: the name of the quote field it stands for.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bid => "bid",
            Self::Ask => "ask",
            Self::Last => "last",
            Self::BidSize => "bid_size",
            Self::AskSize => "ask_size",
            Self::Volume => "volume",
            Self::Greeks => "greeks",
            Self::Status => "status",
        }
    }
}

/// A point-in-time quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The quoted contract.
    pub contract_id: ContractId,
    /// Best bid.
    pub bid: Option<Price>,
    /// Best ask.
    pub ask: Option<Price>,
    /// Last trade.
    pub last: Option<Price>,
    /// Size at the bid.
    pub bid_size: Option<Quantity>,
    /// Size at the ask.
    pub ask_size: Option<Quantity>,
    /// Session volume.
    pub volume: Option<Quantity>,
    /// How current the data is.
    pub status: DataStatus,
    /// When the source produced the values.
    pub as_of: DateTime<Utc>,
    /// Option greeks, for options.
    pub greeks: Option<Greeks>,
    /// The fields the source had not filled in (sorted, no repeats); empty when complete.
    pub missing: Vec<QuoteField>,
}

impl Quote {
    /// The age of the quote at `now`; never negative (a source clock ahead of ours reads as 0).
    pub fn age_at(&self, now: DateTime<Utc>) -> Duration {
        (now - self.as_of).max(Duration::zero())
    }
}

/// Why a bar size or history period was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HistoryRequestError {
    /// Unknown bar size.
    #[error(transparent)]
    BarSize(#[from] ParseEnumError),
    /// The period is not `<n><unit>` with unit `min`, `h`, `d`, `w`, `m` or `y`.
    #[error("period must look like 30min, 4h, 5d, 2w, 6m or 1y (n from 1 to 999)")]
    Period,
    /// The period divided by the bar size is more than the allowed bar count.
    #[error("period holds more than {max} bars of that size; use a larger bar or a shorter period")]
    TooManyBars {
        /// The largest allowed count.
        max: i64,
    },
    /// The bar is longer than the period.
    #[error("bar size is longer than the period")]
    BarLongerThanPeriod,
}

/// The width of one historical bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BarSize {
    /// One minute.
    OneMinute,
    /// Five minutes.
    FiveMinutes,
    /// Fifteen minutes.
    FifteenMinutes,
    /// Thirty minutes.
    ThirtyMinutes,
    /// One hour.
    OneHour,
    /// One day.
    OneDay,
    /// One week.
    OneWeek,
}

impl BarSize {
    const ALL: [Self; 7] = [
        Self::OneMinute,
        Self::FiveMinutes,
        Self::FifteenMinutes,
        Self::ThirtyMinutes,
        Self::OneHour,
        Self::OneDay,
        Self::OneWeek,
    ];

    /// The spelling used in inputs and outputs (`1min`, `1h`, `1d`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneMinute => "1min",
            Self::FiveMinutes => "5min",
            Self::FifteenMinutes => "15min",
            Self::ThirtyMinutes => "30min",
            Self::OneHour => "1h",
            Self::OneDay => "1d",
            Self::OneWeek => "1w",
        }
    }

    /// Parses a spelling from [`BarSize::as_str`].
    ///
    /// # Errors
    /// Returns [`ParseEnumError`] for other text.
    pub fn parse(raw: &str) -> Result<Self, ParseEnumError> {
        let raw = raw.trim();
        Self::ALL
            .into_iter()
            .find(|size| size.as_str() == raw)
            .ok_or(ParseEnumError {
                kind: "bar size",
                expected: "1min, 5min, 15min, 30min, 1h, 1d, 1w",
            })
    }

    /// The bar width.
    pub fn duration(self) -> Duration {
        match self {
            Self::OneMinute => Duration::minutes(1),
            Self::FiveMinutes => Duration::minutes(5),
            Self::FifteenMinutes => Duration::minutes(15),
            Self::ThirtyMinutes => Duration::minutes(30),
            Self::OneHour => Duration::hours(1),
            Self::OneDay => Duration::days(1),
            Self::OneWeek => Duration::weeks(1),
        }
    }
}

/// The unit of a history period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodUnit {
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
    /// Days.
    Days,
    /// Weeks.
    Weeks,
    /// Months of 30 days.
    Months,
    /// Years of 365 days.
    Years,
}

/// How far back a history request reaches, e.g. `5d` or `1y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistoryPeriod {
    count: u16,
    unit: PeriodUnit,
}

impl HistoryPeriod {
    /// Parses `<n><unit>` with n from 1 to 999 and unit `min`, `h`, `d`, `w`, `m` or `y`.
    ///
    /// # Errors
    /// Returns [`HistoryRequestError::Period`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, HistoryRequestError> {
        let raw = raw.trim();
        let digits = raw.chars().take_while(char::is_ascii_digit).count();
        let (number, unit) = raw.split_at(digits);
        let count: u16 = number.parse().map_err(|_| HistoryRequestError::Period)?;
        if !(1..=999).contains(&count) {
            return Err(HistoryRequestError::Period);
        }
        let unit = match unit {
            "min" => PeriodUnit::Minutes,
            "h" => PeriodUnit::Hours,
            "d" => PeriodUnit::Days,
            "w" => PeriodUnit::Weeks,
            "m" => PeriodUnit::Months,
            "y" => PeriodUnit::Years,
            _ => return Err(HistoryRequestError::Period),
        };
        Ok(Self { count, unit })
    }

    /// The period length.
    pub fn duration(self) -> Duration {
        let count = i64::from(self.count);
        match self.unit {
            PeriodUnit::Minutes => Duration::minutes(count),
            PeriodUnit::Hours => Duration::hours(count),
            PeriodUnit::Days => Duration::days(count),
            PeriodUnit::Weeks => Duration::weeks(count),
            PeriodUnit::Months => Duration::days(30 * count),
            PeriodUnit::Years => Duration::days(365 * count),
        }
    }
}

impl fmt::Display for HistoryPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            PeriodUnit::Minutes => "min",
            PeriodUnit::Hours => "h",
            PeriodUnit::Days => "d",
            PeriodUnit::Weeks => "w",
            PeriodUnit::Months => "m",
            PeriodUnit::Years => "y",
        };
        write!(f, "{}{unit}", self.count)
    }
}

/// A validated request for historical bars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarsRequest {
    /// The contract.
    pub contract_id: ContractId,
    /// How far back.
    pub period: HistoryPeriod,
    /// The bar width.
    pub bar_size: BarSize,
}

impl BarsRequest {
    /// The most bars one request may ask for.
    pub const MAX_BARS: i64 = 1000;

    /// Builds a request whose period holds between 1 and [`Self::MAX_BARS`] bars.
    ///
    /// # Errors
    /// Returns [`HistoryRequestError`] when the bar count is out of range.
    pub fn new(
        contract_id: ContractId,
        period: HistoryPeriod,
        bar_size: BarSize,
    ) -> Result<Self, HistoryRequestError> {
        let request = Self {
            contract_id,
            period,
            bar_size,
        };
        let count = request.bar_count();
        if count < 1 {
            return Err(HistoryRequestError::BarLongerThanPeriod);
        }
        if count > Self::MAX_BARS {
            return Err(HistoryRequestError::TooManyBars {
                max: Self::MAX_BARS,
            });
        }
        Ok(request)
    }

    /// How many whole bars the period holds.
    pub fn bar_count(&self) -> i64 {
        let bar_seconds = self.bar_size.duration().num_seconds().max(1);
        self.period.duration().num_seconds() / bar_seconds
    }
}

/// One OHLCV bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// Start of the bar.
    pub start: DateTime<Utc>,
    /// Opening price.
    pub open: Price,
    /// Highest price.
    pub high: Price,
    /// Lowest price.
    pub low: Price,
    /// Closing price.
    pub close: Price,
    /// Volume.
    pub volume: Quantity,
}

/// Bars for one contract, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarSeries {
    /// The contract.
    pub contract_id: ContractId,
    /// The bar width.
    pub bar_size: BarSize,
    /// How current the bars are.
    pub status: DataStatus,
    /// The bars, oldest first.
    pub bars: Vec<Bar>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_print() {
        for raw in ["30min", "4h", "5d", "2w", "6m", "1y"] {
            assert_eq!(HistoryPeriod::parse(raw).unwrap().to_string(), raw);
        }
        for raw in ["", "d", "0d", "1000d", "5 d", "5x", "-1d"] {
            assert!(HistoryPeriod::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn bar_requests_bound_the_bar_count() {
        let id = ContractId::new(1).unwrap();
        let day = HistoryPeriod::parse("1d").unwrap();
        assert!(BarsRequest::new(id, day, BarSize::OneHour).is_ok());
        assert_eq!(
            BarsRequest::new(id, HistoryPeriod::parse("1y").unwrap(), BarSize::OneMinute),
            Err(HistoryRequestError::TooManyBars { max: 1000 })
        );
        assert_eq!(
            BarsRequest::new(id, day, BarSize::OneWeek),
            Err(HistoryRequestError::BarLongerThanPeriod)
        );
    }

    #[test]
    fn quote_age_is_never_negative() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let quote = Quote {
            contract_id: ContractId::new(1).unwrap(),
            bid: None,
            ask: None,
            last: None,
            bid_size: None,
            ask_size: None,
            volume: None,
            status: DataStatus::Live,
            as_of: DateTime::from_timestamp(1_010, 0).unwrap(),
            greeks: None,
            missing: Vec::new(),
        };
        assert_eq!(quote.age_at(now), Duration::zero());
        assert_eq!(
            quote.age_at(DateTime::from_timestamp(1_070, 0).unwrap()),
            Duration::minutes(1)
        );
    }
}
