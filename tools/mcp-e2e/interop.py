"""Interoperability check: drives `ibkr-agent mcp serve` with the official Python MCP SDK.

For each protocol era (the `initialize` handshake and the stateless 2026-07-28 mode) it lists the
tools, calls every read tool with valid arguments, and checks the refusals. It prints one JSON
line per check and exits non-zero on the first failed expectation.

Usage: python interop.py BINARY   (the state directory comes from IBKR_AGENT_STATE_DIR)
"""

import json
import os
import sys

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

EXPECTED_TOOLS = {
    "ibkr_health", "ibkr_backend_status", "ibkr_session_requirements", "ibkr_accounts_list",
    "ibkr_account_summary", "ibkr_positions_list", "ibkr_contracts_search", "ibkr_contract_resolve",
    "ibkr_market_snapshot", "ibkr_historical_bars", "ibkr_orders_list", "ibkr_executions_list",
    "ibkr_audit_tail", "ibkr_audit_export",
}

VALID_CALLS = [
    ("ibkr_health", {}),
    ("ibkr_backend_status", {}),
    ("ibkr_session_requirements", {}),
    ("ibkr_accounts_list", {}),
    ("ibkr_account_summary", {"account_id": "DU1234567"}),
    ("ibkr_positions_list", {"account_id": "DU1234567"}),
    ("ibkr_contracts_search", {"query": "VOD", "exchange": "LSE"}),
    ("ibkr_contract_resolve", {"query": "AAPL"}),
    ("ibkr_market_snapshot", {"contract_id": 265598}),
    ("ibkr_historical_bars", {"contract_id": 265598, "period": "5d", "bar": "1h"}),
    ("ibkr_orders_list", {"account_id": "DU1234567"}),
    ("ibkr_executions_list", {"account_id": "DU1234567"}),
    ("ibkr_audit_tail", {"limit": 5}),
    ("ibkr_audit_export", {"from_seq": 1, "to_seq": 20}),
]


class CheckFailed(Exception):
    pass


def report(check, **fields):
    print(json.dumps({"check": check, **fields}, default=str), flush=True)


def expect(condition, check, **fields):
    report(check, ok=bool(condition), **fields)
    if not condition:
        raise CheckFailed(check)


async def run_era(binary, mode):
    server = StdioServerParameters(command=binary, args=["mcp", "serve"], env=dict(os.environ))
    async with Client(server, mode=mode) as client:
        report("connected", mode=mode, protocol_version=client.protocol_version)
        listed = (await client.list_tools()).tools
        names = {tool.name for tool in listed}
        expect(names == EXPECTED_TOOLS, "tools/list", mode=mode, missing=sorted(EXPECTED_TOOLS - names),
               extra=sorted(names - EXPECTED_TOOLS))
        for tool in listed:
            annotations = tool.annotations
            expect(annotations is not None and annotations.read_only_hint is True and tool.output_schema is not None,
                   "tool shape", mode=mode, tool=tool.name)
        for name, arguments in VALID_CALLS:
            result = await client.call_tool(name, arguments)
            structured = result.structured_content
            expect(not result.is_error and isinstance(structured, dict), "tools/call", mode=mode, tool=name,
                   error=None if not result.is_error else structured)
        refused = await client.call_tool("ibkr_order_submit", {"account_id": "DU1234567"})
        code = (refused.structured_content or {}).get("code")
        expect(refused.is_error and code == "READONLY_WRITE_FORBIDDEN", "forbidden write", mode=mode, code=code)
        try:
            await client.call_tool("ibkr_no_such_tool", {})
            expect(False, "unknown tool", mode=mode)
        except CheckFailed:
            raise
        except Exception as error:  # a JSON-RPC error surfaces as an exception
            expect("Unknown tool" in str(error) or "-32602" in str(error), "unknown tool", mode=mode,
                   error=str(error))


async def main():
    binary = sys.argv[1]
    for mode in ("legacy", "2026-07-28"):
        await run_era(binary, mode)
    report("done", ok=True)


if __name__ == "__main__":
    try:
        anyio.run(main)
    except CheckFailed as failure:
        print(f"interop check failed: {failure}", file=sys.stderr)
        sys.exit(1)
