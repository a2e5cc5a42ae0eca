//! The read use cases for scanners and fundamentals (issue 16): the scanner's parameters
//! (cached by the adapter, offered as bounded lists), one scan checked against those
//! parameters before it is run (at most 50 rows), and one contract's fundamentals from the
//! broker's documented market-data fields.
//!
//! Every name the broker's people wrote (scan names, company names, industries) is
//! [`BrokerText`] in a `broker_*` field; codes are checked identifiers.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::inputs::{MAX_JSON_INTEGER, number_as_text};
use super::{Definition, Entry, Hints, Outcome, UseCase};
use crate::app::audited::{AuditNote, CallContext};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input;
use crate::app::views::ContractView;
use crate::domain::broker_text::BrokerText;
use crate::domain::instrument::AssetClass;
use crate::domain::research::{
    FilterSetting, FilterValue, Fundamentals, MAX_SCAN_FILTERS, MAX_SCAN_ROWS, ScanRequest,
    ScanResult, ScannerCode, ScannerParams,
};
use crate::domain::scope::Scope;

/// The most entries of each parameter list shown in one answer.
pub const MAX_LISTED_PARAMS: usize = 100;

fn timestamp(value: DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn code(field: &'static str, raw: &str) -> Outcome<ScannerCode> {
    ScannerCode::parse(raw.trim()).map_err(|error| GatewayError::invalid_input(field, error))
}

// ---------------------------------------------------------------------------------------------
// scanner params
// ---------------------------------------------------------------------------------------------

/// The input of `scanner params`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScannerParamsInput {
    /// Only what applies to this instrument type code, e.g. STK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub instrument: Option<String>,
    /// Only scan types and filters whose code or name contains this text (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub query: Option<String>,
}

/// One scan type.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanTypeView {
    /// The code scanner run takes as scan_type.
    pub code: String,
    /// The broker's name (untrusted text).
    pub broker_display_name: BrokerText,
    /// The instrument type codes it runs on (empty: any).
    pub instruments: Vec<String>,
}

/// One instrument type.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanInstrumentView {
    /// The code scanner run takes as instrument.
    pub code: String,
    /// The broker's name (untrusted text).
    pub broker_display_name: BrokerText,
    /// How many filters it accepts (list them with this instrument as input).
    pub filter_count: usize,
}

/// One location.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanLocationView {
    /// The code scanner run takes as location.
    pub code: String,
    /// The broker's name (untrusted text).
    pub broker_display_name: BrokerText,
    /// The instrument type it belongs to.
    pub instrument: String,
}

/// One filter.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanFilterView {
    /// The code scanner run takes in filters.
    pub code: String,
    /// The broker's name (untrusted text).
    pub broker_display_name: BrokerText,
    /// The broker's kind of filter, e.g. range or non-range.
    pub kind: Option<String>,
}

/// How many entries matched, before the lists were bounded.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct ParamsTotalsView {
    /// Scan types.
    pub scan_types: usize,
    /// Instrument types.
    pub instruments: usize,
    /// Locations.
    pub locations: usize,
    /// Filters.
    pub filters: usize,
}

/// The scanner's parameters.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScannerParamsView {
    /// When the broker was asked (the adapter caches the answer; the broker allows 1 per 15 min).
    pub fetched_at: String,
    /// Age of the answer in seconds.
    pub age_seconds: i64,
    /// Scan types.
    pub scan_types: Vec<ScanTypeView>,
    /// Instrument types.
    pub instruments: Vec<ScanInstrumentView>,
    /// Locations.
    pub locations: Vec<ScanLocationView>,
    /// Filters.
    pub filters: Vec<ScanFilterView>,
    /// How many entries matched in each list.
    pub totals: ParamsTotalsView,
    /// True when a list was cut at 100 entries: narrow with instrument or query.
    pub truncated: bool,
}

fn matches_query(query: Option<&str>, code: &ScannerCode, name: &BrokerText) -> bool {
    query.is_none_or(|query| {
        let query = query.to_lowercase();
        code.as_str().to_lowercase().contains(&query)
            || name.as_str().to_lowercase().contains(&query)
    })
}

/// `list` cut at [`MAX_LISTED_PARAMS`] entries.
fn bounded<T>(mut list: Vec<T>) -> Vec<T> {
    list.truncate(MAX_LISTED_PARAMS);
    list
}

/// The parameters narrowed to `instrument` and `query`, each list bounded.
fn params_view(
    params: &ScannerParams,
    instrument: Option<&ScannerCode>,
    query: Option<&str>,
    now: DateTime<Utc>,
) -> ScannerParamsView {
    let chosen =
        instrument.and_then(|code| params.instruments.iter().find(|known| &known.code == code));
    let scan_types: Vec<ScanTypeView> = params
        .scan_types
        .iter()
        .filter(|scan| {
            instrument
                .is_none_or(|code| scan.instruments.is_empty() || scan.instruments.contains(code))
        })
        .filter(|scan| matches_query(query, &scan.code, &scan.display_name))
        .map(|scan| ScanTypeView {
            code: scan.code.to_string(),
            broker_display_name: scan.display_name.clone(),
            instruments: scan.instruments.iter().map(ToString::to_string).collect(),
        })
        .collect();
    let instruments: Vec<ScanInstrumentView> = params
        .instruments
        .iter()
        .filter(|known| instrument.is_none_or(|code| &known.code == code))
        .map(|known| ScanInstrumentView {
            code: known.code.to_string(),
            broker_display_name: known.display_name.clone(),
            filter_count: known.filters.len(),
        })
        .collect();
    let locations: Vec<ScanLocationView> = params
        .locations
        .iter()
        .filter(|location| {
            instrument.is_none_or(|code| {
                &location.instrument == code
                    || code.as_str().split('.').next() == Some(location.instrument.as_str())
            })
        })
        .map(|location| ScanLocationView {
            code: location.code.to_string(),
            broker_display_name: location.display_name.clone(),
            instrument: location.instrument.to_string(),
        })
        .collect();
    let filters: Vec<ScanFilterView> = params
        .filters
        .iter()
        .filter(|filter| {
            chosen.is_none_or(|chosen| {
                chosen.filters.is_empty() || chosen.filters.contains(&filter.code)
            })
        })
        .filter(|filter| matches_query(query, &filter.code, &filter.display_name))
        .map(|filter| ScanFilterView {
            code: filter.code.to_string(),
            broker_display_name: filter.display_name.clone(),
            kind: filter.kind.as_ref().map(ToString::to_string),
        })
        .collect();
    let totals = ParamsTotalsView {
        scan_types: scan_types.len(),
        instruments: instruments.len(),
        locations: locations.len(),
        filters: filters.len(),
    };
    let truncated = [
        totals.scan_types,
        totals.instruments,
        totals.locations,
        totals.filters,
    ]
    .iter()
    .any(|count| *count > MAX_LISTED_PARAMS);
    ScannerParamsView {
        fetched_at: timestamp(params.fetched_at),
        age_seconds: (now - params.fetched_at).num_seconds().max(0),
        scan_types: bounded(scan_types),
        instruments: bounded(instruments),
        locations: bounded(locations),
        filters: bounded(filters),
        totals,
        truncated,
    }
}

/// `scanner params`: what the market scanner offers.
#[derive(Debug)]
pub struct ScannerParamsRead;

impl UseCase for ScannerParamsRead {
    type Input = ScannerParamsInput;
    type Output = ScannerParamsView;
    const DEFINITION: Definition = Definition {
        name: "scanner params",
        command: "scanner params",
        tool: "ibkr_scanner_params",
        title: "Scanner parameters",
        description: "Scan types, instrument types, locations and filter codes the market scanner offers (cached). Use before ibkr_scanner_run.",
        scope: Scope::ScannerRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: ScannerParamsInput,
    ) -> Outcome<ScannerParamsView> {
        let instrument = input
            .instrument
            .as_deref()
            .map(|raw| code("instrument", raw))
            .transpose()?;
        let query = input
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        let params = gateway.broker().scanner_params().await?;
        Ok(params_view(
            &params,
            instrument.as_ref(),
            query,
            gateway.clock().now(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// scanner run
// ---------------------------------------------------------------------------------------------

/// The input of `scanner run`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScannerRunInput {
    /// Instrument type code from ibkr_scanner_params, e.g. STK.
    #[schemars(length(min = 1, max = 64))]
    pub instrument: String,
    /// Scan type code from ibkr_scanner_params, e.g. TOP_PERC_GAIN.
    #[schemars(length(min = 1, max = 64))]
    pub scan_type: String,
    /// Location code from ibkr_scanner_params, e.g. STK.US.MAJOR.
    #[schemars(length(min = 1, max = 64))]
    pub location: String,
    /// Filters as code=value pairs, comma-separated, e.g. priceAbove=5,volumeAbove=100000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000))]
    pub filters: Option<String>,
}

/// One row of a scan.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanRowView {
    /// 1 for the first row, in the broker's rank order.
    pub rank: usize,
    /// IBKR contract id.
    pub contract_id: u64,
    /// Symbol (untrusted text).
    pub broker_symbol: BrokerText,
    /// Company name (untrusted text).
    pub broker_company_name: BrokerText,
    /// The scan's value for the row, as the broker formats it (untrusted text).
    pub broker_scan_value: Option<BrokerText>,
    /// Listing exchange (untrusted text).
    pub broker_listing_exchange: Option<BrokerText>,
    /// Security type code, e.g. STK.
    pub security_type: Option<String>,
}

/// A scan's result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanView {
    /// The scan type run.
    pub scan_type: String,
    /// The instrument type.
    pub instrument: String,
    /// The location.
    pub location: String,
    /// The name of the scan's value column (untrusted text).
    pub broker_value_column: Option<BrokerText>,
    /// At most 50 rows.
    pub rows: Vec<ScanRowView>,
    /// True when the broker sent more rows than were kept.
    pub truncated: bool,
}

/// `code=value,code=value` as filter settings.
fn filter_settings(raw: Option<&str>) -> Outcome<Vec<FilterSetting>> {
    let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
        return Ok(Vec::new());
    };
    let invalid = |message: &str| GatewayError::invalid_input("filters", message);
    let settings = raw
        .split(',')
        .map(|pair| {
            let (code, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid("each filter is code=value"))?;
            Ok(FilterSetting {
                code: ScannerCode::parse(code.trim())
                    .map_err(|_| invalid("a filter code is malformed"))?,
                value: FilterValue::parse(value.trim()).map_err(|_| {
                    invalid("a filter value must be a number, true, false or a code")
                })?,
            })
        })
        .collect::<Outcome<Vec<_>>>()?;
    if settings.len() > MAX_SCAN_FILTERS {
        return Err(invalid("at most 20 filters"));
    }
    Ok(settings)
}

fn scan_view(request: &ScanRequest, result: ScanResult) -> ScanView {
    let truncated = result.truncated || result.rows.len() > MAX_SCAN_ROWS;
    ScanView {
        scan_type: request.scan_type.to_string(),
        instrument: request.instrument.to_string(),
        location: request.location.to_string(),
        broker_value_column: result.value_column,
        rows: result
            .rows
            .into_iter()
            .take(MAX_SCAN_ROWS)
            .enumerate()
            .map(|(index, row)| ScanRowView {
                rank: index + 1,
                contract_id: row.contract_id.value(),
                broker_symbol: row.symbol,
                broker_company_name: row.company_name,
                broker_scan_value: row.scan_value,
                broker_listing_exchange: row.listing_exchange,
                security_type: row.security_type.map(|code| code.to_string()),
            })
            .collect(),
        truncated,
    }
}

/// `scanner run`: one market scan.
#[derive(Debug)]
pub struct ScannerRun;

impl UseCase for ScannerRun {
    type Input = ScannerRunInput;
    type Output = ScanView;
    const DEFINITION: Definition = Definition {
        name: "scanner run",
        command: "scanner run",
        tool: "ibkr_scanner_run",
        title: "Run a market scan",
        description: "Runs one market scan (codes from ibkr_scanner_params) with optional filters; at most 50 ranked contracts.",
        scope: Scope::ScannerRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: ScannerRunInput,
    ) -> Outcome<ScanView> {
        let request = ScanRequest {
            instrument: code("instrument", &input.instrument)?,
            scan_type: code("scan_type", &input.scan_type)?,
            location: code("location", &input.location)?,
            filters: filter_settings(input.filters.as_deref())?,
        };
        // Checked before the run: a scan the broker does not offer is never sent.
        let params = gateway.broker().scanner_params().await?;
        params
            .check(&request)
            .map_err(|error| GatewayError::invalid_input(error.field(), error))?;
        let result = gateway.broker().run_scanner(&request).await?;
        Ok(scan_view(&request, result))
    }
}

// ---------------------------------------------------------------------------------------------
// fundamentals
// ---------------------------------------------------------------------------------------------

/// The input of `fundamentals show`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FundamentalsInput {
    /// IBKR contract id (conid) of a stock or ETF, e.g. from ibkr_contracts_search.
    #[serde(deserialize_with = "number_as_text")]
    #[schemars(with = "u64", range(min = 1, max = MAX_JSON_INTEGER))]
    pub contract_id: String,
}

/// Dividend figures.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DividendsView {
    /// Dividend amount.
    pub amount: Option<Decimal>,
    /// Yield as a fraction (0.0052 is 0.52%).
    pub r#yield: Option<Decimal>,
    /// Ex-dividend date, as the broker formats it (untrusted text).
    pub broker_ex_date: Option<BrokerText>,
    /// Expected over the next 12 months.
    pub next_12_months: Option<Decimal>,
    /// Paid over the trailing 12 months.
    pub trailing_12_months: Option<Decimal>,
}

/// The 52-week range.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RangeView {
    /// Highest price.
    pub high: Option<Decimal>,
    /// Lowest price.
    pub low: Option<Decimal>,
}

/// One contract's fundamentals; decimals are strings, null when not filled in.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FundamentalsView {
    /// The contract.
    pub contract: ContractView,
    /// When the values were read.
    pub as_of: String,
    /// Market capitalisation, in the contract's currency.
    pub market_cap: Option<Decimal>,
    /// Price to earnings.
    pub price_earnings: Option<Decimal>,
    /// Earnings per share.
    pub earnings_per_share: Option<Decimal>,
    /// Beta.
    pub beta: Option<Decimal>,
    /// Dividend amount, yield, ex-date and 12-month sums.
    pub dividends: DividendsView,
    /// 52-week high and low.
    pub range_52_week: RangeView,
    /// Industry (untrusted text).
    pub broker_industry: Option<BrokerText>,
    /// Category (untrusted text).
    pub broker_category: Option<BrokerText>,
    /// The fields the broker had not filled in (dotted paths); each is null.
    pub missing_fields: Vec<&'static str>,
}

impl FundamentalsView {
    fn new(contract: ContractView, values: Fundamentals, now: DateTime<Utc>) -> Self {
        Self {
            contract,
            as_of: timestamp(now),
            market_cap: values.market_cap,
            price_earnings: values.price_earnings,
            earnings_per_share: values.earnings_per_share,
            beta: values.beta,
            dividends: DividendsView {
                amount: values.dividend_amount,
                r#yield: values.dividend_yield,
                broker_ex_date: values.ex_dividend_date,
                next_12_months: values.dividends_next_12_months,
                trailing_12_months: values.dividends_trailing_12_months,
            },
            range_52_week: RangeView {
                high: values.high_52_week.map(|price| price.value()),
                low: values.low_52_week.map(|price| price.value()),
            },
            broker_industry: values.industry,
            broker_category: values.category,
            missing_fields: values.missing.iter().map(|field| field.as_str()).collect(),
        }
    }
}

/// `fundamentals show`: one stock's or ETF's fundamentals.
#[derive(Debug)]
pub struct FundamentalsShow;

impl UseCase for FundamentalsShow {
    type Input = FundamentalsInput;
    type Output = FundamentalsView;
    const DEFINITION: Definition = Definition {
        name: "fundamentals show",
        command: "fundamentals show",
        tool: "ibkr_fundamentals",
        title: "Fundamentals",
        description: "Market cap, P/E, EPS, dividends, beta, 52-week range and industry of one stock or ETF, from the broker's market data fields.",
        scope: Scope::FundamentalsRead,
        toolset: Toolset::Market,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        _: &AuditNote,
        input: FundamentalsInput,
    ) -> Outcome<FundamentalsView> {
        let contract_id = input::contract_id(&input.contract_id)?;
        let contract = gateway.broker().contract(contract_id).await?;
        if !matches!(contract.asset_class, AssetClass::Stock | AssetClass::Etf) {
            return Err(GatewayError::invalid_input(
                "contract_id",
                "fundamentals exist for stocks and ETFs only",
            ));
        }
        let values = gateway.broker().fundamentals(contract_id).await?;
        Ok(FundamentalsView::new(
            ContractView::from(&contract),
            values,
            gateway.clock().now(),
        ))
    }
}

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    vec![
        Entry::of::<ScannerParamsRead>(),
        Entry::of::<ScannerRun>(),
        Entry::of::<FundamentalsShow>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_as_code_value_pairs() {
        let settings = filter_settings(Some("priceAbove=5, hasOptionsIs=true")).unwrap();
        assert_eq!(settings.len(), 2);
        assert_eq!(settings[1].value, FilterValue::Flag(true));
        assert!(filter_settings(None).unwrap().is_empty());
        for bad in ["priceAbove", "price Above=5", "priceAbove=1;DROP"] {
            let error = filter_settings(Some(bad)).unwrap_err();
            assert_eq!(error.code().as_str(), "INPUT_INVALID", "{bad}");
        }
        let many = vec!["priceAbove=1"; 21].join(",");
        assert!(filter_settings(Some(&many)).is_err());
    }

    #[test]
    fn descriptions_fit_the_budget() {
        for entry in entries() {
            assert!(entry.definition().description.len() < 160);
        }
    }
}
