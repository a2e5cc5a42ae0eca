//! `ibkr-agent-gateway`: a fail-closed gateway that lets AI agents work with an Interactive
//! Brokers account through scoped, audited operations.
//!
//! The crate is a hexagon: [`domain`] holds pure types and rules, [`ports`] the capability
//! traits, [`adapters`] their implementations and the inbound front ends, and [`app`] the use
//! cases, the composition root and the [`app::Gateway`] facade that library users, the CLI and
//! the MCP server all call. [`net`] holds the small network-address rules that both `app` and
//! the adapters need, so that no adapter imports the app. `ARCHITECTURE.md` has the codemap and
//! the invariants.
//!
//! With the `unstable-internal-test-support` feature, `test_support` offers an embedder's
//! tests a gateway on the fake broker with a manual clock and a readable audit log; it is not a
//! stable API.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod net;
pub mod ports;
#[cfg(feature = "unstable-internal-test-support")]
pub mod test_support;
