//! `ibkr-agent-gateway`: a fail-closed gateway that lets AI agents work with an Interactive
//! Brokers account through scoped, audited operations.
//!
//! The crate is a hexagon: [`domain`] holds pure types and rules, [`ports`] the capability
//! traits, [`adapters`] their implementations and the inbound front ends, and [`app`] the use
//! cases, the composition root and the [`app::Gateway`] facade that library users, the CLI and
//! the MCP server all call. `ARCHITECTURE.md` has the codemap and the invariants.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;
