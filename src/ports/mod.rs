//! Port traits: the capabilities the application needs from the outside world.
//!
//! One file per capability, each holding the trait and its error type. Ports depend only on the
//! domain. Ports are `Send + Sync` object-safe traits used as `Arc<dyn Port>` (ADR 0002).

pub mod audit_log;
pub mod broker_reader;
pub mod clock;
pub mod order_writer;
pub mod secret_source;
pub mod workflow_store;
