//! Helpers for an embedder's own tests, behind the `unstable-internal-test-support` feature: a
//! [`Gateway`] on the deterministic fake broker, at a manual clock, recording every call in an
//! in-memory audit log the test can read. Not a stable API: it changes with any release
//! (ADR 0019).
//!
//! Like `app::wiring` and the binary, this module is a composition root: it names concrete
//! adapters, which nothing else in the library may do. It adds no behaviour of its own; the
//! adapters are the ones the gateway's own tests and the CLI's `broker.backend: fake` use.
//!
//! ```
//! use ibkr_agent_gateway::domain::scope::ScopeSet;
//! use ibkr_agent_gateway::test_support::FakeGateway;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! let fake = FakeGateway::builder(ScopeSet::read_only_defaults())?.build()?;
//! fake.gateway.accounts().await?;
//! fake.clock.advance(chrono::TimeDelta::minutes(5));
//! fake.gateway.health().await?;
//! let records = fake.audit.records();
//! assert_eq!(records.len(), 2);
//! assert!(records[1].columns.occurred_at.starts_with("2026-11-27T15:35:00"));
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use crate::adapters::outbound::clock::FixedClock;
pub use crate::adapters::outbound::fake_broker::FakeBroker;
pub use crate::adapters::outbound::memory_audit::MemoryAuditLog;
use crate::app::gateway::Gateway;
use crate::app::startup_error::StartupError;
use crate::app::wiring::{GatewayBuilder, MIN_SECRET_BYTES};
use crate::domain::audit::chain::ChainKey;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretBytes;
use crate::ports::secret_source::SecretError;

/// Where a [`FakeGateway`]'s clock starts unless told otherwise: 2026-11-27 15:30 UTC, a
/// Friday afternoon while US markets are open, the instant the fake broker's data is shaped
/// around.
pub const DEFAULT_START: &str = "2026-11-27T15:30:00Z";

/// The byte a [`FakeGateway`]'s audit key repeats unless told otherwise.
const DEFAULT_KEY_BYTE: u8 = 7;

/// A gateway on the fake broker with the handles a test needs: the clock to move and the audit
/// log to read. Its references (`acct_…`) are stable for a given key.
pub struct FakeGateway {
    /// The gateway under test.
    pub gateway: Gateway,
    /// The clock the gateway and the fake broker read; [`FixedClock::advance`] moves both.
    pub clock: Arc<FixedClock>,
    /// Every audited call, in order ([`MemoryAuditLog::records`]); [`MemoryAuditLog::set_failing`]
    /// makes appends fail, to test what a caller sees when the audit log is down.
    pub audit: Arc<MemoryAuditLog>,
}

impl FakeGateway {
    /// A builder on the fake broker at [`DEFAULT_START`], with a fixed 32-byte key and exactly
    /// `scopes`; add what the test needs (paper trading, a writer, a workflow store) through
    /// [`FakeGatewayBuilder::configure`].
    ///
    /// # Errors
    /// None in practice; as [`FakeGatewayBuilder::new`].
    pub fn builder(scopes: ScopeSet) -> Result<FakeGatewayBuilder, StartupError> {
        let start = DateTime::parse_from_rfc3339(DEFAULT_START)
            .map_err(|error| StartupError::Internal {
                message: format!("the default start time does not parse: {error}"),
            })?
            .with_timezone(&Utc);
        FakeGatewayBuilder::new(
            SecretBytes::new(vec![DEFAULT_KEY_BYTE; MIN_SECRET_BYTES]),
            scopes,
            start,
        )
    }
}

/// A [`GatewayBuilder`] already wired to the fake broker, a manual clock and an in-memory audit
/// log keyed like the gateway, holding on to the clock and the log for the built
/// [`FakeGateway`].
pub struct FakeGatewayBuilder {
    builder: GatewayBuilder,
    clock: Arc<FixedClock>,
    audit: Arc<MemoryAuditLog>,
}

impl FakeGatewayBuilder {
    /// The fake broker at `start`, the gateway and its audit log keyed by `key` (at least 32
    /// bytes), granting exactly `scopes`.
    ///
    /// # Errors
    /// `CONFIG_SECRET_INVALID` for a key shorter than 32 bytes.
    pub fn new(
        key: SecretBytes,
        scopes: ScopeSet,
        start: DateTime<Utc>,
    ) -> Result<Self, StartupError> {
        let chain_key = ChainKey::new(&key).map_err(|error| {
            StartupError::Secret(SecretError::TooShort {
                name: "audit key".into(),
                min_bytes: error.min,
            })
        })?;
        let clock = Arc::new(FixedClock::new(start));
        let audit = Arc::new(MemoryAuditLog::new(chain_key));
        let builder = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
            .clock(clock.clone())
            .key(key)
            .audit_log(audit.clone())
            .scopes(scopes);
        Ok(Self {
            builder,
            clock,
            audit,
        })
    }

    /// Changes the underlying [`GatewayBuilder`]: paper or live settings, writers, a workflow
    /// store, aliases. Replacing the clock or the audit log there detaches the handles this
    /// builder returns.
    #[must_use]
    pub fn configure(mut self, change: impl FnOnce(GatewayBuilder) -> GatewayBuilder) -> Self {
        self.builder = change(self.builder);
        self
    }

    /// Builds the gateway.
    ///
    /// # Errors
    /// As [`GatewayBuilder::build`].
    pub fn build(self) -> Result<FakeGateway, StartupError> {
        Ok(FakeGateway {
            gateway: self.builder.build()?,
            clock: self.clock,
            audit: self.audit,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::scope::Scope;

    #[tokio::test]
    async fn a_fake_gateway_audits_each_call_at_the_manual_clock() {
        let fake = FakeGateway::builder(ScopeSet::read_only_defaults())
            .unwrap()
            .build()
            .unwrap();
        fake.gateway.accounts().await.unwrap();
        fake.clock.advance(TimeDelta::minutes(5));
        fake.gateway.health().await.unwrap();

        let records = fake.audit.records();
        let times: Vec<&str> = records
            .iter()
            .map(|record| record.columns.occurred_at.as_str())
            .collect();
        assert_eq!(records.len(), 2, "{times:?}");
        assert!(times[0].starts_with("2026-11-27T15:30:00"), "{times:?}");
        assert!(times[1].starts_with("2026-11-27T15:35:00"), "{times:?}");
        assert_eq!(records[0].columns.operation, "accounts list");
    }

    #[tokio::test]
    async fn the_scopes_are_exactly_the_ones_given_and_the_audit_log_can_fail() {
        let fake = FakeGateway::builder(ScopeSet::empty())
            .unwrap()
            .build()
            .unwrap();
        let refused = fake.gateway.accounts().await.unwrap_err();
        assert_eq!(refused.code().as_str(), "AUTH_MISSING_SCOPE");

        let fake = FakeGateway::builder(ScopeSet::from_iter([Scope::AccountsRead]))
            .unwrap()
            .build()
            .unwrap();
        fake.audit.set_failing(true);
        let unaudited = fake.gateway.accounts().await.unwrap_err();
        assert_eq!(unaudited.code().as_str(), "AUDIT_WRITE_FAILED");
    }

    #[test]
    fn a_short_key_is_refused() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let refused = FakeGatewayBuilder::new(
            SecretBytes::new(vec![1; MIN_SECRET_BYTES - 1]),
            ScopeSet::read_only_defaults(),
            start,
        );
        assert!(refused.is_err());
    }
}
