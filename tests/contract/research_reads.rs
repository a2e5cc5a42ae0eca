//! Contract tests for scanners and fundamentals (issue 16): fake broker, Client Portal on wiremock, CLI and MCP.
