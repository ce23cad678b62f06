#!/usr/bin/env bash
# `make run`: the embedded default. A Docker daemon, a registry on 127.0.0.1:5000 and
# a BuildKit daemon (each started only if none answers), then the service on
# 127.0.0.1:8080 with the local executor and an SQLite file under .run/.
# The local base image is pushed to the registry: BuildKit pulls FROM images from
# registries, and its docker.io names are looked up there first (so a Dockerfile's
# `FROM local/debian:bookworm` works; see docs/local-mode.md).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

venv="${VENV:-.venv}"
if ! $DOCKER version >/dev/null 2>&1 && [ "$(id -u)" != 0 ]; then
    die "no Docker daemon answers and only root can start one: start dockerd (or run make run as root)"
fi
"$(dirname "$0")/ensure-docker.sh"
REGISTRY_PORT=5000 "$(dirname "$0")/ensure-registry.sh"
"$(dirname "$0")/ensure-base-image.sh"
$DOCKER tag local/debian:bookworm 127.0.0.1:5000/local/debian:bookworm
$DOCKER push -q 127.0.0.1:5000/local/debian:bookworm >/dev/null
if [ "$(id -u)" = 0 ]; then
    buildkit_host=$("$(dirname "$0")/ensure-buildkitd.sh" | tail -n 1)
    export BINDERHUB_SERVICE_BUILDKIT__HOST="${BINDERHUB_SERVICE_BUILDKIT__HOST:-$buildkit_host}"
else
    "$(dirname "$0")/ensure-buildkit.sh"
    say "not root: no BuildKit daemon of our own; builds use the Docker daemon's (no registry cache)"
fi

mkdir -p .run
export BINDERHUB_SERVICE_STATE_PATH="${BINDERHUB_SERVICE_STATE_PATH:-$PWD/.run/state.sqlite}"
listen="${BINDERHUB_SERVICE_LISTEN:-127.0.0.1:8080}"
# The API is closed by default: make a read-write token for this machine, once.
if [ ! -s .run/api-token ]; then
    (umask 077 && "$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))' >.run/api-token)
fi
token=$(cat .run/api-token)
digest=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
if [ -z "${BINDERHUB_SERVICE_AUTH__TOKENS:-}" ]; then
    export BINDERHUB_SERVICE_AUTH__TOKENS="[{\"name\": \"make-run\", \"sha256\": \"$digest\", \"scopes\": [\"builds:read\", \"builds:write\"]}]"
fi
cat <<MSG

binderhub-service is starting on http://$listen (local executor, registry 127.0.0.1:5000,
BuildKit at ${BINDERHUB_SERVICE_BUILDKIT__HOST:-the Docker daemon}, state in $BINDERHUB_SERVICE_STATE_PATH).

API token (kept in .run/api-token): $token

  health:      curl http://$listen/health
  build:       curl -X POST http://$listen/api/v1/builds -H "Authorization: Bearer \$(cat .run/api-token)" \\
                    -H 'Content-Type: application/json' \\
                    -d '{"repo": "https://github.com/binder-examples/requirements", "ref": "HEAD"}'
  follow it:   curl -H "Authorization: Bearer \$(cat .run/api-token)" http://$listen/api/v1/builds/<id>
  or, without the server:  $venv/bin/binderhub-service build gh/binder-examples/requirements/HEAD

Press Ctrl-C to stop.
MSG
exec "$venv/bin/binderhub-service" serve --listen "$listen"
