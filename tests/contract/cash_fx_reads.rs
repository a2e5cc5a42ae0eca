//! Contract tests for FX rates, currency pairs, and transfers and cash movements (issue 16): fake broker, Client Portal on wiremock, CLI and MCP.
