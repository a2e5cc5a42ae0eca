//! Contract tests for option chains, greeks and implied volatility (issue 16): fake broker, Client Portal on wiremock, CLI and MCP.
