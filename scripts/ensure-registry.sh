#!/usr/bin/env bash
# Make sure a Docker registry answers at 127.0.0.1:${REGISTRY_PORT:-5000}.
# Starts Debian's docker-registry with filesystem storage under $STATE_DIR only when
# nothing answers there; a registry someone else started is left alone.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

port="${REGISTRY_PORT:-5000}"
command -v curl >/dev/null 2>&1 || need_packages curl
if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/"; then
    exit 0
fi
need_packages docker-registry
dir="$STATE_DIR/registry-$port"
mkdir -p "$dir/data"
cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
say "starting a registry on 127.0.0.1:$port (log: $dir/registry.log)"
setsid nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
echo $! >"$dir/registry.pid"
wait_for curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" || die "the registry did not come up; see $dir/registry.log"
