# shellcheck shell=bash
# A throwaway PostgreSQL 15 cluster (Debian's postgresql package) for tests: a helper to source
# from bash, after service_env.sh when a test uses both.
#
#   . tests/integration/postgres.sh
#   pg_require                            # exits 77 (skipped) without PostgreSQL, or 1 when
#                                         # CML_REQUIRE_POSTGRES=1 makes that a failure
#   trap pg_cleanup EXIT                  # or: trap 'pg_cleanup; cml_env_cleanup' EXIT
#   pg_start || exit 1                    # initdb, start, role and database: $CML_PG_URL
#   ... DATABASE_URL=$CML_PG_URL ...
#   pg_stop_server [fast|immediate]       # an outage: the server stopped, its data kept
#   pg_start_server                       # ... and started again, same data, same port
#   pg_psql [-d DB] -c 'SQL'              # psql as the cluster's superuser (unix socket)
#   pg_createdb NAME                      # a fresh database owned by the role cml
#   pg_url [DB]                           # the role cml's URI for that database
#   pg_cleanup                            # stops the server, removes the directory
#
# The cluster lives in a fresh temporary directory (data/, server.log, the unix socket), owned
# by the user that runs the server: PostgreSQL refuses to run as root, so when the tests run
# as root the server runs as `postgres` (the package's user), else as the caller. It listens
# on 127.0.0.1 on a free port (cml_free_port when service_env.sh is sourced) and on a unix
# socket in the directory only; TCP clients authenticate with scram-sha-256 (the socket, in
# a directory only the server's user and root can enter, trusts the superuser `postgres`).
# The role `cml` (LOGIN CREATEDB, not a superuser) has a random password and owns the
# database `cml`:
#   CML_PG_URL=postgresql://cml:PASSWORD@127.0.0.1:PORT/cml    (exported, with PG_PORT,
#   PG_PASSWORD, PG_DIR)
# Durability settings are relaxed for speed (fsync off): a stop, fast or immediate, loses
# nothing the server acknowledged, since the kernel keeps what it wrote; only a crash of the
# machine would. Connections are logged (log_connections) to server.log.
# CML_PG_BIN overrides where initdb and pg_ctl are (default /usr/lib/postgresql/15/bin).

PG_BIN=${CML_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=
PG_DATA=
PG_PORT=
PG_PASSWORD=
PG_OS_USER=
CML_PG_URL=

# True when the server binaries are installed (and, as root, the user `postgres` exists).
pg_available() {
    local b
    for b in initdb pg_ctl postgres psql; do
        [ -x "$PG_BIN/$b" ] || return 1
    done
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || return 1
    fi
    return 0
}

# Unless PostgreSQL is installed, exits 77 (skipped), or 1 when CML_REQUIRE_POSTGRES=1.
pg_require() {
    if ! pg_available; then
        echo "PostgreSQL 15 is not installed in $PG_BIN (apt-get install postgresql; scripts/install-deps.sh)"
        if [ "${CML_REQUIRE_POSTGRES:-0}" = 1 ]; then
            echo "CML_REQUIRE_POSTGRES=1: that is a failure"
            exit 1
        fi
        exit 77
    fi
}

# pg_as COMMAND...: runs a command as the server's user, in the cluster's directory.
pg_as() {
    if [ "$PG_OS_USER" = "$(id -un)" ]; then
        (cd "$PG_DIR" && "$@")
    else
        (cd "$PG_DIR" && runuser -u "$PG_OS_USER" -- "$@")
    fi
}

pg_log() { printf '[%s] postgres: %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }

pg_port_pick() {
    if declare -F cml_free_port >/dev/null; then
        cml_free_port
    else
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
    fi
}

# pg_psql ARGS...: psql as the superuser over the unix socket (database postgres unless -d).
pg_psql() {
    pg_as "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres \
        -d postgres "$@"
}

# pg_url [DB]: the role cml's URI (with its password) for DB (default cml).
pg_url() { printf 'postgresql://cml:%s@127.0.0.1:%s/%s\n' "$PG_PASSWORD" "$PG_PORT" "${1:-cml}"; }

# pg_createdb NAME: a new, empty database owned by cml (dropped first if it exists).
pg_createdb() {
    case "$1" in *[!a-z0-9_]*) pg_log "pg_createdb: '$1' is not a plain name" && return 1 ;; esac
    pg_psql -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1" \
        -c "CREATE DATABASE $1 OWNER cml"
}

# True when the server answers on its socket.
pg_ready() {
    pg_as "$PG_BIN/pg_isready" -q -h "$PG_DIR" -p "$PG_PORT" -t 1 >/dev/null 2>&1
}

# Starts the server on $PG_DATA (already initialised, port in its configuration); waits until
# it accepts connections (30 s at most).
pg_start_server() {
    [ -n "$PG_DATA" ] || {
        pg_log "pg_start_server before pg_start"
        return 1
    }
    if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t 30 start \
        >>"$PG_DIR/pg_ctl.out" 2>&1; then
        pg_log "pg_ctl start failed on port $PG_PORT; the end of its log:"
        tail -n 20 "$PG_DIR/server.log" >&2
        return 1
    fi
    pg_ready || {
        pg_log "the server started but does not answer on port $PG_PORT"
        return 1
    }
}

# Stops the server, keeping its data: MODE fast (default: clients disconnected, a clean
# shutdown) or immediate (every process quits at once; recovery runs at the next start).
pg_stop_server() {
    local mode=${1:-fast}
    [ -n "$PG_DATA" ] && [ -e "$PG_DATA/postmaster.pid" ] || return 0
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t 30 stop >>"$PG_DIR/pg_ctl.out" 2>&1
}

# Makes the directory, the cluster, the role and the database; starts the server. Exports
# CML_PG_URL, PG_PORT, PG_PASSWORD and PG_DIR.
pg_start() {
    local base=${TMPDIR:-/tmp} try
    if [ "$(id -u)" -eq 0 ]; then PG_OS_USER=postgres; else PG_OS_USER=$(id -un); fi
    # The server's user must reach the directory: root's TMPDIR may be closed to it. The unix
    # socket's path (dir/.s.PGSQL.PORT) must stay under 107 bytes.
    for base in "$base" /tmp; do
        PG_DIR=$(mktemp -d "$base/cml-pg.XXXXXX") || return 1
        [ "$PG_OS_USER" = "$(id -un)" ] || chown "$PG_OS_USER:" "$PG_DIR" || return 1
        chmod 0700 "$PG_DIR"
        if [ ${#PG_DIR} -lt 80 ] && pg_as test -w "$PG_DIR" 2>/dev/null; then
            break
        fi
        rm -rf "$PG_DIR"
        PG_DIR=
    done
    [ -n "$PG_DIR" ] || {
        pg_log "no temporary directory that $PG_OS_USER can write"
        return 1
    }
    PG_DATA="$PG_DIR/data"
    PG_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    if ! pg_as "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$PG_DIR/initdb.out" 2>&1; then
        pg_log "initdb failed:"
        cat "$PG_DIR/initdb.out" >&2
        return 1
    fi
    # Only the socket (in the private directory) trusts; TCP needs the password.
    pg_as sh -c 'cat >"$1/pg_hba.conf"' sh "$PG_DATA" <<'HBA'
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
HBA
    for try in 1 2 3 4 5; do
        PG_PORT=$(pg_port_pick) || return 1
        pg_as sh -c 'cat >"$1/postgresql.auto.conf"' sh "$PG_DATA" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
password_encryption = 'scram-sha-256'
max_connections = 200
fsync = off
full_page_writes = off
synchronous_commit = on
log_connections = on
log_disconnections = off
log_line_prefix = '%m [%p] %u@%d '
CONF
        pg_start_server && break
        grep -q 'could not bind\|already in use' "$PG_DIR/server.log" 2>/dev/null || return 1
        pg_log "port $PG_PORT was taken (try $try); trying another"
        PG_PORT=
    done
    [ -n "$PG_PORT" ] || return 1
    # The password goes through stdin, never on a command line.
    pg_psql <<SQL || return 1
CREATE ROLE cml LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
CREATE DATABASE cml OWNER cml;
SQL
    CML_PG_URL=$(pg_url cml)
    export CML_PG_URL PG_PORT PG_PASSWORD PG_DIR
    pg_log "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$PG_PORT (as $PG_OS_USER, $PG_DIR)"
}

# Stops the server (immediately) and removes its directory. Keeps the caller's $? so that it
# can run first in an EXIT trap: trap 'pg_cleanup; cml_env_cleanup' EXIT.
pg_cleanup() {
    local rc=$? pid
    if [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ]; then
        if [ -n "$PG_DATA" ] && [ -e "$PG_DATA/postmaster.pid" ]; then
            pg_stop_server immediate || {
                read -r pid <"$PG_DATA/postmaster.pid" 2>/dev/null
                [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
                sleep 0.5
            }
        fi
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${CML_KEEP_TMP:-}" ]; then
            pg_log "kept $PG_DIR"
        else
            rm -rf "$PG_DIR"
        fi
    fi
    PG_DIR=
    PG_DATA=
    return "$rc"
}
