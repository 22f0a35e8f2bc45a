#!/bin/sh
# Where a classify request's time goes (issue 17): perf record (call graphs by frame pointer, or
# CML_PERF_CALLGRAPH=dwarf for this -O2 build without them) on one cultivate-ml-fcgi
# worker (lighttpd, 2 processes x 2 threads) while wrk posts classify requests with 32
# connections, then perf report's flat profile by symbol and by shared object. Not part of
# `make bench` (perf needs kernel.perf_event_paranoid <= 1 or root); run it by hand:
#   [CML_MODELS=DIR] [CML_PERF_DATA=FILE] tests/bench/profile_request.sh BUILD_DIR [MODEL_TYPE] [SECONDS]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top}" && pwd)
model=${2:-ensemble}
secs=${3:-8}
work=$(mktemp -d /tmp/cml-profile.XXXXXX)
cleanup() {
    ps=$(awk 1 "$work"/*.pid 2>/dev/null || true) # awk: spawn-fcgi's pid file has no last newline
    for p in $ps; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in $ps; do kill -9 "$p" 2>/dev/null || true; done # one that outlived SIGTERM
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
models=${CML_MODELS:-$work/models} # a cache of trained models to reuse, else trained here
[ -n "${CML_MODELS:-}" ] || "$build/cultivate-ml" train --model "$model" --data "$top/data/questions.csv" --out "$models" >/dev/null 2>&1
MODEL_CACHE_DIR="$models" TRAINING_DATA="$top/data/questions.csv" STATE_DIR="$work/state" \
    MODEL_TYPE=$model FCGI_THREADS=2 spawn-fcgi -s "$work/sock" -F 2 -P "$work/fcgi.pid" -- \
    "$build/cultivate-ml-fcgi" >/dev/null
sed -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$work/sock|g" -e "s|@DIR@|$work|g" -e "s|@ERRORS@|$top/etc/errors|g" \
    "$top/etc/lighttpd/standalone.conf.in" >"$work/lighttpd.conf"
"$(command -v lighttpd || echo /usr/sbin/lighttpd)" -D -f "$work/lighttpd.conf" >/dev/null 2>&1 &
echo $! >"$work/front.pid"
until curl -fsS "http://127.0.0.1:$port/api/ready" >/dev/null 2>&1; do sleep 0.1; done
printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n' \
    "'{\"text\": \"What do you think will happen next?\"}'" >"$work/post.lua"
worker=$(head -1 "$work/fcgi.pid")
wrk -t2 -c32 -d"$((secs + 2))s" -s "$work/post.lua" "http://127.0.0.1:$port/api/v1/models/classify" >"$work/wrk.out" &
sleep 1
perf record --call-graph "${CML_PERF_CALLGRAPH:-fp}" -F 999 -o "$work/perf.data" -p "$worker" -- sleep "$secs" >/dev/null 2>&1
wait "$!" 2>/dev/null || true
grep 'Requests/sec' "$work/wrk.out" || true
[ -z "${CML_PERF_DATA:-}" ] || cp "$work/perf.data" "$CML_PERF_DATA" # kept for perf report -g caller
echo "== by shared object (self) =="
perf report -i "$work/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep . | head -15
echo "== by symbol (self) =="
perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep . | head -60
