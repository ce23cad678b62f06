#!/usr/bin/env bash
# Make sure the docker buildx CLI plugin and BuildKit's buildkitd/buildctl are here.
#   buildx   -> ~/.cache/binderhub-service/buildx-$BUILDX_VERSION/docker-buildx
#   buildkit -> ~/.cache/binderhub-service/buildkit-$BUILDKIT_VERSION/bin/{buildkitd,buildctl}
# Each is built from its Go module (the Go module proxy) when its cache directory lacks a
# stamp matching what this script builds; then the plugin is linked where the docker CLI
# looks for plugins whatever DOCKER_CONFIG a build has (/usr/local/lib/docker/cli-plugins
# as root, else ~/.docker/cli-plugins; BHS_PLUGIN_DIR overrides). Cold (empty Go caches) this takes minutes: see
# docs/local-mode.md. Prints nothing when everything is in place.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BUILDX_VERSION="${BUILDX_VERSION:-v0.38.2}"
BUILDKIT_VERSION="${BUILDKIT_VERSION:-v0.34.2}"
CACHE_ROOT="${BHS_CACHE_ROOT:-$HOME/.cache/binderhub-service}"
BUILDX_DIR="$CACHE_ROOT/buildx-$BUILDX_VERSION"
BUILDKIT_DIR="$CACHE_ROOT/buildkit-$BUILDKIT_VERSION"
# bump when the build commands below change
BUILD_REV=1

go_env() {
    command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null || die "Go is needed to build buildx/buildkit (go 1.24 or later on PATH)"
    export CGO_ENABLED=0 GOFLAGS="-buildvcs=false"
}

stamp_ok() { [ "$(cat "$1/.complete" 2>/dev/null)" = "$2 rev $BUILD_REV" ]; }

build_buildx() {
    stamp_ok "$BUILDX_DIR" "$BUILDX_VERSION" && return 0
    go_env
    local tmp="$BUILDX_DIR.tmp" log="$CACHE_ROOT/buildx-build.log"
    say "building docker buildx $BUILDX_VERSION into $BUILDX_DIR (minutes on 2 cores; log: $log)"
    rm -rf "$tmp" && mkdir -p "$tmp"
    GOBIN="$tmp" nice go install -trimpath \
        -ldflags="-s -w -X github.com/docker/buildx/version.Version=$BUILDX_VERSION" \
        "github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION" >"$log" 2>&1 \
        || die "building buildx failed; see $log"
    mv "$tmp/buildx" "$tmp/docker-buildx"
    "$tmp/docker-buildx" version | grep "$BUILDX_VERSION" >/dev/null || die "the buildx built is not $BUILDX_VERSION"
    echo "$BUILDX_VERSION rev $BUILD_REV" >"$tmp/.complete"
    rm -rf "$BUILDX_DIR" && mv "$tmp" "$BUILDX_DIR"
}

# buildkit's go.mod has replace directives, which `go install mod@version` refuses:
# build from a copy of the module's source instead.
build_buildkit() {
    stamp_ok "$BUILDKIT_DIR" "$BUILDKIT_VERSION" && return 0
    go_env
    local tmp="$BUILDKIT_DIR.tmp" log="$CACHE_ROOT/buildkit-build.log" src dir
    say "building buildkitd and buildctl $BUILDKIT_VERSION into $BUILDKIT_DIR (minutes on 2 cores; log: $log)"
    rm -rf "$tmp" && mkdir -p "$tmp/bin"
    src="$(mktemp -d)"
    (
        trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
        dir="$(cd "$src" && go mod download -json "github.com/moby/buildkit@$BUILDKIT_VERSION" \
            | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
        [ -d "$dir" ] || { echo "go mod download gave no source directory" >&2; exit 1; }
        cp -r "$dir" "$src/buildkit"
        chmod -R u+w "$src/buildkit"
        cd "$src/buildkit"
        nice go build -trimpath -mod=mod -o "$tmp/bin/" \
            -ldflags="-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" \
            ./cmd/buildkitd ./cmd/buildctl
    ) >"$log" 2>&1 || die "building buildkit failed; see $log"
    "$tmp/bin/buildctl" --version | grep "$BUILDKIT_VERSION" >/dev/null || die "the buildctl built is not $BUILDKIT_VERSION"
    echo "$BUILDKIT_VERSION rev $BUILD_REV" >"$tmp/.complete"
    rm -rf "$BUILDKIT_DIR" && mv "$tmp" "$BUILDKIT_DIR"
}

install_plugin() {
    local dir="${BHS_PLUGIN_DIR:-}"
    if [ -z "$dir" ]; then
        if [ "$(id -u)" = 0 ]; then dir=/usr/local/lib/docker/cli-plugins; else dir="$HOME/.docker/cli-plugins"; fi
    fi
    [ "$(readlink "$dir/docker-buildx" 2>/dev/null)" = "$BUILDX_DIR/docker-buildx" ] && return 0
    mkdir -p "$dir"
    ln -sfn "$BUILDX_DIR/docker-buildx" "$dir/docker-buildx"
    say "linked $dir/docker-buildx -> $BUILDX_DIR/docker-buildx"
}

mkdir -p "$CACHE_ROOT"
build_buildx
build_buildkit
install_plugin
