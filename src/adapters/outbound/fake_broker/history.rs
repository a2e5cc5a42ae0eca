//! Historical bars of the fake broker: a deterministic price path per contract.
//!
//! The path is value noise: for each of a few time scales (5 minutes to a year) a hash of
//! `(contract id, scale, knot index)` gives a level at evenly spaced knots, and levels are
//! interpolated linearly between knots. The sum of the scales, in parts per million, moves the
//! price around the catalog's last price, and the path is shifted so that the close of the
//! newest bar equals that last price. All arithmetic is integer or checked decimal; no floats
//! and no randomness, so the same contract and clock always give the same bars.
//!
//! Bars are aligned to multiples of their width counted from Monday 1970-01-05 00:00 UTC (so
//! days start at midnight UTC and weeks on Mondays). The newest bar is the last complete one:
//! it ends at the last boundary at or before now. The fake market never closes.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use super::catalog::MarketProfile;
use super::market::mix_all;
use crate::domain::market_data::{Bar, BarSize, BarsRequest};
use crate::domain::money::{Price, Quantity};
use crate::ports::broker_reader::BrokerError;

/// Bar boundaries count from here: a Monday, midnight UTC.
const ORIGIN_SECONDS: i64 = 4 * 86_400;

/// One part per million: the unit of the path's offsets.
const PPM: i64 = 1_000_000;

/// `(knot spacing in seconds, amplitude in ppm)` of each noise scale. The amplitudes sum to
/// under 22%, so the anchored path stays within ±44% of the last price and always positive.
const SCALES: [(i64, i64); 7] = [
    (60, 150),
    (300, 600),
    (3_600, 2_500),
    (86_400, 9_000),
    (7 * 86_400, 20_000),
    (91 * 86_400, 60_000),
    (364 * 86_400, 120_000),
];

const SECONDS_PER_DAY: i64 = 86_400;

fn history_error(detail: &str) -> BrokerError {
    BrokerError::InvalidResponse {
        detail: format!("fake broker history: {detail}"),
    }
}

fn overflow() -> BrokerError {
    history_error("arithmetic overflow")
}

/// The hashed level of knot `index` of one scale, in `[-amplitude, amplitude]` ppm.
fn knot_level(seed: u64, spacing: i64, amplitude: i64, index: i64) -> i64 {
    let draw = mix_all(&[seed, spacing.cast_unsigned(), index.cast_unsigned()]);
    let span = (2 * amplitude + 1).cast_unsigned();
    (draw % span).cast_signed() - amplitude
}

/// The path's offset at `seconds` (Unix time), in ppm of the anchor price.
fn offset_ppm(seed: u64, seconds: i64) -> i64 {
    let since_origin = seconds.saturating_sub(ORIGIN_SECONDS);
    SCALES
        .iter()
        .map(|&(spacing, amplitude)| {
            let index = since_origin.div_euclid(spacing);
            let into_knot = since_origin.rem_euclid(spacing);
            let from = knot_level(seed, spacing, amplitude, index);
            let to = knot_level(seed, spacing, amplitude, index.saturating_add(1));
            from + (to - from) * into_knot / spacing
        })
        .sum()
}

/// The most a bar's high (low) reaches above (below) its open and close, in ppm.
fn wick_ppm(bar_size: BarSize) -> u64 {
    match bar_size {
        BarSize::OneMinute => 300,
        BarSize::FiveMinutes => 600,
        BarSize::FifteenMinutes => 1_000,
        BarSize::ThirtyMinutes => 1_400,
        BarSize::OneHour => 2_000,
        BarSize::OneDay => 6_000,
        BarSize::OneWeek => 12_000,
    }
}

/// `value × (PPM + ppm) / PPM`, rounded to `decimals` with `strategy`.
fn scale_by_ppm(
    value: Decimal,
    ppm: i64,
    decimals: u32,
    strategy: RoundingStrategy,
) -> Result<Decimal, BrokerError> {
    let factor = PPM.checked_add(ppm).ok_or_else(overflow)?;
    value
        .checked_mul(Decimal::from(factor))
        .and_then(|product| product.checked_div(Decimal::from(PPM)))
        .map(|scaled| scaled.round_dp_with_strategy(decimals, strategy))
        .ok_or_else(overflow)
}

fn positive_price(value: Decimal) -> Result<Price, BrokerError> {
    if value <= Decimal::ZERO {
        return Err(history_error("the price path reached zero"));
    }
    Price::new(value).map_err(|_| history_error("negative price"))
}

/// Generates the bars of `request` for a contract whose quote values are `market`, as of `now`.
///
/// # Errors
/// [`BrokerError::InvalidResponse`] when the clock or the arithmetic is at the edge of its
/// range (a clock set near the year 262144) or a price would not be positive.
pub(super) fn bars(
    market: &MarketProfile,
    request: &BarsRequest,
    now: DateTime<Utc>,
) -> Result<Vec<Bar>, BrokerError> {
    let seed = request.contract_id.value();
    let width = request.bar_size.duration().num_seconds().max(1);
    let count = request.bar_count().clamp(0, BarsRequest::MAX_BARS);
    let last_end = ORIGIN_SECONDS
        + now
            .timestamp()
            .saturating_sub(ORIGIN_SECONDS)
            .div_euclid(width)
            * width;
    let first_start = count
        .checked_mul(width)
        .and_then(|span| last_end.checked_sub(span))
        .ok_or_else(overflow)?;
    let anchor = market.last.value();
    let decimals = anchor.scale();
    let anchor_offset = offset_ppm(seed, last_end);
    let price_at = |seconds: i64| {
        let relative = offset_ppm(seed, seconds) - anchor_offset;
        scale_by_ppm(
            anchor,
            relative,
            decimals,
            RoundingStrategy::MidpointNearestEven,
        )
    };
    let wick = wick_ppm(request.bar_size);
    let daily_volume = market.daily_volume.map_or(Decimal::ZERO, Quantity::value);

    (0..count)
        .map(|index| {
            let start = first_start + index * width;
            let end = start + width;
            let open = price_at(start)?;
            let close = price_at(end)?;
            let upper = mix_all(&[seed, start.cast_unsigned(), 1]) % (wick + 1);
            let lower = mix_all(&[seed, start.cast_unsigned(), 2]) % (wick + 1);
            let high = scale_by_ppm(
                open.max(close),
                upper.cast_signed(),
                decimals,
                RoundingStrategy::ToPositiveInfinity,
            )?;
            let low = scale_by_ppm(
                open.min(close),
                -lower.cast_signed(),
                decimals,
                RoundingStrategy::ToZero,
            )?;
            // Volume: the daily volume pro rata to the bar width, times 0.50 to 1.50.
            let activity = 50 + mix_all(&[seed, start.cast_unsigned(), 3]) % 101;
            let volume = daily_volume
                .checked_mul(Decimal::from(width))
                .and_then(|value| value.checked_mul(Decimal::from(activity)))
                .and_then(|value| value.checked_div(Decimal::from(SECONDS_PER_DAY * 100)))
                .map(|value| value.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven))
                .ok_or_else(overflow)?;
            Ok(Bar {
                start: DateTime::from_timestamp(start, 0)
                    .ok_or_else(|| history_error("bar time out of range"))?,
                open: positive_price(open)?,
                high: positive_price(high)?,
                low: positive_price(low)?,
                close: positive_price(close)?,
                volume: Quantity::new(volume),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::adapters::outbound::fake_broker::catalog::Catalog;
    use crate::adapters::outbound::fake_broker::known_ids;
    use crate::domain::ids::ContractId;
    use crate::domain::market_data::HistoryPeriod;

    const ALL_SIZES: [BarSize; 7] = [
        BarSize::OneMinute,
        BarSize::FiveMinutes,
        BarSize::FifteenMinutes,
        BarSize::ThirtyMinutes,
        BarSize::OneHour,
        BarSize::OneDay,
        BarSize::OneWeek,
    ];

    fn now() -> DateTime<Utc> {
        // Friday 2026-11-27 15:30:17 UTC: deliberately not on a bar boundary.
        DateTime::from_timestamp(1_795_793_417, 0).unwrap()
    }

    fn market(conid: u64) -> MarketProfile {
        let catalog = Catalog::build().unwrap();
        catalog
            .listing(ContractId::new(conid).unwrap())
            .unwrap()
            .market
            .clone()
            .unwrap()
    }

    /// A request for close to the 1000-bar maximum of a bar size.
    fn largest_request(conid: u64, bar_size: BarSize) -> BarsRequest {
        let period = match bar_size {
            BarSize::OneMinute => "999min",
            BarSize::FiveMinutes => "83h",
            BarSize::FifteenMinutes => "10d",
            BarSize::ThirtyMinutes => "20d",
            BarSize::OneHour => "41d",
            BarSize::OneDay => "999d",
            BarSize::OneWeek => "19y",
        };
        let period = HistoryPeriod::parse(period).unwrap();
        let request = BarsRequest::new(ContractId::new(conid).unwrap(), period, bar_size).unwrap();
        assert!(request.bar_count() > 950);
        request
    }

    #[test]
    fn bars_are_consistent_for_every_contract_and_size() {
        let catalog = Catalog::build().unwrap();
        for listing in catalog
            .listings
            .iter()
            .filter(|listing| listing.market.is_some())
        {
            let market = listing.market.clone().unwrap();
            for bar_size in ALL_SIZES {
                let request = largest_request(listing.contract.id.value(), bar_size);
                let series = bars(&market, &request, now()).unwrap();
                assert_eq!(series.len() as i64, request.bar_count());
                for bar in &series {
                    assert!(bar.low.value() > Decimal::ZERO);
                    assert!(bar.low <= bar.open && bar.low <= bar.close);
                    assert!(bar.high >= bar.open && bar.high >= bar.close);
                    assert!(bar.volume.value() >= Decimal::ZERO);
                }
                for pair in series.windows(2) {
                    assert_eq!(pair[1].start - pair[0].start, bar_size.duration());
                    // Bars are continuous: each opens where the previous closed.
                    assert_eq!(pair[1].open, pair[0].close);
                }
                let newest = series.last().unwrap();
                assert_eq!(
                    newest.close, market.last,
                    "{:?} {bar_size:?}",
                    listing.contract.id
                );
                assert!(newest.start + bar_size.duration() <= now());
                assert!(newest.start + bar_size.duration() * 2 > now());
            }
        }
    }

    #[test]
    fn bars_are_aligned_to_their_width() {
        let request = largest_request(known_ids::AAPL, BarSize::OneWeek);
        let weekly = bars(&market(known_ids::AAPL), &request, now()).unwrap();
        for bar in &weekly {
            assert_eq!(bar.start.format("%a %H:%M:%S").to_string(), "Mon 00:00:00");
        }
        let request = largest_request(known_ids::AAPL, BarSize::FifteenMinutes);
        let quarters = bars(&market(known_ids::AAPL), &request, now()).unwrap();
        assert_eq!(
            quarters
                .last()
                .unwrap()
                .start
                .format("%H:%M:%S")
                .to_string(),
            "15:15:00"
        );
    }

    #[test]
    fn bars_are_deterministic_and_agree_where_requests_overlap() {
        let market = market(known_ids::MSFT);
        let contract_id = ContractId::new(known_ids::MSFT).unwrap();
        let day = BarsRequest::new(
            contract_id,
            HistoryPeriod::parse("1d").unwrap(),
            BarSize::OneHour,
        )
        .unwrap();
        let week = BarsRequest::new(
            contract_id,
            HistoryPeriod::parse("1w").unwrap(),
            BarSize::OneHour,
        )
        .unwrap();
        let first = bars(&market, &day, now()).unwrap();
        assert_eq!(first, bars(&market, &day, now()).unwrap());
        let longer = bars(&market, &week, now()).unwrap();
        assert_eq!(longer[longer.len() - first.len()..], first[..]);
    }

    #[test]
    fn the_path_moves() {
        let request = largest_request(known_ids::SPY, BarSize::OneDay);
        let daily = bars(&market(known_ids::SPY), &request, now()).unwrap();
        let closes: std::collections::BTreeSet<_> = daily.iter().map(|bar| bar.close).collect();
        assert!(closes.len() > daily.len() / 2, "the path is too flat");
        let later = now() + Duration::days(1);
        let shifted = bars(&market(known_ids::SPY), &request, later).unwrap();
        assert_eq!(
            shifted.last().unwrap().start - daily.last().unwrap().start,
            Duration::days(1)
        );
    }

    #[test]
    fn the_path_stays_within_its_amplitude() {
        let total: i64 = SCALES.iter().map(|&(_, amplitude)| amplitude).sum();
        assert!(2 * total < PPM / 2);
        for seconds in (0..2_000_000_000).step_by(7_654_321) {
            assert!(offset_ppm(265_598, seconds).abs() <= total);
        }
    }
}
