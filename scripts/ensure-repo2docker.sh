#!/usr/bin/env bash
# Make sure a virtualenv with repo2docker $1 (default 2024.7.0) exists under
# ~/.cache/binderhub-service/repo2docker-<version>/ and print its python on stdout.
# For the setting repo2docker.command when builds should use another repo2docker than
# the one installed with the service (2024.7.0: the last release that builds through
# the Docker API, without buildx):
#   repo2docker: {version: 2024.7.0, command: [<that python>, -m, repo2docker]}
set -euo pipefail
. "$(dirname "$0")/lib.sh"

version="${1:-2024.7.0}"
cache="${BHS_CACHE_ROOT:-$HOME/.cache/binderhub-service}"
venv="$cache/repo2docker-$version"
stamp="$venv/.complete"
if [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
    python=""
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            python=$(command -v "$candidate")
            break
        fi
    done
    [ -n "$python" ] || die "please install Python 3.11 or newer"
    "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || need_packages python3-venv
    say "installing repo2docker $version into $venv"
    rm -rf "$venv"
    mkdir -p "$cache"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "jupyter-repo2docker==$version" \
        || die "pip could not install jupyter-repo2docker==$version"
    echo "$version" >"$stamp"
fi
# hg for repo2docker's Mercurial content provider (found beside it: the local executor
# puts repo2docker's directory first on PATH); added to a virtualenv made before it
if [ ! -x "$venv/bin/hg" ]; then
    "$venv/bin/python" -m pip install --quiet "mercurial>=6.7" "hg-evolve>=11" \
        || die "pip could not install mercurial and hg-evolve"
fi
echo "$venv/bin/python"
