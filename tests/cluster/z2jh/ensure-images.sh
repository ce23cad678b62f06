#!/usr/bin/env bash
# Build the images the walkthrough's end-to-end test runs with zero-to-jupyterhub 4.4.0
# (vendored in ../vendor), on the local Debian base, nothing pulled:
#   hub         JupyterHub + KubeSpawner + the idle culler (pins: z2jh's images/hub)
#   proxy       configurable-http-proxy from npm on Debian's nodejs
#   singleuser  JupyterHub + JupyterLab (pins: z2jh's images/singleuser-sample); the test
#               repository's Dockerfile starts FROM it
# Each image's tag ends in a hash of what goes into it (its folder here, the pins, the base
# image's id), so an image already built is reused and a changed one gets a new name.
# Prints NAME=IMAGE lines (hub, proxy, singleuser) on stdout; progress goes to stderr.
# Usage: ensure-images.sh [--load]   (--load: also load them into the test cluster's node)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
HERE="$CLUSTER_DIR/z2jh"
VENDOR="$CLUSTER_DIR/vendor/zero-to-jupyterhub-4.4.0"
CHP_VERSION="5.2.0"     # z2jh 4.4.0's proxy.chp.image.tag
PYTHON="${PYTHON:-$REPO_DIR/.venv/bin/python}"
LOG="$CACHE_ROOT/z2jh-images.log"

[ -x "$PYTHON" ] || die "no $PYTHON; run scripts/ensure-python.sh .venv first"
# the wheels made here must suit the images' Python (Debian bookworm's 3.11)
[ "$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = 3.11 ] \
    || die "$PYTHON is not Python 3.11, the images' Python"
"$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1 || "$REPO_DIR/scripts/ensure-base-image.sh" >&2
mkdir -p "$CACHE_ROOT"

content_hash() { # FOLDER EXTRA... : a short hash of the folder's files, the extras and the base
    {
        (cd "$HERE/$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
        shift
        printf '%s\n' "$@"
        "$DOCKER" image inspect -f '{{.Id}}' "$BASE_IMAGE"
    } | sha256sum | cut -c1-12
}

build() { # FOLDER IMAGE CONTEXT : docker build FOLDER's Dockerfile in CONTEXT
    log "building $2 (log: $LOG)"
    DOCKER_BUILDKIT=1 "$DOCKER" build --build-arg BASE_IMAGE="$BASE_IMAGE" -f "$HERE/$1/Dockerfile" -t "$2" "$3" \
        >>"$LOG" 2>&1 || die "docker build of $2 failed; see $LOG"
}

python_image() { # FOLDER NAME CONSTRAINTS : a Python image from wheels made here
    local folder=$1 name=$2 constraints=$3 image ctx
    image="$name-$(content_hash "$folder" "$(sha256sum <"$constraints")")"
    if ! "$DOCKER" image inspect "$image" >/dev/null 2>&1; then
        ctx="$(mktemp -d)"
        cp "$HERE/$folder/requirements.in" "$ctx/"
        "$PYTHON" -m pip wheel --quiet --wheel-dir "$ctx/wheels" -c "$constraints" \
            -r "$HERE/$folder/requirements.in" >>"$LOG" 2>&1 || die "pip wheel for $image failed; see $LOG"
        build "$folder" "$image" "$ctx"
        rm -rf "$ctx"
    fi
    echo "$image"
}

proxy_image() {
    local image ctx
    image="local/configurable-http-proxy:$CHP_VERSION-$(content_hash proxy "$CHP_VERSION")"
    if ! "$DOCKER" image inspect "$image" >/dev/null 2>&1; then
        ctx="$(mktemp -d)"
        # pure JavaScript packages: installed here, copied into the image
        npm install --silent --no-audit --no-fund --omit=dev --prefix "$ctx/chp" \
            "configurable-http-proxy@$CHP_VERSION" >>"$LOG" 2>&1 || die "npm install failed; see $LOG"
        build proxy "$image" "$ctx"
        rm -rf "$ctx"
    fi
    echo "$image"
}

hub="$(python_image hub local/z2jh-hub:4.4.0 "$VENDOR/images/hub/requirements.txt")"
proxy="$(proxy_image)"
singleuser="$(python_image singleuser local/jupyter-singleuser:5.5.0 "$VENDOR/images/singleuser-sample/requirements.txt")"
if [ "${1:-}" = --load ]; then
    for image in "$hub" "$proxy" "$singleuser"; do
        ref="docker.io/$image"
        ctr_ images ls -q "name==$ref" 2>/dev/null | grep -x "$ref" >/dev/null || "$CLUSTER_DIR/load-image.sh" "$image"
    done
fi
echo "hub=$hub"
echo "proxy=$proxy"
echo "singleuser=$singleuser"
