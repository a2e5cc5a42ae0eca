//! Positions: one page of `/portfolio/{accountId}/positions/{pageId}`.

use serde::Deserialize;
use serde_json::Value;

use super::contracts::SecdefDto;
use crate::adapters::outbound::client_portal::errors::GatewayFault;
use crate::adapters::outbound::client_portal::lenient::NumText;
use crate::domain::ids::AccountId;
use crate::domain::money::Money;
use crate::domain::portfolio::Position;

/// One position item: the contract fields (shared with `/trsrv/secdef`) plus the holding.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PositionDto {
    #[serde(default, rename = "acctId")]
    account: Option<String>,
    #[serde(default)]
    position: Option<NumText>,
    #[serde(default, rename = "mktPrice")]
    market_price: Option<NumText>,
    #[serde(default, rename = "mktValue")]
    market_value: Option<NumText>,
    #[serde(default, rename = "avgPrice")]
    average_price: Option<NumText>,
    #[serde(default, rename = "realizedPnl")]
    realized_pnl: Option<NumText>,
    #[serde(default, rename = "unrealizedPnl")]
    unrealized_pnl: Option<NumText>,
    #[serde(default, rename = "pageSize")]
    page_size: Option<NumText>,
    #[serde(flatten)]
    contract: SecdefDto,
}

/// One page: its positions and the page size the gateway reports (100 in current gateways,
/// 30 in old ones), if it reports one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PositionPage {
    pub(crate) positions: Vec<Position>,
    pub(crate) page_size: Option<usize>,
}

/// Reads one page; positions of another account make the whole answer invalid.
pub(crate) fn position_page(
    value: Value,
    account: &AccountId,
) -> Result<PositionPage, GatewayFault> {
    let items: Vec<PositionDto> = match value {
        Value::Null => Vec::new(),
        other => super::parse(other, "positions")?,
    };
    let page_size = items
        .iter()
        .find_map(|item| item.page_size.as_ref().and_then(NumText::decimal))
        .and_then(|size| usize::try_from(size).ok())
        .filter(|size| *size > 0);
    let positions = items
        .into_iter()
        .map(|item| item.try_into_domain(account))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PositionPage {
        positions,
        page_size,
    })
}

impl PositionDto {
    fn try_into_domain(self, account: &AccountId) -> Result<Position, GatewayFault> {
        let malformed = |what: &'static str| {
            GatewayFault::Broker(crate::ports::broker_reader::BrokerError::InvalidResponse {
                detail: format!("a position has a malformed {what}"),
            })
        };
        let owner = self
            .account
            .as_deref()
            .map(str::trim)
            .ok_or_else(|| malformed("account"))?;
        if owner != account.expose() {
            return Err(GatewayFault::invalid(
                "a position belongs to another account",
            ));
        }
        let contract = self.contract.try_into_domain()?;
        let currency = contract.currency;
        let money = |raw: &Option<NumText>, what: &'static str| {
            raw.as_ref()
                .and_then(NumText::decimal)
                .map(|amount| Money::new(amount, currency))
                .ok_or_else(|| malformed(what))
        };
        Ok(Position {
            account_id: account.clone(),
            quantity: self
                .position
                .as_ref()
                .and_then(NumText::quantity)
                .ok_or_else(|| malformed("size"))?,
            average_cost: self
                .average_price
                .as_ref()
                .and_then(NumText::price)
                .ok_or_else(|| malformed("average price"))?,
            market_price: self
                .market_price
                .as_ref()
                .and_then(NumText::price)
                .ok_or_else(|| malformed("market price"))?,
            market_value: money(&self.market_value, "market value")?,
            unrealized_pnl: money(&self.unrealized_pnl, "unrealized profit")?,
            realized_pnl: money(&self.realized_pnl, "realized profit")?,
            contract,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"[
      {"acctId": "DU1234567", "conid": 265598, "contractDesc": "AAPL", "position": 250.0,
       "mktPrice": 212.4100036, "mktValue": 53102.5, "currency": "USD", "avgCost": 187.3512,
       "avgPrice": 187.3512, "realizedPnl": 0.0, "unrealizedPnl": 6264.7, "expiry": null,
       "putOrCall": null, "multiplier": 0.0, "strike": "0", "assetClass": "STK", "undConid": 0,
       "listingExchange": "NASDAQ", "name": "APPLE INC", "ticker": "AAPL", "type": "COMMON",
       "fullName": "AAPL", "pageSize": 100},
      {"acctId": "DU1234567", "conid": 709158112, "contractDesc": "SPY    DEC2025 550 P",
       "position": -2.0, "mktPrice": 6.118, "mktValue": -1223.6, "currency": "USD", "avgCost": 812.03,
       "avgPrice": 8.1203, "realizedPnl": 0.0, "unrealizedPnl": 400.46, "expiry": "20251219",
       "putOrCall": "P", "multiplier": 100.0, "strike": "550", "assetClass": "OPT", "undConid": 756733,
       "listingExchange": "AMEX", "ticker": "SPY", "name": "SPDR S&P 500 ETF TRUST",
       "fullName": "SPY Dec19'25 550 Put", "pageSize": 100}
    ]"#;

    fn account() -> AccountId {
        AccountId::parse("DU1234567").unwrap()
    }

    #[test]
    fn a_page_maps_with_its_size() {
        let page = position_page(serde_json::from_str(PAGE).unwrap(), &account()).unwrap();
        assert_eq!(page.page_size, Some(100));
        assert_eq!(page.positions.len(), 2);
        let short_put = &page.positions[1];
        assert_eq!(short_put.quantity.to_string(), "-2");
        assert_eq!(short_put.market_value.to_string(), "-1223.6 USD");
        assert_eq!(
            short_put
                .contract
                .option
                .as_ref()
                .unwrap()
                .strike
                .to_string(),
            "550"
        );
    }

    #[test]
    fn another_accounts_position_invalidates_the_page() {
        let mut value: Value = serde_json::from_str(PAGE).unwrap();
        value[1]["acctId"] = Value::String("U7654321".into());
        assert!(position_page(value, &account()).is_err());
        assert!(
            position_page(Value::Null, &account())
                .unwrap()
                .positions
                .is_empty()
        );
    }
}
