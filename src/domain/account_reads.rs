//! Domain values for P&L, account metadata and the risk view (issue 16).
//!
//! - [`AccountPnl`]: one account's P&L figures as the broker reports them; a figure the broker
//!   did not send stays `None` rather than becoming zero.
//! - [`AccountMetadata`]: what the broker says about an account beyond its id: free text
//!   (title, display name, alias, description) as [`BrokerText`], codes checked by
//!   [`broker_code`], and the session's trading permissions.
//! - [`risk_view`]: the pure risk arithmetic over an account summary and its positions: margin
//!   shares of net liquidation and the largest positions' concentration, exact decimals,
//!   checked, rounded half-even to [`SHARE_DECIMALS`] places.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;

use super::account::AccountSummary;
use super::broker_text::BrokerText;
use super::ids::AccountId;
use super::money::{Currency, DecimalError};
use super::portfolio::Position;

// ---------------------------------------------------------------------------------------------
// P&L
// ---------------------------------------------------------------------------------------------

/// One account's P&L as the broker reports it, in the account's base currency. Every figure
/// is optional: a missing one is unknown, not zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPnl {
    /// The account.
    pub account_id: AccountId,
    /// Profit or loss since the start of the trading day.
    pub daily: Option<Decimal>,
    /// Unrealized profit or loss of the open positions.
    pub unrealized: Option<Decimal>,
    /// Realized profit or loss today.
    pub realized: Option<Decimal>,
    /// Net liquidation value.
    pub net_liquidation: Option<Decimal>,
    /// Excess liquidity over maintenance margin.
    pub excess_liquidity: Option<Decimal>,
    /// Market value of the positions.
    pub market_value: Option<Decimal>,
}

impl AccountPnl {
    /// No figure at all: what a broker answers before it has computed anything.
    pub fn empty(account_id: AccountId) -> Self {
        Self {
            account_id,
            daily: None,
            unrealized: None,
            realized: None,
            net_liquidation: None,
            excess_liquidity: None,
            market_value: None,
        }
    }

    /// True when not one figure is known.
    pub fn is_empty(&self) -> bool {
        [
            self.daily,
            self.unrealized,
            self.realized,
            self.net_liquidation,
            self.excess_liquidity,
            self.market_value,
        ]
        .iter()
        .all(Option::is_none)
    }

    /// The names of the figures the broker did not send, in a fixed order.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("daily_pnl", self.daily),
            ("unrealized_pnl", self.unrealized),
            ("realized_pnl", self.realized),
            ("net_liquidation", self.net_liquidation),
            ("excess_liquidity", self.excess_liquidity),
            ("market_value", self.market_value),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| name)
        .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Account metadata
// ---------------------------------------------------------------------------------------------

/// The longest broker code kept (`STKNOPT`, `IBLLC-US`, `INDIVIDUAL`...).
pub const MAX_CODE_CHARS: usize = 32;

/// A broker code, upper-cased, when `raw` is one: 1 to [`MAX_CODE_CHARS`] ASCII letters,
/// digits, `_`, `-` or `.`. Anything else (free text, an empty value) is `None`, so a code field
/// can never carry prose.
pub fn broker_code(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let valid = !trimmed.is_empty()
        && trimmed.len() <= MAX_CODE_CHARS
        && trimmed
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'));
    valid.then(|| trimmed.to_ascii_uppercase())
}

/// Where an account stands with the clearing house, from IBKR's one-letter status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearingStatus {
    /// `O`: open.
    Open,
    /// `P`: pending.
    Pending,
    /// `N`: new.
    New,
    /// `A`: abandoned.
    Abandoned,
    /// `R`: rejected.
    Rejected,
    /// `C`: closed.
    Closed,
    /// A letter the gateway does not model.
    Other,
}

impl ClearingStatus {
    /// The status of IBKR's letter (case ignored); any other text is [`ClearingStatus::Other`].
    pub fn from_letter(raw: &str) -> Self {
        match raw.trim().to_ascii_uppercase().as_str() {
            "O" => Self::Open,
            "P" => Self::Pending,
            "N" => Self::New,
            "A" => Self::Abandoned,
            "R" => Self::Rejected,
            "C" => Self::Closed,
            _ => Self::Other,
        }
    }

    /// Lower-case name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::New => "new",
            Self::Abandoned => "abandoned",
            Self::Rejected => "rejected",
            Self::Closed => "closed",
            Self::Other => "other",
        }
    }
}

/// What the brokerage session lets the account do. A flag the broker did not send is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TradingPermissions {
    /// Asset class codes the session may trade (`STK`, `OPT`, `FUT`...), as [`broker_code`]s,
    /// sorted and without repeats.
    pub asset_classes: Vec<String>,
    /// Orders may be sized in cash rather than units.
    pub supports_cash_quantity: Option<bool>,
    /// Fractional share quantities are allowed.
    pub supports_fractions: Option<bool>,
    /// Automatic currency conversion is off for the account.
    pub no_fx_conversion: Option<bool>,
    /// The account has sub-accounts (an advisor or master account).
    pub has_child_accounts: Option<bool>,
}

/// What the broker says about one account beyond its id and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMetadata {
    /// The account.
    pub account_id: AccountId,
    /// The account title (often the holder's name): untrusted text.
    pub title: Option<BrokerText>,
    /// The broker's display name: untrusted text.
    pub display_name: Option<BrokerText>,
    /// The alias the holder set at the broker: untrusted text.
    pub alias: Option<BrokerText>,
    /// The broker's short description: untrusted text.
    pub description: Option<BrokerText>,
    /// The broker's account type code (`DEMO` for paper in every documented example).
    pub account_type: Option<String>,
    /// The trading type code, e.g. `STKNOPT` or `PMRGN` (portfolio margin).
    pub trading_type: Option<String>,
    /// The customer type code, e.g. `INDIVIDUAL`.
    pub customer_type: Option<String>,
    /// The business type code, e.g. `IB_PROSERVE`.
    pub business_type: Option<String>,
    /// The IBKR entity holding the account, e.g. `IBLLC-US`.
    pub ib_entity: Option<String>,
    /// The clearing status.
    pub clearing_status: Option<ClearingStatus>,
    /// When the account was opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// The base currency the broker states for the account.
    pub base_currency: Option<Currency>,
    /// The brokerage session's own paper flag, when sent.
    pub session_is_paper: Option<bool>,
    /// What the session lets the account trade.
    pub permissions: TradingPermissions,
}

/// `text` with every occurrence of the raw account id (case ignored) replaced by `masked`, so
/// that broker text which repeats the id never prints it; `None` when the text is nothing but
/// the id (IBKR's default alias and description are the id itself) or is empty.
pub fn without_account_id(text: &BrokerText, id: &AccountId, masked: &str) -> Option<BrokerText> {
    let raw = text.as_str();
    let needle = id.expose().to_ascii_uppercase();
    // ASCII upper-casing keeps every byte offset, so matches in `upper` are matches in `raw`.
    let upper = raw.to_ascii_uppercase();
    if raw.is_empty() || upper.trim() == needle {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    let mut from = 0;
    for (at, _) in upper.match_indices(&needle) {
        out.push_str(&raw[from..at]);
        out.push_str(masked);
        from = at + needle.len();
    }
    out.push_str(&raw[from..]);
    Some(BrokerText::new(&out, out.chars().count()))
}

// ---------------------------------------------------------------------------------------------
// Risk view
// ---------------------------------------------------------------------------------------------

/// Decimal places of every share in the risk view (a fraction, so 6 places is 0.0001%).
pub const SHARE_DECIMALS: u32 = 6;

/// The most positions a risk view ranks.
pub const MAX_TOP_POSITIONS: u8 = 20;

/// How many positions a risk view ranks when the caller does not say.
pub const DEFAULT_TOP_POSITIONS: u8 = 5;

/// The number of largest positions to rank: 1 to [`MAX_TOP_POSITIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopPositions(u8);

/// Why a top-positions count was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("must be between 1 and {MAX_TOP_POSITIONS}")]
pub struct ParseTopPositionsError;

impl TopPositions {
    /// The count, when within range.
    ///
    /// # Errors
    /// [`ParseTopPositionsError`] outside 1 to [`MAX_TOP_POSITIONS`].
    pub fn new(count: u8) -> Result<Self, ParseTopPositionsError> {
        if (1..=MAX_TOP_POSITIONS).contains(&count) {
            Ok(Self(count))
        } else {
            Err(ParseTopPositionsError)
        }
    }

    /// The count.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for TopPositions {
    fn default() -> Self {
        Self(DEFAULT_TOP_POSITIONS)
    }
}

/// One ranked position of a risk view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionShare {
    /// The index of the position in the list given to [`risk_view`].
    pub index: usize,
    /// The absolute market value (a short position concentrates risk as much as a long one),
    /// in the base currency.
    pub exposure: Decimal,
    /// `exposure / net liquidation`, rounded; `None` when net liquidation is not positive.
    pub share_of_net_liquidation: Option<Decimal>,
}

/// The risk arithmetic of one account, every amount in its base currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskView {
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
    /// Excess liquidity as a share of net liquidation (IBKR's cushion); `None` when net
    /// liquidation is not positive.
    pub cushion: Option<Decimal>,
    /// Maintenance margin as a share of net liquidation; `None` likewise.
    pub maintenance_share: Option<Decimal>,
    /// The largest positions in the base currency by absolute market value, largest first
    /// (equal exposures by contract id).
    pub largest: Vec<PositionShare>,
    /// The ranked positions' exposures summed, as a share of net liquidation; `None` likewise.
    pub largest_total_share: Option<Decimal>,
    /// How many positions in the base currency were ranked from.
    pub positions_ranked_from: usize,
    /// Positions in another currency, left out of the ranking: their values cannot be compared
    /// with net liquidation without a conversion rate.
    pub positions_in_other_currencies: usize,
}

/// `part / whole` rounded half-even to [`SHARE_DECIMALS`], or `None` when `whole` is not
/// positive.
///
/// # Errors
/// [`DecimalError::Overflow`] when the division does not fit.
pub fn share_of(part: Decimal, whole: Decimal) -> Result<Option<Decimal>, DecimalError> {
    if whole <= Decimal::ZERO {
        return Ok(None);
    }
    let share = part.checked_div(whole).ok_or(DecimalError::Overflow)?;
    Ok(Some(share.round_dp_with_strategy(
        SHARE_DECIMALS,
        RoundingStrategy::MidpointNearestEven,
    )))
}

/// The risk view of an account from its summary and positions. Pure and exact: no rounding
/// except the shares', half-even.
///
/// # Errors
/// [`DecimalError::Overflow`] when a sum or a division does not fit in a decimal.
pub fn risk_view(
    summary: &AccountSummary,
    positions: &[Position],
    top: TopPositions,
) -> Result<RiskView, DecimalError> {
    let base = summary.base_currency;
    let net_liquidation = summary.net_liquidation.amount();
    let mut ranked: Vec<(usize, Decimal, u64)> = Vec::new();
    let mut other_currencies = 0;
    for (index, position) in positions.iter().enumerate() {
        if position.market_value.currency() == base {
            ranked.push((
                index,
                position.market_value.amount().abs(),
                position.contract.id.value(),
            ));
        } else {
            other_currencies += 1;
        }
    }
    let positions_ranked_from = ranked.len();
    ranked.sort_by(|a, b| match b.1.cmp(&a.1) {
        Ordering::Equal => a.2.cmp(&b.2).then(a.0.cmp(&b.0)),
        unequal => unequal,
    });
    ranked.truncate(top.get());
    let mut total = Decimal::ZERO;
    let mut largest = Vec::with_capacity(ranked.len());
    for (index, exposure, _) in ranked {
        total = total.checked_add(exposure).ok_or(DecimalError::Overflow)?;
        largest.push(PositionShare {
            index,
            exposure,
            share_of_net_liquidation: share_of(exposure, net_liquidation)?,
        });
    }
    let excess_liquidity = summary.excess_liquidity.amount();
    let maintenance_margin = summary.maintenance_margin.amount();
    Ok(RiskView {
        net_liquidation,
        excess_liquidity,
        initial_margin: summary.initial_margin.amount(),
        maintenance_margin,
        available_funds: summary.available_funds.amount(),
        cushion: share_of(excess_liquidity, net_liquidation)?,
        maintenance_share: share_of(maintenance_margin, net_liquidation)?,
        largest_total_share: if largest.is_empty() {
            None
        } else {
            share_of(total, net_liquidation)?
        },
        largest,
        positions_ranked_from,
        positions_in_other_currencies: other_currencies,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::ids::ContractId;
    use crate::domain::instrument::{AssetClass, Contract};
    use crate::domain::money::{Money, Price, Quantity};

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn account() -> AccountId {
        AccountId::parse("DU1234567").unwrap()
    }

    fn summary(net_liquidation: Decimal) -> AccountSummary {
        let money = |amount: Decimal| Money::new(amount, usd());
        AccountSummary {
            account_id: account(),
            base_currency: usd(),
            net_liquidation: money(net_liquidation),
            total_cash: money(dec("1000")),
            buying_power: money(dec("4000")),
            available_funds: money(dec("900")),
            excess_liquidity: money(dec("925310.72")),
            initial_margin: money(dec("136169.45")),
            maintenance_margin: money(dec("122902.83")),
            gross_position_value: money(dec("543255.31")),
            cash_balances: Vec::new(),
        }
    }

    fn position(conid: u64, value: Decimal, currency: &str) -> Position {
        let currency = Currency::parse(currency).unwrap();
        let contract = Contract {
            id: ContractId::new(conid).unwrap(),
            symbol: format!("S{conid}"),
            local_symbol: format!("S{conid}"),
            asset_class: AssetClass::Stock,
            currency,
            exchange: "NASDAQ".to_owned(),
            multiplier: Decimal::ONE,
            description: String::new(),
            option: None,
        };
        Position {
            account_id: account(),
            contract,
            quantity: Quantity::new(Decimal::ONE),
            average_cost: Price::new(Decimal::ONE).unwrap(),
            market_price: Price::new(Decimal::ONE).unwrap(),
            market_value: Money::new(value, currency),
            unrealized_pnl: Money::new(Decimal::ZERO, currency),
            realized_pnl: Money::new(Decimal::ZERO, currency),
        }
    }

    #[test]
    fn the_largest_positions_rank_by_absolute_value_with_exact_shares() {
        let positions = [
            position(1, dec("53102.5"), "USD"),
            position(2, dec("-1223.6"), "USD"),
            position(3, dec("-90000.00"), "USD"),
            position(4, dec("500000"), "EUR"),
            position(5, dec("1223.6"), "USD"),
        ];
        let view = risk_view(
            &summary(dec("1048213.55")),
            &positions,
            TopPositions::new(3).unwrap(),
        )
        .unwrap();
        let order: Vec<usize> = view.largest.iter().map(|share| share.index).collect();
        // The short position is the largest; equal exposures go by contract id.
        assert_eq!(order, [2, 0, 1]);
        assert_eq!(view.largest[0].exposure, dec("90000.00"));
        // 90000 / 1048213.55 = 0.0858604... → half-even at 6 places.
        assert_eq!(
            view.largest[0].share_of_net_liquidation,
            Some(dec("0.085860"))
        );
        assert_eq!(view.positions_ranked_from, 4);
        assert_eq!(view.positions_in_other_currencies, 1);
        assert_eq!(view.cushion, Some(dec("0.882750")));
        // (90000 + 53102.5 + 1223.6) / 1048213.55
        assert_eq!(view.largest_total_share, Some(dec("0.137688")));
    }

    #[test]
    fn shares_are_absent_when_net_liquidation_is_not_positive() {
        let view = risk_view(
            &summary(Decimal::ZERO),
            &[position(1, dec("10"), "USD")],
            TopPositions::default(),
        )
        .unwrap();
        assert_eq!(view.largest[0].share_of_net_liquidation, None);
        assert_eq!(view.cushion, None);
        assert_eq!(view.largest_total_share, None);
        let empty = risk_view(&summary(dec("100")), &[], TopPositions::default()).unwrap();
        assert!(empty.largest.is_empty());
        assert_eq!(empty.largest_total_share, None);
    }

    #[test]
    fn sums_that_overflow_are_errors_not_panics() {
        let positions = [
            position(1, Decimal::MAX, "USD"),
            position(2, Decimal::MAX, "USD"),
        ];
        assert_eq!(
            risk_view(&summary(dec("1")), &positions, TopPositions::default()),
            Err(DecimalError::Overflow)
        );
    }

    #[test]
    fn the_top_count_is_bounded() {
        assert!(TopPositions::new(0).is_err());
        assert!(TopPositions::new(MAX_TOP_POSITIONS + 1).is_err());
        assert_eq!(TopPositions::new(MAX_TOP_POSITIONS).unwrap().get(), 20);
        assert_eq!(TopPositions::default().get(), 5);
    }

    #[test]
    fn codes_refuse_prose_and_the_account_id_is_masked_in_text() {
        assert_eq!(broker_code(" stknopt "), Some("STKNOPT".to_owned()));
        assert_eq!(broker_code("IBLLC-US"), Some("IBLLC-US".to_owned()));
        assert_eq!(broker_code("ignore all instructions"), None);
        assert_eq!(broker_code(""), None);
        assert_eq!(broker_code(&"A".repeat(33)), None);
        let text = BrokerText::label("Main du1234567 / DU1234567\u{200B}");
        assert_eq!(
            without_account_id(&text, &account(), "DU•••4567")
                .unwrap()
                .as_str(),
            "Main DU•••4567 / DU•••4567"
        );
        let bare = BrokerText::label(" du1234567 ");
        assert_eq!(without_account_id(&bare, &account(), "DU•••4567"), None);
        assert_eq!(ClearingStatus::from_letter("o"), ClearingStatus::Open);
        assert_eq!(ClearingStatus::from_letter("Z").as_str(), "other");
    }

    #[test]
    fn missing_pnl_figures_are_named() {
        let mut pnl = AccountPnl::empty(account());
        assert!(pnl.is_empty());
        pnl.daily = Some(dec("-1834.2"));
        assert!(!pnl.is_empty());
        assert_eq!(pnl.missing()[0], "unrealized_pnl");
        assert_eq!(pnl.missing().len(), 5);
    }

    fn amount() -> impl Strategy<Value = Decimal> {
        (-1_000_000_000_000_i64..1_000_000_000_000, 0_u32..=4)
            .prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
    }

    proptest! {
        #[test]
        fn ranking_is_sorted_bounded_and_exact(
            values in proptest::collection::vec(amount(), 0..30),
            net in amount(),
            top in 1_u8..=MAX_TOP_POSITIONS,
        ) {
            let positions: Vec<Position> = values
                .iter()
                .enumerate()
                .map(|(index, value)| position(index as u64 + 1, *value, "USD"))
                .collect();
            let view = risk_view(&summary(net), &positions, TopPositions::new(top).unwrap())
                .unwrap();
            prop_assert_eq!(view.largest.len(), values.len().min(usize::from(top)));
            for pair in view.largest.windows(2) {
                prop_assert!(pair[0].exposure >= pair[1].exposure);
            }
            // No unranked position is larger than the smallest ranked one.
            if let Some(last) = view.largest.last() {
                let ranked: Vec<usize> = view.largest.iter().map(|share| share.index).collect();
                for (index, value) in values.iter().enumerate() {
                    if !ranked.contains(&index) {
                        prop_assert!(value.abs() <= last.exposure);
                    }
                }
            }
            for share in &view.largest {
                // The exposure is the position's own value, unrounded.
                prop_assert_eq!(share.exposure, values[share.index].abs());
                match share.share_of_net_liquidation {
                    Some(fraction) => {
                        prop_assert!(net > Decimal::ZERO);
                        prop_assert!(fraction.scale() <= SHARE_DECIMALS);
                        let exact = share.exposure / net;
                        let error = (exact - fraction).abs();
                        prop_assert!(error <= Decimal::new(5, SHARE_DECIMALS + 1));
                    }
                    None => prop_assert!(net <= Decimal::ZERO),
                }
            }
        }
    }
}
