#!/usr/bin/env bash
# Make sure a Docker daemon answers on /var/run/docker.sock.
# Installs docker.io if needed; starts dockerd only when none answers, and then
# records its pid in $STATE_DIR/dockerd.pid so that only that one is ever stopped.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ -x $DOCKER ] && $DOCKER version >/dev/null 2>&1; then
    exit 0
fi
need_packages docker.io
say "starting dockerd (log: $STATE_DIR/dockerd.log)"
# the log of the dockerd before (e.g. its panic) is kept as dockerd.log.1
[ -f "$STATE_DIR/dockerd.log" ] && mv -f "$STATE_DIR/dockerd.log" "$STATE_DIR/dockerd.log.1"
setsid nohup dockerd --host unix:///var/run/docker.sock >"$STATE_DIR/dockerd.log" 2>&1 &
echo $! >"$STATE_DIR/dockerd.pid"
wait_for $DOCKER version || die "dockerd did not come up; see $STATE_DIR/dockerd.log"
