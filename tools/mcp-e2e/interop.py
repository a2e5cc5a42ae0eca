"""Interoperability check: drives `ibkr-agent mcp serve` with the official Python MCP SDK.

For each protocol era (the `initialize` handshake and the stateless 2026-07-28 mode) it lists the
tools, calls every read tool with valid arguments, and checks the refusals. It prints one JSON
line per check and exits non-zero on the first failed expectation.

With `--paper CONFIG` it instead runs the paper workflow against a server started with that
configuration: the order tools' annotations, a preview, an approval by the operator's CLI, a
paper submit, its replay under the same key, and a cancel.

Usage: python interop.py BINARY [--paper CONFIG]
       (the state directory comes from IBKR_AGENT_STATE_DIR)
"""

import json
import os
import subprocess
import sys

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

EXPECTED_TOOLS = {
    "ibkr_health", "ibkr_backend_status", "ibkr_session_requirements", "ibkr_accounts_list",
    "ibkr_account_summary", "ibkr_positions_list", "ibkr_contracts_search", "ibkr_contract_resolve",
    "ibkr_market_snapshot", "ibkr_historical_bars", "ibkr_orders_list", "ibkr_executions_list",
    "ibkr_order_history", "ibkr_kill_switch_status", "ibkr_kill_switch_halt", "ibkr_limits_status",
    "ibkr_audit_tail", "ibkr_audit_export",
    # The mature reads.
    "ibkr_pnl", "ibkr_account_info", "ibkr_risk_view", "ibkr_option_chain", "ibkr_option_greeks",
    "ibkr_market_depth", "ibkr_scanner_params", "ibkr_scanner_run", "ibkr_fundamentals", "ibkr_news",
    "ibkr_fyi_notifications", "ibkr_trading_schedule", "ibkr_fx_rate", "ibkr_currency_pairs",
    "ibkr_transactions",
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
    ("ibkr_order_history", {}),
    ("ibkr_pnl", {"account_id": "DU1234567"}),
    ("ibkr_account_info", {"account_id": "U7654321"}),
    ("ibkr_risk_view", {"account_id": "DU7654320", "top": 3}),
    ("ibkr_option_chain", {"underlying": "AAPL", "month": "DEC26"}),
    ("ibkr_option_greeks", {"contract_id": 745201801}),
    ("ibkr_market_depth", {"account_id": "DU1234567", "contract_id": 265598, "levels": 5}),
    ("ibkr_scanner_params", {"instrument": "STK"}),
    ("ibkr_scanner_run", {"instrument": "STK", "scan_type": "TOP_PERC_GAIN", "location": "STK.US"}),
    ("ibkr_fundamentals", {"contract_id": 265598}),
    ("ibkr_fyi_notifications", {"max": 2}),
    ("ibkr_trading_schedule", {"contract_id": 265598, "days": 5}),
    ("ibkr_fx_rate", {"source": "USD", "target": "EUR"}),
    ("ibkr_currency_pairs", {"currency": "USD"}),
    ("ibkr_transactions", {"account_id": "DU1234567", "contract_id": 265598}),
    ("ibkr_kill_switch_status", {}),
    ("ibkr_kill_switch_halt", {"reason": "interop check"}),
    ("ibkr_limits_status", {}),
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
            # Every default tool is read-only but the halt, which only takes permission away.
            read_only = tool.name != "ibkr_kill_switch_halt"
            expect(annotations is not None and annotations.read_only_hint is read_only
                   and tool.output_schema is not None,
                   "tool shape", mode=mode, tool=tool.name)
        for name, arguments in VALID_CALLS:
            result = await client.call_tool(name, arguments)
            structured = result.structured_content
            expect(not result.is_error and isinstance(structured, dict), "tools/call", mode=mode, tool=name,
                   error=None if not result.is_error else structured)
        news = await client.call_tool("ibkr_news", {})
        code = (news.structured_content or {}).get("code")
        expect(news.is_error and code == "BROKER_CAPABILITY_UNAVAILABLE", "news is not offered",
               mode=mode, code=code)
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


ORDER_TOOL_HINTS = {
    # name: (read_only, destructive, idempotent)
    "ibkr_order_preview": (False, False, False),
    "ibkr_bracket_order_preview": (False, False, False),
    "ibkr_paper_order_submit": (False, False, True),
    "ibkr_paper_bracket_order_submit": (False, False, True),
    "ibkr_paper_order_modify": (False, True, True),
    "ibkr_paper_order_cancel": (False, True, True),
}


async def run_paper(binary, config):
    server = StdioServerParameters(command=binary, args=["--config", config, "mcp", "serve"],
                                   env=dict(os.environ))
    async with Client(server, mode="legacy") as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        for name, (read_only, destructive, idempotent) in ORDER_TOOL_HINTS.items():
            hints = listed[name].annotations if name in listed else None
            expect(hints is not None and hints.read_only_hint is read_only
                   and hints.destructive_hint is destructive and hints.idempotent_hint is idempotent,
                   "order tool hints", tool=name)
        expect("ibkr_approvals_create" not in listed, "agents cannot approve")
        preview = await client.call_tool("ibkr_order_preview", {
            "account_id": "DU1234567", "contract_id": 265598, "side": "BUY", "quantity": "10",
            "order_type": "LMT", "limit_price": "190.25"})
        preview_id = (preview.structured_content or {}).get("preview_id")
        expect(not preview.is_error and preview_id, "preview", preview_id=preview_id,
               error=preview.structured_content if preview.is_error else None)
        approved = subprocess.run([binary, "--config", config, "--json", "approvals", "create",
                                   "--preview-id", preview_id], capture_output=True, text=True)
        approval_id = json.loads(approved.stdout or "{}").get("approval_id")
        expect(approved.returncode == 0 and approval_id, "approval by the operator's CLI",
               approval_id=approval_id)
        submit = {"account_id": "DU1234567", "approval_id": approval_id, "idempotency_key": "py-sdk-1"}
        first = await client.call_tool("ibkr_paper_order_submit", submit)
        placed = first.structured_content or {}
        order_id = (placed.get("orders") or [{}])[0].get("order_id")
        expect(not first.is_error and order_id and placed.get("replayed") is False, "paper submit",
               order_id=order_id)
        again = await client.call_tool("ibkr_paper_order_submit", submit)
        replay = again.structured_content or {}
        expect(not again.is_error and replay.get("replayed") is True
               and replay["orders"][0]["order_id"] == order_id, "replay under the same key")
        reused = await client.call_tool("ibkr_paper_order_submit", {**submit, "idempotency_key": "py-sdk-2"})
        code = (reused.structured_content or {}).get("code")
        expect(reused.is_error and code == "APPROVAL_CONSUMED", "consumed approval refused", code=code)
        cancel = await client.call_tool("ibkr_paper_order_cancel", {
            "account_id": "DU1234567", "order_id": order_id, "idempotency_key": "py-sdk-cancel-1"})
        expect(not cancel.is_error, "paper cancel", result=cancel.structured_content)


async def main():
    binary = sys.argv[1]
    if len(sys.argv) == 4 and sys.argv[2] == "--paper":
        await run_paper(binary, sys.argv[3])
    else:
        for mode in ("legacy", "2026-07-28"):
            await run_era(binary, mode)
    report("done", ok=True)


if __name__ == "__main__":
    try:
        anyio.run(main)
    except CheckFailed as failure:
        print(f"interop check failed: {failure}", file=sys.stderr)
        sys.exit(1)
