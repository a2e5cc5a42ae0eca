//! The Client Portal mapping for option chains, greeks and implied volatility (issue 16).
//!
//! A chain is the documented three-step walk (reference §4.1–§4.3), each an `/iserver` call
//! after the `/iserver/accounts` pre-flight and under the shared pacing limiter:
//! 1. `GET /iserver/secdef/search?symbol=…&secType=STK|IND`: the entry of the underlying's
//!    conid, whose `OPT` section lists the months (`JUL25;AUG25;…`);
//! 2. `GET /iserver/secdef/strikes?conid=…&sectype=OPT&month=…&exchange=SMART`: the call and
//!    put strikes of the month;
//! 3. `GET /iserver/secdef/info?conid=…&sectype=OPT&month=…&exchange=SMART&strike=…[&right=C|P]`
//!    once per kept strike (the right is left out when both are asked for: the gateway then
//!    answers both), so at most `max_strikes` look-ups.
//!
//! Greeks are one snapshot (§5.1) with the quote fields, the greeks (7308–7311), the option's
//! implied volatility (7633), open interest (7638) and option volume (7089), asked again like
//! the quote until they fill in.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ClientPortalBroker;
use super::client::ApiRequest;
use super::dto::market::{SnapshotReading, SnapshotRules, read_snapshot, snapshot_fields};
use super::dto::{parse, yyyymmdd};
use super::errors::{ErrorContext, GatewayFault};
use super::lenient::{NumText, WireConid};
use crate::domain::broker_text::BrokerText;
use crate::domain::ids::ContractId;
use crate::domain::instrument::{AssetClass, OptionRight};
use crate::domain::market_data::Quote;
use crate::domain::money::{Price, Quantity};
use crate::domain::options::{
    ChainContract, OptionChain, OptionChainRequest, OptionGreeks, OptionMonth, RightSelection,
    select_strikes,
};
use crate::ports::broker_reader::BrokerError;

/// The exchange asked for strikes and contracts: the smart router lists them all.
const CHAIN_EXCHANGE: &str = "SMART";
/// Option open interest (reference §5.1).
const OPEN_INTEREST: &str = "7638";
/// Option volume (reference §5.1).
const OPTION_VOLUME: &str = "7089";
/// The most months read from a search entry.
const MAX_MONTHS: usize = 60;
/// The most strikes read from one strikes answer.
const MAX_LISTED_STRIKES: usize = 2_000;
/// The most contracts read from one info answer (weeklies of a month, both rights).
const MAX_INFO_CONTRACTS: usize = 20;

/// One `/iserver/secdef/search` entry, as far as the chain needs it.
#[derive(Debug, Deserialize)]
struct SearchEntryDto {
    conid: Option<WireConid>,
    #[serde(default)]
    sections: Option<Vec<SectionDto>>,
}

#[derive(Debug, Deserialize)]
struct SectionDto {
    #[serde(rename = "secType")]
    sec_type: Option<String>,
    months: Option<String>,
}

/// `/iserver/secdef/strikes`.
#[derive(Debug, Default, Deserialize)]
struct StrikesDto {
    #[serde(default)]
    call: Option<Vec<NumText>>,
    #[serde(default)]
    put: Option<Vec<NumText>>,
}

/// One `/iserver/secdef/info` item.
#[derive(Debug, Deserialize)]
struct InfoDto {
    conid: Option<WireConid>,
    #[serde(rename = "secType")]
    sec_type: Option<String>,
    right: Option<String>,
    strike: Option<NumText>,
    #[serde(rename = "maturityDate")]
    maturity_date: Option<String>,
    multiplier: Option<NumText>,
    desc2: Option<String>,
}

/// The months of the underlying's `OPT` section, or `None` when the search did not return the
/// underlying at all.
fn months_of(
    value: Value,
    underlying: ContractId,
) -> Result<Option<Vec<OptionMonth>>, GatewayFault> {
    let entries: Vec<SearchEntryDto> = match value {
        Value::Null => return Ok(None),
        Value::Array(_) => parse(value, "contract search")?,
        _ => {
            return Err(GatewayFault::invalid(
                "the contract search answer is not a list",
            ));
        }
    };
    let Some(entry) = entries
        .into_iter()
        .find(|entry| entry.conid.and_then(WireConid::contract_id) == Some(underlying))
    else {
        return Ok(None);
    };
    let mut months = Vec::new();
    for section in entry.sections.unwrap_or_default() {
        let is_option = section
            .sec_type
            .as_deref()
            .is_some_and(|sec_type| sec_type.trim().eq_ignore_ascii_case("OPT"));
        if !is_option {
            continue;
        }
        for raw in section.months.unwrap_or_default().split(';') {
            if raw.trim().is_empty() {
                continue;
            }
            // A month the domain cannot read is skipped, not guessed.
            if let Ok(month) = OptionMonth::parse(raw)
                && !months.contains(&month)
            {
                months.push(month);
            }
        }
    }
    months.sort();
    months.truncate(MAX_MONTHS);
    Ok(Some(months))
}

fn strikes_of(list: Option<Vec<NumText>>) -> Result<Vec<Price>, GatewayFault> {
    let list = list.unwrap_or_default();
    if list.len() > MAX_LISTED_STRIKES {
        return Err(GatewayFault::invalid("the strikes answer is oversize"));
    }
    list.iter()
        .map(|raw| {
            raw.price()
                .ok_or_else(|| GatewayFault::invalid("a listed strike is malformed"))
        })
        .collect()
}

/// The listed strikes of the selected rights, ascending and distinct.
fn listed_strikes(value: Value, rights: RightSelection) -> Result<Vec<Price>, GatewayFault> {
    let strikes: StrikesDto = match value {
        Value::Null => StrikesDto::default(),
        other => parse(other, "option strikes")?,
    };
    let mut listed = Vec::new();
    if rights.includes(OptionRight::Call) {
        listed.extend(strikes_of(strikes.call)?);
    }
    if rights.includes(OptionRight::Put) {
        listed.extend(strikes_of(strikes.put)?);
    }
    listed.sort();
    listed.dedup();
    Ok(listed)
}

/// The option contracts of one info answer at `strike`, in `month`, of the selected rights.
fn contracts_of(
    value: Value,
    request: &OptionChainRequest,
    strike: Price,
) -> Result<Vec<ChainContract>, GatewayFault> {
    // Documented as an array; one spec shows a single object: accept both.
    let items: Vec<InfoDto> = match value {
        Value::Null => Vec::new(),
        Value::Array(_) => parse(value, "contract info")?,
        Value::Object(_) => vec![parse(value, "contract info")?],
        _ => {
            return Err(GatewayFault::invalid(
                "the contract info answer is not a list",
            ));
        }
    };
    let mut contracts = Vec::new();
    for item in items.into_iter().take(MAX_INFO_CONTRACTS) {
        let is_option = item
            .sec_type
            .as_deref()
            .is_none_or(|sec_type| sec_type.trim().eq_ignore_ascii_case("OPT"));
        let right = match item.right.as_deref().map(str::trim) {
            Some("C") => OptionRight::Call,
            Some("P") => OptionRight::Put,
            // `?` marks a non-option; anything else is not a contract of this chain.
            _ => continue,
        };
        if !is_option || !request.rights.includes(right) {
            continue;
        }
        let contract_id = item
            .conid
            .and_then(WireConid::contract_id)
            .ok_or_else(|| GatewayFault::invalid("an option contract has no conid"))?;
        let item_strike = item
            .strike
            .as_ref()
            .and_then(NumText::price)
            .ok_or_else(|| GatewayFault::invalid("an option contract has no strike"))?;
        let expiry = item
            .maturity_date
            .as_deref()
            .and_then(yyyymmdd)
            .ok_or_else(|| GatewayFault::invalid("an option contract has no maturity date"))?;
        if item_strike != strike || OptionMonth::of(expiry) != request.month {
            continue;
        }
        let multiplier = match &item.multiplier {
            None => rust_decimal::Decimal::ONE_HUNDRED,
            Some(raw) => raw
                .decimal()
                .filter(|value| value.is_sign_positive() && !value.is_zero())
                .ok_or_else(|| GatewayFault::invalid("an option multiplier is malformed"))?,
        };
        contracts.push(ChainContract {
            contract_id,
            expiry,
            strike: item_strike,
            right,
            multiplier,
            description: BrokerText::label(item.desc2.as_deref().unwrap_or_default()),
        });
    }
    Ok(contracts)
}

/// Open interest or option volume from the snapshot entry of `contract_id`.
fn extra_quantity(
    value: &Value,
    contract_id: ContractId,
    code: &'static str,
) -> Result<Option<Quantity>, GatewayFault> {
    let Some(items) = value.as_array() else {
        return Ok(None);
    };
    let item: Option<&Map<String, Value>> =
        items.iter().filter_map(Value::as_object).find(|item| {
            item.get("conid")
                .cloned()
                .and_then(|raw| serde_json::from_value::<WireConid>(raw).ok())
                .is_some_and(|conid| conid.0 == contract_id.value())
        });
    match item.and_then(|item| item.get(code)) {
        None | Some(Value::Null) => Ok(None),
        Some(raw) => serde_json::from_value::<NumText>(raw.clone())
            .ok()
            .and_then(|number| number.quantity())
            .map(Some)
            .ok_or_else(|| GatewayFault::invalid("a snapshot option field is not numeric")),
    }
}

impl ClientPortalBroker {
    /// The chain walk: search, strikes, then info at the kept strikes.
    pub(super) async fn read_option_chain(
        &self,
        request: &OptionChainRequest,
    ) -> Result<OptionChain, GatewayFault> {
        let sec_type = match request.asset_class {
            AssetClass::Index => "IND",
            _ => "STK",
        };
        let search = ApiRequest::get(&["iserver", "secdef", "search"])
            .query("symbol", request.symbol.clone())
            .query("secType", sec_type)
            .about(ErrorContext::contract(request.underlying));
        let value = match self.iserver(&search).await {
            Err(GatewayFault::NothingFound) => Value::Null,
            other => other?,
        };
        let Some(months) = months_of(value, request.underlying)? else {
            return Err(GatewayFault::Broker(BrokerError::UnknownContract {
                contract_id: request.underlying,
            }));
        };
        if !months.contains(&request.month) {
            return Ok(OptionChain::unlisted(request, months));
        }
        let month = request.month.to_string();
        let underlying = request.underlying.to_string();
        let strikes = ApiRequest::get(&["iserver", "secdef", "strikes"])
            .query("conid", underlying.clone())
            .query("sectype", "OPT")
            .query("month", month.clone())
            .query("exchange", CHAIN_EXCHANGE)
            .about(ErrorContext::contract(request.underlying));
        let value = match self.iserver(&strikes).await {
            Err(GatewayFault::NothingFound) => Value::Null,
            other => other?,
        };
        let listed = listed_strikes(value, request.rights)?;
        let kept = select_strikes(
            &listed,
            request.reference_price,
            usize::from(request.max_strikes),
        );
        let mut contracts = Vec::new();
        for strike in &kept {
            let mut info = ApiRequest::get(&["iserver", "secdef", "info"])
                .query("conid", underlying.clone())
                .query("sectype", "OPT")
                .query("month", month.clone())
                .query("exchange", CHAIN_EXCHANGE)
                .query("strike", strike.value().normalize().to_string());
            if let [right] = request.rights.rights() {
                info = info.query("right", right.code());
            }
            let info = info.about(ErrorContext::contract(request.underlying));
            let value = match self.iserver(&info).await {
                Err(GatewayFault::NothingFound) => Value::Null,
                other => other?,
            };
            contracts.extend(contracts_of(value, request, *strike)?);
        }
        let mut chain = OptionChain {
            underlying: request.underlying,
            month: request.month,
            months_listed: months,
            strikes_listed: listed.len(),
            centre: request.centre(),
            strikes: kept,
            contracts,
        };
        chain.normalize();
        Ok(chain)
    }

    /// One option's greeks, implied volatility, open interest and option volume.
    pub(super) async fn read_option_greeks(
        &self,
        contract_id: ContractId,
    ) -> Result<OptionGreeks, GatewayFault> {
        let contract = self.contract_by_id(contract_id).await?;
        if contract.option.is_none() {
            // No market data is asked for a non-option.
            return Err(GatewayFault::Broker(BrokerError::MarketDataUnavailable {
                contract_id,
            }));
        }
        let fields = format!("{},{OPEN_INTEREST},{OPTION_VOLUME}", snapshot_fields(true));
        let request = ApiRequest::get(&["iserver", "marketdata", "snapshot"])
            .query("conids", contract_id.to_string())
            .query("fields", fields)
            .about(ErrorContext::contract(contract_id));
        let mut partial: Option<(Quote, Option<Quantity>, Option<Quantity>)> = None;
        for attempt in 0..self.snapshot_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.snapshot_retry_pause).await;
            }
            let value = self.iserver(&request).await?;
            let open_interest = extra_quantity(&value, contract_id, OPEN_INTEREST)?;
            let option_volume = extra_quantity(&value, contract_id, OPTION_VOLUME)?;
            let rules = SnapshotRules {
                contract_id,
                expects_greeks: true,
                now: self.clock.now(),
                stale_after: self.quote_stale_after,
            };
            match read_snapshot(value, rules)? {
                SnapshotReading::Ready(quote) => {
                    return Ok(OptionGreeks {
                        quote: *quote,
                        open_interest,
                        option_volume,
                    });
                }
                SnapshotReading::NoData => {
                    return Err(GatewayFault::Broker(BrokerError::MarketDataUnavailable {
                        contract_id,
                    }));
                }
                SnapshotReading::Partial(quote) => {
                    partial = Some((*quote, open_interest, option_volume));
                }
                SnapshotReading::NotReady => {}
            }
        }
        partial
            .map(|(quote, open_interest, option_volume)| OptionGreeks {
                quote,
                open_interest,
                option_volume,
            })
            .ok_or(GatewayFault::Broker(BrokerError::MarketDataIncomplete {
                contract_id,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(rights: RightSelection) -> OptionChainRequest {
        OptionChainRequest {
            underlying: ContractId::new(265_598).unwrap(),
            symbol: "AAPL".into(),
            asset_class: AssetClass::Stock,
            month: OptionMonth::parse("OCT25").unwrap(),
            rights,
            max_strikes: 10,
            reference_price: None,
        }
    }

    #[test]
    fn months_come_from_the_underlyings_opt_section() {
        let answer = json!([
            {"conid": "265598", "sections": [
                {"secType": "STK"},
                {"secType": "OPT", "months": "JUL25;AUG25;bogus;OCT25", "exchange": "SMART"}
            ]},
            {"conid": "38708077", "sections": [{"secType": "OPT", "months": "JAN30"}]}
        ]);
        let months = months_of(answer, ContractId::new(265_598).unwrap())
            .unwrap()
            .unwrap();
        let text: Vec<String> = months.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["JUL25", "AUG25", "OCT25"]);
        assert_eq!(
            months_of(json!([]), ContractId::new(265_598).unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn strikes_accept_numbers_and_strings() {
        let listed = listed_strikes(
            json!({"call": [195.0, "197.5", 200], "put": [190, 195]}),
            RightSelection::Calls,
        )
        .unwrap();
        assert_eq!(listed.len(), 3);
        let both = listed_strikes(
            json!({"call": [195.0, "197.5"], "put": [190, 195]}),
            RightSelection::Both,
        )
        .unwrap();
        assert_eq!(both.len(), 3);
        assert!(listed_strikes(json!({"call": ["abc"]}), RightSelection::Calls).is_err());
    }

    #[test]
    fn info_keeps_options_of_the_strike_and_month() {
        let answer = json!([
            {"conid": 781234561, "secType": "OPT", "right": "C", "strike": 210.0,
             "maturityDate": "20251017", "multiplier": "100", "desc2": "OCT 17 '25 210 Call"},
            {"conid": 781234907, "secType": "OPT", "right": "P", "strike": "210",
             "maturityDate": "20251017", "multiplier": "100", "desc2": "OCT 17 '25 210 Put"},
            {"conid": 781234999, "secType": "OPT", "right": "C", "strike": 210.0,
             "maturityDate": "20251121", "multiplier": "100"},
            {"conid": 1, "secType": "STK", "right": "?"}
        ]);
        let strike = Price::parse("210").unwrap();
        let calls = contracts_of(answer.clone(), &request(RightSelection::Calls), strike).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].description.as_str(), "OCT 17 '25 210 Call");
        let both = contracts_of(answer, &request(RightSelection::Both), strike).unwrap();
        assert_eq!(both.len(), 2);
        let single = json!({"conid": 5, "secType": "OPT", "right": "P", "strike": 210,
            "maturityDate": "20251003"});
        assert_eq!(
            contracts_of(single, &request(RightSelection::Puts), strike)
                .unwrap()
                .len(),
            1
        );
    }
}
