//! The fake broker's answers for P&L, account metadata and the risk view (issue 16).
//!
//! P&L is derived from the same world as the summary and positions, so the figures agree:
//! net liquidation and excess liquidity are the summary's, market value is net liquidation
//! less cash, unrealized and realized P&L are the positions' converted to the base currency at
//! the catalog's FX marks (rounded half-even to cents), and the daily P&L follows a small
//! invented model: today's realized P&L plus 3% of the unrealized. Metadata is a fixed,
//! plausible record per account; the description repeats the account id, as IBKR's does, so
//! the masking downstream is exercised on the fake too.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use super::FakeBroker;
use super::catalog::Catalog;
use super::ledger;
use crate::domain::account::AccountMode;
use crate::domain::account_reads::{
    AccountMetadata, AccountPnl, ClearingStatus, TradingPermissions,
};
use crate::domain::broker_text::BrokerText;
use crate::domain::ids::AccountId;
use crate::domain::instrument::AssetClass;
use crate::domain::money::{Currency, Money};
use crate::ports::broker_reader::BrokerError;

/// The share of unrealized P&L the invented daily figure adds, in percent.
const DAILY_SHARE_OF_UNREALIZED_PERCENT: i64 = 3;

/// When every fake account was opened (2023-07-05 04:00 UTC, epoch milliseconds).
const OPENED_AT_MILLIS: i64 = 1_688_529_600_000;

fn overflow() -> BrokerError {
    BrokerError::InvalidResponse {
        detail: "fake broker arithmetic overflowed".to_owned(),
    }
}

/// US dollars per unit of `currency`, from the catalog's `XXX.USD` pairs.
fn usd_per_unit(catalog: &Catalog, currency: Currency) -> Result<Decimal, BrokerError> {
    if currency.as_str() == "USD" {
        return Ok(Decimal::ONE);
    }
    catalog
        .listings
        .iter()
        .find(|listing| {
            listing.contract.asset_class == AssetClass::Forex
                && listing.contract.symbol == currency.as_str()
                && listing.contract.currency.as_str() == "USD"
        })
        .and_then(|listing| listing.market.as_ref())
        .map(|market| market.last.value())
        .ok_or_else(|| BrokerError::InvalidResponse {
            detail: format!("fake broker catalog: no conversion rate for {currency}"),
        })
}

/// `money` in `base`, not rounded.
fn in_base(catalog: &Catalog, money: Money, base: Currency) -> Result<Decimal, BrokerError> {
    if money.currency() == base {
        return Ok(money.amount());
    }
    money
        .amount()
        .checked_mul(usd_per_unit(catalog, money.currency())?)
        .and_then(|usd| usd.checked_div(usd_per_unit(catalog, base).ok()?))
        .ok_or_else(overflow)
}

fn cents(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

impl FakeBroker {
    /// The P&L of one account, consistent with its summary and positions.
    pub(super) fn fake_account_pnl(&self, account: &AccountId) -> Result<AccountPnl, BrokerError> {
        let (catalog, book) = self.usable_book(account)?;
        let summary = ledger::summarize(catalog, book)?;
        let base = summary.base_currency;
        let mut unrealized = Decimal::ZERO;
        let mut realized = Decimal::ZERO;
        for position in ledger::positions(catalog, book)? {
            unrealized = unrealized
                .checked_add(in_base(catalog, position.unrealized_pnl, base)?)
                .ok_or_else(overflow)?;
            realized = realized
                .checked_add(in_base(catalog, position.realized_pnl, base)?)
                .ok_or_else(overflow)?;
        }
        let unrealized = cents(unrealized);
        let realized = cents(realized);
        let daily = unrealized
            .checked_mul(Decimal::new(DAILY_SHARE_OF_UNREALIZED_PERCENT, 2))
            .and_then(|share| share.checked_add(realized))
            .map(cents)
            .ok_or_else(overflow)?;
        let market_value = summary
            .net_liquidation
            .amount()
            .checked_sub(summary.total_cash.amount())
            .ok_or_else(overflow)?;
        Ok(AccountPnl {
            account_id: account.clone(),
            daily: Some(daily),
            unrealized: Some(unrealized),
            realized: Some(realized),
            net_liquidation: Some(summary.net_liquidation.amount()),
            excess_liquidity: Some(summary.excess_liquidity.amount()),
            market_value: Some(market_value),
        })
    }

    /// A fixed, plausible metadata record of one account.
    pub(super) fn fake_account_metadata(
        &self,
        account: &AccountId,
    ) -> Result<AccountMetadata, BrokerError> {
        let (_, book) = self.usable_book(account)?;
        let paper = book.account.mode == AccountMode::Paper;
        let euro = book.account.base_currency.as_str() == "EUR";
        let title = match (paper, euro) {
            (true, false) => "Paper Trader",
            (true, true) => "Paper Trader EUR",
            (false, _) => "Live Trader",
        };
        let code = |raw: &str| Some(raw.to_owned());
        let asset_classes: &[&str] = if paper {
            &["BOND", "CASH", "FOP", "FUND", "FUT", "OPT", "STK", "WAR"]
        } else {
            &["CASH", "OPT", "STK"]
        };
        Ok(AccountMetadata {
            account_id: account.clone(),
            title: Some(BrokerText::label(title)),
            display_name: Some(BrokerText::label(title)),
            alias: (!paper).then(|| BrokerText::label("Long-term")),
            description: Some(BrokerText::label(account.expose())),
            account_type: if paper { code("DEMO") } else { None },
            trading_type: code(if paper { "PMRGN" } else { "STKNOPT" }),
            customer_type: code("INDIVIDUAL"),
            business_type: code("IB_PROSERVE"),
            ib_entity: code(if euro { "IB-IE" } else { "IBLLC-US" }),
            clearing_status: Some(ClearingStatus::Open),
            opened_at: DateTime::<Utc>::from_timestamp_millis(OPENED_AT_MILLIS),
            base_currency: Some(book.account.base_currency),
            // The fake session mixes paper and live accounts, so it sends no session flag.
            session_is_paper: None,
            permissions: TradingPermissions {
                asset_classes: asset_classes
                    .iter()
                    .map(|code| (*code).to_owned())
                    .collect(),
                supports_cash_quantity: Some(true),
                supports_fractions: Some(!euro),
                no_fx_conversion: Some(false),
                has_child_accounts: Some(false),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::adapters::outbound::clock::FixedClock;
    use crate::adapters::outbound::fake_broker::known_ids;
    use crate::ports::broker_reader::BrokerReader;

    fn fake() -> FakeBroker {
        let now = DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        FakeBroker::new(Arc::new(FixedClock::new(now)))
    }

    #[tokio::test]
    async fn pnl_agrees_with_the_summary_and_positions() {
        let broker = fake();
        for raw in [
            known_ids::PAPER_USD_ACCOUNT,
            known_ids::LIVE_USD_ACCOUNT,
            known_ids::PAPER_EUR_ACCOUNT,
        ] {
            let id = AccountId::parse(raw).unwrap();
            let pnl = broker.account_pnl(&id).await.unwrap();
            let summary = broker.account_summary(&id).await.unwrap();
            assert_eq!(pnl.net_liquidation, Some(summary.net_liquidation.amount()));
            assert_eq!(
                pnl.excess_liquidity,
                Some(summary.excess_liquidity.amount())
            );
            assert!(pnl.missing().is_empty(), "{raw}");
            assert_eq!(pnl, broker.account_pnl(&id).await.unwrap(), "deterministic");
        }
        let unknown = AccountId::parse("DU0000001").unwrap();
        assert_eq!(
            broker.account_pnl(&unknown).await,
            Err(BrokerError::UnknownAccount)
        );
    }

    #[tokio::test]
    async fn metadata_is_fixed_per_account() {
        let broker = fake();
        let id = AccountId::parse(known_ids::PAPER_USD_ACCOUNT).unwrap();
        let metadata = broker.account_metadata(&id).await.unwrap();
        assert_eq!(metadata.account_type.as_deref(), Some("DEMO"));
        assert!(
            metadata
                .permissions
                .asset_classes
                .contains(&"OPT".to_owned())
        );
        let unknown = AccountId::parse("DU0000001").unwrap();
        assert_eq!(
            broker.account_metadata(&unknown).await,
            Err(BrokerError::UnknownAccount)
        );
    }
}
