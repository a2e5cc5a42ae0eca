//! Inbound adapters: the front ends that turn outside requests into app calls.

pub mod cli;
pub mod mcp;
pub mod mcp_http;
