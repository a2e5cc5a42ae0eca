#!/usr/bin/env bash
# Installs the third-party MCP clients used by the interoperability check into
# tools/mcp-e2e/.venv. Prints the Python path on success; exits non-zero when the packages
# cannot be installed (CI then runs the check only if this succeeded).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv >&2
fi
.venv/bin/pip install --quiet --disable-pip-version-check 'mcp==2.3.0' >&2
echo "$(pwd)/.venv/bin/python"
