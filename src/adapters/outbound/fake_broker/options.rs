//! The fake broker's answers for option chains, greeks and implied volatility (issue 16).
//!
//! Every quoted stock and ETF of the catalog lists options for six fixed months (`DEC26`,
//! `JAN27`, `FEB27`, `MAR27`, `JUN27`, `DEC27`), expiring on each month's third Friday, at 51
//! strikes: 25 steps either side of the strike at or below the last price. The step grows with
//! the price (0.05 under 1, 0.5 under 25, 1 under 100, 5 under 500, else 10), as listed
//! strikes do. The catalog's own AAPL `DEC26` options keep their contract ids, so their greeks
//! can be read; other chain contracts get fixed ids from a hash and are listed only.
//!
//! Greeks come from the catalog's option quotes; open interest is a fixed hash of the contract
//! id and the option volume is the day's volume.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::FakeBroker;
use super::market::{self, mix, mix_all};
use crate::domain::broker_text::BrokerText;
use crate::domain::ids::ContractId;
use crate::domain::instrument::OptionRight;
use crate::domain::money::{Price, Quantity};
use crate::domain::options::{
    ChainContract, OptionChain, OptionChainRequest, OptionGreeks, OptionMonth, check_underlying,
    select_strikes,
};
use crate::ports::broker_reader::BrokerError;

/// The months every optionable underlying lists.
const LISTED_MONTHS: [&str; 6] = ["DEC26", "JAN27", "FEB27", "MAR27", "JUN27", "DEC27"];

/// Strikes either side of the at-the-money strike.
const STRIKES_EACH_SIDE: i64 = 25;

/// Synthetic chain contract ids live in `[BASE, BASE + SPAN)`, away from the catalog's ids.
const SYNTHETIC_ID_BASE: u64 = 900_000_000;
const SYNTHETIC_ID_SPAN: u64 = 90_000_000;

fn fake_error(detail: &str) -> BrokerError {
    BrokerError::InvalidResponse {
        detail: format!("fake option chain: {detail}"),
    }
}

fn listed_months() -> Result<Vec<OptionMonth>, BrokerError> {
    LISTED_MONTHS
        .iter()
        .map(|raw| OptionMonth::parse(raw).map_err(|_| fake_error("a listed month is malformed")))
        .collect()
}

/// The strike step for an underlying at `last`.
fn strike_step(last: Decimal) -> Decimal {
    if last < Decimal::ONE {
        Decimal::new(5, 2)
    } else if last < Decimal::from(25) {
        Decimal::new(5, 1)
    } else if last < Decimal::ONE_HUNDRED {
        Decimal::ONE
    } else if last < Decimal::from(500) {
        Decimal::from(5)
    } else {
        Decimal::TEN
    }
}

/// The listed strikes around `last`, ascending, all positive.
fn strike_ladder(last: Price) -> Result<Vec<Price>, BrokerError> {
    let step = strike_step(last.value());
    let at_the_money = (last.value() / step).floor() * step;
    let mut strikes = Vec::new();
    for offset in -STRIKES_EACH_SIDE..=STRIKES_EACH_SIDE {
        let strike = at_the_money + step * Decimal::from(offset);
        if strike > Decimal::ZERO {
            strikes.push(
                Price::new(strike.normalize()).map_err(|_| fake_error("a strike is negative"))?,
            );
        }
    }
    Ok(strikes)
}

/// The broker's style of option description: `DEC 18 '26 190 Call`.
fn description(expiry: NaiveDate, strike: Price, right: OptionRight) -> String {
    let month = expiry.format("%b").to_string().to_ascii_uppercase();
    let word = match right {
        OptionRight::Call => "Call",
        OptionRight::Put => "Put",
    };
    format!(
        "{month} {:02} '{:02} {} {word}",
        expiry.day(),
        expiry.year() % 100,
        strike.value().normalize()
    )
}

fn right_word(right: OptionRight) -> u64 {
    match right {
        OptionRight::Call => 1,
        OptionRight::Put => 2,
    }
}

/// The contract id at one point of the chain: the catalog's when it lists that option, else a
/// fixed hash of the point.
fn chain_contract_id(
    broker: &FakeBroker,
    underlying: ContractId,
    expiry: NaiveDate,
    strike: Price,
    right: OptionRight,
) -> Result<ContractId, BrokerError> {
    let catalog = broker.usable_catalog()?;
    let listed = catalog.listings.iter().find(|listing| {
        listing.contract.option.as_ref().is_some_and(|terms| {
            terms.underlying == underlying
                && terms.expiry == expiry
                && terms.strike == strike
                && terms.right == right
        })
    });
    if let Some(listing) = listed {
        return Ok(listing.contract.id);
    }
    let strike_cents = (strike.value() * Decimal::ONE_HUNDRED)
        .trunc()
        .to_string()
        .parse::<u64>()
        .unwrap_or(0);
    let day = u64::try_from(expiry.num_days_from_ce()).unwrap_or(0);
    let hash = mix_all(&[underlying.value(), day, strike_cents, right_word(right)]);
    ContractId::new(SYNTHETIC_ID_BASE + hash % SYNTHETIC_ID_SPAN)
        .map_err(|_| fake_error("a synthetic contract id is invalid"))
}

/// The chain of one underlying and month.
pub(super) fn chain(
    broker: &FakeBroker,
    request: &OptionChainRequest,
) -> Result<OptionChain, BrokerError> {
    let listing = broker.usable_listing(request.underlying)?;
    let optionable = check_underlying(listing.contract.asset_class).is_ok();
    let Some(market) = listing.market.as_ref().filter(|_| optionable) else {
        // No quotes or not an equity underlying: no options are listed.
        return Ok(OptionChain::unlisted(request, Vec::new()));
    };
    let months = listed_months()?;
    if !months.contains(&request.month) {
        return Ok(OptionChain::unlisted(request, months));
    }
    let expiry = request
        .month
        .third_friday()
        .ok_or_else(|| fake_error("the month has no third Friday"))?;
    let listed = strike_ladder(market.last)?;
    let strikes = select_strikes(
        &listed,
        request.reference_price,
        usize::from(request.max_strikes),
    );
    let mut contracts = Vec::new();
    for strike in &strikes {
        for right in request.rights.rights() {
            contracts.push(ChainContract {
                contract_id: chain_contract_id(
                    broker,
                    request.underlying,
                    expiry,
                    *strike,
                    *right,
                )?,
                expiry,
                strike: *strike,
                right: *right,
                multiplier: Decimal::ONE_HUNDRED,
                description: BrokerText::label(&description(expiry, *strike, *right)),
            });
        }
    }
    let mut chain = OptionChain {
        underlying: request.underlying,
        month: request.month,
        months_listed: months,
        strikes_listed: listed.len(),
        centre: request.centre(),
        strikes,
        contracts,
    };
    chain.normalize();
    Ok(chain)
}

/// Greeks, open interest and volume of one catalog option.
pub(super) fn greeks(
    broker: &FakeBroker,
    contract_id: ContractId,
) -> Result<OptionGreeks, BrokerError> {
    let listing = broker.usable_listing(contract_id)?;
    if listing.contract.option.is_none() {
        return Err(BrokerError::MarketDataUnavailable { contract_id });
    }
    let quote = market::quote(listing, broker.clock.now())?;
    let open_interest = Quantity::new(Decimal::from(500 + mix(contract_id.value()) % 40_000));
    Ok(OptionGreeks {
        option_volume: quote.volume,
        open_interest: Some(open_interest),
        quote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_has_51_positive_strikes_around_the_price() {
        let ladder = strike_ladder(Price::parse("192.30").unwrap()).unwrap();
        assert_eq!(ladder.len(), 51);
        assert!(ladder.contains(&Price::parse("190").unwrap()));
        let penny = strike_ladder(Price::parse("0.7124").unwrap()).unwrap();
        assert!(penny.iter().all(|strike| strike.value() > Decimal::ZERO));
    }

    #[test]
    fn descriptions_follow_the_broker_style() {
        let expiry = NaiveDate::from_ymd_opt(2026, 12, 18).unwrap();
        assert_eq!(
            description(expiry, Price::parse("207.5").unwrap(), OptionRight::Put),
            "DEC 18 '26 207.5 Put"
        );
    }
}
