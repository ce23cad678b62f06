#!/bin/sh
# Make the database $DATABASE owned by $USERNAME with $PASSWORD (from the pod's Secret) on
# first start, then run the server in the foreground, reachable over TCP with a password.
set -eu
bin=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "$PASSWORD" >/tmp/pw
    "$bin/initdb" -D "$PGDATA" -U postgres --pwfile=/tmp/pw --auth-host=scram-sha-256 \
        --auth-local=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f /tmp/pw
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -v ON_ERROR_STOP=1 -U postgres -d postgres >/dev/null <<SQL
CREATE ROLE "$USERNAME" LOGIN PASSWORD '$PASSWORD';
CREATE DATABASE "$DATABASE" OWNER "$USERNAME";
SQL
    "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
