//! Quote snapshots of the fake broker, and the integer hash its "random" values come from.
//!
//! A snapshot is the catalog's bid, ask and last re-stamped with the clock: live feeds at now,
//! delayed feeds 15 minutes earlier, stale feeds 3 hours earlier. Sizes are drawn from a
//! SplitMix64 hash of the contract id, so they are the same on every call.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::catalog::{Feed, Listing};
use crate::domain::instrument::AssetClass;
use crate::domain::market_data::{DataStatus, Quote, QuoteField};
use crate::domain::money::Quantity;
use crate::ports::broker_reader::BrokerError;

/// SplitMix64's finalizer: a fixed, well-mixed function from `u64` to `u64`.
pub(super) fn mix(value: u64) -> u64 {
    let mut x = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A hash of several words, order-sensitive.
pub(super) fn mix_all(words: &[u64]) -> u64 {
    words.iter().fold(0, |state, word| mix(state ^ word))
}

impl Feed {
    /// The status reported for data from this feed.
    pub(super) fn status(self) -> DataStatus {
        match self {
            Self::Live => DataStatus::Live,
            Self::Delayed => DataStatus::Delayed,
            Self::Stale => DataStatus::Stale,
        }
    }

    /// How long before now the feed's values were produced.
    pub(super) fn lag(self) -> Duration {
        match self {
            Self::Live => Duration::zero(),
            Self::Delayed => Duration::minutes(15),
            Self::Stale => Duration::hours(3),
        }
    }
}

/// `now − age`, or [`BrokerError::InvalidResponse`] at the edge of the representable range.
pub(super) fn before(now: DateTime<Utc>, age: Duration) -> Result<DateTime<Utc>, BrokerError> {
    now.checked_sub_signed(age)
        .ok_or_else(|| BrokerError::InvalidResponse {
            detail: "fake broker clock arithmetic overflowed".to_owned(),
        })
}

/// A plausible displayed size for one side of the book, in the contract's usual lot.
fn book_size(listing: &Listing, side: u64) -> Quantity {
    let draw = mix_all(&[listing.contract.id.value(), side]);
    let (lot, max_lots) = match listing.contract.asset_class {
        AssetClass::Stock | AssetClass::Etf => (100, 20),
        AssetClass::Option | AssetClass::FutureOption => (1, 50),
        AssetClass::Future => (1, 30),
        AssetClass::Forex => (1_000_000, 10),
        AssetClass::Index | AssetClass::Bond | AssetClass::Crypto | AssetClass::Other => (1, 10),
    };
    Quantity::new(Decimal::from(lot * (1 + draw % max_lots)))
}

/// The quote snapshot of a listing at `now`.
///
/// # Errors
/// [`BrokerError::MarketDataUnavailable`] for a listing without market data.
pub(super) fn quote(listing: &Listing, now: DateTime<Utc>) -> Result<Quote, BrokerError> {
    let contract_id = listing.contract.id;
    let market = listing
        .market
        .as_ref()
        .ok_or(BrokerError::MarketDataUnavailable { contract_id })?;
    Ok(Quote {
        contract_id,
        bid: Some(market.bid),
        ask: Some(market.ask),
        last: Some(market.last),
        bid_size: Some(book_size(listing, 1)),
        ask_size: Some(book_size(listing, 2)),
        volume: market.daily_volume,
        status: market.feed.status(),
        as_of: before(now, market.feed.lag())?,
        greeks: market.greeks.clone(),
        // The fixed world fills in every field it models; a listing without a volume (an
        // index, a currency pair) reports it missing, as a broker would.
        missing: if market.daily_volume.is_none() {
            vec![QuoteField::Volume]
        } else {
            Vec::new()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::outbound::fake_broker::catalog::Catalog;
    use crate::adapters::outbound::fake_broker::known_ids;
    use crate::domain::ids::ContractId;

    fn listing(conid: u64) -> Listing {
        let catalog = Catalog::build().unwrap();
        catalog
            .listing(ContractId::new(conid).unwrap())
            .unwrap()
            .clone()
    }

    #[test]
    fn the_hash_is_fixed() {
        assert_eq!(mix(0), 0xE220_A839_7B1D_CDAF);
        assert_ne!(mix_all(&[1, 2]), mix_all(&[2, 1]));
    }

    #[test]
    fn feeds_stamp_their_lag() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let live = quote(&listing(known_ids::AAPL), now).unwrap();
        assert_eq!((live.status, live.as_of), (DataStatus::Live, now));
        let delayed = quote(&listing(known_ids::VOD_LSE), now).unwrap();
        assert_eq!(delayed.status, DataStatus::Delayed);
        assert_eq!(delayed.age_at(now), Duration::minutes(15));
        let stale = quote(&listing(known_ids::ES_FRONT), now).unwrap();
        assert_eq!(stale.status, DataStatus::Stale);
        assert_eq!(stale.age_at(now), Duration::hours(3));
    }

    #[test]
    fn sizes_are_whole_lots() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let aapl = quote(&listing(known_ids::AAPL), now).unwrap();
        let bid_size = aapl.bid_size.unwrap().value();
        assert!(bid_size >= Decimal::from(100) && bid_size <= Decimal::from(2000));
        assert_eq!(bid_size % Decimal::from(100), Decimal::ZERO);
        assert_eq!(aapl, quote(&listing(known_ids::AAPL), now).unwrap());
    }

    #[test]
    fn the_no_data_contract_has_no_quote() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let error = quote(&listing(known_ids::NO_DATA), now).unwrap_err();
        assert!(matches!(error, BrokerError::MarketDataUnavailable { .. }));
    }
}
