//! `Clock`: the only source of the current time.

use chrono::{DateTime, Utc};

/// The current time. Synchronous: reading a clock never waits.
///
/// Contract: `now` never goes backwards between two calls on the same instance by more than the
/// platform clock does; tests use a fixed clock to make time a plain value.
pub trait Clock: Send + Sync {
    /// The current UTC time.
    ///
    /// # Errors
    /// None: reading the clock cannot fail.
    fn now(&self) -> DateTime<Utc>;
}
