//! Remote MCP over Streamable HTTP (issue 15): the gateway as an OAuth 2.1 resource server.
//!
//! [`server`] mounts rmcp's Streamable HTTP service in axum behind [`auth`]'s bearer-token
//! check and serves it; [`jwks`] keeps the issuer's signing keys and [`token`] turns a bearer
//! token into a verified remote principal or a refusal; [`metadata`] is the RFC 9728
//! protected-resource document; [`ops`] holds `/healthz` and `/readyz`. The tools, scopes,
//! gates and audit are the stdio server's: a remote call is the same use case with a principal
//! that comes from a verified token.

pub mod auth;
pub mod jwks;
pub mod limits;
pub mod listener;
pub mod metadata;
pub mod ops;
pub mod origin;
pub mod server;
pub mod token;
