//! Contract tests for P&L, account metadata and the risk view (issue 16): fake broker, Client Portal on wiremock, CLI and MCP.
