"""Remote interoperability check: the official Python MCP SDK drives the gateway's Streamable
HTTP endpoint (`ibkr-agent mcp serve --transport http`) with bearer tokens.

For each protocol era (the `initialize` handshake, mode "legacy", and the stateless
2026-07-28 mode) it checks, through the SDK:
  - a token holding the read scopes READ_SCOPES lists exactly READ_TOOLS, and a token holding
    only ibkr:health:read lists exactly HEALTH_TOOLS;
  - ibkr_health and ibkr_accounts_list answer with structured results;
  - a tool outside the token's scopes (HIDDEN_TOOL) is refused, with HTTP 403;
  - with no token, and with an expired token, nothing is served and the answer is HTTP 401;
  - no response opens an MCP session (the server is stateless);
and, with plain HTTP requests in that era's shape, the challenges themselves: the 401's
`WWW-Authenticate` points at protected-resource metadata that names this resource and the
issuer, an expired token gets `error="invalid_token"`, and the hidden tool's 403 carries
`error="insufficient_scope"` with the scope it needs.

The tokens come from the JSON line `token_issuer.py` writes (its --out file): "read" must hold
exactly READ_SCOPES, "health" only ibkr:health:read, "expired" must have expired. It prints one
JSON line per check and exits non-zero on the first failed expectation.

Usage: python interop_http.py URL ISSUER_JSON
       (URL is the MCP endpoint, e.g. http://127.0.0.1:8787/mcp)
"""

import json
import sys

import anyio
import httpx2
import jwt
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

READ_SCOPES = "ibkr:health:read ibkr:accounts:read"
HEALTH_TOOLS = {"ibkr_health", "ibkr_backend_status", "ibkr_session_requirements"}
READ_TOOLS = HEALTH_TOOLS | {"ibkr_accounts_list", "ibkr_account_info"}
HIDDEN_TOOL = ("ibkr_market_snapshot", {"contract_id": 265598}, "ibkr:marketdata:read")
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
# A call that does not come back within this many seconds is a failure, never a refusal.
STEP_TIMEOUT_SECONDS = 20


class CheckFailed(Exception):
    pass


def report(check, **fields):
    print(json.dumps({"check": check, **fields}, default=str), flush=True)


def expect(condition, check, **fields):
    report(check, ok=bool(condition), **fields)
    if not condition:
        raise CheckFailed(check)


class Recorder:
    """Remembers the status and session header of every HTTP response the SDK received."""

    def __init__(self):
        self.statuses = []
        self.session_ids = []

    async def on_response(self, response):
        self.statuses.append(response.status_code)
        session = response.headers.get("mcp-session-id")
        if session is not None:
            self.session_ids.append(session)


def sdk_client(url, token, recorder):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    http_client = create_mcp_http_client(headers=headers)
    http_client.event_hooks = {"request": [], "response": [recorder.on_response]}
    return streamable_http_client(url, http_client=http_client)


async def refused_through_sdk(url, token, mode, step):
    """Connects and lists tools; returns (raised error text, statuses). A hang is a failure."""
    recorder = Recorder()
    try:
        with anyio.fail_after(STEP_TIMEOUT_SECONDS):
            async with Client(sdk_client(url, token, recorder), mode=mode) as client:
                await client.list_tools()
    except TimeoutError:
        expect(False, step, mode=mode, error="no answer within the step timeout")
    except Exception as error:  # the SDK turns an HTTP refusal into an exception
        return f"{type(error).__name__}: {error}", recorder.statuses
    return None, recorder.statuses


async def run_sdk(url, tokens, mode):
    recorder = Recorder()
    with anyio.fail_after(STEP_TIMEOUT_SECONDS * 4):
        async with Client(sdk_client(url, tokens["read"], recorder), mode=mode) as client:
            report("connected", mode=mode, protocol_version=client.protocol_version)
            expect(client.protocol_version == (LEGACY if mode == "legacy" else MODERN),
                   "protocol era", mode=mode, protocol_version=client.protocol_version)
            names = {tool.name for tool in (await client.list_tools()).tools}
            expect(names == READ_TOOLS, "tools/list (read token)", mode=mode,
                   missing=sorted(READ_TOOLS - names), extra=sorted(names - READ_TOOLS))
            for name in ("ibkr_health", "ibkr_accounts_list"):
                result = await client.call_tool(name, {})
                expect(not result.is_error and isinstance(result.structured_content, dict),
                       "tools/call", mode=mode, tool=name,
                       error=result.structured_content if result.is_error else None)
            hidden, arguments, _ = HIDDEN_TOOL
            before = len(recorder.statuses)
            try:
                result = await client.call_tool(hidden, arguments)
                expect(False, "hidden tool refused", mode=mode, tool=hidden,
                       result=result.model_dump(exclude_none=True))
            except CheckFailed:
                raise
            except Exception as error:  # a 403 surfaces as an MCP error
                expect(403 in recorder.statuses[before:], "hidden tool refused", mode=mode, tool=hidden,
                       statuses=recorder.statuses[before:], error=f"{type(error).__name__}: {error}")
    expect(not recorder.session_ids, "no MCP session opened", mode=mode, session_ids=recorder.session_ids)

    recorder = Recorder()
    with anyio.fail_after(STEP_TIMEOUT_SECONDS):
        async with Client(sdk_client(url, tokens["health"], recorder), mode=mode) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            expect(names == HEALTH_TOOLS, "tools/list (health token)", mode=mode,
                   missing=sorted(HEALTH_TOOLS - names), extra=sorted(names - HEALTH_TOOLS))

    for step, token in (("no token refused", None), ("expired token refused", tokens["expired"])):
        error, statuses = await refused_through_sdk(url, token, mode, step)
        expect(error is not None and statuses and set(statuses) == {401}, step, mode=mode,
               statuses=statuses, error=error)


def request_shape(mode, method, params, name=None):
    """The body and headers of one raw request in the given era."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if mode == "legacy":
        headers["MCP-Protocol-Version"] = LEGACY
    else:
        params = {**params, "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "interop_http", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }}
        headers.update({"MCP-Protocol-Version": MODERN, "Mcp-Method": method})
        if name is not None:
            headers["Mcp-Name"] = name
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, headers


def challenge_params(header):
    """The auth-params of a `Bearer` challenge, e.g. {'error': 'invalid_token', ...}."""
    scheme, _, rest = header.partition(" ")
    params = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        if key:
            params[key] = value.strip('"')
    return scheme, params


async def run_raw(url, issuer, tokens, mode):
    if mode == "legacy":
        first = request_shape(mode, "initialize", {
            "protocolVersion": LEGACY, "capabilities": {},
            "clientInfo": {"name": "interop_http", "version": "1"}})
    else:
        first = request_shape(mode, "tools/list", {})
    hidden, arguments, needed_scope = HIDDEN_TOOL
    call = request_shape(mode, "tools/call", {"name": hidden, "arguments": arguments}, name=hidden)
    async with httpx2.AsyncClient(timeout=STEP_TIMEOUT_SECONDS) as http:
        body, headers = first
        response = await http.post(url, json=body, headers=headers)
        scheme, params = challenge_params(response.headers.get("www-authenticate", ""))
        expect(response.status_code == 401 and scheme == "Bearer" and params.get("resource_metadata"),
               "401 challenge without a token", mode=mode, status=response.status_code, challenge=params)
        expect("mcp-session-id" not in response.headers, "no session for an unauthenticated request",
               mode=mode)
        metadata = (await http.get(params["resource_metadata"])).json()
        expect(metadata.get("resource") == url and issuer in metadata.get("authorization_servers", [])
               and metadata.get("bearer_methods_supported") == ["header"],
               "protected-resource metadata", mode=mode, metadata=metadata)

        response = await http.post(url, json=body, headers={**headers,
                                                            "Authorization": f"Bearer {tokens['expired']}"})
        scheme, params = challenge_params(response.headers.get("www-authenticate", ""))
        expect(response.status_code == 401 and params.get("error") == "invalid_token",
               "401 challenge for an expired token", mode=mode, status=response.status_code, challenge=params)

        body, headers = call
        response = await http.post(url, json=body, headers={**headers,
                                                            "Authorization": f"Bearer {tokens['read']}"})
        scheme, params = challenge_params(response.headers.get("www-authenticate", ""))
        expect(response.status_code == 403 and params.get("error") == "insufficient_scope"
               and needed_scope in params.get("scope", "").split(),
               "403 challenge for a hidden tool", mode=mode, status=response.status_code, challenge=params)


def load_tokens(path):
    with open(path, encoding="utf-8") as file:
        issued = json.loads(file.readline())
    tokens = issued["tokens"]
    scope = jwt.decode(tokens["read"], options={"verify_signature": False}).get("scope")
    expect(scope == READ_SCOPES, "read token holds the read scopes", scope=scope)
    return issued["issuer"], tokens


async def main():
    url, issuer_json = sys.argv[1], sys.argv[2]
    issuer, tokens = load_tokens(issuer_json)
    for mode in ("legacy", MODERN):
        await run_sdk(url, tokens, mode)
        await run_raw(url, issuer, tokens, mode)
    report("done", ok=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        anyio.run(main)
    except CheckFailed as failure:
        print(f"remote interop check failed: {failure}", file=sys.stderr)
        sys.exit(1)
