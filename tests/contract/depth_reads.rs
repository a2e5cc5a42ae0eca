//! Contract tests for the one-shot market-depth book (Client Portal WebSocket `sbd` topic) (issue 16): fake broker, Client Portal on wiremock, CLI and MCP.
