#!/usr/bin/env bash
# Make sure the Docker daemon has the builder image of the kubernetes executor's BuildKit
# builder, local/repo2docker:2026.4.0 (IMAGE overrides the name): images/repo2docker/Dockerfile
# on the local Debian base, with jupyter-repo2docker (REPO2DOCKER_VERSION), the engine plugin
# of builder/, Debian's docker CLI and buildx from scripts/ensure-buildkit.sh's cache. The image
# carries a label with a hash of what goes into it; when the hash matches nothing is done.
# Load it into the test cluster with tests/cluster/load-image.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

REPO2DOCKER_VERSION="${REPO2DOCKER_VERSION:-2026.4.0}"
BUILDX_VERSION="${BUILDX_VERSION:-v0.38.2}"
buildx="${BHS_CACHE_ROOT:-$HOME/.cache/binderhub-service}/buildx-$BUILDX_VERSION/docker-buildx"
image="${IMAGE:-local/repo2docker:$REPO2DOCKER_VERSION}"
base="${BASE_IMAGE:-local/debian:bookworm}"
ca="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
label=org.binderhub-service.source-hash

[ -d builder ] || die "no builder/ (the repo2docker engine plugin) in $(pwd)"
scripts/ensure-docker.sh
BASE_IMAGE="$base" scripts/ensure-base-image.sh
BUILDX_VERSION="$BUILDX_VERSION" scripts/ensure-buildkit.sh
want=$({
    echo "$REPO2DOCKER_VERSION"
    find images/repo2docker builder -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
        | sort -z | xargs -0 sha256sum
    sha256sum "$buildx"
    $DOCKER image inspect -f '{{.Id}}' "$base"
} | sha256sum | cut -c1-32)
have=$($DOCKER image inspect -f "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)
[ "$want" = "$have" ] && exit 0

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp images/repo2docker/Dockerfile "$buildx" "$ctx/"
cp "$ca" "$ctx/ca.crt"
mkdir "$ctx/builder"
tar -C builder --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -c . | tar -C "$ctx/builder" -x
log="$STATE_DIR/builder-image.log"
say "building $image (log: $log)"
$DOCKER build --build-arg BASE_IMAGE="$base" --build-arg REPO2DOCKER_VERSION="$REPO2DOCKER_VERSION" \
    --label "$label=$want" -t "$image" "$ctx" >"$log" 2>&1 \
    || die "docker build of $image failed; see $log"
say "built $image"
