# Shared helpers for the setup scripts. Source it; do not run it.
# Every script here installs what is missing, starts what is not running,
# and never touches a daemon it did not start.

STATE_DIR="${BHS_RUNTIME_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/binderhub-service}"
DOCKER=/usr/bin/docker   # Debian's client; an older docker on PATH may win otherwise

say() { printf '%s\n' "binderhub-service: $*" >&2; }
die() { say "$*"; exit 1; }

# need_packages PKG... : install the Debian packages that are missing, or stop with one line.
need_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        die "please install ${missing[*]} (no apt-get here to do it for you)"
    fi
    if [ "$(id -u)" != 0 ]; then
        die "please install ${missing[*]} (run as root to have this done for you: apt-get install ${missing[*]})"
    fi
    say "installing ${missing[*]}"
    # apt-cache/apt-get know nothing on a fresh machine until the lists exist
    if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || ! apt-get install -y --no-install-recommends "${missing[@]}" >>"$STATE_DIR/apt.log" 2>&1; then
        apt-get update >>"$STATE_DIR/apt.log" 2>&1 || die "apt-get update failed; see $STATE_DIR/apt.log"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >>"$STATE_DIR/apt.log" 2>&1 \
            || die "apt-get install ${missing[*]} failed; see $STATE_DIR/apt.log"
    fi
}

# wait_for CMD... : run CMD until it succeeds, for up to 60 s.
wait_for() {
    local i
    for i in $(seq 1 120); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}

mkdir -p "$STATE_DIR"
