//! Contract tests for news (FYI notifications) and trading sessions and holidays (issue 16): fake broker, Client Portal on wiremock, CLI and MCP.
