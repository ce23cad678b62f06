#!/usr/bin/env bash
# Make sure the Docker daemon has the service's image, binderhub-service:dev (IMAGE overrides
# the name), built from the current sources. The image carries a label with a hash of what
# goes into it; when the hash matches, nothing is done (well under a second).
#
# No package index is reachable from inside containers here, so the wheels of every
# dependency are made on this machine first (pip wheel, into .wheelhouse/) and the image
# installs them with PIP_NO_INDEX=1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

image="${IMAGE:-binderhub-service:dev}"
base="${BASE_IMAGE:-local/debian:bookworm}"
venv="${VENV:-.venv}"
label=org.binderhub-service.source-hash

# What the image is made of: the Dockerfile, the package metadata and sources, the base image.
source_hash() {
    {
        find Dockerfile .dockerignore pyproject.toml README.md jobs webhook -type f \
            ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
        $DOCKER image inspect -f '{{.Id}}' "$base" 2>/dev/null || true
    } | sha256sum | cut -c1-32
}

[ -x "$venv/bin/python" ] || die "no $venv; run 'make test-fast' or scripts/ensure-python.sh first"
scripts/ensure-docker.sh
BASE_IMAGE="$base" scripts/ensure-base-image.sh
want=$(source_hash)
have=$($DOCKER image inspect -f "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)
[ "$want" = "$have" ] && exit 0

# The wheels must suit the image's Python (Debian bookworm's 3.11).
pyver=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = 3.11 ] || die "$venv has Python $pyver; the image's wheels need Python 3.11"

log="$STATE_DIR/service-image.log"
say "building $image (log: $log)"
: >"$log"
# Dependencies of the package, plus the build backend the image's pip builds it with.
mkdir -p .wheelhouse
find .wheelhouse -name '*.whl' -delete  # only this build's wheels (pip's cache makes it quick)
"$venv/bin/python" -m pip wheel --quiet --wheel-dir .wheelhouse . hatchling >>"$log" 2>&1 \
    || die "pip wheel failed; see $log"
rm -f .wheelhouse/binderhub_service-*.whl  # the image builds the package from the sources
$DOCKER build --build-arg BASE_IMAGE="$base" --build-arg PIP_NO_INDEX=1 \
    --label "$label=$want" -t "$image" . >>"$log" 2>&1 \
    || die "docker build of $image failed; see $log"
say "built $image"
