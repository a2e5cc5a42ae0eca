//! Market data: the snapshot (`/iserver/marketdata/snapshot`, keyed by field codes) and history
//! bars (`/iserver/marketdata/history`).

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::epoch_millis;
use crate::adapters::outbound::client_portal::errors::GatewayFault;
use crate::adapters::outbound::client_portal::lenient::{NumText, WireConid};
use crate::domain::ids::ContractId;
use crate::domain::instrument::Greeks;
use crate::domain::market_data::{
    Bar, BarSeries, BarSize, BarsRequest, DataStatus, HistoryPeriod, Quote, QuoteField,
};
use crate::domain::money::{Price, Quantity};

/// Snapshot field codes (reference §5.1).
pub(crate) mod field {
    /// Last price (may carry a `C` or `H` prefix).
    pub(crate) const LAST: &str = "31";
    /// Bid price.
    pub(crate) const BID: &str = "84";
    /// Ask size.
    pub(crate) const ASK_SIZE: &str = "85";
    /// Ask price.
    pub(crate) const ASK: &str = "86";
    /// Volume, formatted (`41.8M`).
    pub(crate) const VOLUME_FORMATTED: &str = "87";
    /// Bid size.
    pub(crate) const BID_SIZE: &str = "88";
    /// Market data availability (`RpB`, `DPB`, `Z`, …).
    pub(crate) const AVAILABILITY: &str = "6509";
    /// Volume, raw.
    pub(crate) const VOLUME: &str = "7762";
    /// Option delta.
    pub(crate) const DELTA: &str = "7308";
    /// Option gamma.
    pub(crate) const GAMMA: &str = "7309";
    /// Option theta.
    pub(crate) const THETA: &str = "7310";
    /// Option vega.
    pub(crate) const VEGA: &str = "7311";
    /// Implied volatility of this option, in percent.
    pub(crate) const IMPLIED_VOLATILITY: &str = "7633";
}

const QUOTE_FIELDS: [&str; 8] = [
    field::LAST,
    field::BID,
    field::ASK_SIZE,
    field::ASK,
    field::VOLUME_FORMATTED,
    field::BID_SIZE,
    field::AVAILABILITY,
    field::VOLUME,
];

const GREEK_FIELDS: [&str; 5] = [
    field::DELTA,
    field::GAMMA,
    field::THETA,
    field::VEGA,
    field::IMPLIED_VOLATILITY,
];

/// The `fields` parameter: the quote fields, plus greeks for options.
pub(crate) fn snapshot_fields(with_greeks: bool) -> String {
    let mut codes: Vec<&str> = QUOTE_FIELDS.to_vec();
    if with_greeks {
        codes.extend(GREEK_FIELDS);
    }
    codes.join(",")
}

/// What one snapshot call showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnapshotReading {
    /// Identifiers only (no value has arrived yet): ask again.
    NotReady,
    /// Some values are in, but not yet a quote: no price, no availability code, or (for an
    /// option) not all its greeks. Ask again; after the last attempt this is the answer, with
    /// the fields that never arrived listed in [`Quote::missing`].
    Partial(Box<Quote>),
    /// The gateway says there is no market data (availability `N`).
    NoData,
    /// A quote: its status known, at least one price, and greeks for an option. Fields still
    /// absent (a size, the volume) are listed in [`Quote::missing`].
    Ready(Box<Quote>),
}

/// Reading the market data availability code (field 6509).
fn availability_status(code: &str) -> Option<Option<DataStatus>> {
    match code.trim().chars().next()? {
        'R' => Some(Some(DataStatus::Live)),
        'D' => Some(Some(DataStatus::Delayed)),
        'Z' | 'Y' => Some(Some(DataStatus::Frozen)),
        'N' => Some(None),
        _ => None,
    }
}

fn number(item: &Map<String, Value>, code: &'static str) -> Result<Option<NumText>, GatewayFault> {
    match item.get(code) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value::<NumText>(value.clone())
            .map(Some)
            .map_err(|_| GatewayFault::invalid("a snapshot field is not numeric")),
    }
}

fn price(item: &Map<String, Value>, code: &'static str) -> Result<Option<Price>, GatewayFault> {
    number(item, code)?
        .map(|raw| {
            raw.price()
                .ok_or_else(|| GatewayFault::invalid("a snapshot price is malformed"))
        })
        .transpose()
}

fn quantity(
    item: &Map<String, Value>,
    code: &'static str,
) -> Result<Option<Quantity>, GatewayFault> {
    number(item, code)?
        .map(|raw| {
            raw.quantity()
                .ok_or_else(|| GatewayFault::invalid("a snapshot size is malformed"))
        })
        .transpose()
}

fn decimal(item: &Map<String, Value>, code: &'static str) -> Result<Option<Decimal>, GatewayFault> {
    number(item, code)?
        .map(|raw| {
            raw.decimal()
                .ok_or_else(|| GatewayFault::invalid("a snapshot greek is malformed"))
        })
        .transpose()
}

/// How to judge one snapshot answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SnapshotRules {
    /// The contract asked for.
    pub(crate) contract_id: ContractId,
    /// Options must carry greeks before the quote is complete.
    pub(crate) expects_greeks: bool,
    /// The adapter's clock.
    pub(crate) now: DateTime<Utc>,
    /// A live or delayed quote not updated for longer than this is stale.
    pub(crate) stale_after: Duration,
}

/// The entry for `contract_id` in a snapshot answer (an array with one object per conid);
/// `None` when the answer is empty or has no entry for it yet (the snapshot is still filling).
///
/// # Errors
/// A fault for an answer that is not a list of objects, or an entry without a conid.
pub(crate) fn snapshot_entry(
    value: Value,
    contract_id: ContractId,
) -> Result<Option<Map<String, Value>>, GatewayFault> {
    let items = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        _ => return Err(GatewayFault::invalid("the snapshot answer is not a list")),
    };
    let mut found = None;
    for item in items {
        let Value::Object(item) = item else {
            return Err(GatewayFault::invalid("a snapshot entry is not an object"));
        };
        let conid = item
            .get("conid")
            .cloned()
            .and_then(|raw| serde_json::from_value::<WireConid>(raw).ok())
            .ok_or_else(|| GatewayFault::invalid("a snapshot entry has no conid"))?;
        if conid.0 == contract_id.value() {
            found = Some(item);
        }
    }
    Ok(found)
}

/// Reads one snapshot answer (an array with one object per conid).
pub(crate) fn read_snapshot(
    value: Value,
    rules: SnapshotRules,
) -> Result<SnapshotReading, GatewayFault> {
    let Some(item) = snapshot_entry(value, rules.contract_id)? else {
        return Ok(SnapshotReading::NotReady);
    };
    // `None` when the code is absent or unrecognised: the quote is then not known to be
    // current. `Some(None)` is the gateway saying there is no market data.
    let availability = item
        .get(field::AVAILABILITY)
        .and_then(Value::as_str)
        .and_then(availability_status);
    if availability == Some(None) {
        return Ok(SnapshotReading::NoData);
    }
    let known_status = availability.flatten();
    let bid = price(&item, field::BID)?;
    let ask = price(&item, field::ASK)?;
    let last = price(&item, field::LAST)?;
    let bid_size = quantity(&item, field::BID_SIZE)?;
    let ask_size = quantity(&item, field::ASK_SIZE)?;
    let volume = match quantity(&item, field::VOLUME)? {
        Some(volume) => Some(volume),
        None => quantity(&item, field::VOLUME_FORMATTED)?,
    };
    let (greeks, any_greek) = if rules.expects_greeks {
        read_greeks(&item)?
    } else {
        (None, false)
    };
    let priced = bid.is_some() || ask.is_some() || last.is_some();
    let any_value =
        priced || bid_size.is_some() || ask_size.is_some() || volume.is_some() || any_greek;
    if !any_value {
        return Ok(SnapshotReading::NotReady);
    }
    let mut missing: Vec<QuoteField> = [
        (QuoteField::Bid, bid.is_none()),
        (QuoteField::Ask, ask.is_none()),
        (QuoteField::Last, last.is_none()),
        (QuoteField::BidSize, bid_size.is_none()),
        (QuoteField::AskSize, ask_size.is_none()),
        (QuoteField::Volume, volume.is_none()),
        (QuoteField::Greeks, rules.expects_greeks && greeks.is_none()),
        (QuoteField::Status, known_status.is_none()),
    ]
    .into_iter()
    .filter_map(|(field, absent)| absent.then_some(field))
    .collect();
    missing.sort();
    let as_of = match number(&item, "_updated")? {
        Some(raw) => epoch_millis(&raw)
            .ok_or_else(|| GatewayFault::invalid("a snapshot update time is malformed"))?,
        // The values were read from the open stream just now.
        None => rules.now,
    };
    // Without the gateway's availability code the data is not known to be current.
    let mut status = known_status.unwrap_or(DataStatus::Stale);
    if matches!(status, DataStatus::Live | DataStatus::Delayed)
        && rules.now - as_of > rules.stale_after
    {
        status = DataStatus::Stale;
    }
    let complete = known_status.is_some() && priced && !missing.contains(&QuoteField::Greeks);
    let quote = Box::new(Quote {
        contract_id: rules.contract_id,
        bid,
        ask,
        last,
        bid_size,
        ask_size,
        volume,
        status,
        as_of,
        greeks,
        missing,
    });
    Ok(if complete {
        SnapshotReading::Ready(quote)
    } else {
        SnapshotReading::Partial(quote)
    })
}

/// The greeks of an option snapshot when all five are in, and whether any of them is.
fn read_greeks(item: &Map<String, Value>) -> Result<(Option<Greeks>, bool), GatewayFault> {
    let delta = decimal(item, field::DELTA)?;
    let gamma = decimal(item, field::GAMMA)?;
    let theta = decimal(item, field::THETA)?;
    let vega = decimal(item, field::VEGA)?;
    let implied = number(item, field::IMPLIED_VOLATILITY)?;
    let any = delta.is_some()
        || gamma.is_some()
        || theta.is_some()
        || vega.is_some()
        || implied.is_some();
    let (Some(delta), Some(gamma), Some(theta), Some(vega), Some(implied)) =
        (delta, gamma, theta, vega, implied)
    else {
        return Ok((None, any));
    };
    let implied_volatility = implied
        .percent_as_fraction()
        .ok_or_else(|| GatewayFault::invalid("a snapshot implied volatility is malformed"))?;
    Ok((
        Some(Greeks {
            delta,
            gamma,
            theta,
            vega,
            implied_volatility,
        }),
        true,
    ))
}

/// The gateway's spelling of a bar size.
pub(crate) fn cpapi_bar(bar_size: BarSize) -> &'static str {
    match bar_size {
        BarSize::OneMinute => "1min",
        BarSize::FiveMinutes => "5min",
        BarSize::FifteenMinutes => "15min",
        BarSize::ThirtyMinutes => "30min",
        BarSize::OneHour => "1h",
        BarSize::OneDay => "1d",
        BarSize::OneWeek => "1w",
    }
}

/// The gateway's spelling of a period, within its ranges (`1-30min`, `1-8h`, `1-1000d`,
/// `1-792w`, `1-182m`, `1-15y`). A period outside a unit's range moves to the next larger unit,
/// rounded up (the extra bars are cut afterwards); beyond 15 years it is clamped to `15y`, so
/// fewer bars come back, which the port allows.
pub(crate) fn cpapi_period(period: HistoryPeriod) -> String {
    let text = period.to_string();
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let count: u32 = number.parse().unwrap_or(1);
    let years = |count: u32| format!("{}y", count.clamp(1, 15));
    match unit {
        "min" if count <= 30 => format!("{count}min"),
        "min" if count.div_ceil(60) <= 8 => format!("{}h", count.div_ceil(60)),
        "min" => format!("{}d", count.div_ceil(1440)),
        "h" if count <= 8 => format!("{count}h"),
        "h" => format!("{}d", count.div_ceil(24)),
        "d" if count <= 1000 => format!("{count}d"),
        "w" if count <= 792 => format!("{count}w"),
        "w" => years(count.div_ceil(52)),
        "m" if count <= 182 => format!("{count}m"),
        "m" => years(count.div_ceil(12)),
        "y" => years(count),
        _ => format!("{}d", period.duration().num_days().clamp(1, 1000)),
    }
}

/// `GET /iserver/marketdata/history`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct HistoryDto {
    #[serde(default)]
    data: Option<Vec<BarDto>>,
    #[serde(default, rename = "mdAvailability")]
    availability: Option<String>,
    #[serde(default, rename = "volumeFactor")]
    volume_factor: Option<NumText>,
}

#[derive(Debug, Clone, Deserialize)]
struct BarDto {
    t: NumText,
    o: NumText,
    h: NumText,
    l: NumText,
    c: NumText,
    #[serde(default)]
    v: Option<NumText>,
}

impl HistoryDto {
    /// The bars, oldest first, at most the request's bar count (the newest are kept). `None`
    /// when the gateway has no data for the window.
    pub(crate) fn try_into_domain(
        self,
        request: &BarsRequest,
    ) -> Result<Option<BarSeries>, GatewayFault> {
        let status = match self
            .availability
            .as_deref()
            .and_then(|code| code.trim().chars().next())
        {
            Some('R' | 'S') => DataStatus::Live,
            Some('D') => DataStatus::Delayed,
            Some('Z' | 'Y') => DataStatus::Frozen,
            Some('N') => return Ok(None),
            // Not known to be current.
            _ => DataStatus::Stale,
        };
        let volume_factor = match &self.volume_factor {
            Some(raw) => raw
                .decimal()
                .filter(|factor| *factor > Decimal::ZERO)
                .ok_or_else(|| GatewayFault::invalid("the history volume factor is malformed"))?,
            None => Decimal::ONE,
        };
        let data = self.data.unwrap_or_default();
        if data.is_empty() {
            return Ok(None);
        }
        let mut bars = data
            .iter()
            .map(|bar| bar.try_into_domain(volume_factor))
            .collect::<Result<Vec<_>, _>>()?;
        bars.sort_by_key(|bar| bar.start);
        bars.dedup_by_key(|bar| bar.start);
        let keep = usize::try_from(request.bar_count()).unwrap_or(usize::MAX);
        if bars.len() > keep {
            bars.drain(..bars.len() - keep);
        }
        Ok(Some(BarSeries {
            contract_id: request.contract_id,
            bar_size: request.bar_size,
            status,
            bars,
        }))
    }
}

impl BarDto {
    fn try_into_domain(&self, volume_factor: Decimal) -> Result<Bar, GatewayFault> {
        let malformed = || GatewayFault::invalid("a history bar is malformed");
        let start = epoch_millis(&self.t).ok_or_else(malformed)?;
        let open = self.o.price().ok_or_else(malformed)?;
        let high = self.h.price().ok_or_else(malformed)?;
        let low = self.l.price().ok_or_else(malformed)?;
        let close = self.c.price().ok_or_else(malformed)?;
        if low > open || low > close || high < open || high < close {
            return Err(GatewayFault::invalid(
                "a history bar's high and low do not bound it",
            ));
        }
        let volume = match &self.v {
            Some(raw) => raw
                .decimal()
                .and_then(|volume| volume.checked_mul(volume_factor))
                .ok_or_else(malformed)?,
            None => Decimal::ZERO,
        };
        Ok(Bar {
            start,
            open,
            high,
            low,
            close,
            volume: Quantity::new(volume),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn rules(expects_greeks: bool) -> SnapshotRules {
        SnapshotRules {
            contract_id: ContractId::new(265_598).unwrap(),
            expects_greeks,
            now: DateTime::from_timestamp_millis(1_752_066_120_000).unwrap(),
            stale_after: Duration::minutes(10),
        }
    }

    fn reading(json: &str, expects_greeks: bool) -> SnapshotReading {
        read_snapshot(serde_json::from_str(json).unwrap(), rules(expects_greeks)).unwrap()
    }

    #[test]
    fn identifiers_only_is_not_ready() {
        assert_eq!(
            reading(r#"[{"conid":265598,"conidEx":"265598"}]"#, false),
            SnapshotReading::NotReady
        );
        assert_eq!(reading("[]", false), SnapshotReading::NotReady);
        assert_eq!(
            reading(
                r#"[{"conid":265598,"6509":"RpB","_updated":1752066114523}]"#,
                false
            ),
            SnapshotReading::NotReady
        );
    }

    #[test]
    fn values_are_read_leniently() {
        let SnapshotReading::Ready(quote) = reading(
            r#"[{"conid":265598,"conidEx":"265598","_updated":1752066114523,"6509":"RpB",
                 "31":"C189.20","84":"189.10","86":"189.30","88":"1,300","85":"12.5K","87":"41.8M"}]"#,
            false,
        ) else {
            panic!("not ready")
        };
        assert_eq!(
            quote.last.unwrap().value(),
            Decimal::from_str("189.20").unwrap()
        );
        assert_eq!(quote.bid_size.unwrap().value(), Decimal::from(1300));
        assert_eq!(quote.ask_size.unwrap().value(), Decimal::from(12500));
        assert_eq!(quote.volume.unwrap().value(), Decimal::from(41_800_000));
        assert_eq!(quote.status, DataStatus::Live);
        assert!(quote.greeks.is_none());
        assert!(quote.missing.is_empty(), "{:?}", quote.missing);
    }

    #[test]
    fn what_did_not_arrive_is_listed() {
        // A quote with a price and its status, but no ask side and no volume yet.
        let SnapshotReading::Ready(quote) = reading(
            r#"[{"conid":265598,"6509":"DPB","31":"189.20","84":"189.10","88":"100"}]"#,
            false,
        ) else {
            panic!("not ready")
        };
        assert_eq!(
            quote.missing,
            [QuoteField::Ask, QuoteField::AskSize, QuoteField::Volume]
        );
        // Sizes only, no price and no availability code: a partial quote, not known current.
        let SnapshotReading::Partial(quote) =
            reading(r#"[{"conid":265598,"88":"100","85":"200"}]"#, false)
        else {
            panic!("not partial")
        };
        assert_eq!(quote.status, DataStatus::Stale);
        assert_eq!(
            quote.missing,
            [
                QuoteField::Bid,
                QuoteField::Ask,
                QuoteField::Last,
                QuoteField::Volume,
                QuoteField::Status
            ]
        );
        assert_eq!(quote.bid_size.unwrap().value(), Decimal::from(100));
    }

    #[test]
    fn availability_maps_to_status_and_age_to_staleness() {
        let status = |code: &str, updated: i64| match reading(
            &format!(r#"[{{"conid":265598,"6509":"{code}","31":"1.00","_updated":{updated}}}]"#),
            false,
        ) {
            SnapshotReading::Ready(quote) => Some(quote.status),
            SnapshotReading::NoData => None,
            other => panic!("{other:?}"),
        };
        let recent = 1_752_066_114_523;
        assert_eq!(status("RpB", recent), Some(DataStatus::Live));
        assert_eq!(status("DPB", recent), Some(DataStatus::Delayed));
        assert_eq!(status("Z", recent), Some(DataStatus::Frozen));
        assert_eq!(status("Y", recent), Some(DataStatus::Frozen));
        assert_eq!(status("N", recent), None);
        let three_hours_ago = 1_752_066_120_000 - 3 * 3_600_000;
        assert_eq!(status("RpB", three_hours_ago), Some(DataStatus::Stale));
        assert_eq!(status("Z", three_hours_ago), Some(DataStatus::Frozen));
    }

    #[test]
    fn options_wait_for_greeks() {
        let without = r#"[{"conid":265598,"6509":"RpB","31":"7.85","84":"7.80","86":"7.90"}]"#;
        let SnapshotReading::Partial(partial) = reading(without, true) else {
            panic!("an option without greeks is not ready")
        };
        assert_eq!(
            partial.last.unwrap().value(),
            Decimal::from_str("7.85").unwrap()
        );
        assert!(partial.missing.contains(&QuoteField::Greeks));
        // Some greeks but not all: still partial, the greeks listed as missing.
        let some = r#"[{"conid":265598,"6509":"RpB","31":"7.85","7308":"0.512"}]"#;
        let SnapshotReading::Partial(partial) = reading(some, true) else {
            panic!("not partial")
        };
        assert!(partial.greeks.is_none() && partial.missing.contains(&QuoteField::Greeks));
        let with = r#"[{"conid":265598,"6509":"RpB","31":"7.85","84":"7.80","86":"7.90",
            "7308":"0.512","7309":"0.0241","7310":"-0.0876","7311":"0.3312","7633":"24.6%"}]"#;
        let SnapshotReading::Ready(quote) = reading(with, true) else {
            panic!("not ready")
        };
        let greeks = quote.greeks.unwrap();
        assert_eq!(
            greeks.implied_volatility,
            Decimal::from_str("0.246").unwrap()
        );
        assert_eq!(greeks.theta, Decimal::from_str("-0.0876").unwrap());
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            r#"{"conid":265598}"#,
            r#"[{"conid":265598,"6509":"RpB","31":"abc"}]"#,
            r#"[{"conid":265598,"6509":"RpB","31":"-5"}]"#,
            r#"[{"6509":"RpB","31":"5"}]"#,
        ] {
            assert!(
                read_snapshot(serde_json::from_str(bad).unwrap(), rules(false)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn periods_fit_the_gateways_ranges() {
        let cases = [
            ("30min", "30min"),
            ("45min", "1h"),
            ("999min", "1d"),
            ("2h", "2h"),
            ("9h", "1d"),
            ("5d", "5d"),
            ("999d", "999d"),
            ("2w", "2w"),
            ("999w", "15y"),
            ("1m", "1m"),
            ("200m", "15y"),
            ("19y", "15y"),
            ("1y", "1y"),
        ];
        for (ours, theirs) in cases {
            assert_eq!(
                cpapi_period(HistoryPeriod::parse(ours).unwrap()),
                theirs,
                "{ours}"
            );
        }
        assert_eq!(cpapi_bar(BarSize::FifteenMinutes), "15min");
        assert_eq!(cpapi_bar(BarSize::OneWeek), "1w");
    }

    fn request(period: &str, bar_size: BarSize) -> BarsRequest {
        BarsRequest::new(
            ContractId::new(265_598).unwrap(),
            HistoryPeriod::parse(period).unwrap(),
            bar_size,
        )
        .unwrap()
    }

    #[test]
    fn history_is_sorted_capped_and_checked() {
        let dto: HistoryDto = serde_json::from_str(
            r#"{"mdAvailability":"S","volumeFactor":100,"points":3,"data":[
                {"t":1751898600000,"o":211.9,"h":213.05,"l":211.62,"c":212.88,"v":481.5},
                {"t":1751895000000,"o":211.35,"h":212.2,"l":210.77,"c":211.9,"v":612.3},
                {"t":1751902200000,"o":212.88,"h":214.08,"l":212.4,"c":212.41,"v":520}]}"#,
        )
        .unwrap();
        let series = dto
            .try_into_domain(&request("2h", BarSize::OneHour))
            .unwrap()
            .unwrap();
        assert_eq!(series.status, DataStatus::Live);
        assert_eq!(series.bars.len(), 2, "cut to the newest two");
        assert!(series.bars[0].start < series.bars[1].start);
        assert_eq!(series.bars[1].volume.value(), Decimal::from(52_000));

        let empty: HistoryDto = serde_json::from_str(r#"{"data":[]}"#).unwrap();
        assert_eq!(
            empty
                .try_into_domain(&request("1d", BarSize::OneHour))
                .unwrap(),
            None
        );
        let inverted: HistoryDto =
            serde_json::from_str(r#"{"data":[{"t":1751898600000,"o":5,"h":4,"l":3,"c":4}]}"#)
                .unwrap();
        assert!(
            inverted
                .try_into_domain(&request("1d", BarSize::OneHour))
                .is_err()
        );
    }
}
