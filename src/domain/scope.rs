//! Authorization scopes: what a caller of the gateway may do.
//!
//! Scopes are granted by configuration (`auth.enabled_scopes`), never by the caller. The
//! defaults hold read scopes only; every write scope must be named explicitly.

use std::collections::BTreeSet;
use std::fmt;

use thiserror::Error;

/// A scope string that is not one of the gateway's scopes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown scope `{0}`")]
pub struct ParseScopeError(String);

/// Declares the scope enum with its wire spelling and whether it permits a write.
macro_rules! scopes {
    ($($(#[$meta:meta])* $variant:ident => $text:literal, $write:literal;)+) => {
        /// One gateway scope.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Scope {
            $($(#[$meta])* $variant),+
        }

        impl Scope {
            /// Every scope, reads first.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The scope's string, e.g. `ibkr:accounts:read`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// True when the scope permits an action that changes state at the broker or in the
            /// gateway's workflow records.
            pub fn is_write(self) -> bool {
                match self {
                    $(Self::$variant => $write),+
                }
            }
        }
    };
}

scopes! {
    /// Gateway and backend health.
    HealthRead => "ibkr:health:read", false;
    /// The list of accounts.
    AccountsRead => "ibkr:accounts:read", false;
    /// Account balances and margin.
    PortfolioRead => "ibkr:portfolio:read", false;
    /// Positions.
    PositionsRead => "ibkr:positions:read", false;
    /// Contracts, quotes and bars.
    MarketDataRead => "ibkr:marketdata:read", false;
    /// Market depth.
    MarketDataDepthRead => "ibkr:marketdata:depth:read", false;
    /// Option chains and greeks.
    OptionsRead => "ibkr:options:read", false;
    /// Working orders and executions.
    OrdersRead => "ibkr:orders:read", false;
    /// Risk figures.
    RiskRead => "ibkr:risk:read", false;
    /// Market scanners.
    ScannerRead => "ibkr:scanner:read", false;
    /// News.
    NewsRead => "ibkr:news:read", false;
    /// Fundamentals.
    FundamentalsRead => "ibkr:fundamentals:read", false;
    /// Trading calendars and sessions.
    CalendarRead => "ibkr:calendar:read", false;
    /// FX rates.
    CurrencyRead => "ibkr:currency:read", false;
    /// Transfer history.
    TransfersRead => "ibkr:transfers:read", false;
    /// Reading the audit log.
    AuditRead => "ibkr:audit:read", false;
    /// Exporting the audit log.
    AuditExport => "ibkr:audit:export", false;
    /// Creating order previews.
    OrdersPreview => "ibkr:orders:preview", true;
    /// Creating approvals for previews.
    ApprovalsCreate => "ibkr:approvals:create", true;
    /// Submitting paper orders.
    OrdersPaperSubmit => "ibkr:orders:paper:submit", true;
    /// Cancelling paper orders.
    OrdersPaperCancel => "ibkr:orders:paper:cancel", true;
    /// Modifying paper orders.
    OrdersPaperModify => "ibkr:orders:paper:modify", true;
    /// Submitting live orders.
    OrdersLiveSubmit => "ibkr:orders:live:submit", true;
    /// Cancelling live orders.
    OrdersLiveCancel => "ibkr:orders:live:cancel", true;
    /// Modifying live orders.
    OrdersLiveModify => "ibkr:orders:live:modify", true;
    /// Submitting live brackets (entry, take-profit and stop-loss in one group).
    OrdersLiveBracketSubmit => "ibkr:orders:live:bracket:submit", true;
    /// Operating the live kill switch: whoever holds it may halt live writes; only an
    /// operator may allow them again. Halting only ever takes permission away, so this is not
    /// a write scope and is granted by default: an agent can always stop itself.
    KillSwitch => "ibkr:killswitch", false;
}

impl Scope {
    /// Parses a scope string exactly (scopes are case-sensitive).
    ///
    /// # Errors
    /// Returns [`ParseScopeError`] for an unknown scope.
    pub fn parse(raw: &str) -> Result<Self, ParseScopeError> {
        Self::ALL
            .iter()
            .copied()
            .find(|scope| scope.as_str() == raw)
            .ok_or_else(|| ParseScopeError(raw.chars().take(64).collect()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of granted scopes, ordered for deterministic output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// The empty set: nothing is allowed.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every read scope and no write scope: the embedded default.
    pub fn read_only_defaults() -> Self {
        Self(
            Scope::ALL
                .iter()
                .copied()
                .filter(|scope| !scope.is_write())
                .collect(),
        )
    }

    /// Parses a space-separated list (OAuth `scope` style). Repeats are allowed and collapse.
    ///
    /// # Errors
    /// Returns [`ParseScopeError`] for the first unknown scope.
    pub fn parse(raw: &str) -> Result<Self, ParseScopeError> {
        raw.split_ascii_whitespace().map(Scope::parse).collect()
    }

    /// True when `scope` is granted.
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// True when any write scope is granted.
    pub fn has_write(&self) -> bool {
        self.0.iter().any(|scope| scope.is_write())
    }

    /// The granted scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// The number of granted scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_parses_from_its_own_string() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()).unwrap(), *scope);
        }
        assert_eq!(Scope::ALL.len(), 27);
    }

    #[test]
    fn unknown_and_miscased_scopes_are_refused() {
        assert!(Scope::parse("ibkr:orders:write").is_err());
        assert!(Scope::parse("IBKR:ACCOUNTS:READ").is_err());
        assert!(ScopeSet::parse("ibkr:accounts:read nope").is_err());
    }

    #[test]
    fn defaults_never_include_a_write_scope() {
        let defaults = ScopeSet::read_only_defaults();
        assert!(!defaults.has_write());
        assert_eq!(defaults.len(), 18);
        assert!(defaults.contains(Scope::AuditExport));
        // An agent can always stop live writes.
        assert!(defaults.contains(Scope::KillSwitch));
    }

    #[test]
    fn sets_print_sorted_and_deduplicated() {
        let set = ScopeSet::parse("ibkr:orders:read ibkr:health:read ibkr:orders:read").unwrap();
        assert_eq!(set.to_string(), "ibkr:health:read ibkr:orders:read");
    }
}
