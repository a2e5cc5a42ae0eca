//! Property tests: invariants of the domain types that must hold for every input, not just the
//! examples in the unit tests.
//!
//! One binary, one module per concern. Each property compares the code under test with an
//! independent statement of the rule (a regex, a hand-written decimal reader, `Decimal`'s own
//! checked arithmetic), so a change that breaks the rule fails here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod arithmetic;
mod audit_chain;
mod halt_triggers;
mod ids;
mod live_gates;
mod live_risk;
mod money;
mod order_lifecycle;
mod orders;
mod parsers;
mod redaction;
mod scopes;
mod stop_pricing;
mod strategies;
mod write_gates;
