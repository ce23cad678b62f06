#!/usr/bin/env bash
# Make sure the Docker daemon has the image of the chart's BuildKit daemon,
# local/buildkit:v0.34.2 (IMAGE overrides the name): images/buildkit/Dockerfile on the local
# Debian base, with buildkitd and buildctl from scripts/ensure-buildkit.sh's cache. The image
# carries a label with a hash of what goes into it; when the hash matches nothing is done.
# Load it into the test cluster with tests/cluster/load-image.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

BUILDKIT_VERSION="${BUILDKIT_VERSION:-v0.34.2}"
bin="${BHS_CACHE_ROOT:-$HOME/.cache/binderhub-service}/buildkit-$BUILDKIT_VERSION/bin"
image="${IMAGE:-local/buildkit:$BUILDKIT_VERSION}"
base="${BASE_IMAGE:-local/debian:bookworm}"
label=org.binderhub-service.source-hash

scripts/ensure-docker.sh
BASE_IMAGE="$base" scripts/ensure-base-image.sh
BUILDKIT_VERSION="$BUILDKIT_VERSION" scripts/ensure-buildkit.sh
want=$({
    sha256sum images/buildkit/Dockerfile "$bin/buildkitd" "$bin/buildctl"
    $DOCKER image inspect -f '{{.Id}}' "$base"
} | sha256sum | cut -c1-32)
have=$($DOCKER image inspect -f "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)
[ "$want" = "$have" ] && exit 0

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp images/buildkit/Dockerfile "$bin/buildkitd" "$bin/buildctl" "$ctx/"
log="$STATE_DIR/buildkit-image.log"
say "building $image (log: $log)"
$DOCKER build --build-arg BASE_IMAGE="$base" --label "$label=$want" -t "$image" "$ctx" >"$log" 2>&1 \
    || die "docker build of $image failed; see $log"
say "built $image"
