#!/bin/bash
# The shared-state unit suites (tests/unit/test_shared_state and tests/unit/test_live_stats,
# built by make check) against a real PostgreSQL (issue 19): a throwaway cluster
# (postgres.sh), a fresh database per suite owned by the role cml, and each suite run with
# CML_TEST_DATABASE_URL set to it (the suites then use the PostgreSQL backend; unset, they use
# SQLite, as make check runs them too). A suite that never connected to its database (the
# server's connection log) ran on SQLite and is a failure too. Exit status: 0 when every suite
# passed; 77 (skipped) without PostgreSQL unless CML_REQUIRE_POSTGRES=1 makes that a failure.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
# shellcheck source-path=SCRIPTDIR source=postgres.sh
. "$here/postgres.sh"

pg_require
suites="test_shared_state test_live_stats"
for s in $suites; do
    [ -x "$CML_TOP_BUILDDIR/tests/unit/$s" ] || {
        echo "missing $CML_TOP_BUILDDIR/tests/unit/$s (built by make check)"
        exit 1
    }
done
trap pg_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pg_start || exit 1

fails=0
for s in $suites; do
    db="cml_$s"
    pg_createdb "$db" || {
        echo "not ok - $s: could not create the database $db"
        fails=$((fails + 1))
        continue
    }
    before=$(grep -c 'connection authorized: user=cml ' "$PG_DIR/server.log")
    t0=$(cml_now)
    echo "--- $s on PostgreSQL (database $db)"
    CML_TEST_DATABASE_URL=$(pg_url "$db") "$CML_TOP_BUILDDIR/tests/unit/$s"
    rc=$?
    secs=$(cml_elapsed "$t0")
    conns=$(($(grep -c 'connection authorized: user=cml ' "$PG_DIR/server.log") - before))
    tables=$(pg_psql -d "$db" -At -c \
        "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    echo "    $s: exit $rc in $secs s; $conns connection(s) by cml; $tables table(s) left in it"
    if [ "$rc" -ne 0 ]; then
        echo "not ok - $s on PostgreSQL (exit $rc)"
        fails=$((fails + 1))
    elif [ "$conns" -eq 0 ]; then
        echo "not ok - $s never connected to PostgreSQL: it ran on SQLite (CML_TEST_DATABASE_URL ignored?)"
        fails=$((fails + 1))
    else
        echo "ok - $s on PostgreSQL"
    fi
done
if [ "$fails" -ne 0 ]; then
    echo "--- the last lines of the server's log"
    grep -v 'connection received\|connection authorized\|connection authenticated' "$PG_DIR/server.log" | tail -n 30
    echo "$fails suite(s) failed on PostgreSQL"
    exit 1
fi
echo "shared-state suites: all passed on PostgreSQL"
