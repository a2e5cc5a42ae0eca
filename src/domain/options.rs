//! Domain values for option chains, greeks and implied volatility (issue 16).
//!
//! An option chain read is bounded: of the strikes the broker lists for one month, at most
//! `max_strikes` are kept, those nearest to the underlying's last price ("around the money"),
//! or the middle of the list when no price is known. [`select_strikes`] is that choice, a pure
//! function both adapters call, so the bound holds whatever the backend.

use std::fmt;
use std::ops::RangeInclusive;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use thiserror::Error;

use super::broker_text::BrokerText;
use super::ids::ContractId;
use super::instrument::{AssetClass, OptionRight};
use super::market_data::Quote;
use super::money::{Price, Quantity};

/// The accepted values of `market_data.option_chain_max_strikes`.
pub const MAX_STRIKES_RANGE: RangeInclusive<u8> = 1..=50;

/// The default of `market_data.option_chain_max_strikes`.
pub const DEFAULT_MAX_STRIKES: u8 = 10;

/// The most contracts one chain lists, whatever the broker answers (N strikes × 2 rights ×
/// a few weekly expiries fit well inside it).
pub const MAX_CHAIN_CONTRACTS: usize = 500;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Why an option month was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("month must be a three-letter month and a two-digit year, e.g. JAN27")]
pub struct ParseOptionMonthError;

/// An option expiry month in the broker's `MMMYY` spelling, e.g. `JAN27`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OptionMonth {
    year: u16,
    month: u8,
}

impl OptionMonth {
    /// Parses `MMMYY` (any case), e.g. `jan27`.
    ///
    /// # Errors
    /// [`ParseOptionMonthError`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, ParseOptionMonthError> {
        let raw = raw.trim().to_ascii_uppercase();
        if raw.len() != 5 || !raw.is_ascii() {
            return Err(ParseOptionMonthError);
        }
        let (name, year) = raw.split_at(3);
        let month = MONTHS
            .iter()
            .position(|candidate| *candidate == name)
            .ok_or(ParseOptionMonthError)?;
        if !year.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(ParseOptionMonthError);
        }
        let year: u16 = year.parse().map_err(|_| ParseOptionMonthError)?;
        Ok(Self {
            year: 2000 + year,
            month: u8::try_from(month + 1).map_err(|_| ParseOptionMonthError)?,
        })
    }

    /// The month of a date.
    pub fn of(date: NaiveDate) -> Self {
        use chrono::Datelike;
        Self {
            year: u16::try_from(date.year()).unwrap_or(2000),
            month: u8::try_from(date.month()).unwrap_or(1),
        }
    }

    /// The calendar year, e.g. 2027.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month number, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The third Friday of the month: the usual monthly expiry of equity options.
    pub fn third_friday(self) -> Option<NaiveDate> {
        NaiveDate::from_weekday_of_month_opt(
            i32::from(self.year),
            u32::from(self.month),
            chrono::Weekday::Fri,
            3,
        )
    }
}

impl fmt::Display for OptionMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = MONTHS
            .get(usize::from(self.month.saturating_sub(1)))
            .copied()
            .unwrap_or("JAN");
        write!(f, "{name}{:02}", self.year % 100)
    }
}

/// Which rights a chain lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RightSelection {
    /// Calls only.
    Calls,
    /// Puts only.
    Puts,
    /// Calls and puts.
    Both,
}

impl RightSelection {
    /// Parses `C`, `P` or `both` (also `call`, `put`; any case).
    ///
    /// # Errors
    /// [`ParseRightError`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, ParseRightError> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "C" | "CALL" | "CALLS" => Ok(Self::Calls),
            "P" | "PUT" | "PUTS" => Ok(Self::Puts),
            "BOTH" => Ok(Self::Both),
            _ => Err(ParseRightError),
        }
    }

    /// The rights, calls first.
    pub fn rights(self) -> &'static [OptionRight] {
        match self {
            Self::Calls => &[OptionRight::Call],
            Self::Puts => &[OptionRight::Put],
            Self::Both => &[OptionRight::Call, OptionRight::Put],
        }
    }

    /// True when `right` is selected.
    pub fn includes(self, right: OptionRight) -> bool {
        self.rights().contains(&right)
    }

    /// `C`, `P` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Calls => "C",
            Self::Puts => "P",
            Self::Both => "both",
        }
    }
}

/// Why a right selection was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("right must be C, P or both")]
pub struct ParseRightError;

/// Why an underlying cannot have an option chain read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the underlying must be a stock, ETF or index, not {asset_class}")]
pub struct UnderlyingError {
    /// The refused asset class.
    pub asset_class: AssetClass,
}

/// The asset classes an equity option chain is read for.
///
/// # Errors
/// [`UnderlyingError`] for any other class (options, futures, FX, bonds…).
pub fn check_underlying(asset_class: AssetClass) -> Result<(), UnderlyingError> {
    match asset_class {
        AssetClass::Stock | AssetClass::Etf | AssetClass::Index => Ok(()),
        other => Err(UnderlyingError { asset_class: other }),
    }
}

/// How the kept strikes were centred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrikeCentre {
    /// Nearest to the underlying's last price.
    LastPrice(Price),
    /// No last price was known: the middle of the listed strikes.
    Middle,
}

/// One chain request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionChainRequest {
    /// The underlying contract.
    pub underlying: ContractId,
    /// The underlying's symbol (the broker's search key).
    pub symbol: String,
    /// The underlying's asset class (one [`check_underlying`] accepts).
    pub asset_class: AssetClass,
    /// The expiry month.
    pub month: OptionMonth,
    /// Which rights to list.
    pub rights: RightSelection,
    /// At most this many strikes (within [`MAX_STRIKES_RANGE`]).
    pub max_strikes: u8,
    /// The underlying's last price, when known; the strikes kept are centred on it.
    pub reference_price: Option<Price>,
}

impl OptionChainRequest {
    /// How the strikes of this request are centred.
    pub fn centre(&self) -> StrikeCentre {
        self.reference_price
            .map_or(StrikeCentre::Middle, StrikeCentre::LastPrice)
    }
}

/// One option contract of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainContract {
    /// The option's contract id.
    pub contract_id: ContractId,
    /// Last trading day.
    pub expiry: NaiveDate,
    /// Strike.
    pub strike: Price,
    /// Call or put.
    pub right: OptionRight,
    /// Units of the underlying per contract.
    pub multiplier: Decimal,
    /// The broker's description, e.g. `OCT 17 '25 210 Call` (untrusted).
    pub description: BrokerText,
}

/// A bounded option chain for one underlying and month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionChain {
    /// The underlying.
    pub underlying: ContractId,
    /// The month asked for.
    pub month: OptionMonth,
    /// The months the broker lists options for (empty when the underlying has none).
    pub months_listed: Vec<OptionMonth>,
    /// How many distinct strikes the broker listed for the month and rights.
    pub strikes_listed: usize,
    /// How the kept strikes were centred.
    pub centre: StrikeCentre,
    /// The kept strikes, ascending.
    pub strikes: Vec<Price>,
    /// The contracts at the kept strikes, by expiry, strike, then right (calls first).
    pub contracts: Vec<ChainContract>,
}

impl OptionChain {
    /// An answer with no contracts: the month is not listed (or nothing is).
    pub fn unlisted(request: &OptionChainRequest, months_listed: Vec<OptionMonth>) -> Self {
        Self {
            underlying: request.underlying,
            month: request.month,
            months_listed,
            strikes_listed: 0,
            centre: request.centre(),
            strikes: Vec::new(),
            contracts: Vec::new(),
        }
    }

    /// Orders contracts by expiry, strike and right, drops repeats and bounds their number.
    pub fn normalize(&mut self) {
        self.contracts.sort_by(|a, b| {
            (a.expiry, a.strike, a.right, a.contract_id).cmp(&(
                b.expiry,
                b.strike,
                b.right,
                b.contract_id,
            ))
        });
        self.contracts.dedup_by_key(|contract| contract.contract_id);
        self.contracts.truncate(MAX_CHAIN_CONTRACTS);
    }

    /// The distinct expiries of the listed contracts, ascending.
    pub fn expiries(&self) -> Vec<NaiveDate> {
        let mut expiries: Vec<NaiveDate> = self.contracts.iter().map(|c| c.expiry).collect();
        expiries.sort();
        expiries.dedup();
        expiries
    }
}

/// The strikes to keep: at most `max` of `listed` (sorted and deduplicated first), the ones
/// nearest to `reference`, or, without a reference, nearest to the middle listed strike. On a
/// tie the lower strike wins. Being the nearest, they are a contiguous run of the list.
pub fn select_strikes(listed: &[Price], reference: Option<Price>, max: usize) -> Vec<Price> {
    let mut strikes = listed.to_vec();
    strikes.sort();
    strikes.dedup();
    if strikes.len() <= max {
        return strikes;
    }
    let Some(target) = reference.or_else(|| strikes.get(strikes.len() / 2).copied()) else {
        return Vec::new();
    };
    let distance = |index: usize| {
        strikes
            .get(index)
            .map(|strike| (strike.value() - target.value()).abs())
    };
    let nearest = (0..strikes.len())
        .min_by_key(|index| distance(*index))
        .unwrap_or(0);
    // Grow [low, high) from the nearest strike, one neighbour at a time, the nearer first.
    let (mut low, mut high) = (nearest, nearest + 1);
    while high - low < max {
        let below = low.checked_sub(1).and_then(distance);
        let above = distance(high);
        match (below, above) {
            (Some(down), Some(up)) if down <= up => low -= 1,
            (Some(_), None) => low -= 1,
            (_, Some(_)) => high += 1,
            (None, None) => break,
        }
    }
    strikes[low..high].to_vec()
}

/// Greeks, implied volatility, open interest and option volume of one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionGreeks {
    /// The snapshot: prices, status, age and the greeks with implied volatility (field 7633,
    /// as a fraction).
    pub quote: Quote,
    /// Open interest (field 7638).
    pub open_interest: Option<Quantity>,
    /// Option volume (field 7089).
    pub option_volume: Option<Quantity>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices(values: &[i64]) -> Vec<Price> {
        values
            .iter()
            .map(|v| Price::new(Decimal::from(*v)).unwrap())
            .collect()
    }

    #[test]
    fn months_parse_and_print_in_the_broker_spelling() {
        let month = OptionMonth::parse("jan27").unwrap();
        assert_eq!(month.to_string(), "JAN27");
        assert_eq!((month.year(), month.month()), (2027, 1));
        assert_eq!(
            OptionMonth::parse("DEC26").unwrap().third_friday(),
            NaiveDate::from_ymd_opt(2026, 12, 18)
        );
        for bad in ["", "JAN2027", "JA27", "XYZ27", "JAN2X", "2027-01", "ÄAN27"] {
            assert!(OptionMonth::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rights_parse() {
        assert_eq!(RightSelection::parse("c"), Ok(RightSelection::Calls));
        assert_eq!(RightSelection::parse("PUT"), Ok(RightSelection::Puts));
        assert_eq!(RightSelection::parse("Both"), Ok(RightSelection::Both));
        assert!(RightSelection::parse("x").is_err());
    }

    #[test]
    fn strikes_are_centred_on_the_price_or_the_middle() {
        let listed = prices(&[100, 105, 110, 115, 120, 125, 130, 135, 140]);
        let near = Price::new(Decimal::from(121)).ok();
        assert_eq!(select_strikes(&listed, near, 3), prices(&[115, 120, 125]));
        assert_eq!(select_strikes(&listed, None, 3), prices(&[115, 120, 125]));
        let low = Price::new(Decimal::from(1)).ok();
        assert_eq!(select_strikes(&listed, low, 2), prices(&[100, 105]));
        let high = Price::new(Decimal::from(999)).ok();
        assert_eq!(
            select_strikes(&listed, high, 4),
            prices(&[125, 130, 135, 140])
        );
        assert_eq!(select_strikes(&listed, high, 50).len(), listed.len());
        // With an even count the nearer neighbour wins, whichever side it is on.
        let three = prices(&[205, 210, 215]);
        let price = Price::parse("212.41").ok();
        assert_eq!(select_strikes(&three, price, 2), prices(&[210, 215]));
        let price = Price::parse("207.6").ok();
        assert_eq!(select_strikes(&three, price, 2), prices(&[205, 210]));
    }

    #[test]
    fn only_equity_like_underlyings_have_chains() {
        assert!(check_underlying(AssetClass::Stock).is_ok());
        assert!(check_underlying(AssetClass::Option).is_err());
    }
}
