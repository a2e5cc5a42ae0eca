//! Domain values for the one-shot market-depth book (Client Portal WebSocket `sbd` topic) (issue 16).
//!
//! A depth read is bounded on every axis: at most [`MAX_DEPTH_LEVELS`] price levels per side,
//! and a wait of at most [`MAX_DEPTH_TIMEOUT_MS`] for the first complete book. The book itself
//! is sorted best first ([`DepthBook::bounded`]) by a pure function, so every adapter reports
//! the same shape.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use thiserror::Error;

use crate::domain::broker_text::BrokerText;
use crate::domain::ids::{AccountId, ContractId};
use crate::domain::money::Price;

/// Price levels per side when the caller names none.
pub const DEFAULT_DEPTH_LEVELS: u8 = 10;
/// The most price levels per side a depth read returns.
pub const MAX_DEPTH_LEVELS: u8 = 20;
/// The wait for the first complete book when the caller names none, in milliseconds.
pub const DEFAULT_DEPTH_TIMEOUT_MS: u32 = 3_000;
/// The shortest wait a caller may ask for, in milliseconds.
pub const MIN_DEPTH_TIMEOUT_MS: u32 = 100;
/// The longest wait a caller may ask for, in milliseconds.
pub const MAX_DEPTH_TIMEOUT_MS: u32 = 10_000;

/// Why a depth bound was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DepthBoundError {
    /// The level count is outside 1 to [`MAX_DEPTH_LEVELS`].
    #[error("must be from 1 to {MAX_DEPTH_LEVELS}")]
    Levels,
    /// The wait is outside [`MIN_DEPTH_TIMEOUT_MS`] to [`MAX_DEPTH_TIMEOUT_MS`].
    #[error("must be from {MIN_DEPTH_TIMEOUT_MS} to {MAX_DEPTH_TIMEOUT_MS} milliseconds")]
    Timeout,
}

/// How many price levels per side to keep: 1 to [`MAX_DEPTH_LEVELS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthLevels(u8);

impl DepthLevels {
    /// Checks `count` against the bound.
    ///
    /// # Errors
    /// [`DepthBoundError::Levels`] outside 1 to [`MAX_DEPTH_LEVELS`].
    pub fn new(count: u32) -> Result<Self, DepthBoundError> {
        u8::try_from(count)
            .ok()
            .filter(|count| (1..=MAX_DEPTH_LEVELS).contains(count))
            .map(Self)
            .ok_or(DepthBoundError::Levels)
    }

    /// The count.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for DepthLevels {
    fn default() -> Self {
        Self(DEFAULT_DEPTH_LEVELS)
    }
}

/// How long to wait for the first complete book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthTimeout(Duration);

impl DepthTimeout {
    /// Checks `millis` against the bounds.
    ///
    /// # Errors
    /// [`DepthBoundError::Timeout`] outside [`MIN_DEPTH_TIMEOUT_MS`] to
    /// [`MAX_DEPTH_TIMEOUT_MS`].
    pub fn from_millis(millis: u32) -> Result<Self, DepthBoundError> {
        if (MIN_DEPTH_TIMEOUT_MS..=MAX_DEPTH_TIMEOUT_MS).contains(&millis) {
            Ok(Self(Duration::from_millis(u64::from(millis))))
        } else {
            Err(DepthBoundError::Timeout)
        }
    }

    /// The wait.
    pub fn get(self) -> Duration {
        self.0
    }

    /// The wait in whole milliseconds.
    pub fn millis(self) -> u128 {
        self.0.as_millis()
    }
}

impl Default for DepthTimeout {
    fn default() -> Self {
        Self(Duration::from_millis(u64::from(DEFAULT_DEPTH_TIMEOUT_MS)))
    }
}

/// One depth read: whose market-data session, which contract, and the bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthRequest {
    /// The account the subscription is made for (the broker entitles data per account).
    pub account: AccountId,
    /// The contract.
    pub contract_id: ContractId,
    /// Price levels kept per side.
    pub levels: DepthLevels,
    /// The longest wait for the first complete book.
    pub timeout: DepthTimeout,
}

/// One price level of one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthLevel {
    /// The price.
    pub price: Price,
    /// The size shown at the price (never negative).
    pub size: Decimal,
    /// Where the size is shown (an exchange or market maker), as the broker names it.
    pub broker_venue: Option<BrokerText>,
}

/// A book: bids best (highest) first, asks best (lowest) first, each at most the requested
/// number of levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthBook {
    /// The contract.
    pub contract_id: ContractId,
    /// Bids, highest price first.
    pub bids: Vec<DepthLevel>,
    /// Asks, lowest price first.
    pub asks: Vec<DepthLevel>,
    /// True when either side had more levels than were kept.
    pub truncated: bool,
    /// When the book was received.
    pub received_at: DateTime<Utc>,
}

impl DepthBook {
    /// Sorts each side best first (ties keep their order) and keeps at most `levels` per side.
    pub fn bounded(
        contract_id: ContractId,
        mut bids: Vec<DepthLevel>,
        mut asks: Vec<DepthLevel>,
        levels: DepthLevels,
        received_at: DateTime<Utc>,
    ) -> Self {
        bids.sort_by_key(|level| std::cmp::Reverse(level.price.value()));
        asks.sort_by_key(|level| level.price.value());
        let keep = usize::from(levels.get());
        let truncated = bids.len() > keep || asks.len() > keep;
        bids.truncate(keep);
        asks.truncate(keep);
        Self {
            contract_id,
            bids,
            asks,
            truncated,
            received_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(price: &str, size: u32) -> DepthLevel {
        DepthLevel {
            price: Price::parse(price).unwrap(),
            size: Decimal::from(size),
            broker_venue: None,
        }
    }

    #[test]
    fn bounds_are_checked() {
        assert_eq!(DepthLevels::new(0), Err(DepthBoundError::Levels));
        assert_eq!(DepthLevels::new(21), Err(DepthBoundError::Levels));
        assert_eq!(DepthLevels::new(300), Err(DepthBoundError::Levels));
        assert_eq!(DepthLevels::new(20).unwrap().get(), 20);
        assert_eq!(DepthLevels::default().get(), 10);
        assert_eq!(DepthTimeout::from_millis(99), Err(DepthBoundError::Timeout));
        assert_eq!(
            DepthTimeout::from_millis(10_001),
            Err(DepthBoundError::Timeout)
        );
        assert_eq!(DepthTimeout::from_millis(250).unwrap().millis(), 250);
        assert_eq!(DepthTimeout::default().millis(), 3_000);
    }

    #[test]
    fn sides_are_sorted_best_first_and_cut_to_the_level_count() {
        let book = DepthBook::bounded(
            ContractId::new(265_598).unwrap(),
            vec![level("10.01", 1), level("10.03", 2), level("10.02", 3)],
            vec![level("10.06", 4), level("10.04", 5)],
            DepthLevels::new(2).unwrap(),
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        );
        let prices = |side: &[DepthLevel]| -> Vec<String> {
            side.iter().map(|l| l.price.value().to_string()).collect()
        };
        assert_eq!(prices(&book.bids), ["10.03", "10.02"]);
        assert_eq!(prices(&book.asks), ["10.04", "10.06"]);
        assert!(book.truncated);
    }
}
