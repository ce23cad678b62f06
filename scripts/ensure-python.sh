#!/usr/bin/env bash
# Create the virtualenv $1 (default .venv) with the project and its test, dev and
# docs extras. Needs Python 3.11 or newer; installs python3-venv when missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

venv="${1:-.venv}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            python=$(command -v "$candidate")
            break
        fi
    done
fi
[ -n "$python" ] || die "please install Python 3.11 or newer (apt-get install python3)"
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need_packages python3-venv
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# builder/: the repo2docker engine `buildkit` (docs/local-mode.md)
"$venv/bin/python" -m pip install --quiet -e ".[test,dev,docs]" -e ./builder
