//! Contracts: `/iserver/secdef/search` (which conids match a text) and `/trsrv/secdef` (what
//! each conid is). Position items carry the same contract fields as `/trsrv/secdef` items, so
//! one wire type and one conversion serve both.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::yyyymmdd;
use crate::adapters::outbound::client_portal::errors::GatewayFault;
use crate::adapters::outbound::client_portal::lenient::{NumText, WireConid, clean_text};
use crate::domain::ids::ContractId;
use crate::domain::instrument::{AssetClass, Contract, OptionRight, OptionTerms};
use crate::domain::money::{Currency, Price};

/// The longest symbol kept.
const MAX_SYMBOL_CHARS: usize = 32;
/// The longest description kept.
const MAX_DESCRIPTION_CHARS: usize = 120;

/// The gateway's security type, with an explicit unknown variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecType {
    Stock,
    Option,
    Future,
    FutureOption,
    Cash,
    Index,
    Bond,
    Crypto,
    /// `CFD`, `WAR`, `FUND`, `BAG`, … (no domain asset class yet).
    Unknown(String),
}

impl SecType {
    pub(crate) fn parse(raw: &str) -> Self {
        match raw.trim().to_ascii_uppercase().as_str() {
            "STK" => Self::Stock,
            "OPT" => Self::Option,
            "FUT" => Self::Future,
            "FOP" => Self::FutureOption,
            "CASH" => Self::Cash,
            "IND" => Self::Index,
            "BOND" => Self::Bond,
            "CRYPTO" => Self::Crypto,
            other => Self::Unknown(other.to_owned()),
        }
    }

    fn is_option_like(&self) -> bool {
        matches!(self, Self::Option | Self::FutureOption)
    }

    fn is_derivative(&self) -> bool {
        matches!(self, Self::Option | Self::FutureOption | Self::Future)
    }
}

/// The contract fields of a `/trsrv/secdef` item or a position item.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct SecdefDto {
    #[serde(default)]
    pub(crate) conid: Option<WireConid>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default, rename = "assetClass")]
    asset_class: Option<String>,
    #[serde(default, rename = "listingExchange")]
    listing_exchange: Option<String>,
    #[serde(default)]
    ticker: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "fullName")]
    full_name: Option<String>,
    #[serde(default)]
    expiry: Option<String>,
    #[serde(default, rename = "lastTradingDay")]
    last_trading_day: Option<String>,
    #[serde(default, rename = "putOrCall")]
    put_or_call: Option<String>,
    #[serde(default)]
    strike: Option<NumText>,
    #[serde(default, rename = "undConid")]
    underlying: Option<WireConid>,
    #[serde(default)]
    multiplier: Option<NumText>,
    #[serde(default, rename = "type")]
    instrument_type: Option<String>,
}

/// Why contract fields could not become a [`Contract`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContractFieldsError {
    /// A required field is missing or malformed.
    Invalid(&'static str),
}

impl From<ContractFieldsError> for GatewayFault {
    fn from(error: ContractFieldsError) -> Self {
        match error {
            ContractFieldsError::Invalid(detail) => GatewayFault::invalid(detail),
        }
    }
}

fn non_empty(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|text| !text.is_empty())
}

impl SecdefDto {
    /// The domain contract.
    pub(crate) fn try_into_domain(&self) -> Result<Contract, ContractFieldsError> {
        use ContractFieldsError::Invalid;
        let id = self
            .conid
            .and_then(WireConid::contract_id)
            .ok_or(Invalid("a contract has no valid conid"))?;
        let sec_type = SecType::parse(self.asset_class.as_deref().unwrap_or_default());
        let is_etf = non_empty(self.instrument_type.as_deref())
            .is_some_and(|kind| kind.eq_ignore_ascii_case("ETF"));
        let asset_class = match &sec_type {
            SecType::Stock if is_etf => AssetClass::Etf,
            SecType::Stock => AssetClass::Stock,
            SecType::Option => AssetClass::Option,
            SecType::Future => AssetClass::Future,
            SecType::FutureOption => AssetClass::FutureOption,
            SecType::Cash => AssetClass::Forex,
            SecType::Index => AssetClass::Index,
            SecType::Bond => AssetClass::Bond,
            SecType::Crypto => AssetClass::Crypto,
            // CFDs, warrants, funds and other types the domain does not model are kept as
            // `Other`, so a position in one never hides the rest of the portfolio.
            SecType::Unknown(_) => AssetClass::Other,
        };
        let currency = non_empty(self.currency.as_deref())
            .and_then(|raw| Currency::parse(raw).ok())
            .ok_or(Invalid("a contract has no valid currency"))?;
        let symbol = non_empty(self.ticker.as_deref())
            .map(|raw| clean_text(raw, MAX_SYMBOL_CHARS))
            .filter(|symbol| !symbol.is_empty())
            .ok_or(Invalid("a contract has no symbol"))?;
        let exchange = non_empty(self.listing_exchange.as_deref())
            .map(|raw| clean_text(raw, MAX_SYMBOL_CHARS))
            .ok_or(Invalid("a contract has no listing exchange"))?;
        let description = non_empty(self.name.as_deref())
            .or_else(|| non_empty(self.full_name.as_deref()))
            .map(|raw| clean_text(raw, MAX_DESCRIPTION_CHARS))
            .unwrap_or_else(|| symbol.clone());
        // The gateway's full name ("AAPL Dec18'26 190 Call") tells derivatives of one symbol
        // apart; stocks and FX are told apart by their ticker already.
        let local_symbol = if sec_type.is_derivative() {
            non_empty(self.full_name.as_deref())
                .map(|raw| clean_text(raw, MAX_DESCRIPTION_CHARS))
                .ok_or(Invalid("a derivative contract has no full name"))?
        } else {
            symbol.clone()
        };
        let reported_multiplier = match &self.multiplier {
            Some(raw) => Some(
                raw.decimal()
                    .ok_or(Invalid("a contract multiplier is malformed"))?,
            ),
            None => None,
        };
        let multiplier = match reported_multiplier {
            Some(value) if value > Decimal::ZERO => value,
            _ if sec_type.is_derivative() => {
                return Err(Invalid("a derivative contract has no multiplier"));
            }
            // Stocks report 0: one unit per share.
            _ => Decimal::ONE,
        };
        let option = if sec_type.is_option_like() {
            Some(self.option_terms(multiplier)?)
        } else {
            None
        };
        Ok(Contract {
            id,
            symbol,
            local_symbol,
            asset_class,
            currency,
            exchange,
            description,
            multiplier,
            option,
        })
    }

    fn option_terms(&self, multiplier: Decimal) -> Result<OptionTerms, ContractFieldsError> {
        use ContractFieldsError::Invalid;
        let underlying = self
            .underlying
            .and_then(WireConid::contract_id)
            .ok_or(Invalid("an option has no underlying conid"))?;
        let expiry = non_empty(self.expiry.as_deref())
            .or_else(|| non_empty(self.last_trading_day.as_deref()))
            .and_then(yyyymmdd)
            .ok_or(Invalid("an option has no valid expiry"))?;
        let strike = self
            .strike
            .as_ref()
            .and_then(NumText::decimal)
            .and_then(|value| Price::new(value).ok())
            .filter(|price| !price.value().is_zero())
            .ok_or(Invalid("an option has no valid strike"))?;
        let right = match non_empty(self.put_or_call.as_deref())
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("C" | "CALL") => OptionRight::Call,
            Some("P" | "PUT") => OptionRight::Put,
            _ => return Err(Invalid("an option has no valid right")),
        };
        Ok(OptionTerms {
            underlying,
            expiry,
            strike,
            right,
            multiplier,
        })
    }
}

/// `GET /trsrv/secdef?conids=…`: `{"secdef": [...]}`, or a bare array from older gateways, or
/// nothing (204) when no conid is known.
pub(crate) fn secdef_items(value: Value) -> Result<Vec<SecdefDto>, GatewayFault> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("secdef") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => Vec::new(),
            Some(_) => {
                return Err(GatewayFault::invalid(
                    "the contract details have an unexpected shape",
                ));
            }
        },
        _ => {
            return Err(GatewayFault::invalid(
                "the contract details have an unexpected shape",
            ));
        }
    };
    items
        .into_iter()
        .map(|item| super::parse(item, "contract details"))
        .collect()
}

/// One result of `GET /iserver/secdef/search`; only the conid is used (details come from
/// `/trsrv/secdef`, which also carries the currency and listing exchange the search lacks).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SearchResultDto {
    #[serde(default)]
    conid: Option<Value>,
}

/// The conids of a search answer, in the gateway's order, without duplicates. Results without
/// a usable conid (bond issuer placeholders, `null`) are skipped.
pub(crate) fn search_conids(value: Value) -> Result<Vec<ContractId>, GatewayFault> {
    let results: Vec<SearchResultDto> = match value {
        Value::Null => return Ok(Vec::new()),
        other => super::parse(other, "contract search")?,
    };
    let mut ids = Vec::new();
    for result in results {
        let Some(raw) = result.conid else { continue };
        let Ok(conid) = serde_json::from_value::<WireConid>(raw) else {
            continue;
        };
        // 2147483647 is the bond-issuer placeholder, not a contract.
        if conid.0 == i32::MAX as u64 {
            continue;
        }
        if let Some(id) = conid.contract_id()
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secdef(json: &str) -> SecdefDto {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn stocks_and_etfs_map_with_unit_multiplier() {
        let ibm = secdef(
            r#"{"conid": 8314, "currency": "USD", "assetClass": "STK", "listingExchange": "NYSE",
                "ticker": "IBM", "name": "INTL BUSINESS MACHINES CORP", "strike": "0", "undConid": 0,
                "multiplier": 0, "type": "COMMON", "unknownField": [1, 2]}"#,
        )
        .try_into_domain()
        .unwrap();
        assert_eq!(ibm.asset_class, AssetClass::Stock);
        assert_eq!(ibm.multiplier, Decimal::ONE);
        assert_eq!(ibm.local_symbol, "IBM");
        assert!(ibm.option.is_none());
        let spy = secdef(
            r#"{"conid": "756733", "currency": "USD", "assetClass": "STK", "listingExchange": "ARCA",
                "ticker": "SPY", "name": "SPDR S&P 500 ETF TRUST", "type": "ETF"}"#,
        )
        .try_into_domain()
        .unwrap();
        assert_eq!(spy.asset_class, AssetClass::Etf);
    }

    #[test]
    fn options_carry_their_terms() {
        let option = secdef(
            r#"{"conid": 709158112, "currency": "USD", "assetClass": "OPT", "listingExchange": "AMEX",
                "ticker": "SPY", "name": "SPDR S&P 500 ETF TRUST", "fullName": "SPY Dec19'25 550 Put",
                "expiry": "20251219", "putOrCall": "P", "strike": "550", "undConid": 756733,
                "multiplier": 100.0}"#,
        )
        .try_into_domain()
        .unwrap();
        let terms = option.option.unwrap();
        assert_eq!(terms.right, OptionRight::Put);
        assert_eq!(terms.strike.value(), Decimal::from(550));
        assert_eq!(terms.multiplier, Decimal::from(100));
        assert_eq!(option.local_symbol, "SPY Dec19'25 550 Put");
    }

    #[test]
    fn unknown_types_and_missing_fields_are_refused() {
        let cfd = secdef(
            r#"{"conid": 1, "currency": "USD", "assetClass": "CFD", "listingExchange": "SMART", "ticker": "X"}"#,
        );
        assert_eq!(
            cfd.try_into_domain().unwrap().asset_class,
            AssetClass::Other
        );
        let no_currency = secdef(
            r#"{"conid": 1, "assetClass": "STK", "listingExchange": "NYSE", "ticker": "X"}"#,
        );
        assert!(matches!(
            no_currency.try_into_domain(),
            Err(ContractFieldsError::Invalid(_))
        ));
        let option_without_strike = secdef(
            r#"{"conid": 2, "currency": "USD", "assetClass": "OPT", "listingExchange": "CBOE", "ticker": "X",
                "fullName": "X", "expiry": "20251219", "putOrCall": "C", "strike": "0", "undConid": 1,
                "multiplier": 100}"#,
        );
        assert!(option_without_strike.try_into_domain().is_err());
    }

    #[test]
    fn secdef_answers_come_wrapped_bare_or_empty() {
        let wrapped: Value = serde_json::from_str(r#"{"secdef": [{"conid": 8314}]}"#).unwrap();
        assert_eq!(secdef_items(wrapped).unwrap().len(), 1);
        let bare: Value = serde_json::from_str(r#"[{"conid": 8314}]"#).unwrap();
        assert_eq!(secdef_items(bare).unwrap().len(), 1);
        assert!(secdef_items(Value::Null).unwrap().is_empty());
        assert!(secdef_items(Value::Bool(true)).is_err());
    }

    #[test]
    fn search_yields_unique_conids_and_skips_placeholders() {
        let value: Value = serde_json::from_str(
            r#"[{"conid": "265598", "symbol": "AAPL"}, {"conid": "38708077"}, {"conid": "265598"},
                {"conid": "2147483647"}, {"conid": null}, {"conid": "x"}]"#,
        )
        .unwrap();
        let ids: Vec<u64> = search_conids(value)
            .unwrap()
            .iter()
            .map(|id| id.value())
            .collect();
        assert_eq!(ids, [265_598, 38_708_077]);
        assert!(search_conids(Value::Null).unwrap().is_empty());
    }
}
