//! Fixtures shared by the contract tests, so each test module states only what it asserts:
//! the Client Portal gateway on wiremock and the adapters, writers and gateways built on it
//! ([`client_portal`]).

pub(crate) mod client_portal;
