#!/usr/bin/env bash
# Installs the third-party MCP clients used by the interoperability checks into
# tools/mcp-e2e/.venv: the official Python MCP SDK, plus `cryptography` and `PyJWT` for the
# local token issuer that the remote (Streamable HTTP) check signs its bearer tokens with.
# Prints the Python path on success; exits non-zero when the packages cannot be installed
# (CI then runs the checks only if this succeeded).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv >&2
fi
.venv/bin/pip install --quiet --disable-pip-version-check \
    'mcp==2.3.0' 'cryptography==50.0.2' 'PyJWT==2.15.1' >&2
echo "$(pwd)/.venv/bin/python"
