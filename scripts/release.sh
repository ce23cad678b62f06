#!/usr/bin/env bash
# `make release REGISTRY=<host[:port][/path]> VERSION=<x.y.z> [BASE_IMAGE=<image>]`: one version
# for the chart and its images (issue 22).
#
#   1. builds the builder image (images/repo2docker/Dockerfile) and the service's image (the
#      repository's Dockerfile, told the builder image and the version), one plain
#      `docker build` each, from this checkout;
#   2. makes the chart a release: a copy whose values name those images (chart/release_chart.py),
#      packaged with VERSION as its version and appVersion, linted and rendered;
#   3. pushes REGISTRY/binderhub-service:VERSION, REGISTRY/binderhub-service-builder:VERSION,
#      then the chart to oci://CHART_REGISTRY (default REGISTRY/charts) with `helm push`.
# Nothing is pushed until everything is built and the chart renders.
#
# Environment (make variables of the same names):
#   BASE_IMAGE       a Debian bookworm image for every stage, when Docker Hub's cannot be pulled
#   CA_CERTIFICATES  a CA bundle the builds trust for HTTPS (a proxy that intercepts it), given
#                    to them as the BuildKit secret `ca-certificates`
#   GOPROXY          a Go module proxy for the builder's Go stage (default proxy.golang.org)
#   HELM             helm 3.8+ (default: helm on PATH); log in first (`helm registry login`)
#   PLAIN_HTTP       1: the registry answers plain HTTP (default: 1 for localhost/127.x)
#   CHART_REGISTRY   where the chart goes, host[:port]/path (default: REGISTRY/charts)
#   DOCKER           the docker client (default: /usr/bin/docker, else docker on PATH)
# Logs of the two builds: $STATE_DIR/release-<image>.log (printed when a build fails).
set -euo pipefail
docker_client="${DOCKER:-}"
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

REGISTRY="${REGISTRY:-}"
VERSION="${VERSION:-}"
REGISTRY="${REGISTRY%/}"
[ -n "$REGISTRY" ] && [ -n "$VERSION" ] \
    || die "usage: make release REGISTRY=<host[:port][/path]> VERSION=<x.y.z> [BASE_IMAGE=<image>]"
# SemVer (Helm's chart versions) that is also a PEP 440 version (the package's)
[[ "$VERSION" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-(alpha|beta|rc)\.?[0-9]+)?$ ]] \
    || die "VERSION=$VERSION: expected MAJOR.MINOR.PATCH, optionally -alpha.N, -beta.N or -rc.N"
CHART_REGISTRY="${CHART_REGISTRY:-$REGISTRY/charts}"
DOCKER="${docker_client:-$DOCKER}"
[ -x "$DOCKER" ] || DOCKER=docker
HELM="${HELM:-helm}"
command -v "$HELM" >/dev/null 2>&1 || die "no helm ($HELM): install helm 3.8 or later, or set HELM"
"$DOCKER" version >/dev/null 2>&1 || die "no Docker daemon answers ($DOCKER version failed)"
host="${REGISTRY%%/*}"
if [ -z "${PLAIN_HTTP:-}" ]; then
    case "$host" in localhost|localhost:*|127.*) PLAIN_HTTP=1 ;; *) PLAIN_HTTP=0 ;; esac
fi

service="$REGISTRY/binderhub-service:$VERSION"
builder="$REGISTRY/binderhub-service-builder:$VERSION"
python3 chart/release_chart.py --check-registry "$REGISTRY" || exit 1

build_args=()
[ -z "${BASE_IMAGE:-}" ] || build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
if [ -n "${CA_CERTIFICATES:-}" ]; then
    [ -r "$CA_CERTIFICATES" ] || die "CA_CERTIFICATES=$CA_CERTIFICATES is not a readable file"
    build_args+=(--secret "id=ca-certificates,src=$CA_CERTIFICATES")
fi

build() { # IMAGE DOCKER-BUILD-ARGS... : a plain docker build of this checkout, logged
    local image=$1 log
    shift
    log="$STATE_DIR/release-$(basename "${image%:*}").log"
    say "building $image (log: $log)"
    if ! DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain "${build_args[@]}" "$@" -t "$image" . >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "docker build of $image failed; see $log"
    fi
}

go_args=()
[ -z "${GOPROXY:-}" ] || go_args+=(--build-arg "GOPROXY=$GOPROXY")
build "$builder" -f images/repo2docker/Dockerfile --build-arg "VERSION=$VERSION" "${go_args[@]}"
build "$service" --build-arg "VERSION=$VERSION" --build-arg "BUILDER_IMAGE=$builder"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/chart"
cp -R chart "$work/chart/binderhub-service"
python3 chart/release_chart.py --registry "$REGISTRY" "$work/chart/binderhub-service"
"$HELM" lint --strict "$work/chart/binderhub-service" >"$work/lint.log" 2>&1 \
    || { cat "$work/lint.log" >&2; die "the released chart does not lint"; }
"$HELM" package "$work/chart/binderhub-service" --version "$VERSION" --app-version "$VERSION" \
    --destination "$work" >/dev/null
package="$work/binderhub-service-$VERSION.tgz"
"$HELM" template binderhub-service "$package" >/dev/null \
    || die "the released chart does not render without values"

for image in "$builder" "$service"; do
    say "pushing $image"
    "$DOCKER" push "$image" >"$work/push.log" 2>&1 || { cat "$work/push.log" >&2; die "docker push $image failed"; }
done
plain=()
[ "$PLAIN_HTTP" != 1 ] || plain=(--plain-http)
say "pushing the chart to oci://$CHART_REGISTRY"
"$HELM" push "$package" "oci://$CHART_REGISTRY" "${plain[@]}" >"$work/push.log" 2>&1 \
    || { cat "$work/push.log" >&2; die "helm push to oci://$CHART_REGISTRY failed"; }
say "released $VERSION: helm install binderhub-service oci://$CHART_REGISTRY/binderhub-service --version $VERSION"
