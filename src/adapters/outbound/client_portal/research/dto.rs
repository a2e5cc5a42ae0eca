//! Wire types of the scanner endpoints and the fundamentals snapshot fields, and their
//! conversion to domain values. Lenient in what they accept (missing fields, `null`, numbers
//! as strings); codes that do not fit [`ScannerCode`] are dropped (they could not be asked
//! for), and every name a person wrote becomes [`BrokerText`].

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::adapters::outbound::client_portal::dto;
use crate::adapters::outbound::client_portal::errors::GatewayFault;
use crate::adapters::outbound::client_portal::lenient::{NumText, WireConid};
use crate::domain::broker_text::BrokerText;
use crate::domain::ids::ContractId;
use crate::domain::money::Price;
use crate::domain::research::{
    Fundamentals, ScanFilter, ScanInstrument, ScanLocation, ScanResult, ScanRow, ScanType,
    ScannerCode, ScannerParams,
};

/// The most entries of each parameter list kept (the real lists hold a few hundred).
const MAX_PARAM_ENTRIES: usize = 5_000;
/// The deepest level of the location tree that is read.
const MAX_LOCATION_DEPTH: usize = 6;
/// The bound of a short broker value (a scan value, an ex-dividend date).
const VALUE_CHARS: usize = 32;

/// The snapshot field codes of the fundamentals (reference §5.1 and §8).
pub(super) mod field {
    /// Industry.
    pub(in super::super) const INDUSTRY: &str = "7280";
    /// Category.
    pub(in super::super) const CATEGORY: &str = "7281";
    /// Dividend amount.
    pub(in super::super) const DIVIDEND_AMOUNT: &str = "7286";
    /// Dividend yield, in percent.
    pub(in super::super) const DIVIDEND_YIELD: &str = "7287";
    /// Ex-dividend date.
    pub(in super::super) const EX_DIVIDEND_DATE: &str = "7288";
    /// Market capitalisation.
    pub(in super::super) const MARKET_CAP: &str = "7289";
    /// Price to earnings.
    pub(in super::super) const PRICE_EARNINGS: &str = "7290";
    /// Earnings per share.
    pub(in super::super) const EARNINGS_PER_SHARE: &str = "7291";
    /// 52-week high.
    pub(in super::super) const HIGH_52_WEEK: &str = "7293";
    /// 52-week low.
    pub(in super::super) const LOW_52_WEEK: &str = "7294";
    /// Dividends over the next twelve months.
    pub(in super::super) const DIVIDENDS_NEXT_12_MONTHS: &str = "7671";
    /// Dividends over the trailing twelve months.
    pub(in super::super) const DIVIDENDS_TRAILING_12_MONTHS: &str = "7672";
    /// Beta.
    pub(in super::super) const BETA: &str = "7718";
    /// Market data availability (`N…` is none).
    pub(in super::super) const AVAILABILITY: &str = "6509";
}

/// The `fields` asked for: every documented fundamentals field and the availability code.
pub(super) const FUNDAMENTALS_FIELDS: [&str; 14] = [
    field::MARKET_CAP,
    field::PRICE_EARNINGS,
    field::EARNINGS_PER_SHARE,
    field::DIVIDEND_AMOUNT,
    field::DIVIDEND_YIELD,
    field::EX_DIVIDEND_DATE,
    field::DIVIDENDS_NEXT_12_MONTHS,
    field::DIVIDENDS_TRAILING_12_MONTHS,
    field::BETA,
    field::HIGH_52_WEEK,
    field::LOW_52_WEEK,
    field::INDUSTRY,
    field::CATEGORY,
    field::AVAILABILITY,
];

// ---------------------------------------------------------------------------------------------
// Scanner parameters
// ---------------------------------------------------------------------------------------------

/// `GET /iserver/scanner/params`.
#[derive(Debug, Deserialize)]
struct ParamsDto {
    #[serde(default)]
    scan_type_list: Option<Vec<ScanTypeDto>>,
    #[serde(default)]
    instrument_list: Option<Vec<InstrumentDto>>,
    #[serde(default)]
    filter_list: Option<Vec<FilterDto>>,
    #[serde(default)]
    location_tree: Option<Vec<LocationDto>>,
}

#[derive(Debug, Deserialize)]
struct ScanTypeDto {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    instruments: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct InstrumentDto {
    #[serde(default, rename = "type")]
    code: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    filters: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct FilterDto {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LocationDto {
    #[serde(default, rename = "type")]
    code: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    locations: Option<Vec<LocationDto>>,
}

fn code_of(raw: Option<&str>) -> Option<ScannerCode> {
    raw.and_then(|raw| ScannerCode::parse(raw.trim()).ok())
}

fn codes_of(raw: Option<Vec<Value>>) -> Vec<ScannerCode> {
    raw.unwrap_or_default()
        .iter()
        .filter_map(|value| code_of(value.as_str()))
        .take(MAX_PARAM_ENTRIES)
        .collect()
}

fn label(raw: Option<&str>) -> BrokerText {
    BrokerText::label(raw.unwrap_or_default())
}

/// The parameters, stamped with the time they were fetched.
pub(super) fn scanner_params(
    value: Value,
    fetched_at: DateTime<Utc>,
) -> Result<ScannerParams, GatewayFault> {
    let params: ParamsDto = dto::parse(value, "scanner params")?;
    let scan_types = params
        .scan_type_list
        .unwrap_or_default()
        .into_iter()
        .filter_map(|item| {
            Some(ScanType {
                code: code_of(item.code.as_deref())?,
                display_name: label(item.display_name.as_deref()),
                instruments: codes_of(item.instruments),
            })
        })
        .take(MAX_PARAM_ENTRIES)
        .collect();
    let instruments = params
        .instrument_list
        .unwrap_or_default()
        .into_iter()
        .filter_map(|item| {
            Some(ScanInstrument {
                code: code_of(item.code.as_deref())?,
                display_name: label(item.display_name.as_deref()),
                filters: codes_of(item.filters),
            })
        })
        .take(MAX_PARAM_ENTRIES)
        .collect();
    let filters = params
        .filter_list
        .unwrap_or_default()
        .into_iter()
        .filter_map(|item| {
            Some(ScanFilter {
                code: code_of(item.code.as_deref())?,
                display_name: label(item.display_name.as_deref()),
                kind: code_of(item.kind.as_deref()),
            })
        })
        .take(MAX_PARAM_ENTRIES)
        .collect();
    let mut locations = Vec::new();
    for tree in params.location_tree.unwrap_or_default() {
        let Some(instrument) = code_of(tree.code.as_deref()) else {
            continue;
        };
        // Depth-first, in the broker's order; the top level names the instrument type.
        let mut pending: Vec<(usize, LocationDto)> = tree
            .locations
            .unwrap_or_default()
            .into_iter()
            .rev()
            .map(|node| (1, node))
            .collect();
        while let Some((depth, node)) = pending.pop() {
            if locations.len() >= MAX_PARAM_ENTRIES {
                break;
            }
            if let Some(code) = code_of(node.code.as_deref())
                && !locations
                    .iter()
                    .any(|known: &ScanLocation| known.code == code)
            {
                locations.push(ScanLocation {
                    code,
                    display_name: label(node.display_name.as_deref()),
                    instrument: instrument.clone(),
                });
            }
            if depth < MAX_LOCATION_DEPTH {
                pending.extend(
                    node.locations
                        .unwrap_or_default()
                        .into_iter()
                        .rev()
                        .map(|child| (depth + 1, child)),
                );
            }
        }
    }
    Ok(ScannerParams {
        scan_types,
        instruments,
        locations,
        filters,
        fetched_at,
    })
}

// ---------------------------------------------------------------------------------------------
// Scanner run
// ---------------------------------------------------------------------------------------------

/// `POST /iserver/scanner/run`.
#[derive(Debug, Deserialize)]
struct ScanDto {
    #[serde(default)]
    contracts: Option<Vec<ScanContractDto>>,
    #[serde(default)]
    scan_data_column_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ScanContractDto {
    #[serde(default)]
    con_id: Option<WireConid>,
    #[serde(default)]
    conidex: Option<String>,
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default)]
    company_name: Option<String>,
    #[serde(default)]
    scan_data: Option<Value>,
    #[serde(default)]
    column_name: Option<String>,
    #[serde(default)]
    listing_exchange: Option<String>,
    #[serde(default)]
    sec_type: Option<String>,
}

impl ScanContractDto {
    fn contract_id(&self) -> Option<ContractId> {
        self.con_id.and_then(WireConid::contract_id).or_else(|| {
            // `conidex` is the conid, or `conid@exchange`.
            let head = self.conidex.as_deref()?.split('@').next()?;
            ContractId::parse(head.trim()).ok()
        })
    }
}

/// A short text value: a string as it is, a number as its text.
fn short_text(value: Option<&Value>) -> Option<BrokerText> {
    let text = match value? {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    let text = BrokerText::new(&text, VALUE_CHARS);
    (!text.is_empty()).then_some(text)
}

fn optional_label(raw: Option<&str>) -> Option<BrokerText> {
    let text = BrokerText::label(raw?);
    (!text.is_empty()).then_some(text)
}

/// The scan's rows in the broker's order, at most 50 kept.
pub(super) fn scan_result(value: Value) -> Result<ScanResult, GatewayFault> {
    let scan: ScanDto = match value {
        Value::Null => return Ok(ScanResult::bounded(Vec::new(), None)),
        other => dto::parse(other, "scanner run")?,
    };
    let contracts = scan.contracts.unwrap_or_default();
    let column = scan
        .scan_data_column_name
        .as_deref()
        .or_else(|| contracts.iter().find_map(|row| row.column_name.as_deref()))
        .and_then(|raw| optional_label(Some(raw)));
    let mut rows = Vec::with_capacity(contracts.len().min(64));
    for row in &contracts {
        let contract_id = row
            .contract_id()
            .ok_or_else(|| GatewayFault::invalid("a scan row has no contract id"))?;
        rows.push(ScanRow {
            contract_id,
            symbol: label(row.symbol.as_deref()),
            company_name: label(row.company_name.as_deref()),
            scan_value: short_text(row.scan_data.as_ref()),
            listing_exchange: optional_label(row.listing_exchange.as_deref()),
            security_type: code_of(row.sec_type.as_deref()),
        });
    }
    Ok(ScanResult::bounded(rows, column))
}

// ---------------------------------------------------------------------------------------------
// Fundamentals
// ---------------------------------------------------------------------------------------------

/// What one fundamentals snapshot showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FundamentalsReading {
    /// Identifiers only: ask again.
    NotReady,
    /// The gateway says there is no market data for the contract, and sent no value.
    NoData,
    /// Some values; those not filled in are listed in [`Fundamentals::missing`].
    Values(Box<Fundamentals>),
}

/// A numeric field. The gateway formats these for people; a placeholder such as `-` or
/// `N/A` (a company without earnings) means no value, not a malformed answer.
fn numeric(item: &Map<String, Value>, code: &str) -> Option<NumText> {
    match item.get(code)? {
        Value::Null => None,
        value => serde_json::from_value::<NumText>(value.clone()).ok(),
    }
}

fn decimal(item: &Map<String, Value>, code: &str) -> Option<Decimal> {
    numeric(item, code)?.decimal()
}

/// Market capitalisation: also read with a `T` (trillions) suffix, which the generic number
/// reader does not know; trailing zeros of a scaled value are dropped (`2.95T` is
/// 2950000000000).
fn market_cap(item: &Map<String, Value>) -> Option<Decimal> {
    if let Some(Value::String(text)) = item.get(field::MARKET_CAP)
        && let Some(trillions) = text.trim().strip_suffix('T')
    {
        let value = serde_json::from_value::<NumText>(Value::String(trillions.to_owned()))
            .ok()?
            .decimal()?;
        return value
            .checked_mul(Decimal::from(1_000_000_000_000_u64))
            .map(|cap| cap.normalize());
    }
    decimal(item, field::MARKET_CAP).map(|cap| cap.normalize())
}

fn price(item: &Map<String, Value>, code: &str) -> Option<Price> {
    numeric(item, code)?.price()
}

fn text(item: &Map<String, Value>, code: &str, max_chars: usize) -> Option<BrokerText> {
    let text = BrokerText::new(item.get(code)?.as_str()?, max_chars);
    (!text.is_empty()).then_some(text)
}

/// Reads one snapshot answer for `contract_id`.
pub(super) fn read_fundamentals(
    value: Value,
    contract_id: ContractId,
) -> Result<FundamentalsReading, GatewayFault> {
    let Some(item) = dto::market::snapshot_entry(value, contract_id)? else {
        return Ok(FundamentalsReading::NotReady);
    };
    let mut values = Fundamentals {
        market_cap: market_cap(&item),
        price_earnings: decimal(&item, field::PRICE_EARNINGS),
        earnings_per_share: decimal(&item, field::EARNINGS_PER_SHARE),
        dividend_amount: decimal(&item, field::DIVIDEND_AMOUNT),
        dividend_yield: numeric(&item, field::DIVIDEND_YIELD)
            .and_then(|raw| raw.percent_as_fraction()),
        ex_dividend_date: text(&item, field::EX_DIVIDEND_DATE, VALUE_CHARS),
        dividends_next_12_months: decimal(&item, field::DIVIDENDS_NEXT_12_MONTHS),
        dividends_trailing_12_months: decimal(&item, field::DIVIDENDS_TRAILING_12_MONTHS),
        beta: decimal(&item, field::BETA),
        high_52_week: price(&item, field::HIGH_52_WEEK),
        low_52_week: price(&item, field::LOW_52_WEEK),
        industry: text(
            &item,
            field::INDUSTRY,
            crate::domain::broker_text::LABEL_CHARS,
        ),
        category: text(
            &item,
            field::CATEGORY,
            crate::domain::broker_text::LABEL_CHARS,
        ),
        missing: Vec::new(),
    };
    if values.is_empty() {
        let no_data = item
            .get(field::AVAILABILITY)
            .and_then(Value::as_str)
            .is_some_and(|code| code.trim().starts_with('N'));
        return Ok(if no_data {
            FundamentalsReading::NoData
        } else {
            FundamentalsReading::NotReady
        });
    }
    values.missing = values.absent_fields();
    Ok(FundamentalsReading::Values(Box::new(values)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::research::FundamentalsField;

    fn conid() -> ContractId {
        ContractId::new(265_598).unwrap()
    }

    #[test]
    fn the_documented_params_example_is_read() {
        let value = json!({
            "scan_type_list": [
                { "display_name": "Top % Gainers", "code": "TOP_PERC_GAIN", "instruments": ["STK", "ETF.EQ.US"] },
                { "display_name": "bad", "code": "NOT A CODE" }
            ],
            "instrument_list": [ { "display_name": "US Stocks", "type": "STK", "filters": ["priceAbove"] } ],
            "filter_list": [ { "group": "priceAbove", "display_name": "Price Above", "code": "priceAbove", "type": "non-range" } ],
            "location_tree": [ { "display_name": "US Stocks", "type": "STK", "locations": [
                { "display_name": "Listed/NASDAQ", "type": "STK.US.MAJOR", "locations": [
                    { "display_name": "NASDAQ", "type": "STK.NASDAQ", "locations": [] } ] },
                { "display_name": "OTC Markets", "type": "STK.US.MINOR", "locations": null } ] } ]
        });
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let params = scanner_params(value, at).unwrap();
        assert_eq!(params.scan_types.len(), 1);
        assert_eq!(params.instruments[0].code.as_str(), "STK");
        let locations: Vec<&str> = params.locations.iter().map(|l| l.code.as_str()).collect();
        assert_eq!(locations, ["STK.US.MAJOR", "STK.NASDAQ", "STK.US.MINOR"]);
        assert_eq!(
            params.filters[0].kind.as_ref().unwrap().as_str(),
            "non-range"
        );
        assert_eq!(params.fetched_at, at);
    }

    #[test]
    fn fundamentals_fields_are_read_leniently() {
        let value = json!([{ "conid": 265598, "7289": "2.95T", "7290": "29.85", "7291": 6.44,
            "7287": "0.52%", "7293": "237.49", "7294": "C164.08", "7718": "-", "7280": "Tech\u{202E}nology" }]);
        let FundamentalsReading::Values(values) = read_fundamentals(value, conid()).unwrap() else {
            panic!("values expected")
        };
        assert_eq!(
            values.market_cap,
            Some(Decimal::from(2_950_000_000_000_u64))
        );
        assert_eq!(values.earnings_per_share, Some(Decimal::new(644, 2)));
        assert_eq!(values.dividend_yield, Some(Decimal::new(52, 4)));
        assert_eq!(values.low_52_week.unwrap().value(), Decimal::new(16408, 2));
        assert_eq!(values.industry.as_ref().unwrap().as_str(), "Technology");
        assert!(values.missing.contains(&FundamentalsField::Beta));
        assert!(!values.missing.contains(&FundamentalsField::MarketCap));
    }

    #[test]
    fn identifiers_only_is_not_ready_and_availability_n_is_no_data() {
        let ids = json!([{ "conid": 265598, "conidEx": "265598" }]);
        assert_eq!(
            read_fundamentals(ids, conid()).unwrap(),
            FundamentalsReading::NotReady
        );
        let none = json!([{ "conid": 265598, "6509": "N" }]);
        assert_eq!(
            read_fundamentals(none, conid()).unwrap(),
            FundamentalsReading::NoData
        );
    }

    #[test]
    fn scan_rows_need_a_contract_id() {
        let value = json!({ "contracts": [ { "symbol": "X", "company_name": "X INC" } ] });
        assert!(scan_result(value).is_err());
        let value = json!({ "contracts": [ { "conidex": "270639@SMART", "symbol": "SMCI",
            "company_name": "SUPER MICRO", "scan_data": 11.42, "column_name": "Chg%" } ] });
        let result = scan_result(value).unwrap();
        assert_eq!(result.rows[0].contract_id.value(), 270_639);
        assert_eq!(
            result.rows[0].scan_value.as_ref().unwrap().as_str(),
            "11.42"
        );
        assert_eq!(result.value_column.unwrap().as_str(), "Chg%");
    }
}
