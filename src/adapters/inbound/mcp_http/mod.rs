//! Remote MCP over Streamable HTTP (issue 15): the bearer-token half of the OAuth 2.1
//! resource server.
//!
//! Groundwork only: serving is not wired yet. Nothing in the gateway builds these types; no
//! listener, axum router or CLI flag reaches them. [`jwks`] keeps the issuer's signing keys and
//! [`token`] turns a bearer token into a verified remote principal or a refusal.

pub mod jwks;
pub mod limits;
pub mod listener;
pub mod origin;
pub mod token;
