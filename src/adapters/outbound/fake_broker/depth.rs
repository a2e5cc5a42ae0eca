//! The fake broker's answers for the one-shot market-depth book (Client Portal WebSocket `sbd` topic) (issue 16).
//!
//! The book is built around the listing's quote: [`BOOK_LEVELS`] levels per side, one tick
//! apart from the best bid and ask outwards, each with a size drawn from the contract-id hash
//! (whole lots of the contract's usual size) and a venue from a fixed list, so the same
//! contract always shows the same book. It is cut to the requested levels by
//! [`DepthBook::bounded`], like every adapter's. The listing without market data has no book
//! ([`BrokerError::MarketDataUnavailable`]).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::FakeBroker;
use super::catalog::Listing;
use super::market::mix_all;
use crate::domain::broker_text::BrokerText;
use crate::domain::depth::{DepthBook, DepthLevel, DepthRequest};
use crate::domain::instrument::AssetClass;
use crate::domain::money::Price;
use crate::ports::broker_reader::BrokerError;

/// Levels per side in the fake's book: more than the most a caller may keep, so the bound is
/// always exercised.
pub(super) const BOOK_LEVELS: u32 = 25;

/// The venues sizes are shown on, in the broker's spelling.
const VENUES: [&str; 5] = ["NASDAQ", "ARCA", "BATS", "EDGX", "IEX"];

/// The price step between two levels of a listing's book.
fn tick(listing: &Listing) -> Decimal {
    match listing.contract.asset_class {
        AssetClass::Future => Decimal::new(25, 2),
        AssetClass::Forex => Decimal::new(5, 5),
        _ => Decimal::new(1, 2),
    }
}

/// The usual lot and the most lots shown at one level.
fn lot(listing: &Listing) -> (u64, u64) {
    match listing.contract.asset_class {
        AssetClass::Stock | AssetClass::Etf => (100, 30),
        AssetClass::Forex => (1_000_000, 10),
        _ => (1, 40),
    }
}

/// The fake's answer to `request`: the account must be one of the fake's, the contract known.
///
/// # Errors
/// As the port: the session errors, [`BrokerError::UnknownAccount`],
/// [`BrokerError::UnknownContract`], and those of [`book`].
pub(super) fn answer(fake: &FakeBroker, request: &DepthRequest) -> Result<DepthBook, BrokerError> {
    fake.usable_book(&request.account)?;
    book(
        fake.usable_listing(request.contract_id)?,
        request,
        fake.clock.now(),
    )
}

/// The book of `listing` at `now`, bounded as `request` asks.
///
/// # Errors
/// [`BrokerError::MarketDataUnavailable`] for the listing without market data;
/// [`BrokerError::InvalidResponse`] should a price leave the representable range.
pub(super) fn book(
    listing: &Listing,
    request: &DepthRequest,
    now: DateTime<Utc>,
) -> Result<DepthBook, BrokerError> {
    let contract_id = listing.contract.id;
    let market = listing
        .market
        .as_ref()
        .ok_or(BrokerError::MarketDataUnavailable { contract_id })?;
    let step = tick(listing);
    let (lot, max_lots) = lot(listing);
    let side = |best: Decimal, direction: i64, salt: u64| -> Result<Vec<DepthLevel>, BrokerError> {
        (0..BOOK_LEVELS)
            .filter_map(|index| {
                let offset = step.checked_mul(Decimal::from(index))?;
                let price = if direction < 0 {
                    best.checked_sub(offset)?
                } else {
                    best.checked_add(offset)?
                };
                // A bid ladder stops above zero.
                (price > Decimal::ZERO).then_some((index, price))
            })
            .map(|(index, price)| {
                let draw = mix_all(&[contract_id.value(), salt, u64::from(index)]);
                let lots = 1 + draw % max_lots;
                let venue = VENUES[usize::try_from(draw % 5).unwrap_or(0)];
                Ok(DepthLevel {
                    price: Price::new(price).map_err(|_| BrokerError::InvalidResponse {
                        detail: "the fake broker built a negative depth price".to_owned(),
                    })?,
                    size: Decimal::from(lot.saturating_mul(lots)),
                    broker_venue: Some(BrokerText::label(venue)),
                })
            })
            .collect()
    };
    let bids = side(market.bid.value(), -1, 1)?;
    let asks = side(market.ask.value(), 1, 2)?;
    Ok(DepthBook::bounded(
        contract_id,
        bids,
        asks,
        request.levels,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::outbound::fake_broker::catalog::Catalog;
    use crate::adapters::outbound::fake_broker::known_ids;
    use crate::domain::depth::{DepthLevels, DepthTimeout};
    use crate::domain::ids::{AccountId, ContractId};

    fn request(conid: u64, levels: u32) -> DepthRequest {
        DepthRequest {
            account: AccountId::parse(known_ids::PAPER_USD_ACCOUNT).unwrap(),
            contract_id: ContractId::new(conid).unwrap(),
            levels: DepthLevels::new(levels).unwrap(),
            timeout: DepthTimeout::default(),
        }
    }

    #[test]
    fn the_book_surrounds_the_quote_and_is_deterministic() {
        let catalog = Catalog::build().unwrap();
        let listing = catalog
            .listing(ContractId::new(known_ids::AAPL).unwrap())
            .unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let book = book(listing, &request(known_ids::AAPL, 20), now).unwrap();
        let market = listing.market.as_ref().unwrap();
        assert_eq!(book.bids.len(), 20);
        assert_eq!(book.asks.len(), 20);
        assert!(book.truncated);
        assert_eq!(book.bids[0].price, market.bid);
        assert_eq!(book.asks[0].price, market.ask);
        assert!(
            book.bids
                .windows(2)
                .all(|w| w[0].price.value() > w[1].price.value())
        );
        assert!(
            book.asks
                .windows(2)
                .all(|w| w[0].price.value() < w[1].price.value())
        );
        assert!(
            book.bids
                .iter()
                .all(|l| l.size % Decimal::from(100) == Decimal::ZERO)
        );
        assert_eq!(
            book,
            super::book(listing, &request(known_ids::AAPL, 20), now).unwrap()
        );
    }

    #[test]
    fn the_no_data_contract_has_no_book() {
        let catalog = Catalog::build().unwrap();
        let listing = catalog
            .listing(ContractId::new(known_ids::NO_DATA).unwrap())
            .unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(matches!(
            book(listing, &request(known_ids::NO_DATA, 5), now),
            Err(BrokerError::MarketDataUnavailable { .. })
        ));
    }
}
