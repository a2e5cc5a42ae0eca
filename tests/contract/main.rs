//! Contract tests: one binary, one module per boundary. The broker-reader suite runs the same
//! expectations against every `BrokerReader` adapter; the CLI suite runs the real binary; the
//! architecture test guards the dependency rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod account_reads_reads;
mod architecture;
mod audit_checkpoints;
mod audit_links;
mod audit_log;
mod audit_retention;
mod auto_halt;
mod broker_fidelity;
mod broker_reader;
mod cash_fx_reads;
mod cli;
mod cli_audit;
mod cli_client_portal;
mod cli_live;
mod cli_orders;
mod client_portal;
mod client_portal_live_writer;
mod client_portal_order_pacing;
mod client_portal_orders;
mod client_portal_pacing;
mod config_limits;
mod cp_order_double;
mod depth_reads;
mod error_codes;
mod fake_lifecycle;
mod fake_world;
mod live_config;
mod live_trading;
mod mcp;
mod mcp_frames;
mod mcp_http_interop;
mod mcp_interop;
mod mcp_logging;
mod mcp_orders;
mod mcp_stdio;
mod news_calendar_reads;
mod operations_docs;
mod options_reads;
mod order_history;
mod order_writer;
mod paper_client_portal;
mod paper_trading;
mod reconciler;
mod release;
mod remote_config;
mod remote_http;
mod remote_limits;
mod remote_tokens;
mod research_reads;
mod sdk;
mod stop_orders;
mod support;
mod workflow_store;
