//! The pure domain: identifiers, money, instruments, accounts, market data, orders, order
//! intents and previews, approvals, write gates, idempotency, scopes and the error-code
//! vocabulary.
//!
//! Nothing here performs I/O, reads the clock or draws randomness, and nothing here knows a
//! Client Portal or MCP field name. Time arrives as values; wire formats live in adapters.

pub mod account;
pub mod account_reads;
pub mod approval;
pub mod audit;
pub mod broker_text;
pub mod cash_fx;
pub mod depth;
pub mod error_code;
pub mod gates;
pub mod halt_triggers;
pub mod idempotency;
pub mod ids;
pub mod instrument;
pub mod kill_switch;
pub mod live_gates;
pub mod market_data;
pub mod money;
pub mod news_calendar;
pub mod options;
pub mod order;
pub mod order_intent;
pub mod order_lifecycle;
pub mod portfolio;
pub mod preview;
pub mod research;
pub mod risk_policy;
pub mod scope;
pub mod secret;
pub mod session;
