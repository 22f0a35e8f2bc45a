#!/bin/sh
# Container entrypoint: turns the deployment guide's variables into the service's
# configuration, starts the supervised FastCGI workers (spawn-fcgi) and lighttpd, forwards
# SIGTERM for a clean stop, and logs to stdout/stderr. The supervisor replaces a dead worker;
# if the supervisor or lighttpd ends, the container ends (the platform restarts it).
#   PORT (8000), WORKERS (2), FCGI_THREADS (2), MODEL_TYPE, USE_AZURE_STORAGE,
#   AZURE_STORAGE_CONNECTION_STRING, API_KEY or API_KEY_FILE, and every other variable of
#   cultivate-ml.conf(5).
set -eu
: "${PORT:=8000}" "${WORKERS:=2}"
run=/app/run
sock="$run/fcgi.sock"
mkdir -p "$run" "${MODEL_CACHE_DIR:=/app/models}" "${STATE_DIR:=/app/state}"
export MODEL_CACHE_DIR STATE_DIR
sed -e "s|@PORT@|$PORT|g" -e "s|@SOCKET@|$sock|g" -e "s|@DIR@|$run|g" \
    /etc/cultivate-ml/lighttpd.conf > "$run/lighttpd.conf"
rm -f "$sock"

# Refuse a bad configuration before starting anything; the message names the key.
/usr/sbin/cultivate-ml-fcgi --check-config >/dev/null

spawn-fcgi -n -s "$sock" -M 0600 -- /usr/sbin/cultivate-ml-fcgi --workers "$WORKERS" &
fcgi=$!
lighttpd -D -f "$run/lighttpd.conf" &
httpd=$!

stop() {
    kill -TERM "$httpd" "$fcgi" 2>/dev/null || true
    wait "$httpd" 2>/dev/null || true
    wait "$fcgi" 2>/dev/null || true
    exit 0
}
trap stop TERM INT
while kill -0 "$fcgi" 2>/dev/null && kill -0 "$httpd" 2>/dev/null; do
    sleep 1 &
    wait $! || true
done
echo "cultivate-ml: a server process ended; stopping the container" >&2
kill -TERM "$httpd" "$fcgi" 2>/dev/null || true
exit 1
