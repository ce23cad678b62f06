#!/usr/bin/env bash
# The npm packages of tests/node (the unmodified @jupyterhub/binderhub-client the
# BinderHub-compatible stream is tested with, and configurable-http-proxy, the proxy of
# the real JupyterHub the hub tests run), installed exactly as package-lock.json says.
# Nothing happens when node_modules is already up to date with the lock file.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
NODE_DIR="$(cd "$(dirname "$0")/../tests/node" && pwd)"

command -v node >/dev/null 2>&1 || die "tests/node needs Node.js 20 or later; please install it"
command -v npm >/dev/null 2>&1 || die "tests/node needs npm; please install it"
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 20 ] || die "tests/node needs Node.js 20 or later, found $(node --version)"

installed="$NODE_DIR/node_modules/.package-lock.json"
if [ -f "$installed" ] && [ ! "$NODE_DIR/package-lock.json" -nt "$installed" ] \
    && [ -d "$NODE_DIR/node_modules/@jupyterhub/binderhub-client" ] \
    && [ -x "$NODE_DIR/node_modules/.bin/configurable-http-proxy" ]; then
    exit 0
fi
say "installing the npm packages of tests/node"
if [ -f "$NODE_DIR/package-lock.json" ]; then
    command=(npm ci)
else
    command=(npm install)
fi
(cd "$NODE_DIR" && "${command[@]}" --no-audit --no-fund) >>"$STATE_DIR/npm.log" 2>&1 \
    || die "${command[*]} in tests/node failed; see $STATE_DIR/npm.log"
