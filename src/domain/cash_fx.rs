//! Domain values for FX rates, currency pairs, and transfers and cash movements (issue 16).
//!
//! The cash movements come from a source the broker lets us read only once per fifteen
//! minutes, so they are kept and served with their age; whether a call may ask the broker
//! again is decided here, as a pure function of the cached time, the request and the clock.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::domain::broker_text::BrokerText;
use crate::domain::ids::ContractId;
use crate::domain::money::Currency;

/// The most currency pairs one read returns.
pub const MAX_CURRENCY_PAIRS: usize = 100;
/// The most transaction rows one read returns (newest first).
pub const MAX_TRANSACTION_ROWS: usize = 200;
/// The longest look-back of a transactions read, in days.
pub const MAX_TRANSACTION_DAYS: u16 = 365;
/// The look-back when none is asked for (the broker's own default).
pub const DEFAULT_TRANSACTION_DAYS: u16 = 90;

/// How many units of `target` one unit of `source` buys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxRate {
    /// The currency converted from.
    pub source: Currency,
    /// The currency converted to.
    pub target: Currency,
    /// Units of `target` per one unit of `source`; always positive.
    pub rate: Decimal,
}

/// One tradable currency pair (`base.quote`, e.g. `EUR.USD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyPair {
    /// The base currency (the first of the symbol).
    pub base: Currency,
    /// The quote currency (the second of the symbol).
    pub quote: Currency,
    /// The pair's contract id, for a quote snapshot.
    pub contract_id: ContractId,
}

impl CurrencyPair {
    /// Reads a `BASE.QUOTE` symbol, e.g. `USD.JPY`; `None` for anything else.
    pub fn from_symbol(symbol: &str, contract_id: ContractId) -> Option<Self> {
        let (base, quote) = symbol.trim().split_once('.')?;
        let base = Currency::parse(base).ok()?;
        let quote = Currency::parse(quote).ok()?;
        (base != quote).then_some(Self {
            base,
            quote,
            contract_id,
        })
    }

    /// The `BASE.QUOTE` symbol.
    pub fn symbol(&self) -> String {
        format!("{}.{}", self.base, self.quote)
    }
}

/// What a transactions read asks for: one contract's rows (the broker serves one contract per
/// request), valued in one currency, over a look-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionsRequest {
    /// The contract whose transactions are read.
    pub contract_id: ContractId,
    /// The currency the amounts are valued in.
    pub currency: Currency,
    days: u16,
    /// Ask the broker again even when rows are cached (subject to its pacing).
    pub refresh: bool,
}

/// Why a transactions request cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("days must be from 1 to {MAX_TRANSACTION_DAYS}")]
pub struct TransactionDaysError;

impl TransactionsRequest {
    /// A request; `days` must be 1 to [`MAX_TRANSACTION_DAYS`].
    ///
    /// # Errors
    /// [`TransactionDaysError`] for a look-back out of range.
    pub fn new(
        contract_id: ContractId,
        currency: Currency,
        days: u16,
        refresh: bool,
    ) -> Result<Self, TransactionDaysError> {
        if days == 0 || days > MAX_TRANSACTION_DAYS {
            return Err(TransactionDaysError);
        }
        Ok(Self {
            contract_id,
            currency,
            days,
            refresh,
        })
    }

    /// The look-back, in days.
    pub fn days(&self) -> u16 {
        self.days
    }
}

/// One transaction or cash movement, as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CashTransaction {
    /// The day it happened, when the broker's date could be read.
    pub date: Option<NaiveDate>,
    /// The broker's kind, e.g. `Dividend Payment`, `Transfer`, `Buy` (untrusted text).
    pub kind: BrokerText,
    /// The broker's description (untrusted text).
    pub description: BrokerText,
    /// The amount, in `currency`.
    pub amount: Decimal,
    /// The currency of the amount.
    pub currency: Currency,
    /// The quantity traded (negative for a sale, zero for a cash movement).
    pub quantity: Decimal,
    /// The price of a trade (zero for a cash movement).
    pub price: Decimal,
    /// The FX rate to the requested currency, when the broker gave one.
    pub fx_rate: Option<Decimal>,
    /// The contract, when the row names one.
    pub contract_id: Option<ContractId>,
}

/// Where the rows of a transactions reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Fetched from the broker by this call.
    Fetched,
    /// Served from the cache; no refresh was asked for.
    Cached,
    /// A refresh was asked for and refused by the pacing: the cached rows, older than wanted.
    Stale,
}

impl Freshness {
    /// The stable spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fetched => "fetched",
            Self::Cached => "cached",
            Self::Stale => "stale",
        }
    }
}

/// Transactions with the time they were fetched and when the broker may be asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionsReading {
    /// Newest first, at most [`MAX_TRANSACTION_ROWS`].
    pub transactions: Vec<CashTransaction>,
    /// True when the broker returned more rows than are kept.
    pub truncated: bool,
    /// When the rows were fetched from the broker.
    pub fetched_at: DateTime<Utc>,
    /// Where this call's rows came from.
    pub freshness: Freshness,
    /// The earliest time a refresh will be sent to the broker.
    pub next_refresh_allowed_at: DateTime<Utc>,
}

/// What to do with a transactions request, given the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Answer from the cache without asking the broker.
    ServeCached,
    /// Ask the broker.
    Fetch,
    /// A refresh was asked for too early: answer from the cache, marked stale.
    Refuse {
        /// When a refresh will be allowed.
        next_allowed_at: DateTime<Utc>,
    },
}

/// Decides whether to ask the broker: nothing cached or a refresh after `interval` → fetch;
/// a refresh sooner → refused (the cached rows, stale); otherwise → the cache.
pub fn decide_refresh(
    cached_at: Option<DateTime<Utc>>,
    refresh: bool,
    now: DateTime<Utc>,
    interval: Duration,
) -> RefreshDecision {
    let Some(cached_at) = cached_at else {
        return RefreshDecision::Fetch;
    };
    if !refresh {
        return RefreshDecision::ServeCached;
    }
    let next_allowed_at = next_refresh_at(cached_at, interval);
    if now >= next_allowed_at {
        RefreshDecision::Fetch
    } else {
        RefreshDecision::Refuse { next_allowed_at }
    }
}

/// The earliest refresh after a fetch at `fetched_at`.
pub fn next_refresh_at(fetched_at: DateTime<Utc>, interval: Duration) -> DateTime<Utc> {
    fetched_at
        .checked_add_signed(interval)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minutes)
    }

    #[test]
    fn refreshes_follow_the_cache_and_the_interval() {
        let interval = Duration::minutes(15);
        assert_eq!(
            decide_refresh(None, false, at(0), interval),
            RefreshDecision::Fetch
        );
        assert_eq!(
            decide_refresh(Some(at(0)), false, at(100), interval),
            RefreshDecision::ServeCached
        );
        assert_eq!(
            decide_refresh(Some(at(0)), true, at(14), interval),
            RefreshDecision::Refuse {
                next_allowed_at: at(15)
            }
        );
        assert_eq!(
            decide_refresh(Some(at(0)), true, at(15), interval),
            RefreshDecision::Fetch
        );
    }

    #[test]
    fn pairs_are_read_from_their_symbol() {
        let id = ContractId::new(15_016_059).unwrap();
        let pair = CurrencyPair::from_symbol("USD.JPY", id).unwrap();
        assert_eq!(pair.symbol(), "USD.JPY");
        assert_eq!(pair.quote.as_str(), "JPY");
        for bad in ["USDJPY", "USD.", "usd.jpy", "USD.USD", "USD.JPY.X"] {
            assert!(CurrencyPair::from_symbol(bad, id).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_look_back_is_bounded() {
        let id = ContractId::new(1).unwrap();
        let usd = Currency::parse("USD").unwrap();
        assert!(TransactionsRequest::new(id, usd, 0, false).is_err());
        assert!(TransactionsRequest::new(id, usd, 366, false).is_err());
        assert_eq!(
            TransactionsRequest::new(id, usd, 90, true).unwrap().days(),
            90
        );
    }
}
