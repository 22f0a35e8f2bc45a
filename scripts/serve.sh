#!/bin/sh
# Serves the cultivate-ml API on http://127.0.0.1:${PORT:-8000} in the foreground with the
# embedded defaults (bundled training data, local model store): spawn-fcgi starts the
# supervised FastCGI workers, lighttpd fronts them. Ctrl-C stops everything.
#   scripts/serve.sh [BUILD_DIR]     (default: the directory of this repository)
# Environment: PORT, WORKERS (processes, default 2), RUN_DIR (state, default BUILD_DIR/run),
# and any service variable (MODEL_TYPE, API_KEY, LOG_LEVEL, ...).
# One instance per RUN_DIR: it holds RUN_DIR/serve.lock while it (or any process it started)
# runs, and a second one on the same RUN_DIR is refused before it touches the first one's
# socket or configuration; a second instance needs its own RUN_DIR (and PORT).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src}" && pwd)
port=${PORT:-8000}
run=${RUN_DIR:-$build/run}
workers=${WORKERS:-2}
mkdir -p "$run/models"

# The lock is inherited by every process started below, so it is held until the last of them
# is gone, even when this shell is killed.
exec 9>>"$run/serve.lock"
if ! flock -n 9; then
    owner=$(cat "$run/serve.instance" 2>/dev/null || true)
    echo "cultivate-ml: $run is in use by another instance${owner:+ ($owner)};" \
        "set RUN_DIR to another directory (and PORT to another port) to start a second one" >&2
    exit 1
fi
echo "pid $$, http://127.0.0.1:$port" >"$run/serve.instance"

export MODEL_CACHE_DIR="${MODEL_CACHE_DIR:-$run/models}"
export STATE_DIR="${STATE_DIR:-$run}"
export TRAINING_DATA="${TRAINING_DATA:-$src/data/questions.csv}"
export CML_TRAINER="${CML_TRAINER:-$build/cultivate-ml}"
export OPENAPI_DOCUMENT="${OPENAPI_DOCUMENT:-$build/apidocs/openapi.json}"

lighttpd=$(command -v lighttpd || echo /usr/sbin/lighttpd)
sock="$run/fcgi.sock"
sed -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$sock|g" -e "s|@DIR@|$run|g" \
    -e "s|@ERRORS@|$src/etc/errors|g" -e "s|@DASHBOARD@|$src/dashboard|g" \
    -e "s|@APIDOCS@|$build/apidocs|g" \
    "$src/etc/lighttpd/standalone.conf.in" > "$run/lighttpd.conf"
rm -f "$sock"

spawn-fcgi -n -s "$sock" -M 0600 -- "$build/cultivate-ml-fcgi" --workers "$workers" &
fcgi_pid=$!
"$lighttpd" -D -f "$run/lighttpd.conf" &
httpd_pid=$!

stop() {
    trap - INT TERM EXIT
    kill "$httpd_pid" "$fcgi_pid" 2>/dev/null || true
    wait "$httpd_pid" "$fcgi_pid" 2>/dev/null || true
    rm -f "$sock" "$run/serve.instance"
}
trap stop INT TERM EXIT
echo "cultivate-ml: serving http://127.0.0.1:$port (state in $run); Ctrl-C stops" >&2
# Either process ending ends the service.
while kill -0 "$fcgi_pid" 2>/dev/null && kill -0 "$httpd_pid" 2>/dev/null; do
    sleep 1
done
