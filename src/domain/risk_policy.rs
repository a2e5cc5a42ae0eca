//! The live risk policy: the operator's limits, and a pure evaluation of a live order (one leg
//! or a bracket's legs) against them.
//!
//! **Not wired yet.** This is the pure groundwork of issue 13; the session that implements the
//! rest of issue 13 loads policies from trusted configuration (`live_trading.policies`),
//! derives the [`RiskCounters`] from durable workflow state and runs [`evaluate`] as a runtime
//! gate before any live writer call, and shows [`remaining_budget`] in `limits status`.
//!
//! [`RiskPolicy::parse`] refuses nonsense: a zero limit, an empty allow-list, a blank symbol,
//! a collar over 100 %. [`evaluate`] checks every rule and returns every violation, each with
//! its own stable code, never only the first:
//!
//! - notional (`|quantity| × limit price × multiplier`) of each leg, and of a bracket's legs
//!   added together, against `max_notional`. Legs without a limit price (market, stop,
//!   trailing) add no notional; they are still covered by every other rule. A notional that
//!   overflows or is in another currency than the policy's cannot be compared and is refused;
//! - `|quantity|` of each leg and of the legs together against `max_quantity`. Adding a
//!   bracket's legs counts them as if all could fill, which over-states the exposure of a
//!   bracket whose exits close the entry; for a limit, erring high is the safe side;
//! - the contract's symbol and asset class against the allow-lists; a leg for another contract
//!   than the one given is refused as a symbol the policy cannot vouch for;
//! - frequency and session order counts: every leg is one broker order;
//! - session notional: today's notional plus this order's limit-priced notional;
//! - the quote: present, for this contract, live data, no older than `max_quote_age_seconds`,
//!   with a reference price (the bid/ask midpoint, else the last trade);
//! - the collar: every limit price within `max_price_deviation_bps` of the reference price.
//!   An order with no limit price has no price to collar, but still needs the quote.
//!
//! All arithmetic is exact and checked; an overflow is a refusal under the rule it broke.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use thiserror::Error;

use super::error_code::ErrorCode;
use super::instrument::{AssetClass, Contract};
use super::market_data::{DataStatus, Quote};
use super::money::{Currency, Price};
use super::order_intent::OrderIntent;

/// The longest symbol accepted in an allow-list.
const MAX_SYMBOL_CHARS: usize = 32;

/// Basis points in one whole.
const BPS_PER_ONE: u32 = 10_000;

/// The raw parts of a policy, as configuration supplies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskPolicyParts {
    /// The currency the notional limits are in.
    pub currency: Currency,
    /// The largest notional of one order or of a bracket's legs together.
    pub max_notional: Decimal,
    /// The largest quantity of one order or of a bracket's legs together.
    pub max_quantity: Decimal,
    /// Symbols that may be traded (compared case-insensitively).
    pub allowed_symbols: Vec<String>,
    /// Asset classes that may be traded.
    pub allowed_asset_classes: Vec<AssetClass>,
    /// Orders allowed per frequency window.
    pub frequency_max_orders: u32,
    /// The frequency window's length in seconds.
    pub frequency_window_seconds: u32,
    /// Orders allowed per trading day.
    pub session_max_orders: u32,
    /// Limit-priced notional allowed per trading day.
    pub session_max_notional: Decimal,
    /// How far a limit price may be from the reference price, in basis points (1..=10000).
    pub max_price_deviation_bps: u32,
    /// The oldest quote accepted, in seconds.
    pub max_quote_age_seconds: u32,
}

/// Why a policy was refused; each names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RiskPolicyError {
    /// A limit is zero or negative.
    #[error("`{0}` must be greater than zero")]
    NotPositive(&'static str),
    /// An allow-list is empty, so nothing could be traded.
    #[error("`{0}` must not be empty")]
    EmptyAllowList(&'static str),
    /// A symbol is blank, too long or holds whitespace or control characters.
    #[error("`allowed_symbols` holds a malformed symbol")]
    MalformedSymbol,
    /// The collar is wider than 100 %.
    #[error("`max_price_deviation_bps` must be at most {BPS_PER_ONE}")]
    CollarTooWide,
    /// An order-count limit is above [`MAX_ORDERS_LIMIT`].
    #[error("`{0}` must be at most {MAX_ORDERS_LIMIT}")]
    TooManyOrders(&'static str),
}

/// The largest order-count limit a policy may set, per frequency window and per trading day.
/// The counters are range sums over the entries inside the window or the day, so their cost
/// grows with these limits; this bound keeps the live gates within their budget (about 0.3 µs
/// per counted entry, read twice per live write; see docs/benchmarks.md) and is far above what
/// an agent trading through the Client Portal's pacing can place in a day.
pub const MAX_ORDERS_LIMIT: u32 = 500;

fn bounded_count(key: &'static str, value: u32) -> Result<u32, RiskPolicyError> {
    let value = positive_count(key, value)?;
    if value > MAX_ORDERS_LIMIT {
        Err(RiskPolicyError::TooManyOrders(key))
    } else {
        Ok(value)
    }
}

impl RiskPolicyError {
    /// The stable code: the configuration is invalid.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::ConfigInvalid
    }
}

/// A checked risk policy. Fields are private; build one with [`RiskPolicy::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskPolicy {
    currency: Currency,
    max_notional: Decimal,
    max_quantity: Decimal,
    allowed_symbols: BTreeSet<String>,
    allowed_asset_classes: BTreeSet<AssetClass>,
    frequency_max_orders: u32,
    frequency_window_seconds: u32,
    session_max_orders: u32,
    session_max_notional: Decimal,
    max_price_deviation_bps: u32,
    max_quote_age_seconds: u32,
}

fn positive_decimal(key: &'static str, value: Decimal) -> Result<Decimal, RiskPolicyError> {
    if value > Decimal::ZERO {
        Ok(value)
    } else {
        Err(RiskPolicyError::NotPositive(key))
    }
}

fn positive_count(key: &'static str, value: u32) -> Result<u32, RiskPolicyError> {
    if value > 0 {
        Ok(value)
    } else {
        Err(RiskPolicyError::NotPositive(key))
    }
}

impl RiskPolicy {
    /// Checks the parts and builds the policy.
    ///
    /// # Errors
    /// [`RiskPolicyError`] naming the first key that makes no sense.
    pub fn parse(parts: RiskPolicyParts) -> Result<Self, RiskPolicyError> {
        let max_notional = positive_decimal("max_notional", parts.max_notional)?;
        let max_quantity = positive_decimal("max_quantity", parts.max_quantity)?;
        let session_max_notional =
            positive_decimal("session.max_notional", parts.session_max_notional)?;
        let frequency_max_orders =
            bounded_count("frequency.max_orders", parts.frequency_max_orders)?;
        let frequency_window_seconds =
            positive_count("frequency.window_seconds", parts.frequency_window_seconds)?;
        let session_max_orders = bounded_count("session.max_orders", parts.session_max_orders)?;
        let max_price_deviation_bps =
            positive_count("max_price_deviation_bps", parts.max_price_deviation_bps)?;
        if max_price_deviation_bps > BPS_PER_ONE {
            return Err(RiskPolicyError::CollarTooWide);
        }
        let max_quote_age_seconds =
            positive_count("max_quote_age_seconds", parts.max_quote_age_seconds)?;
        if parts.allowed_symbols.is_empty() {
            return Err(RiskPolicyError::EmptyAllowList("allowed_symbols"));
        }
        let mut allowed_symbols = BTreeSet::new();
        for symbol in &parts.allowed_symbols {
            let malformed = symbol.is_empty()
                || symbol.chars().count() > MAX_SYMBOL_CHARS
                || symbol.chars().any(|c| c.is_whitespace() || c.is_control());
            if malformed {
                return Err(RiskPolicyError::MalformedSymbol);
            }
            allowed_symbols.insert(symbol.to_uppercase());
        }
        if parts.allowed_asset_classes.is_empty() {
            return Err(RiskPolicyError::EmptyAllowList("allowed_asset_classes"));
        }
        Ok(Self {
            currency: parts.currency,
            max_notional,
            max_quantity,
            allowed_symbols,
            allowed_asset_classes: parts.allowed_asset_classes.into_iter().collect(),
            frequency_max_orders,
            frequency_window_seconds,
            session_max_orders,
            session_max_notional,
            max_price_deviation_bps,
            max_quote_age_seconds,
        })
    }

    /// The currency the notional limits are in.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The largest notional of one order or of a bracket's legs together.
    pub fn max_notional(&self) -> Decimal {
        self.max_notional
    }

    /// The largest quantity of one order or of a bracket's legs together.
    pub fn max_quantity(&self) -> Decimal {
        self.max_quantity
    }

    /// The allowed symbols, upper-cased.
    pub fn allowed_symbols(&self) -> &BTreeSet<String> {
        &self.allowed_symbols
    }

    /// The allowed asset classes.
    pub fn allowed_asset_classes(&self) -> &BTreeSet<AssetClass> {
        &self.allowed_asset_classes
    }

    /// Orders allowed per frequency window.
    pub fn frequency_max_orders(&self) -> u32 {
        self.frequency_max_orders
    }

    /// Orders allowed per trading day.
    pub fn session_max_orders(&self) -> u32 {
        self.session_max_orders
    }

    /// Limit-priced notional allowed per trading day.
    pub fn session_max_notional(&self) -> Decimal {
        self.session_max_notional
    }

    /// The frequency window's length in seconds (the counters' window).
    pub fn frequency_window_seconds(&self) -> u32 {
        self.frequency_window_seconds
    }

    /// The collar in basis points.
    pub fn max_price_deviation_bps(&self) -> u32 {
        self.max_price_deviation_bps
    }

    /// The oldest quote accepted, in seconds.
    pub fn max_quote_age_seconds(&self) -> u32 {
        self.max_quote_age_seconds
    }
}

/// What has already been placed, as the app derives it from durable state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskCounters {
    window_orders: u64,
    session_orders: u64,
    session_notional: Decimal,
}

/// A negative session notional was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the session notional must not be negative")]
pub struct NegativeSessionNotional;

impl RiskCounters {
    /// Counters: orders in the current frequency window, orders and limit-priced notional
    /// (in the policy's currency) this trading day.
    ///
    /// # Errors
    /// [`NegativeSessionNotional`] when the notional is negative.
    pub fn new(
        window_orders: u64,
        session_orders: u64,
        session_notional: Decimal,
    ) -> Result<Self, NegativeSessionNotional> {
        if session_notional < Decimal::ZERO {
            return Err(NegativeSessionNotional);
        }
        Ok(Self {
            window_orders,
            session_orders,
            session_notional,
        })
    }

    /// Nothing placed yet.
    pub fn zero() -> Self {
        Self {
            window_orders: 0,
            session_orders: 0,
            session_notional: Decimal::ZERO,
        }
    }
}

/// What a quantity or notional rule was measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// One leg, by its index in the order's legs.
    Leg(usize),
    /// A bracket's legs added together.
    Combined,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RiskViolation {
    /// A notional is over `max_notional`.
    #[error("notional {notional} ({on:?}) is over the limit {limit}")]
    NotionalOverLimit {
        /// What was measured.
        on: Exposure,
        /// The notional.
        notional: Decimal,
        /// The limit.
        limit: Decimal,
    },
    /// A notional cannot be compared with the limit (it overflows, or is in another currency).
    #[error("the notional ({on:?}) cannot be compared with the limit: {why}")]
    NotionalUncomputable {
        /// What was measured.
        on: Exposure,
        /// Why.
        why: &'static str,
    },
    /// A quantity is over `max_quantity` (or overflows, shown as `None`).
    #[error("quantity ({on:?}) is over the limit {limit}")]
    QuantityOverLimit {
        /// What was measured.
        on: Exposure,
        /// The quantity, `None` on overflow.
        quantity: Option<Decimal>,
        /// The limit.
        limit: Decimal,
    },
    /// The contract's symbol is not allowed.
    #[error("symbol `{symbol}` is not allowed")]
    SymbolNotAllowed {
        /// The symbol.
        symbol: String,
    },
    /// A leg is for another contract than the one the policy was given.
    #[error("leg {leg} is for another contract than the one checked")]
    ContractMismatch {
        /// The leg's index.
        leg: usize,
    },
    /// The asset class is not allowed.
    #[error("asset class `{asset_class}` is not allowed")]
    AssetClassNotAllowed {
        /// The asset class.
        asset_class: AssetClass,
    },
    /// Too many orders in the frequency window.
    #[error("{placed} orders in the last {window_seconds}s plus {adding} is over {limit}")]
    FrequencyLimit {
        /// Orders already in the window.
        placed: u64,
        /// Orders this request adds.
        adding: u64,
        /// The limit.
        limit: u32,
        /// The window.
        window_seconds: u32,
    },
    /// Too many orders this trading day.
    #[error("{placed} orders today plus {adding} is over {limit}")]
    SessionOrderLimit {
        /// Orders already today.
        placed: u64,
        /// Orders this request adds.
        adding: u64,
        /// The limit.
        limit: u32,
    },
    /// Too much notional this trading day (`adding` is `None` when the sum overflows).
    #[error("today's notional {placed} plus this order's is over {limit}")]
    SessionNotionalLimit {
        /// Notional already today.
        placed: Decimal,
        /// This request's notional, `None` on overflow.
        adding: Option<Decimal>,
        /// The limit.
        limit: Decimal,
    },
    /// A limit price is outside the collar.
    #[error("leg {leg}'s limit {price} is more than {max_bps} bps from {reference}")]
    PriceCollar {
        /// The leg's index.
        leg: usize,
        /// Its limit price.
        price: Price,
        /// The reference price.
        reference: Price,
        /// The collar.
        max_bps: u32,
    },
    /// The quote is too old or not live data.
    #[error("the quote is stale ({age_seconds}s old, status {status}, limit {max_seconds}s)")]
    StaleQuote {
        /// Its age.
        age_seconds: i64,
        /// Its status.
        status: DataStatus,
        /// The limit.
        max_seconds: u32,
    },
    /// There is no usable quote.
    #[error("no usable market snapshot: {why}")]
    SnapshotMissing {
        /// Why.
        why: &'static str,
    },
}

impl RiskViolation {
    /// The rule's stable name, for machine-readable details.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::NotionalOverLimit { .. } | Self::NotionalUncomputable { .. } => "max_notional",
            Self::QuantityOverLimit { .. } => "max_quantity",
            Self::SymbolNotAllowed { .. } | Self::ContractMismatch { .. } => "allowed_symbols",
            Self::AssetClassNotAllowed { .. } => "allowed_asset_classes",
            Self::FrequencyLimit { .. } => "frequency",
            Self::SessionOrderLimit { .. } => "session_max_orders",
            Self::SessionNotionalLimit { .. } => "session_max_notional",
            Self::PriceCollar { .. } => "max_price_deviation_bps",
            Self::StaleQuote { .. } => "max_quote_age_seconds",
            Self::SnapshotMissing { .. } => "market_snapshot",
        }
    }

    /// The stable code of the broken rule.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotionalOverLimit { .. } | Self::NotionalUncomputable { .. } => {
                ErrorCode::LiveNotionalLimitRefused
            }
            Self::QuantityOverLimit { .. } => ErrorCode::LiveQuantityLimitRefused,
            Self::SymbolNotAllowed { .. } | Self::ContractMismatch { .. } => {
                ErrorCode::LiveSymbolRefused
            }
            Self::AssetClassNotAllowed { .. } => ErrorCode::LiveAssetClassRefused,
            Self::FrequencyLimit { .. } => ErrorCode::LiveFrequencyLimitRefused,
            Self::SessionOrderLimit { .. } => ErrorCode::LiveSessionOrderLimitRefused,
            Self::SessionNotionalLimit { .. } => ErrorCode::LiveSessionNotionalLimitRefused,
            Self::PriceCollar { .. } => ErrorCode::LivePriceCollarRefused,
            Self::StaleQuote { .. } => ErrorCode::LiveStaleQuote,
            Self::SnapshotMissing { .. } => ErrorCode::LiveMarketSnapshotMissing,
        }
    }
}

/// Every rule the order broke, in the order the rules are listed in the module docs; never
/// empty.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the live risk policy refused the order ({} rule(s) broken)", .violations.len())]
pub struct RiskRefusal {
    /// The broken rules.
    pub violations: Vec<RiskViolation>,
}

impl RiskRefusal {
    /// The codes of every broken rule, without repeats, in first-seen order.
    pub fn codes(&self) -> Vec<ErrorCode> {
        let mut codes = Vec::new();
        for code in self.violations.iter().map(RiskViolation::code) {
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes
    }
}

/// Evaluates a live order's legs (one, or a bracket's three) on `contract` against `policy`,
/// given the quote snapshot (if any), what was already placed and the time.
///
/// # Errors
/// [`RiskRefusal`] holding every broken rule.
pub fn evaluate(
    policy: &RiskPolicy,
    legs: &[OrderIntent],
    contract: &Contract,
    quote: Option<&Quote>,
    counters: &RiskCounters,
    now: DateTime<Utc>,
) -> Result<(), RiskRefusal> {
    let mut violations = Vec::new();
    if legs.is_empty() {
        // Nothing to measure is not "within the limits": fail closed.
        violations.push(RiskViolation::NotionalUncomputable {
            on: Exposure::Combined,
            why: "the request names no order",
        });
    }
    check_notional(policy, legs, contract, &mut violations);
    check_quantity(policy, legs, &mut violations);
    check_instrument(policy, legs, contract, &mut violations);
    check_counts(policy, legs, counters, &mut violations);
    check_session_notional(policy, legs, contract, counters, &mut violations);
    check_market(policy, legs, contract, quote, now, &mut violations);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(RiskRefusal { violations })
    }
}

/// What a live write adds to the counters: its number of orders (each leg counts) and its
/// limit-priced notional in the contract's currency (legs without a limit price add none).
///
/// # Errors
/// A short reason when the notional overflows.
pub fn counted_exposure(
    legs: &[OrderIntent],
    contract: &Contract,
) -> Result<(u64, Decimal), &'static str> {
    let orders = u64::try_from(legs.len()).map_err(|_| "too many legs")?;
    Ok((orders, combined_notional(legs, contract)?))
}

/// A leg's limit-priced notional: `None` for a leg without a limit price.
fn leg_notional(leg: &OrderIntent, contract: &Contract) -> Option<Result<Decimal, &'static str>> {
    leg.limit_price().map(|price| {
        leg.quantity()
            .notional(price, contract.multiplier, contract.currency)
            .map(|money| money.amount())
            .map_err(|_| "arithmetic overflow")
    })
}

/// The legs' limit-priced notional added together; `Err` on overflow.
fn combined_notional(legs: &[OrderIntent], contract: &Contract) -> Result<Decimal, &'static str> {
    let mut total = Decimal::ZERO;
    for leg in legs {
        if let Some(notional) = leg_notional(leg, contract) {
            total = total.checked_add(notional?).ok_or("arithmetic overflow")?;
        }
    }
    Ok(total)
}

fn check_notional(
    policy: &RiskPolicy,
    legs: &[OrderIntent],
    contract: &Contract,
    violations: &mut Vec<RiskViolation>,
) {
    let priced = legs.iter().any(|leg| leg.limit_price().is_some());
    if priced && contract.currency != policy.currency {
        violations.push(RiskViolation::NotionalUncomputable {
            on: Exposure::Combined,
            why: "the contract's currency is not the policy's",
        });
        return;
    }
    let limit = policy.max_notional;
    let mut judge = |on: Exposure, notional: Result<Decimal, &'static str>| match notional {
        Ok(notional) if notional > limit => violations.push(RiskViolation::NotionalOverLimit {
            on,
            notional,
            limit,
        }),
        Ok(_) => {}
        Err(why) => violations.push(RiskViolation::NotionalUncomputable { on, why }),
    };
    for (index, leg) in legs.iter().enumerate() {
        if let Some(notional) = leg_notional(leg, contract) {
            judge(Exposure::Leg(index), notional);
        }
    }
    if legs.len() > 1 && priced {
        judge(Exposure::Combined, combined_notional(legs, contract));
    }
}

fn check_quantity(policy: &RiskPolicy, legs: &[OrderIntent], violations: &mut Vec<RiskViolation>) {
    let limit = policy.max_quantity;
    let mut total = Some(Decimal::ZERO);
    for (index, leg) in legs.iter().enumerate() {
        let quantity = leg.quantity().value().abs();
        if quantity > limit {
            violations.push(RiskViolation::QuantityOverLimit {
                on: Exposure::Leg(index),
                quantity: Some(quantity),
                limit,
            });
        }
        total = total.and_then(|sum| sum.checked_add(quantity));
    }
    if legs.len() > 1 && total.is_none_or(|sum| sum > limit) {
        violations.push(RiskViolation::QuantityOverLimit {
            on: Exposure::Combined,
            quantity: total,
            limit,
        });
    }
}

fn check_instrument(
    policy: &RiskPolicy,
    legs: &[OrderIntent],
    contract: &Contract,
    violations: &mut Vec<RiskViolation>,
) {
    if !policy
        .allowed_symbols
        .contains(&contract.symbol.to_uppercase())
    {
        violations.push(RiskViolation::SymbolNotAllowed {
            symbol: contract.symbol.clone(),
        });
    }
    for (leg, intent) in legs.iter().enumerate() {
        if intent.contract_id() != contract.id {
            violations.push(RiskViolation::ContractMismatch { leg });
        }
    }
    if !policy.allowed_asset_classes.contains(&contract.asset_class) {
        violations.push(RiskViolation::AssetClassNotAllowed {
            asset_class: contract.asset_class,
        });
    }
}

fn check_counts(
    policy: &RiskPolicy,
    legs: &[OrderIntent],
    counters: &RiskCounters,
    violations: &mut Vec<RiskViolation>,
) {
    let adding = u64::try_from(legs.len()).unwrap_or(u64::MAX);
    let over = |placed: u64, limit: u32| {
        placed
            .checked_add(adding)
            .is_none_or(|total| total > u64::from(limit))
    };
    if over(counters.window_orders, policy.frequency_max_orders) {
        violations.push(RiskViolation::FrequencyLimit {
            placed: counters.window_orders,
            adding,
            limit: policy.frequency_max_orders,
            window_seconds: policy.frequency_window_seconds,
        });
    }
    if over(counters.session_orders, policy.session_max_orders) {
        violations.push(RiskViolation::SessionOrderLimit {
            placed: counters.session_orders,
            adding,
            limit: policy.session_max_orders,
        });
    }
}

fn check_session_notional(
    policy: &RiskPolicy,
    legs: &[OrderIntent],
    contract: &Contract,
    counters: &RiskCounters,
    violations: &mut Vec<RiskViolation>,
) {
    if !legs.iter().any(|leg| leg.limit_price().is_some()) {
        return;
    }
    // A notional in another currency is already refused by the notional rule; it cannot be
    // added to today's total either.
    let adding = if contract.currency == policy.currency {
        combined_notional(legs, contract).ok()
    } else {
        None
    };
    let total = adding.and_then(|adding| counters.session_notional.checked_add(adding));
    if total.is_none_or(|total| total > policy.session_max_notional) {
        violations.push(RiskViolation::SessionNotionalLimit {
            placed: counters.session_notional,
            adding,
            limit: policy.session_max_notional,
        });
    }
}

/// The price a collar compares against: the bid/ask midpoint, else the last trade.
fn reference_price(quote: &Quote) -> Option<Decimal> {
    let positive = |price: Option<Price>| price.map(Price::value).filter(|v| *v > Decimal::ZERO);
    match (positive(quote.bid), positive(quote.ask)) {
        (Some(bid), Some(ask)) if bid <= ask => bid
            .checked_add(ask)
            .and_then(|sum| sum.checked_div(Decimal::TWO)),
        _ => positive(quote.last),
    }
}

/// True when `price` is within `bps` basis points of `reference` (checked; overflow is out).
fn within_collar(price: Decimal, reference: Decimal, bps: u32) -> bool {
    let scaled = price
        .checked_sub(reference)
        .and_then(|deviation| deviation.abs().checked_mul(Decimal::from(BPS_PER_ONE)));
    let allowed = reference.checked_mul(Decimal::from(bps));
    matches!((scaled, allowed), (Some(scaled), Some(allowed)) if scaled <= allowed)
}

fn check_market(
    policy: &RiskPolicy,
    legs: &[OrderIntent],
    contract: &Contract,
    quote: Option<&Quote>,
    now: DateTime<Utc>,
    violations: &mut Vec<RiskViolation>,
) {
    let Some(quote) = quote else {
        violations.push(RiskViolation::SnapshotMissing {
            why: "no quote was taken",
        });
        return;
    };
    if quote.contract_id != contract.id {
        violations.push(RiskViolation::SnapshotMissing {
            why: "the quote is for another contract",
        });
        return;
    }
    let age_seconds = quote.age_at(now).num_seconds();
    let too_old =
        quote.age_at(now) > chrono::Duration::seconds(i64::from(policy.max_quote_age_seconds));
    if too_old || quote.status != DataStatus::Live {
        violations.push(RiskViolation::StaleQuote {
            age_seconds,
            status: quote.status,
            max_seconds: policy.max_quote_age_seconds,
        });
    }
    let Some(reference) = reference_price(quote) else {
        violations.push(RiskViolation::SnapshotMissing {
            why: "the quote has no bid/ask or last price",
        });
        return;
    };
    for (leg, intent) in legs.iter().enumerate() {
        let Some(price) = intent.limit_price() else {
            continue;
        };
        if !within_collar(price.value(), reference, policy.max_price_deviation_bps) {
            violations.push(RiskViolation::PriceCollar {
                leg,
                price,
                reference: Price::new(reference).unwrap_or(price),
                max_bps: policy.max_price_deviation_bps,
            });
        }
    }
}

/// What is left of one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleBudget {
    /// The code a refusal under this rule carries.
    pub code: ErrorCode,
    /// The rule's name, for machine-readable output.
    pub rule: &'static str,
    /// The limit.
    pub limit: Decimal,
    /// How much of it is used (always zero for the per-order limits).
    pub used: Decimal,
    /// How much is left; never negative.
    pub remaining: Decimal,
}

/// The remaining budget of each numeric rule, for a `limits status` view: the per-order limits
/// (notional, quantity) are whole for every order; the frequency and session limits are what
/// the counters leave.
pub fn remaining_budget(policy: &RiskPolicy, counters: &RiskCounters) -> Vec<RuleBudget> {
    let budget = |code, rule, limit: Decimal, used: Decimal| RuleBudget {
        code,
        rule,
        limit,
        used,
        remaining: limit
            .checked_sub(used)
            .unwrap_or(Decimal::ZERO)
            .max(Decimal::ZERO),
    };
    vec![
        budget(
            ErrorCode::LiveNotionalLimitRefused,
            "max_notional",
            policy.max_notional,
            Decimal::ZERO,
        ),
        budget(
            ErrorCode::LiveQuantityLimitRefused,
            "max_quantity",
            policy.max_quantity,
            Decimal::ZERO,
        ),
        budget(
            ErrorCode::LiveFrequencyLimitRefused,
            "frequency.max_orders",
            Decimal::from(policy.frequency_max_orders),
            Decimal::from(counters.window_orders),
        ),
        budget(
            ErrorCode::LiveSessionOrderLimitRefused,
            "session.max_orders",
            Decimal::from(policy.session_max_orders),
            Decimal::from(counters.session_orders),
        ),
        budget(
            ErrorCode::LiveSessionNotionalLimitRefused,
            "session.max_notional",
            policy.session_max_notional,
            counters.session_notional,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::ids::{AccountId, ContractId};
    use crate::domain::money::Quantity;
    use crate::domain::order::{OrderSide, OrderType, TimeInForce};
    use crate::domain::order_intent::{BracketIntent, IntentParts};

    const CONID: u64 = 265_598;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 15, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn parts() -> RiskPolicyParts {
        RiskPolicyParts {
            currency: usd(),
            max_notional: d("10000"),
            max_quantity: d("100"),
            allowed_symbols: vec!["aapl".to_owned(), "MSFT".to_owned()],
            allowed_asset_classes: vec![AssetClass::Stock],
            frequency_max_orders: 5,
            frequency_window_seconds: 60,
            session_max_orders: 20,
            session_max_notional: d("50000"),
            max_price_deviation_bps: 100,
            max_quote_age_seconds: 5,
        }
    }

    fn policy() -> RiskPolicy {
        RiskPolicy::parse(parts()).unwrap()
    }

    fn contract() -> Contract {
        Contract {
            id: ContractId::new(CONID).unwrap(),
            symbol: "AAPL".to_owned(),
            local_symbol: "AAPL".to_owned(),
            asset_class: AssetClass::Stock,
            currency: usd(),
            exchange: "NASDAQ".to_owned(),
            description: "APPLE INC".to_owned(),
            multiplier: Decimal::ONE,
            option: None,
        }
    }

    fn quote(bid: Decimal, ask: Decimal, age_seconds: i64) -> Quote {
        Quote {
            contract_id: ContractId::new(CONID).unwrap(),
            bid: Some(Price::new(bid).unwrap()),
            ask: Some(Price::new(ask).unwrap()),
            last: None,
            bid_size: None,
            ask_size: None,
            volume: None,
            status: DataStatus::Live,
            as_of: now() - Duration::seconds(age_seconds),
            greeks: None,
            missing: Vec::new(),
        }
    }

    fn order(order_type: OrderType, quantity: Decimal, limit: Option<Decimal>) -> OrderIntent {
        OrderIntent::new(IntentParts {
            account_id: AccountId::parse("U1234567").unwrap(),
            contract_id: ContractId::new(CONID).unwrap(),
            side: OrderSide::Buy,
            quantity: Quantity::new(quantity),
            order_type,
            limit_price: limit.map(|v| Price::new(v).unwrap()),
            stop_price: (order_type == OrderType::Stop).then(|| Price::new(d("90")).unwrap()),
            trailing: None,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }

    fn limit(quantity: Decimal, price: Decimal) -> OrderIntent {
        order(OrderType::Limit, quantity, Some(price))
    }

    fn run(legs: &[OrderIntent], quote: Option<&Quote>, counters: RiskCounters) -> Vec<ErrorCode> {
        match evaluate(&policy(), legs, &contract(), quote, &counters, now()) {
            Ok(()) => Vec::new(),
            Err(refusal) => refusal.codes(),
        }
    }

    fn fresh() -> Quote {
        quote(d("99.9"), d("100.1"), 1)
    }

    #[test]
    fn a_passing_order_is_not_refused() {
        assert_eq!(
            run(
                &[limit(d("10"), d("100"))],
                Some(&fresh()),
                RiskCounters::zero()
            ),
            vec![]
        );
    }

    #[test]
    fn a_request_with_no_order_is_refused() {
        assert!(
            run(&[], Some(&fresh()), RiskCounters::zero())
                .contains(&ErrorCode::LiveNotionalLimitRefused)
        );
    }

    #[test]
    fn notional_over_the_limit_is_refused_alone() {
        // 100 × 100.5 = 10 050 > 10 000; within the collar, the quantity and the session.
        assert_eq!(
            run(
                &[limit(d("100"), d("100.5"))],
                Some(&fresh()),
                RiskCounters::zero()
            ),
            vec![ErrorCode::LiveNotionalLimitRefused]
        );
    }

    #[test]
    fn quantity_over_the_limit_is_refused_alone() {
        // A market order: no notional, but its quantity still counts.
        assert_eq!(
            run(
                &[order(OrderType::Market, d("101"), None)],
                Some(&fresh()),
                RiskCounters::zero()
            ),
            vec![ErrorCode::LiveQuantityLimitRefused]
        );
    }

    #[test]
    fn symbol_and_asset_class_outside_the_allow_lists_are_refused_alone() {
        let legs = [limit(d("1"), d("100"))];
        let counters = RiskCounters::zero();
        let mut other = contract();
        other.symbol = "TSLA".to_owned();
        let refused = evaluate(&policy(), &legs, &other, Some(&fresh()), &counters, now());
        assert_eq!(
            refused.unwrap_err().codes(),
            vec![ErrorCode::LiveSymbolRefused]
        );
        let mut etf = contract();
        etf.asset_class = AssetClass::Etf;
        let refused = evaluate(&policy(), &legs, &etf, Some(&fresh()), &counters, now());
        assert_eq!(
            refused.unwrap_err().codes(),
            vec![ErrorCode::LiveAssetClassRefused]
        );
        // Symbols compare case-insensitively: `aapl` in the policy allows `AAPL`.
        let mut lower = contract();
        lower.symbol = "aapl".to_owned();
        assert!(evaluate(&policy(), &legs, &lower, Some(&fresh()), &counters, now()).is_ok());
    }

    #[test]
    fn a_leg_for_another_contract_is_refused_as_a_symbol() {
        let mut other = contract();
        other.id = ContractId::new(8314).unwrap();
        let mut quote = fresh();
        quote.contract_id = other.id;
        let refused = evaluate(
            &policy(),
            &[limit(d("1"), d("100"))],
            &other,
            Some(&quote),
            &RiskCounters::zero(),
            now(),
        );
        assert_eq!(
            refused.unwrap_err().codes(),
            vec![ErrorCode::LiveSymbolRefused]
        );
    }

    #[test]
    fn frequency_and_session_counts_are_refused_alone() {
        let legs = [order(OrderType::Market, d("1"), None)];
        let in_window = RiskCounters::new(5, 5, Decimal::ZERO).unwrap();
        assert_eq!(
            run(&legs, Some(&fresh()), in_window),
            vec![ErrorCode::LiveFrequencyLimitRefused]
        );
        let just_under = RiskCounters::new(4, 19, Decimal::ZERO).unwrap();
        assert_eq!(run(&legs, Some(&fresh()), just_under), vec![]);
        let today = RiskCounters::new(0, 20, Decimal::ZERO).unwrap();
        assert_eq!(
            run(&legs, Some(&fresh()), today),
            vec![ErrorCode::LiveSessionOrderLimitRefused]
        );
    }

    #[test]
    fn session_notional_uses_the_limit_price_only() {
        let counters = RiskCounters::new(0, 0, d("49500")).unwrap();
        assert_eq!(
            run(&[limit(d("10"), d("100"))], Some(&fresh()), counters),
            vec![ErrorCode::LiveSessionNotionalLimitRefused]
        );
        // A market order adds no notional, so the same day's total does not refuse it.
        assert_eq!(
            run(
                &[order(OrderType::Market, d("10"), None)],
                Some(&fresh()),
                counters
            ),
            vec![]
        );
    }

    #[test]
    fn a_limit_outside_the_collar_is_refused_alone() {
        // Reference 100; 100 bps = 1.00: 101 is in, 101.01 and 98.99 are out.
        assert_eq!(
            run(
                &[limit(d("1"), d("101"))],
                Some(&fresh()),
                RiskCounters::zero()
            ),
            vec![]
        );
        for price in [d("101.01"), d("98.99")] {
            assert_eq!(
                run(
                    &[limit(d("1"), price)],
                    Some(&fresh()),
                    RiskCounters::zero()
                ),
                vec![ErrorCode::LivePriceCollarRefused]
            );
        }
    }

    #[test]
    fn an_old_or_not_live_quote_is_stale() {
        let legs = [limit(d("1"), d("100"))];
        assert_eq!(
            run(
                &legs,
                Some(&quote(d("99.9"), d("100.1"), 5)),
                RiskCounters::zero()
            ),
            vec![]
        );
        assert_eq!(
            run(
                &legs,
                Some(&quote(d("99.9"), d("100.1"), 6)),
                RiskCounters::zero()
            ),
            vec![ErrorCode::LiveStaleQuote]
        );
        let mut delayed = fresh();
        delayed.status = DataStatus::Delayed;
        assert_eq!(
            run(&legs, Some(&delayed), RiskCounters::zero()),
            vec![ErrorCode::LiveStaleQuote]
        );
    }

    #[test]
    fn a_missing_or_priceless_snapshot_is_refused_even_for_a_market_order() {
        let market = [order(OrderType::Market, d("1"), None)];
        assert_eq!(
            run(&market, None, RiskCounters::zero()),
            vec![ErrorCode::LiveMarketSnapshotMissing]
        );
        let mut empty = fresh();
        empty.bid = None;
        empty.ask = None;
        assert_eq!(
            run(&market, Some(&empty), RiskCounters::zero()),
            vec![ErrorCode::LiveMarketSnapshotMissing]
        );
        let mut other = fresh();
        other.contract_id = ContractId::new(8314).unwrap();
        assert_eq!(
            run(&market, Some(&other), RiskCounters::zero()),
            vec![ErrorCode::LiveMarketSnapshotMissing]
        );
    }

    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let mut other = contract();
        other.symbol = "TSLA".to_owned();
        other.asset_class = AssetClass::Option;
        let mut old = quote(d("99.9"), d("100.1"), 60);
        old.status = DataStatus::Frozen;
        let counters = RiskCounters::new(5, 20, d("50000")).unwrap();
        let refused = evaluate(
            &policy(),
            &[limit(d("200"), d("150"))],
            &other,
            Some(&old),
            &counters,
            now(),
        )
        .unwrap_err();
        assert_eq!(
            refused.codes(),
            vec![
                ErrorCode::LiveNotionalLimitRefused,
                ErrorCode::LiveQuantityLimitRefused,
                ErrorCode::LiveSymbolRefused,
                ErrorCode::LiveAssetClassRefused,
                ErrorCode::LiveFrequencyLimitRefused,
                ErrorCode::LiveSessionOrderLimitRefused,
                ErrorCode::LiveSessionNotionalLimitRefused,
                ErrorCode::LiveStaleQuote,
                ErrorCode::LivePriceCollarRefused,
            ]
        );
    }

    #[test]
    fn a_bracket_is_checked_per_leg_and_combined() {
        // Each leg: 40 units (≤ 100), entry 40 × 100 = 4 000 and take-profit 40 × 100.9 = 4 036
        // (each ≤ 10 000); together 120 units and 8 036: the quantity is over, the notional not.
        let bracket = BracketIntent::new(
            limit(d("40"), d("100")),
            Price::new(d("100.9")).unwrap(),
            Price::new(d("99.5")).unwrap(),
        )
        .unwrap();
        let refused = evaluate(
            &policy(),
            bracket.legs(),
            &contract(),
            Some(&fresh()),
            &RiskCounters::zero(),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            refused.violations,
            vec![RiskViolation::QuantityOverLimit {
                on: Exposure::Combined,
                quantity: Some(d("120")),
                limit: d("100"),
            }]
        );
        // Three legs are three orders against the frequency window.
        let counters = RiskCounters::new(3, 0, Decimal::ZERO).unwrap();
        let small = BracketIntent::new(
            limit(d("10"), d("100")),
            Price::new(d("100.9")).unwrap(),
            Price::new(d("99.5")).unwrap(),
        )
        .unwrap();
        let refused = evaluate(
            &policy(),
            small.legs(),
            &contract(),
            Some(&fresh()),
            &counters,
            now(),
        );
        assert_eq!(
            refused.unwrap_err().codes(),
            vec![ErrorCode::LiveFrequencyLimitRefused]
        );
    }

    #[test]
    fn overflow_is_a_refusal_not_a_panic() {
        let huge = Decimal::MAX;
        let refused = evaluate(
            &policy(),
            &[limit(d("2"), huge)],
            &contract(),
            Some(&fresh()),
            &RiskCounters::zero(),
            now(),
        )
        .unwrap_err();
        assert!(
            refused
                .codes()
                .contains(&ErrorCode::LiveNotionalLimitRefused)
        );
        assert!(
            refused
                .codes()
                .contains(&ErrorCode::LiveSessionNotionalLimitRefused)
        );
        assert!(refused.codes().contains(&ErrorCode::LivePriceCollarRefused));
    }

    #[test]
    fn another_currency_cannot_be_compared_and_is_refused() {
        let mut eur = contract();
        eur.currency = Currency::parse("EUR").unwrap();
        let refused = evaluate(
            &policy(),
            &[limit(d("1"), d("100"))],
            &eur,
            Some(&fresh()),
            &RiskCounters::zero(),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            refused.codes(),
            vec![
                ErrorCode::LiveNotionalLimitRefused,
                ErrorCode::LiveSessionNotionalLimitRefused
            ]
        );
    }

    #[test]
    fn nonsense_policies_are_refused() {
        type Breaker = fn(&mut RiskPolicyParts);
        let cases: Vec<(Breaker, RiskPolicyError)> = vec![
            (
                |p| p.max_notional = Decimal::ZERO,
                RiskPolicyError::NotPositive("max_notional"),
            ),
            (
                |p| p.max_quantity = d("-1"),
                RiskPolicyError::NotPositive("max_quantity"),
            ),
            (
                |p| p.session_max_notional = Decimal::ZERO,
                RiskPolicyError::NotPositive("session.max_notional"),
            ),
            (
                |p| p.frequency_max_orders = 0,
                RiskPolicyError::NotPositive("frequency.max_orders"),
            ),
            (
                |p| p.frequency_window_seconds = 0,
                RiskPolicyError::NotPositive("frequency.window_seconds"),
            ),
            (
                |p| p.session_max_orders = 0,
                RiskPolicyError::NotPositive("session.max_orders"),
            ),
            (
                |p| p.session_max_orders = MAX_ORDERS_LIMIT + 1,
                RiskPolicyError::TooManyOrders("session.max_orders"),
            ),
            (
                |p| p.frequency_max_orders = MAX_ORDERS_LIMIT + 1,
                RiskPolicyError::TooManyOrders("frequency.max_orders"),
            ),
            (
                |p| p.max_price_deviation_bps = 0,
                RiskPolicyError::NotPositive("max_price_deviation_bps"),
            ),
            (
                |p| p.max_price_deviation_bps = 10_001,
                RiskPolicyError::CollarTooWide,
            ),
            (
                |p| p.max_quote_age_seconds = 0,
                RiskPolicyError::NotPositive("max_quote_age_seconds"),
            ),
            (
                |p| p.allowed_symbols.clear(),
                RiskPolicyError::EmptyAllowList("allowed_symbols"),
            ),
            (
                |p| p.allowed_symbols.push(" ".to_owned()),
                RiskPolicyError::MalformedSymbol,
            ),
            (
                |p| p.allowed_symbols.push(String::new()),
                RiskPolicyError::MalformedSymbol,
            ),
            (
                |p| p.allowed_asset_classes.clear(),
                RiskPolicyError::EmptyAllowList("allowed_asset_classes"),
            ),
        ];
        for (break_it, expected) in cases {
            let mut broken = parts();
            break_it(&mut broken);
            assert_eq!(
                RiskPolicy::parse(broken),
                Err(expected.clone()),
                "{expected}"
            );
            assert_eq!(expected.code(), ErrorCode::ConfigInvalid);
        }
        assert!(RiskCounters::new(0, 0, d("-1")).is_err());
    }

    #[test]
    fn remaining_budget_is_what_the_counters_leave() {
        let counters = RiskCounters::new(2, 25, d("12500")).unwrap();
        let budget = remaining_budget(&policy(), &counters);
        let remaining: Vec<(&str, Decimal)> = budget
            .iter()
            .map(|rule| (rule.rule, rule.remaining))
            .collect();
        assert_eq!(
            remaining,
            vec![
                ("max_notional", d("10000")),
                ("max_quantity", d("100")),
                ("frequency.max_orders", d("3")),
                ("session.max_orders", Decimal::ZERO),
                ("session.max_notional", d("37500")),
            ]
        );
        assert_eq!(budget[2].code, ErrorCode::LiveFrequencyLimitRefused);
        assert_eq!(budget[3].used, d("25"));
    }
}
