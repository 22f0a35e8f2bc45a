#!/bin/sh
# Shadow scoring's cost (part of `make bench`, issue 12): classify throughput through lighttpd,
# 2 worker processes x 2 threads, wrk -t2 -c32, with SHADOW_SAMPLE=1 against SHADOW_SAMPLE=0,
# in one run: two stacks on the same models, measured in turn (off, on, off, on, ...; short
# runs, many rounds, so that other load on the machine falls on both alike) for each
# answering type, and the ratio on/off of the summed requests printed (the bar is 0.95).
# It prints figures and never fails on them.
#   tests/bench/bench_shadow.sh BUILD_DIR [DURATION] [ROUNDS]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top}" && pwd)
dur=${2:-2s}
rounds=${3:-8}
work=$(mktemp -d /tmp/cml-bench-shadow.XXXXXX)
cleanup() {
    for p in $(cat "$work"/*/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export OMP_WAIT_POLICY=passive
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lighttpd=$(command -v lighttpd || echo /usr/sbin/lighttpd)

"$build/cultivate-ml" train --model classic --folds 0 --data "$top/data/questions.csv" --out "$work/models" >/dev/null 2>&1
if ! "$build/cultivate-ml" train --model ensemble --folds 0 --data "$top/data/questions.csv" --out "$work/models" >/dev/null 2>&1; then
    echo "shadow scoring: a classic-only build has no second type; nothing to measure"
    exit 0
fi

start_stack() { # name, SHADOW_SAMPLE
    mkdir -p "$work/$1"
    port=$(free_port)
    sed -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$work/$1/sock|g" -e "s|@DIR@|$work/$1|g" \
        -e "s|@ERRORS@|$top/etc/errors|g" \
        "$top/etc/lighttpd/standalone.conf.in" >"$work/$1/lighttpd.conf"
    env MODEL_CACHE_DIR="$work/models" TRAINING_DATA="$top/data/questions.csv" FCGI_THREADS=2 \
        STATE_DIR="$work/$1" LOG_LEVEL=warn SHADOW_SAMPLE="$2" \
        spawn-fcgi -s "$work/$1/sock" -F 2 -P "$work/$1/fcgi.pid" -- "$build/cultivate-ml-fcgi" >/dev/null
    "$lighttpd" -D -f "$work/$1/lighttpd.conf" >"$work/$1/lighttpd.out" 2>&1 &
    echo $! >"$work/$1/front.pid"
    echo "$port"
}
wait_ready() {
    i=0
    until curl -fsS "$1" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt 600 ] && { echo "bench: $1 never answered" >&2; exit 1; }
        sleep 0.1
    done
}
off=$(start_stack off 0)
on=$(start_stack on 1)
wait_ready "http://127.0.0.1:$off/api/ready"
wait_ready "http://127.0.0.1:$on/api/ready"
for t in classic ensemble; do
    cat >"$work/$t.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"text": "What do you think will happen next?", "model_type": "$t"}'
wrk.headers["Content-Type"] = "application/json"
LUA
done
rps() { wrk -t2 -c32 -d"$dur" -s "$work/$2.lua" "http://127.0.0.1:$1/api/v1/models/classify" | awk '/Requests\/sec/ {print $2}'; }

echo "shadow scoring: wrk -t2 -c32 -d$dur x $rounds rounds each, through lighttpd, 2 processes x 2 threads:"
for t in classic ensemble; do
    sum_off=0 sum_on=0 list_off="" list_on=""
    for r in $(seq 1 "$rounds"); do
        a=$(rps "$off" "$t")
        b=$(rps "$on" "$t")
        sum_off=$(echo "$sum_off $a" | awk '{print $1 + $2}')
        sum_on=$(echo "$sum_on $b" | awk '{print $1 + $2}')
        list_off="$list_off $a" list_on="$list_on $b"
    done
    shadow=$([ "$t" = classic ] && echo ensemble || echo classic)
    printf '  %s answering, %s shadow: SHADOW_SAMPLE=0%s req/s; SHADOW_SAMPLE=1%s req/s\n' \
        "$t" "$shadow" "$list_off" "$list_on"
    echo "$sum_on $sum_off $t" | awk '{printf "  ratio %s (on/off): %.3f (bar >= 0.95)\n", $3, $1 / $2}'
done
curl -fsS "http://127.0.0.1:$on/metrics" >"$work/metrics"
shadowed=$(awk '/^cultivate_ml_shadow_requests_total\{/ {s += $2} END {print s + 0}' "$work/metrics")
skipped=$(awk '/^cultivate_ml_shadow_skipped_total / {print $2}' "$work/metrics")
echo "  SHADOW_SAMPLE=1 stack: $shadowed answers shadow-scored, $skipped skipped (queue full: the"
echo "  live thread runs at nice 19, so a saturated machine skips shadow scorings, not answers)"
