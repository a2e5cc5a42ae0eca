//! Domain values for scanners and fundamentals (issue 16): the scanner's parameters (scan
//! types, instruments, locations, filters), a checked scan request and its bounded result,
//! and the fundamentals of one contract.
//!
//! Codes (`TOP_PERC_GAIN`, `STK`, `STK.US.MAJOR`, `priceAbove`) are identifiers the caller
//! sends back to the broker, so they are held as [`ScannerCode`]s of a strict alphabet; every
//! name a person wrote (display names, company names, industries) is [`BrokerText`].

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use thiserror::Error;

use crate::domain::broker_text::BrokerText;
use crate::domain::ids::ContractId;
use crate::domain::money::Price;

/// The most rows one scan returns (the broker's own cap, reference §7.2).
pub const MAX_SCAN_ROWS: usize = 50;

/// The most filters one scan request carries.
pub const MAX_SCAN_FILTERS: usize = 20;

/// The longest scanner code, in characters.
pub const MAX_CODE_CHARS: usize = 64;

/// A scanner code that is not one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("must be 1 to 64 characters of letters, digits, '_', '.' or '-'")]
pub struct ParseScannerCodeError;

/// A scanner identifier: a scan type, an instrument type, a location or a filter code.
/// 1 to [`MAX_CODE_CHARS`] ASCII letters, digits, `_`, `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScannerCode(String);

impl ScannerCode {
    /// Parses a code exactly (codes are case-sensitive).
    ///
    /// # Errors
    /// [`ParseScannerCodeError`] for an empty, overlong or otherwise shaped text.
    pub fn parse(raw: &str) -> Result<Self, ParseScannerCodeError> {
        let fits = !raw.is_empty()
            && raw.len() <= MAX_CODE_CHARS
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if fits {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ParseScannerCodeError)
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ScannerCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One scan the broker offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanType {
    /// The code a scan request names.
    pub code: ScannerCode,
    /// The broker's name for it.
    pub display_name: BrokerText,
    /// The instrument types it runs on; empty when the broker names none.
    pub instruments: Vec<ScannerCode>,
}

/// One instrument type a scan can run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanInstrument {
    /// The code (`STK`, `ETF.EQ.US`, …).
    pub code: ScannerCode,
    /// The broker's name for it.
    pub display_name: BrokerText,
    /// The filter codes it accepts; empty when the broker names none.
    pub filters: Vec<ScannerCode>,
}

/// One location a scan can cover, from the broker's location tree (flattened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanLocation {
    /// The code (`STK.US.MAJOR`, …).
    pub code: ScannerCode,
    /// The broker's name for it.
    pub display_name: BrokerText,
    /// The instrument type of the tree it sits in.
    pub instrument: ScannerCode,
}

/// One filter a scan can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFilter {
    /// The code a request names.
    pub code: ScannerCode,
    /// The broker's name for it.
    pub display_name: BrokerText,
    /// The broker's kind of filter (`range`, `non-range`, …), when it says.
    pub kind: Option<ScannerCode>,
}

/// Everything the scanner offers, as fetched at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerParams {
    /// The scans.
    pub scan_types: Vec<ScanType>,
    /// The instrument types.
    pub instruments: Vec<ScanInstrument>,
    /// The locations.
    pub locations: Vec<ScanLocation>,
    /// The filters.
    pub filters: Vec<ScanFilter>,
    /// When the broker was asked.
    pub fetched_at: DateTime<Utc>,
}

/// A filter's value: a number, a flag or a short code-like text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValue {
    /// A number, e.g. a price threshold.
    Number(Decimal),
    /// `true` or `false`.
    Flag(bool),
    /// A code-like text (a combo value).
    Text(ScannerCode),
}

impl FilterValue {
    /// `true`/`false` as a flag, a plain decimal as a number, else a code-like text.
    ///
    /// # Errors
    /// [`ParseScannerCodeError`] when the text is none of these.
    pub fn parse(raw: &str) -> Result<Self, ParseScannerCodeError> {
        match raw {
            "true" => return Ok(Self::Flag(true)),
            "false" => return Ok(Self::Flag(false)),
            _ => {}
        }
        let numeric = raw
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-'));
        if numeric && let Ok(number) = raw.parse::<Decimal>() {
            return Ok(Self::Number(number));
        }
        ScannerCode::parse(raw).map(Self::Text)
    }
}

/// One filter of a scan request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSetting {
    /// The filter code.
    pub code: ScannerCode,
    /// Its value.
    pub value: FilterValue,
}

/// A scan to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// The instrument type.
    pub instrument: ScannerCode,
    /// The scan type code.
    pub scan_type: ScannerCode,
    /// The location code.
    pub location: ScannerCode,
    /// At most [`MAX_SCAN_FILTERS`] filters.
    pub filters: Vec<FilterSetting>,
}

/// Why a scan request does not fit the scanner's parameters. Messages never repeat broker
/// text; each names the input field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScanRequestError {
    /// The scan type is not offered.
    #[error("is not a scan type the scanner offers; see ibkr_scanner_params")]
    UnknownScanType,
    /// The instrument type is not offered.
    #[error("is not an instrument type the scanner offers; see ibkr_scanner_params")]
    UnknownInstrument,
    /// The scan type does not run on the instrument type.
    #[error("does not run on this instrument type; see ibkr_scanner_params")]
    ScanTypeNotForInstrument,
    /// The location is not offered for the instrument type.
    #[error("is not a location for this instrument type; see ibkr_scanner_params")]
    UnknownLocation,
    /// A filter is not offered for the instrument type.
    #[error("names a filter the scanner does not offer for this instrument type")]
    UnknownFilter,
}

impl ScanRequestError {
    /// The input field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::UnknownScanType | Self::ScanTypeNotForInstrument => "scan_type",
            Self::UnknownInstrument => "instrument",
            Self::UnknownLocation => "location",
            Self::UnknownFilter => "filters",
        }
    }
}

impl ScannerParams {
    /// Checks `request` against what the scanner offers: the instrument, scan type, location
    /// and every filter must be listed, the scan type must run on the instrument (when the
    /// broker says which it runs on), the location must sit in the instrument's tree and each
    /// filter must be one the instrument accepts (when the broker lists them).
    ///
    /// # Errors
    /// The first [`ScanRequestError`] found, in the order instrument, scan type, location,
    /// filters.
    pub fn check(&self, request: &ScanRequest) -> Result<(), ScanRequestError> {
        let instrument = self
            .instruments
            .iter()
            .find(|known| known.code == request.instrument)
            .ok_or(ScanRequestError::UnknownInstrument)?;
        let scan_type = self
            .scan_types
            .iter()
            .find(|known| known.code == request.scan_type)
            .ok_or(ScanRequestError::UnknownScanType)?;
        if !scan_type.instruments.is_empty() && !scan_type.instruments.contains(&instrument.code) {
            return Err(ScanRequestError::ScanTypeNotForInstrument);
        }
        let located = self.locations.iter().any(|known| {
            known.code == request.location && location_fits(&known.instrument, &instrument.code)
        });
        if !located {
            return Err(ScanRequestError::UnknownLocation);
        }
        for setting in &request.filters {
            let offered = self.filters.iter().any(|known| known.code == setting.code);
            let accepted =
                instrument.filters.is_empty() || instrument.filters.contains(&setting.code);
            if !offered || !accepted {
                return Err(ScanRequestError::UnknownFilter);
            }
        }
        Ok(())
    }
}

/// True when a location tree of type `tree` serves `instrument`: the same code, or the tree's
/// code is the instrument's first part (`STK` serves `STK.US`).
fn location_fits(tree: &ScannerCode, instrument: &ScannerCode) -> bool {
    tree == instrument
        || instrument
            .as_str()
            .split('.')
            .next()
            .is_some_and(|head| head == tree.as_str())
}

/// One row of a scan result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRow {
    /// The contract.
    pub contract_id: ContractId,
    /// Its symbol, as the broker shows it.
    pub symbol: BrokerText,
    /// The company name.
    pub company_name: BrokerText,
    /// The scan's value for the row (`+11.42%`), as the broker formats it.
    pub scan_value: Option<BrokerText>,
    /// The listing exchange, as the broker names it.
    pub listing_exchange: Option<BrokerText>,
    /// The security type code (`STK`, …).
    pub security_type: Option<ScannerCode>,
}

/// A scan result: at most [`MAX_SCAN_ROWS`] rows, in the broker's rank order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    /// The rows.
    pub rows: Vec<ScanRow>,
    /// The name of the scan's value column (`Chg%`), when the broker gives one.
    pub value_column: Option<BrokerText>,
    /// True when the broker sent more rows than were kept.
    pub truncated: bool,
}

impl ScanResult {
    /// A result from the broker's rows, keeping the first [`MAX_SCAN_ROWS`].
    pub fn bounded(mut rows: Vec<ScanRow>, value_column: Option<BrokerText>) -> Self {
        let truncated = rows.len() > MAX_SCAN_ROWS;
        rows.truncate(MAX_SCAN_ROWS);
        Self {
            rows,
            value_column,
            truncated,
        }
    }
}

/// A fundamentals value the broker had not filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FundamentalsField {
    /// Market capitalisation.
    MarketCap,
    /// Price to earnings.
    PriceEarnings,
    /// Earnings per share.
    EarningsPerShare,
    /// Dividend amount.
    DividendAmount,
    /// Dividend yield.
    DividendYield,
    /// Ex-dividend date.
    ExDividendDate,
    /// Dividends over the next twelve months.
    DividendsNext12Months,
    /// Dividends over the trailing twelve months.
    DividendsTrailing12Months,
    /// Beta.
    Beta,
    /// 52-week high.
    High52Week,
    /// 52-week low.
    Low52Week,
    /// Industry.
    Industry,
    /// Category.
    Category,
}

impl FundamentalsField {
    /// Every field, in output order.
    pub const ALL: [Self; 13] = [
        Self::MarketCap,
        Self::PriceEarnings,
        Self::EarningsPerShare,
        Self::DividendAmount,
        Self::DividendYield,
        Self::ExDividendDate,
        Self::DividendsNext12Months,
        Self::DividendsTrailing12Months,
        Self::Beta,
        Self::High52Week,
        Self::Low52Week,
        Self::Industry,
        Self::Category,
    ];

    /// The output name, dotted where the output nests it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MarketCap => "market_cap",
            Self::PriceEarnings => "price_earnings",
            Self::EarningsPerShare => "earnings_per_share",
            Self::DividendAmount => "dividends.amount",
            Self::DividendYield => "dividends.yield",
            Self::ExDividendDate => "dividends.broker_ex_date",
            Self::DividendsNext12Months => "dividends.next_12_months",
            Self::DividendsTrailing12Months => "dividends.trailing_12_months",
            Self::Beta => "beta",
            Self::High52Week => "range_52_week.high",
            Self::Low52Week => "range_52_week.low",
            Self::Industry => "broker_industry",
            Self::Category => "broker_category",
        }
    }
}

/// The fundamentals of one contract, from the broker's snapshot fields. A value the broker
/// had not filled in is `None` and listed in `missing`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fundamentals {
    /// Market capitalisation, in the contract's currency.
    pub market_cap: Option<Decimal>,
    /// Price to earnings (negative for a loss).
    pub price_earnings: Option<Decimal>,
    /// Earnings per share.
    pub earnings_per_share: Option<Decimal>,
    /// The dividend amount.
    pub dividend_amount: Option<Decimal>,
    /// The dividend yield, as a fraction (0.0045 is 0.45%).
    pub dividend_yield: Option<Decimal>,
    /// The ex-dividend date, as the broker formats it.
    pub ex_dividend_date: Option<BrokerText>,
    /// Dividends expected over the next twelve months.
    pub dividends_next_12_months: Option<Decimal>,
    /// Dividends paid over the trailing twelve months.
    pub dividends_trailing_12_months: Option<Decimal>,
    /// Beta.
    pub beta: Option<Decimal>,
    /// 52-week high.
    pub high_52_week: Option<Price>,
    /// 52-week low.
    pub low_52_week: Option<Price>,
    /// Industry, as the broker names it.
    pub industry: Option<BrokerText>,
    /// Category, as the broker names it.
    pub category: Option<BrokerText>,
    /// The fields not filled in, in [`FundamentalsField::ALL`] order.
    pub missing: Vec<FundamentalsField>,
}

impl Fundamentals {
    /// The fields that are `None`, in [`FundamentalsField::ALL`] order.
    pub fn absent_fields(&self) -> Vec<FundamentalsField> {
        FundamentalsField::ALL
            .into_iter()
            .filter(|field| !self.has(*field))
            .collect()
    }

    /// True when `field` has a value.
    pub fn has(&self, field: FundamentalsField) -> bool {
        match field {
            FundamentalsField::MarketCap => self.market_cap.is_some(),
            FundamentalsField::PriceEarnings => self.price_earnings.is_some(),
            FundamentalsField::EarningsPerShare => self.earnings_per_share.is_some(),
            FundamentalsField::DividendAmount => self.dividend_amount.is_some(),
            FundamentalsField::DividendYield => self.dividend_yield.is_some(),
            FundamentalsField::ExDividendDate => self.ex_dividend_date.is_some(),
            FundamentalsField::DividendsNext12Months => self.dividends_next_12_months.is_some(),
            FundamentalsField::DividendsTrailing12Months => {
                self.dividends_trailing_12_months.is_some()
            }
            FundamentalsField::Beta => self.beta.is_some(),
            FundamentalsField::High52Week => self.high_52_week.is_some(),
            FundamentalsField::Low52Week => self.low_52_week.is_some(),
            FundamentalsField::Industry => self.industry.is_some(),
            FundamentalsField::Category => self.category.is_some(),
        }
    }

    /// True when no field has a value.
    pub fn is_empty(&self) -> bool {
        FundamentalsField::ALL
            .into_iter()
            .all(|field| !self.has(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> ScannerCode {
        ScannerCode::parse(raw).unwrap()
    }

    fn params() -> ScannerParams {
        ScannerParams {
            scan_types: vec![ScanType {
                code: code("TOP_PERC_GAIN"),
                display_name: BrokerText::label("Top % Gainers"),
                instruments: vec![code("STK")],
            }],
            instruments: vec![ScanInstrument {
                code: code("STK"),
                display_name: BrokerText::label("US Stocks"),
                filters: vec![code("priceAbove")],
            }],
            locations: vec![ScanLocation {
                code: code("STK.US.MAJOR"),
                display_name: BrokerText::label("Listed/NASDAQ"),
                instrument: code("STK"),
            }],
            filters: vec![
                ScanFilter {
                    code: code("priceAbove"),
                    display_name: BrokerText::label("Price Above"),
                    kind: None,
                },
                ScanFilter {
                    code: code("couponRateAbove"),
                    display_name: BrokerText::label("Coupon"),
                    kind: None,
                },
            ],
            fetched_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    fn request(scan_type: &str, location: &str, filter: &str) -> ScanRequest {
        ScanRequest {
            instrument: code("STK"),
            scan_type: code(scan_type),
            location: code(location),
            filters: vec![FilterSetting {
                code: code(filter),
                value: FilterValue::parse("5").unwrap(),
            }],
        }
    }

    #[test]
    fn codes_have_a_strict_alphabet() {
        assert!(ScannerCode::parse("STK.US.MAJOR").is_ok());
        assert!(ScannerCode::parse("TOP_PERC-GAIN").is_ok());
        for bad in ["", "a b", "STK\u{202E}", "ignore;previous", &"x".repeat(65)] {
            assert!(ScannerCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filter_values_read_as_flags_numbers_or_codes() {
        assert_eq!(FilterValue::parse("true"), Ok(FilterValue::Flag(true)));
        assert_eq!(
            FilterValue::parse("-2.5"),
            Ok(FilterValue::Number(Decimal::new(-25, 1)))
        );
        assert_eq!(
            FilterValue::parse("USD"),
            Ok(FilterValue::Text(code("USD")))
        );
        assert!(FilterValue::parse("1 OR 1").is_err());
    }

    #[test]
    fn a_request_is_checked_against_the_params() {
        let params = params();
        assert_eq!(
            params.check(&request("TOP_PERC_GAIN", "STK.US.MAJOR", "priceAbove")),
            Ok(())
        );
        let refused = [
            (
                request("NO_SUCH_SCAN", "STK.US.MAJOR", "priceAbove"),
                "scan_type",
            ),
            (
                request("TOP_PERC_GAIN", "STK.EU.IBIS", "priceAbove"),
                "location",
            ),
            (
                request("TOP_PERC_GAIN", "STK.US.MAJOR", "couponRateAbove"),
                "filters",
            ),
        ];
        for (request, field) in refused {
            assert_eq!(params.check(&request).unwrap_err().field(), field);
        }
        let mut bonds = request("TOP_PERC_GAIN", "STK.US.MAJOR", "priceAbove");
        bonds.instrument = code("BOND");
        assert_eq!(
            params.check(&bonds),
            Err(ScanRequestError::UnknownInstrument)
        );
    }

    #[test]
    fn results_keep_at_most_fifty_rows() {
        let row = ScanRow {
            contract_id: ContractId::new(1).unwrap(),
            symbol: BrokerText::label("A"),
            company_name: BrokerText::label("A INC"),
            scan_value: None,
            listing_exchange: None,
            security_type: None,
        };
        let result = ScanResult::bounded(vec![row.clone(); 80], None);
        assert_eq!((result.rows.len(), result.truncated), (MAX_SCAN_ROWS, true));
        let result = ScanResult::bounded(vec![row; 3], None);
        assert_eq!((result.rows.len(), result.truncated), (3, false));
    }

    #[test]
    fn absent_fields_follow_the_output_order() {
        let fundamentals = Fundamentals {
            market_cap: Some(Decimal::ONE),
            beta: Some(Decimal::ONE),
            ..Fundamentals::default()
        };
        let absent = fundamentals.absent_fields();
        assert_eq!(absent.len(), 11);
        assert_eq!(absent[0], FundamentalsField::PriceEarnings);
        assert!(!fundamentals.is_empty());
        assert!(Fundamentals::default().is_empty());
    }
}
