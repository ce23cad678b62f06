#!/usr/bin/env bash
# Make sure a BuildKit daemon (buildkitd, root, OCI worker with Debian's runc) answers on a
# unix socket; the local executor's builds go to it through buildx's `remote` driver.
# State (its config, cache, log, socket) lives in $BUILDKITD_DIR (default
# $STATE_DIR/buildkitd); a daemon already answering there is left alone. The last line
# on stdout is the address to give builds: unix://$BUILDKITD_DIR/buildkitd.sock.
#
# BuildKit pulls FROM images from registries (it cannot see Docker's images). Registries
# on 127.0.0.1/localhost are spoken to over plain HTTP (BuildKit's default for loopback
# hosts); docker.io names are looked up first in the registry on 127.0.0.1:5000 (a
# mirror), so that `FROM local/debian:bookworm` works once scripts/ensure-base-image.sh
# has pushed it there (see docs/local-mode.md).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "buildkitd runs as root here (rootless BuildKit needs newuidmap; see docs/local-mode.md)"
dir="${BUILDKITD_DIR:-$STATE_DIR/buildkitd}"
mirror="${BUILDKITD_MIRROR:-127.0.0.1:5000}"
socket="$dir/buildkitd.sock"
address="unix://$socket"

"$(dirname "$0")/ensure-buildkit.sh"
bin="${BHS_CACHE_ROOT:-$HOME/.cache/binderhub-service}/buildkit-${BUILDKIT_VERSION:-v0.34.2}/bin"
answers() { "$bin/buildctl" --addr "$address" debug workers >/dev/null 2>&1; }

if answers; then
    echo "$address"
    exit 0
fi
command -v runc >/dev/null 2>&1 || need_packages runc
mkdir -p "$dir"
# one starter at a time; the second finds the daemon the first started
exec 8>"$dir/start.lock"
flock 8
if answers; then
    echo "$address"
    exit 0
fi
cat >"$dir/buildkitd.toml" <<TOML
# Written by binderhub-service's scripts/ensure-buildkitd.sh
root = "$dir/root"

[grpc]
  address = ["$address"]

[worker.oci]
  enabled = true
  binary = "runc"
  gc = true
  # keep at most this much build cache (bytes); older records go first
  gckeepstorage = 10000000000

[worker.containerd]
  enabled = false

[registry."docker.io"]
  mirrors = ["$mirror"]

[registry."$mirror"]
  http = true
TOML
rm -f "$socket"
say "starting buildkitd on $address (log: $dir/buildkitd.log)"
setsid nohup "$bin/buildkitd" --config "$dir/buildkitd.toml" >"$dir/buildkitd.log" 2>&1 8>&- &
echo $! >"$dir/buildkitd.pid"
wait_for answers || die "buildkitd did not come up; see $dir/buildkitd.log"
echo "$address"
