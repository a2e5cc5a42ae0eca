//! Accounts (`/iserver/accounts`, `/portfolio/accounts`), the account summary
//! (`/portfolio/{id}/summary`) and the cash ledger (`/portfolio/{id}/ledger`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::adapters::outbound::client_portal::errors::GatewayFault;
use crate::adapters::outbound::client_portal::lenient::NumText;
use crate::domain::account::{Account, AccountKind, AccountMode, AccountSummary};
use crate::domain::ids::AccountId;
use crate::domain::money::{Currency, Money};

/// `GET /iserver/accounts`: the brokerage session's accounts (the mandatory pre-flight).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IserverAccountsDto {
    #[serde(default)]
    accounts: Option<Vec<String>>,
    #[serde(default, rename = "isPaper")]
    is_paper: Option<bool>,
}

/// What the brokerage session says about its accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerageAccounts {
    /// The account ids of the brokerage session (`All` and allocation groups left out).
    pub(crate) ids: Vec<AccountId>,
    /// The session's paper flag, when sent.
    pub(crate) is_paper: Option<bool>,
}

impl IserverAccountsDto {
    pub(crate) fn try_into_domain(self) -> Result<BrokerageAccounts, GatewayFault> {
        let accounts = self
            .accounts
            .ok_or_else(|| GatewayFault::invalid("the brokerage account list is missing"))?;
        // `All` (multi-account users) and allocation-group names are not accounts.
        let ids = accounts
            .iter()
            .filter_map(|raw| AccountId::parse(raw).ok())
            .collect();
        Ok(BrokerageAccounts {
            ids,
            is_paper: self.is_paper,
        })
    }
}

/// One element of `GET /portfolio/accounts`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PortfolioAccountDto {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "accountId")]
    account_id: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default, rename = "type")]
    account_type: Option<String>,
    #[serde(default, rename = "acctCustType")]
    customer_type: Option<String>,
    #[serde(default, alias = "faClient")]
    faclient: Option<bool>,
    #[serde(default)]
    parent: Option<ParentDto>,
}

#[derive(Debug, Clone, Deserialize)]
struct ParentDto {
    #[serde(default, rename = "isMParent")]
    is_master_parent: Option<bool>,
}

/// The gateway's customer type, with an explicit unknown variant.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CustomerType {
    Individual,
    Joint,
    Unknown(String),
}

impl CustomerType {
    fn parse(raw: &str) -> Self {
        match raw.trim().to_ascii_uppercase().as_str() {
            "INDIVIDUAL" => Self::Individual,
            "JOINT" => Self::Joint,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// An account as `/portfolio/accounts` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortfolioAccount {
    pub(crate) id: AccountId,
    pub(crate) base_currency: Currency,
    /// `type: "DEMO"`, IBKR's mark of a paper account.
    pub(crate) demo: bool,
    pub(crate) kind: AccountKind,
}

impl PortfolioAccountDto {
    pub(crate) fn try_into_domain(self) -> Result<PortfolioAccount, GatewayFault> {
        let raw_id = self
            .id
            .or(self.account_id)
            .ok_or_else(|| GatewayFault::invalid("a portfolio account has no id"))?;
        let id = AccountId::parse(raw_id.trim())
            .map_err(|_| GatewayFault::invalid("a portfolio account id has an unexpected shape"))?;
        let base_currency = self
            .currency
            .as_deref()
            .and_then(|raw| Currency::parse(raw.trim()).ok())
            .ok_or_else(|| {
                GatewayFault::invalid("a portfolio account has no valid base currency")
            })?;
        let advisor = self.faclient == Some(true)
            || self
                .parent
                .and_then(|parent| parent.is_master_parent)
                .unwrap_or(false);
        let kind = if advisor {
            AccountKind::Advisor
        } else {
            match self.customer_type.as_deref().map(CustomerType::parse) {
                Some(CustomerType::Individual) => AccountKind::Individual,
                Some(CustomerType::Joint) => AccountKind::Joint,
                Some(CustomerType::Unknown(_)) | None => AccountKind::Other,
            }
        };
        let demo = self
            .account_type
            .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("DEMO"));
        Ok(PortfolioAccount {
            id,
            base_currency,
            demo,
            kind,
        })
    }
}

/// Paper or live, conservatively: an account is paper only when its id is paper-shaped
/// (`DU…`/`DF…`) AND the broker says so (the session's `isPaper: true`, or the account's
/// `type: "DEMO"` when the session sends no flag) AND nothing the broker sent says live
/// (`isPaper: false`). Any disagreement reads as live, the mode with the stricter gates.
pub(crate) fn account_mode(
    account: &PortfolioAccount,
    session_is_paper: Option<bool>,
) -> AccountMode {
    let broker_says_paper = match session_is_paper {
        Some(flag) => flag,
        None => account.demo,
    };
    if account.id.is_paper_shaped() && broker_says_paper {
        AccountMode::Paper
    } else {
        AccountMode::Live
    }
}

/// The domain account.
pub(crate) fn account(account: &PortfolioAccount, session_is_paper: Option<bool>) -> Account {
    Account {
        id: account.id.clone(),
        mode: account_mode(account, session_is_paper),
        base_currency: account.base_currency,
        kind: account.kind,
    }
}

/// One value of `/portfolio/{id}/summary`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SummaryValueDto {
    #[serde(default)]
    amount: Option<NumText>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default, rename = "isNull", alias = "isNone")]
    is_null: Option<bool>,
}

/// `GET /portfolio/{id}/summary`: metrics keyed by lower-case name.
pub(crate) type SummaryDto = BTreeMap<String, Value>;

/// One currency entry of `/portfolio/{id}/ledger`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LedgerEntryDto {
    #[serde(default)]
    cashbalance: Option<NumText>,
    #[serde(default)]
    currency: Option<String>,
}

/// `GET /portfolio/{id}/ledger`: entries keyed by currency, plus `BASE`.
pub(crate) type LedgerDto = BTreeMap<String, Value>;

/// Reads one required money figure in the base currency.
fn figure(summary: &SummaryDto, key: &'static str, base: Currency) -> Result<Money, GatewayFault> {
    let missing = || {
        GatewayFault::Broker(crate::ports::broker_reader::BrokerError::InvalidResponse {
            detail: format!("the account summary lacks a usable {key}"),
        })
    };
    let value = summary.get(key).cloned().ok_or_else(missing)?;
    let value: SummaryValueDto = serde_json::from_value(value).map_err(|_| missing())?;
    if value.is_null == Some(true) {
        return Err(missing());
    }
    if let Some(currency) = value.currency.as_deref()
        && !currency.trim().is_empty()
        && !currency.trim().eq_ignore_ascii_case("BASE")
        && currency.trim() != base.as_str()
    {
        return Err(GatewayFault::invalid(
            "an account summary figure is not in the base currency",
        ));
    }
    let amount = value
        .amount
        .as_ref()
        .and_then(NumText::decimal)
        .ok_or_else(missing)?;
    Ok(Money::new(amount, base))
}

/// The summary and the ledger as one domain summary in `account`'s base currency.
pub(crate) fn account_summary(
    account: &PortfolioAccount,
    summary: &SummaryDto,
    ledger: &LedgerDto,
) -> Result<AccountSummary, GatewayFault> {
    let base = account.base_currency;
    if let Some(code) = summary
        .get("accountcode")
        .and_then(|value| value.get("value"))
        .and_then(Value::as_str)
        && code.trim() != account.id.expose()
    {
        return Err(GatewayFault::invalid(
            "the account summary is for another account",
        ));
    }
    Ok(AccountSummary {
        account_id: account.id.clone(),
        base_currency: base,
        net_liquidation: figure(summary, "netliquidation", base)?,
        total_cash: figure(summary, "totalcashvalue", base)?,
        buying_power: figure(summary, "buyingpower", base)?,
        available_funds: figure(summary, "availablefunds", base)?,
        excess_liquidity: figure(summary, "excessliquidity", base)?,
        initial_margin: figure(summary, "initmarginreq", base)?,
        maintenance_margin: figure(summary, "maintmarginreq", base)?,
        gross_position_value: figure(summary, "grosspositionvalue", base)?,
        cash_balances: cash_balances(ledger)?,
    })
}

/// One balance per real currency of the ledger (the `BASE` roll-up is left out), by code.
fn cash_balances(ledger: &LedgerDto) -> Result<Vec<Money>, GatewayFault> {
    let mut balances = Vec::new();
    for (key, value) in ledger {
        if key.eq_ignore_ascii_case("BASE") {
            continue;
        }
        let entry: LedgerEntryDto = serde_json::from_value(value.clone())
            .map_err(|_| GatewayFault::invalid("a ledger entry has an unexpected shape"))?;
        let code = entry.currency.as_deref().unwrap_or(key).trim();
        if code != key.trim() {
            return Err(GatewayFault::invalid(
                "a ledger entry disagrees with its currency key",
            ));
        }
        let currency = Currency::parse(code)
            .map_err(|_| GatewayFault::invalid("a ledger entry has an invalid currency"))?;
        let amount = entry
            .cashbalance
            .as_ref()
            .and_then(NumText::decimal)
            .ok_or_else(|| GatewayFault::invalid("a ledger entry has no usable cash balance"))?;
        balances.push(Money::new(amount, currency));
    }
    // The map is keyed by code, so the order is stable and each currency appears once.
    Ok(balances)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portfolio(id: &str, demo: bool) -> PortfolioAccount {
        PortfolioAccount {
            id: AccountId::parse(id).unwrap(),
            base_currency: Currency::parse("USD").unwrap(),
            demo,
            kind: AccountKind::Individual,
        }
    }

    #[test]
    fn paper_needs_a_paper_id_and_the_brokers_agreement() {
        use AccountMode::{Live, Paper};
        let cases = [
            ("DU1234567", Some(true), true, Paper),
            ("DU1234567", None, true, Paper),
            ("DU1234567", Some(false), true, Live),
            ("DU1234567", None, false, Live),
            ("U7654321", Some(true), true, Live),
            ("U7654321", Some(false), false, Live),
        ];
        for (id, session, demo, expected) in cases {
            assert_eq!(
                account_mode(&portfolio(id, demo), session),
                expected,
                "{id} {session:?} {demo}"
            );
        }
    }

    #[test]
    fn brokerage_lists_skip_the_all_pseudo_account() {
        let dto: IserverAccountsDto =
            serde_json::from_str(r#"{"accounts":["All","DU1234567"],"isPaper":true,"extra":1}"#)
                .unwrap();
        let accounts = dto.try_into_domain().unwrap();
        assert_eq!(accounts.ids.len(), 1);
        assert_eq!(accounts.is_paper, Some(true));
    }

    #[test]
    fn portfolio_accounts_need_an_id_and_a_currency() {
        let dto: PortfolioAccountDto = serde_json::from_str(
            r#"{"id":"DU1234567","currency":"USD","type":"DEMO","acctCustType":"INDIVIDUAL","faclient":false}"#,
        )
        .unwrap();
        let account = dto.try_into_domain().unwrap();
        assert!(account.demo);
        assert_eq!(account.kind, AccountKind::Individual);
        for bad in [
            r#"{"id":"DU1234567"}"#,
            r#"{"currency":"USD"}"#,
            r#"{"id":"../x","currency":"USD"}"#,
        ] {
            let dto: PortfolioAccountDto = serde_json::from_str(bad).unwrap();
            assert!(dto.try_into_domain().is_err(), "{bad}");
        }
        let dto: PortfolioAccountDto =
            serde_json::from_str(r#"{"id":"U7654321","currency":"EUR","acctCustType":"TRUST"}"#)
                .unwrap();
        assert_eq!(dto.try_into_domain().unwrap().kind, AccountKind::Other);
    }

    #[test]
    fn summary_figures_must_be_present_and_in_base_currency() {
        let account = portfolio("DU1234567", true);
        let mut summary: SummaryDto = serde_json::from_str(
            r#"{
            "accountcode": {"amount": 0.0, "currency": null, "isNull": false, "value": "DU1234567"},
            "netliquidation": {"amount": 1048213.55, "currency": "USD", "isNull": false},
            "totalcashvalue": {"amount": "503,118.02", "currency": "USD", "isNull": false},
            "buyingpower": {"amount": 3648176.40, "currency": "USD", "isNull": false},
            "availablefunds": {"amount": 912044.10, "currency": "USD", "isNull": false},
            "excessliquidity": {"amount": 925310.72, "currency": "USD", "isNull": false},
            "initmarginreq": {"amount": 136169.45, "currency": "USD", "isNull": false},
            "maintmarginreq": {"amount": 122902.83, "currency": "USD", "isNull": false},
            "grosspositionvalue": {"amount": 543255.31, "currency": "USD", "isNone": false}
        }"#,
        )
        .unwrap();
        let ledger: LedgerDto = serde_json::from_str(
            r#"{"USD": {"cashbalance": 503118.02, "currency": "USD"},
                "EUR": {"cashbalance": -12.5, "currency": "EUR"},
                "BASE": {"cashbalance": 503104.1, "currency": "BASE"}}"#,
        )
        .unwrap();
        let domain = account_summary(&account, &summary, &ledger).unwrap();
        assert_eq!(domain.total_cash.amount().to_string(), "503118.02");
        let codes: Vec<_> = domain
            .cash_balances
            .iter()
            .map(|cash| cash.currency().to_string())
            .collect();
        assert_eq!(codes, ["EUR", "USD"]);

        summary.insert(
            "buyingpower".into(),
            serde_json::json!({"amount": 1.0, "currency": "EUR", "isNull": false}),
        );
        assert!(account_summary(&account, &summary, &ledger).is_err());
        summary.remove("buyingpower");
        assert!(account_summary(&account, &summary, &ledger).is_err());
    }
}
