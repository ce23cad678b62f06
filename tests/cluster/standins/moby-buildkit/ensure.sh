#!/usr/bin/env bash
# The stand-in for docker.io/moby/buildkit:$BUILDKIT_VERSION (see the Dockerfile next to this):
# built when what goes into it changed (its tag is a hash of that), printed on stdout. With
# --load it is also loaded into the test cluster's node and tagged there with upstream's name,
# so pods that name docker.io/moby/buildkit:$BUILDKIT_VERSION (IfNotPresent) run it. With
# --rootless, the stand-in for upstream's rootless variant (Dockerfile.rootless), named
# docker.io/moby/buildkit:$BUILDKIT_VERSION-rootless there.
#   tests/cluster/standins/moby-buildkit/ensure.sh [--rootless] [--load]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../common.sh"
HERE="$CLUSTER_DIR/standins/moby-buildkit"
BUILDKIT_VERSION="${BUILDKIT_VERSION:-v0.34.2}"   # the chart's builder.buildkit.image.tag
bin="$CACHE_ROOT/buildkit-$BUILDKIT_VERSION/bin"
upstream="docker.io/moby/buildkit:$BUILDKIT_VERSION"
dockerfile=Dockerfile
flavour=""
if [ "${1:-}" = --rootless ]; then
    shift
    dockerfile=Dockerfile.rootless
    flavour=-rootless
    upstream="$upstream-rootless"
fi

BUILDKIT_VERSION="$BUILDKIT_VERSION" "$REPO_DIR/scripts/ensure-buildkit.sh" >&2
"$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1 || "$REPO_DIR/scripts/ensure-base-image.sh" >&2
hash=$({
    sha256sum "$HERE/$dockerfile" "$bin/buildkitd" "$bin/buildctl"
    "$DOCKER" image inspect -f '{{.Id}}' "$BASE_IMAGE"
} | sha256sum | cut -c1-12)
image="local/moby-buildkit-standin:$BUILDKIT_VERSION$flavour-$hash"
if ! "$DOCKER" image inspect "$image" >/dev/null 2>&1; then
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    cp "$HERE/$dockerfile" "$ctx/Dockerfile"
    cp "$bin/buildkitd" "$bin/buildctl" "$ctx/"
    log "building $image"
    "$DOCKER" build -q --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$image" "$ctx" >&2 \
        || die "docker build of $image failed"
fi
if [ "${1:-}" = --load ]; then
    ref="docker.io/$image"
    ctr_ images ls -q "name==$ref" 2>/dev/null | grep -x "$ref" >/dev/null || "$CLUSTER_DIR/load-image.sh" "$image"
    ctr_ images tag --force "$ref" "$upstream" >/dev/null
fi
echo "$image"
