#!/usr/bin/env bash
# A PostgreSQL server of our own, for tests and benchmarks (issue 27).
#
#   ensure-postgres.sh start DIR PORT [PASSWORD]   make sure one answers on 127.0.0.1:PORT
#   ensure-postgres.sh stop DIR                     stop the one whose data is in DIR
#   ensure-postgres.sh bindir                       print the server programs' directory
#
# Installs Debian's postgresql when it is missing. The server's data, socket and log are in
# DIR (created if empty, with a superuser `postgres` whose password is PASSWORD, default
# `bhs-test`, needed over TCP); it listens on 127.0.0.1:PORT only. A system cluster
# (pg_lsclusters) is never started, stopped or read. As root the server runs as the
# `postgres` user (PostgreSQL refuses root), so DIR's parent must be reachable by it
# (e.g. under /var/tmp). Durability settings are PostgreSQL's defaults unless
# BHS_POSTGRES_FAST=1 (fsync off: for tests, which never survive a power loss anyway).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$dir" ] || [ ! -x "$dir/postgres" ]; then
        need_packages postgresql
        dir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    printf '%s\n' "$dir"
}

# as_owner CMD...: run CMD as the user the server runs as.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cmd="${1:-}"
case "$cmd" in
bindir)
    bindir
    ;;
start)
    dir="${2:?usage: ensure-postgres.sh start DIR PORT [PASSWORD]}"
    port="${3:?usage: ensure-postgres.sh start DIR PORT [PASSWORD]}"
    password="${4:-bhs-test}"
    bin="$(bindir)"
    if [ ! -s "$dir/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
        chmod 700 "$dir"
        pwfile="$(mktemp)"
        printf '%s\n' "$password" >"$pwfile"
        [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
        as_owner "$bin/initdb" -D "$dir" -U postgres --pwfile="$pwfile" \
            --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 \
            >"$dir.initdb.log" 2>&1 || { rm -f "$pwfile"; die "initdb failed; see $dir.initdb.log"; }
        rm -f "$pwfile"
    fi
    if as_owner "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
        exit 0
    fi
    options="-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200"
    if [ "${BHS_POSTGRES_FAST:-0}" = 1 ]; then
        options="$options -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -o "$options" -w -t 60 start >/dev/null \
        || die "PostgreSQL did not start on 127.0.0.1:$port; see $dir/server.log"
    ;;
stop)
    dir="${2:?usage: ensure-postgres.sh stop DIR}"
    bin="$(bindir)"
    if [ -s "$dir/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null || true
    fi
    ;;
*)
    die "usage: ensure-postgres.sh start DIR PORT [PASSWORD] | stop DIR | bindir"
    ;;
esac
