//! Scanners and fundamentals over the Client Portal Gateway, on documented endpoints only
//! (reference §7 and §8):
//! - `GET /iserver/scanner/params`, allowed once per 15 minutes, is cached here with the time
//!   it was fetched and asked again only after [`PARAMS_FRESH_FOR`]. When the refresh is
//!   refused for pacing, the older answer is served (its `fetched_at` says how old it is).
//! - `POST /iserver/scanner/run` (1 per second) sends the checked request; at most 50 rows
//!   are kept.
//! - Fundamentals are the documented snapshot fields of `GET /iserver/marketdata/snapshot`
//!   (market cap, P/E, EPS, dividends, beta, 52-week range, industry and category), read
//!   like a quote: after the `/iserver/accounts` pre-flight, paced, and asked again a bounded
//!   number of times while fields are still unfilled. IBKR documents no fundamentals
//!   endpoint, so none other is called.

mod dto;

use std::time::Duration;

use serde_json::json;
use tokio::sync::Mutex as AsyncMutex;

use super::ClientPortalBroker;
use super::client::ApiRequest;
use super::errors::{self, ErrorContext, GatewayFault};
use super::writer::{self, Reply};
use crate::domain::ids::ContractId;
use crate::domain::research::{FilterValue, Fundamentals, ScanRequest, ScanResult, ScannerParams};
use crate::ports::broker_reader::BrokerError;

/// How long fetched scanner parameters are used before the gateway is asked again: the
/// documented 1 per 15 minutes widened by the largest pacing margin the adapter accepts
/// (50%), so a refresh never runs into the limiter whatever the configured margin.
pub(super) const PARAMS_FRESH_FOR: Duration = Duration::from_secs(30 * 60);

/// What the adapter keeps between scanner calls.
#[derive(Debug, Default)]
pub(super) struct ResearchState {
    // An async mutex held across the fetch, so concurrent callers share one request instead
    // of the second being refused by the 15-minute pacing.
    params: AsyncMutex<Option<ScannerParams>>,
}

/// True when parameters fetched at `fetched_at` may still be used at `now`.
fn is_fresh(fetched_at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> bool {
    let age = now.signed_duration_since(fetched_at);
    chrono::Duration::from_std(PARAMS_FRESH_FOR)
        .is_ok_and(|fresh_for| age >= chrono::Duration::zero() && age < fresh_for)
}

fn is_pacing_refusal(fault: &GatewayFault) -> bool {
    matches!(
        fault,
        GatewayFault::RateLimited { .. } | GatewayFault::Broker(BrokerError::RateLimited { .. })
    )
}

impl ClientPortalBroker {
    /// The scanner parameters, from the cache while fresh.
    pub(super) async fn read_scanner_params(&self) -> Result<ScannerParams, GatewayFault> {
        let mut cached = self.research.params.lock().await;
        let now = self.clock.now();
        if let Some(params) = cached.as_ref()
            && is_fresh(params.fetched_at, now)
        {
            return Ok(params.clone());
        }
        let request = ApiRequest::get(&["iserver", "scanner", "params"]);
        match self.iserver(&request).await {
            Ok(value) => {
                let params = dto::scanner_params(value, now)?;
                *cached = Some(params.clone());
                Ok(params)
            }
            Err(fault) if is_pacing_refusal(&fault) => cached.clone().ok_or(fault),
            Err(fault) => Err(fault),
        }
    }

    /// Runs one checked scan.
    pub(super) async fn read_scan(&self, scan: &ScanRequest) -> Result<ScanResult, GatewayFault> {
        let filters: Vec<serde_json::Value> = scan
            .filters
            .iter()
            .map(|setting| {
                let value = match &setting.value {
                    FilterValue::Number(number) => number
                        .to_string()
                        .parse::<serde_json::Number>()
                        .map_or_else(|_| json!(number.to_string()), serde_json::Value::Number),
                    FilterValue::Flag(flag) => json!(flag),
                    FilterValue::Text(text) => json!(text.as_str()),
                };
                json!({ "code": setting.code.as_str(), "value": value })
            })
            .collect();
        let body = json!({
            "instrument": scan.instrument.as_str(),
            "type": scan.scan_type.as_str(),
            "location": scan.location.as_str(),
            "filter": filters,
        });
        let body = serde_json::to_vec(&body)
            .map_err(|_| GatewayFault::invalid("the scan request could not be encoded"))?;
        let request = ApiRequest::post_json(&["iserver", "scanner", "run"], body);
        self.brokerage().await?;
        let mut reply = writer::sort(self.client.exchange(&request).await);
        if reply.asks_for_preflight() {
            // A scan changes nothing, so it may be sent again after the pre-flight.
            self.forget_session().await;
            self.brokerage().await?;
            reply = writer::sort(self.client.exchange(&request).await);
        }
        match reply {
            Reply::Body(value) => dto::scan_result(value),
            Reply::ErrorText(text) => match errors::from_error_body(&text, ErrorContext::default())
            {
                GatewayFault::NothingFound => Ok(ScanResult::bounded(Vec::new(), None)),
                fault => Err(fault),
            },
            Reply::NotActed(fault) | Reply::Unknown(fault) => Err(fault),
        }
    }

    /// The fundamentals snapshot fields of one contract, asked again while some are unfilled.
    pub(super) async fn read_fundamentals(
        &self,
        contract_id: ContractId,
    ) -> Result<Fundamentals, GatewayFault> {
        let request = ApiRequest::get(&["iserver", "marketdata", "snapshot"])
            .query("conids", contract_id.to_string())
            .query("fields", dto::FUNDAMENTALS_FIELDS.join(","))
            .about(ErrorContext::contract(contract_id));
        let mut partial = None;
        for attempt in 0..self.snapshot_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.snapshot_retry_pause).await;
            }
            match dto::read_fundamentals(self.iserver(&request).await?, contract_id)? {
                dto::FundamentalsReading::NotReady => {}
                dto::FundamentalsReading::NoData => {
                    return Err(GatewayFault::Broker(BrokerError::MarketDataUnavailable {
                        contract_id,
                    }));
                }
                dto::FundamentalsReading::Values(values) if values.missing.is_empty() => {
                    return Ok(*values);
                }
                dto::FundamentalsReading::Values(values) => partial = Some(*values),
            }
        }
        // Still unfilled after the bounded attempts: what arrived, the rest listed as missing.
        partial.ok_or(GatewayFault::Broker(BrokerError::MarketDataIncomplete {
            contract_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_params_stay_fresh_for_the_widened_interval() {
        let fetched = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let later = |minutes| fetched + chrono::Duration::minutes(minutes);
        assert!(is_fresh(fetched, fetched));
        assert!(is_fresh(fetched, later(29)));
        assert!(!is_fresh(fetched, later(30)));
        assert!(!is_fresh(fetched, later(-1)));
    }
}
