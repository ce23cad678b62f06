#!/usr/bin/env bash
# Make images of the local Docker daemon runnable by the cluster's pods without a pull:
#   tests/cluster/load-image.sh IMAGE [IMAGE...]
# (docker save | ctr import into the k8s.io namespace of the cluster's containerd).
# Pods then use them with imagePullPolicy: Never or IfNotPresent.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -gt 0 ] || die "usage: $0 IMAGE [IMAGE...]"
[ -S "$CONTAINERD_SOCK" ] || die "the cluster is not up (no $CONTAINERD_SOCK); run tests/cluster/up.sh"
"$DOCKER" save "$@" | ctr_ images import - >/dev/null
log "loaded $* into the cluster"
