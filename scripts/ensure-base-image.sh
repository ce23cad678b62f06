#!/usr/bin/env bash
# Make sure the Docker daemon has local/debian:bookworm, the base image that the
# test repositories build FROM. No registry can be reached here, so it is made
# with debootstrap and imported; the rootfs tarball is cached for the next time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

image="${BASE_IMAGE:-local/debian:bookworm}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/binderhub-service"
tarball="$cache/debian-bookworm-minbase.tar"
if $DOCKER image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
    need_packages debootstrap
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    say "creating a Debian bookworm base image with debootstrap (about a minute)"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$STATE_DIR/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $STATE_DIR/debootstrap.log"
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
fi
$DOCKER import "$tarball" "$image" >/dev/null
say "imported $image"
