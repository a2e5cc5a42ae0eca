//! The read use cases for P&L, account metadata and the risk view (issue 16).
//!
//! - `pnl show` (`ibkr_pnl`, `ibkr:portfolio:read`, the scope of balances): the broker's P&L
//!   figures of one account; a figure the broker did not send is `null` and named in
//!   `missing`; a broker with no figure at all is an error, not a row of nulls.
//! - `account info` (`ibkr_account_info`, `ibkr:accounts:read`): what the broker says about
//!   one account: its free text as `broker_*` fields (with the raw account id masked out), its
//!   codes, and the session's trading permissions.
//! - `risk show` (`ibkr_risk_view`, `ibkr:risk:read`): margin and excess liquidity from the
//!   account summary, and the largest positions' share of net liquidation, computed by the
//!   pure `domain::account_reads::risk_view` over the summary and the positions.

use chrono::SecondsFormat;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::inputs::AccountInput;
use super::{Definition, Entry, Hints, Outcome, UseCase};
use crate::app::audited::{AuditNote, CallContext};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::input::AccountSelector;
use crate::app::views::AccountView;
use crate::domain::account_reads::{
    AccountMetadata, AccountPnl, DEFAULT_TOP_POSITIONS, MAX_TOP_POSITIONS, TopPositions, risk_view,
    without_account_id,
};
use crate::domain::broker_text::{BrokerText, clean};
use crate::domain::ids::AccountId;
use crate::domain::scope::Scope;
use crate::ports::broker_reader::BrokerError;

/// The longest symbol shown in a risk view.
const SYMBOL_CHARS: usize = 32;

// ---------------------------------------------------------------------------------------------
// pnl show
// ---------------------------------------------------------------------------------------------

/// One account's P&L, in its base currency.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PnlView {
    /// The account.
    pub account: AccountView,
    /// The currency of every figure (the account's base currency).
    pub currency: String,
    /// P&L since the start of the trading day.
    pub daily_pnl: Option<Decimal>,
    /// Unrealized P&L of the open positions.
    pub unrealized_pnl: Option<Decimal>,
    /// Realized P&L today.
    pub realized_pnl: Option<Decimal>,
    /// Net liquidation value.
    pub net_liquidation: Option<Decimal>,
    /// Excess liquidity over maintenance margin.
    pub excess_liquidity: Option<Decimal>,
    /// Market value of the positions.
    pub market_value: Option<Decimal>,
    /// The figures the broker did not send (shown as null above).
    pub missing: Vec<&'static str>,
}

impl PnlView {
    fn new(account: AccountView, pnl: &AccountPnl) -> Self {
        Self {
            currency: account.base_currency.clone(),
            account,
            daily_pnl: pnl.daily,
            unrealized_pnl: pnl.unrealized,
            realized_pnl: pnl.realized,
            net_liquidation: pnl.net_liquidation,
            excess_liquidity: pnl.excess_liquidity,
            market_value: pnl.market_value,
            missing: pnl.missing(),
        }
    }
}

/// `pnl show`: one account's P&L.
#[derive(Debug)]
pub struct PnlShow;

impl UseCase for PnlShow {
    type Input = AccountInput;
    type Output = PnlView;
    const DEFINITION: Definition = Definition {
        name: "pnl show",
        command: "pnl show",
        tool: "ibkr_pnl",
        title: "Account P&L",
        description: "P&L of one account: daily, unrealized, realized, net liquidation and excess liquidity (decimal strings; null when not sent).",
        scope: Scope::PortfolioRead,
        toolset: Toolset::Account,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: AccountInput,
    ) -> Outcome<PnlView> {
        let selector = AccountSelector::parse(&input.account_id)?;
        let account = gateway.select_account(&selector, note).await?;
        let pnl = gateway.broker().account_pnl(&account.id).await?;
        if pnl.is_empty() {
            return Err(BrokerError::Unavailable {
                detail: "the broker has no P&L for the account yet (it fills in shortly after a \
                         login); try again in a few seconds"
                    .to_owned(),
            }
            .into());
        }
        Ok(PnlView::new(
            AccountView::new(gateway.directory(), &account),
            &pnl,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// account info
// ---------------------------------------------------------------------------------------------

/// What the brokerage session lets the account trade.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PermissionsView {
    /// Asset class codes the session may trade, e.g. `STK`, `OPT`, `FUT`.
    pub asset_classes: Vec<String>,
    /// Orders may be sized in cash.
    pub supports_cash_quantity: Option<bool>,
    /// Fractional quantities are allowed.
    pub supports_fractions: Option<bool>,
    /// Automatic currency conversion is off.
    pub no_fx_conversion: Option<bool>,
    /// The account has sub-accounts.
    pub has_child_accounts: Option<bool>,
}

/// What the broker says about one account.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AccountInfoView {
    /// The account (reference, masked id, mode, base currency, kind).
    pub account: AccountView,
    /// The account title, often the holder's name.
    pub broker_title: Option<BrokerText>,
    /// The broker's display name.
    pub broker_display_name: Option<BrokerText>,
    /// The alias the holder set at the broker.
    pub broker_alias: Option<BrokerText>,
    /// The broker's short description.
    pub broker_description: Option<BrokerText>,
    /// The broker's account type code (`DEMO` for paper).
    pub account_type: Option<String>,
    /// The trading type code, e.g. `STKNOPT`, `PMRGN`.
    pub trading_type: Option<String>,
    /// The customer type code, e.g. `INDIVIDUAL`.
    pub customer_type: Option<String>,
    /// The business type code.
    pub business_type: Option<String>,
    /// The IBKR entity holding the account, e.g. `IBLLC-US`.
    pub ib_entity: Option<String>,
    /// `open`, `pending`, `new`, `abandoned`, `rejected`, `closed` or `other`.
    pub clearing_status: Option<&'static str>,
    /// When the account was opened (RFC 3339).
    pub opened_at: Option<String>,
    /// The brokerage session's own paper flag; `account.mode` is the gateway's verdict.
    pub session_is_paper: Option<bool>,
    /// What the session lets the account trade.
    pub permissions: PermissionsView,
}

impl AccountInfoView {
    fn new(account: AccountView, id: &AccountId, metadata: AccountMetadata) -> Self {
        let masked = account.display.clone();
        let mask =
            |text: Option<BrokerText>| text.and_then(|text| without_account_id(&text, id, &masked));
        // A code that repeats the account id would print it: such a code is dropped.
        let code = |code: Option<String>| {
            code.filter(|code| !code.contains(&id.expose().to_ascii_uppercase()))
        };
        Self {
            broker_title: mask(metadata.title),
            broker_display_name: mask(metadata.display_name),
            broker_alias: mask(metadata.alias),
            broker_description: mask(metadata.description),
            account_type: code(metadata.account_type),
            trading_type: code(metadata.trading_type),
            customer_type: code(metadata.customer_type),
            business_type: code(metadata.business_type),
            ib_entity: code(metadata.ib_entity),
            clearing_status: metadata.clearing_status.map(|status| status.as_str()),
            opened_at: metadata
                .opened_at
                .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            session_is_paper: metadata.session_is_paper,
            permissions: PermissionsView {
                asset_classes: metadata.permissions.asset_classes,
                supports_cash_quantity: metadata.permissions.supports_cash_quantity,
                supports_fractions: metadata.permissions.supports_fractions,
                no_fx_conversion: metadata.permissions.no_fx_conversion,
                has_child_accounts: metadata.permissions.has_child_accounts,
            },
            account,
        }
    }
}

/// `account info`: what the broker says about one account.
#[derive(Debug)]
pub struct AccountInfo;

impl UseCase for AccountInfo {
    type Input = AccountInput;
    type Output = AccountInfoView;
    const DEFINITION: Definition = Definition {
        name: "account info",
        command: "account info",
        tool: "ibkr_account_info",
        title: "Account information",
        description: "What the broker says about one account: title and alias (untrusted text), type codes, paper flag and trading permissions.",
        scope: Scope::AccountsRead,
        toolset: Toolset::Account,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: AccountInput,
    ) -> Outcome<AccountInfoView> {
        let selector = AccountSelector::parse(&input.account_id)?;
        let account = gateway.select_account(&selector, note).await?;
        let metadata = gateway.broker().account_metadata(&account.id).await?;
        Ok(AccountInfoView::new(
            AccountView::new(gateway.directory(), &account),
            &account.id,
            metadata,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// risk show
// ---------------------------------------------------------------------------------------------

fn default_top() -> u8 {
    DEFAULT_TOP_POSITIONS
}

/// The input of the risk view.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskInput {
    /// An account_ref from ibkr_accounts_list, an operator alias, or an account id.
    #[serde(rename(serialize = "account", deserialize = "account_id"))]
    #[schemars(length(min = 1, max = 64))]
    pub account_id: String,
    /// How many of the largest positions to rank.
    #[serde(default = "default_top")]
    #[schemars(range(min = 1, max = MAX_TOP_POSITIONS))]
    pub top: u8,
}

/// One of the largest positions.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConcentrationView {
    /// IBKR contract id.
    pub contract_id: u64,
    /// Symbol.
    pub symbol: String,
    /// Signed market value in the base currency.
    pub market_value: Decimal,
    /// Absolute market value: a short position counts as much as a long one.
    pub exposure: Decimal,
    /// Exposure / net liquidation, a fraction with 6 places; null when net liquidation <= 0.
    pub share_of_net_liquidation: Option<Decimal>,
}

/// Margin and concentration of one account.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RiskViewOutput {
    /// The account.
    pub account: AccountView,
    /// The currency of every amount (the base currency).
    pub currency: String,
    /// Net liquidation value.
    pub net_liquidation: Decimal,
    /// Excess liquidity over maintenance margin.
    pub excess_liquidity: Decimal,
    /// Initial margin requirement.
    pub initial_margin: Decimal,
    /// Maintenance margin requirement.
    pub maintenance_margin: Decimal,
    /// Funds available for new positions.
    pub available_funds: Decimal,
    /// Excess liquidity / net liquidation (the cushion); null when net liquidation <= 0.
    pub cushion: Option<Decimal>,
    /// Maintenance margin / net liquidation; null when net liquidation <= 0.
    pub maintenance_margin_share: Option<Decimal>,
    /// The largest base-currency positions by exposure, largest first.
    pub largest_positions: Vec<ConcentrationView>,
    /// Their exposures summed / net liquidation; null when none or net liquidation <= 0.
    pub largest_positions_share: Option<Decimal>,
    /// How many base-currency positions were ranked.
    pub positions_ranked: usize,
    /// Positions in another currency, not ranked (no conversion rate is read).
    pub positions_in_other_currencies: usize,
}

/// `risk show`: margin, excess liquidity and the largest positions' concentration.
#[derive(Debug)]
pub struct RiskShow;

impl UseCase for RiskShow {
    type Input = RiskInput;
    type Output = RiskViewOutput;
    const DEFINITION: Definition = Definition {
        name: "risk show",
        command: "risk show",
        tool: "ibkr_risk_view",
        title: "Account risk view",
        description: "Margin, excess liquidity and cushion of one account, and its largest positions as shares of net liquidation.",
        scope: Scope::RiskRead,
        toolset: Toolset::Account,
        hints: Hints::BROKER_READ,
    };

    async fn run(
        gateway: &Gateway,
        _: &CallContext,
        note: &AuditNote,
        input: RiskInput,
    ) -> Outcome<RiskViewOutput> {
        let top = TopPositions::new(input.top)
            .map_err(|error| GatewayError::invalid_input("top", error))?;
        let selector = AccountSelector::parse(&input.account_id)?;
        let account = gateway.select_account(&selector, note).await?;
        let summary = gateway.broker().account_summary(&account.id).await?;
        let positions = gateway.broker().positions(&account.id).await?;
        let view = risk_view(&summary, &positions, top).map_err(|_| {
            GatewayError::from(BrokerError::InvalidResponse {
                detail: "the account figures overflow the risk arithmetic".to_owned(),
            })
        })?;
        let largest_positions = view
            .largest
            .iter()
            .filter_map(|share| {
                let position = positions.get(share.index)?;
                Some(ConcentrationView {
                    contract_id: position.contract.id.value(),
                    symbol: clean(&position.contract.symbol, SYMBOL_CHARS),
                    market_value: position.market_value.amount(),
                    exposure: share.exposure,
                    share_of_net_liquidation: share.share_of_net_liquidation,
                })
            })
            .collect();
        Ok(RiskViewOutput {
            account: AccountView::new(gateway.directory(), &account),
            currency: summary.base_currency.to_string(),
            net_liquidation: view.net_liquidation,
            excess_liquidity: view.excess_liquidity,
            initial_margin: view.initial_margin,
            maintenance_margin: view.maintenance_margin,
            available_funds: view.available_funds,
            cushion: view.cushion,
            maintenance_margin_share: view.maintenance_share,
            largest_positions,
            largest_positions_share: view.largest_total_share,
            positions_ranked: view.positions_ranked_from,
            positions_in_other_currencies: view.positions_in_other_currencies,
        })
    }
}

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    vec![
        Entry::of::<PnlShow>(),
        Entry::of::<AccountInfo>(),
        Entry::of::<RiskShow>(),
    ]
}
