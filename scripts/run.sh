#!/usr/bin/env bash
# `make run`: the embedded default. A Docker daemon and a registry on
# 127.0.0.1:5000 (started only if none answers), then the service on
# 127.0.0.1:8080 with the local executor and an SQLite file under .run/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

venv="${VENV:-.venv}"
if ! $DOCKER version >/dev/null 2>&1 && [ "$(id -u)" != 0 ]; then
    die "no Docker daemon answers and only root can start one: start dockerd (or run make run as root)"
fi
"$(dirname "$0")/ensure-docker.sh"
REGISTRY_PORT=5000 "$(dirname "$0")/ensure-registry.sh"

mkdir -p .run
export BINDERHUB_SERVICE_STATE_PATH="${BINDERHUB_SERVICE_STATE_PATH:-$PWD/.run/state.sqlite}"
listen="${BINDERHUB_SERVICE_LISTEN:-127.0.0.1:8080}"
cat <<MSG

binderhub-service is starting on http://$listen (local executor, registry 127.0.0.1:5000,
state in $BINDERHUB_SERVICE_STATE_PATH).

  health:      curl http://$listen/health
  build:       curl -X POST http://$listen/api/v1/builds -H 'Content-Type: application/json' \\
                    -d '{"repo": "https://github.com/binder-examples/requirements", "ref": "HEAD"}'
  follow it:   curl http://$listen/api/v1/builds/<id from the answer>
  or, without the server:  $venv/bin/binderhub-service build gh/binder-examples/requirements/HEAD

Press Ctrl-C to stop.
MSG
exec "$venv/bin/binderhub-service" serve --listen "$listen"
