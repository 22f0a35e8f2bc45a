#!/bin/bash
# How cost grows (issue 17; part of `make bench`): through lighttpd with the real FastCGI
# program, in one run, tables of latency/throughput against text length, batch size,
# concurrent connections and workers x threads, transcript analysis against lesson length,
# training time and peak memory against corpus size; then the issue's bars as ratios against
# the trivial FastCGI program behind lighttpd and behind Apache (mod_proxy_fcgi), start to
# ready with models cached and worker RSS with both models loaded. Every input that is
# generated (long texts, lessons, training rows) is for timing only, never for accuracy.
# It prints figures and never fails on them. With CML_BENCH_OUT=DIR the tables are also
# written there as TSV files (scripts/plot-scaling.sh turns them into docs/scaling.svg).
#   tests/bench/bench_scaling.sh BUILD_DIR [WRK_DURATION]
# Limits raised as a deployment would for the connection sweep: the open-file limit of this
# shell (so wrk and everything it starts) to 65536, lighttpd's server.max-fds 16384 and
# server.max-connections 8192 (already in etc/lighttpd/standalone.conf.in), and the workers'
# FastCGI socket backlog (spawn-fcgi -b 4096; net.core.somaxconn caps it, raised when root).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top}" && pwd)
dur=${2:-3s}
# A training run longer than this is reported as ">LIMIT" (100k ensemble rows on a loaded machine).
train_limit=${CML_TRAIN_LIMIT:-60}
work=$(mktemp -d /tmp/cml-scaling.XXXXXX)
out=${CML_BENCH_OUT:-$work/out}
mkdir -p "$out"
cleanup() {
    for d in "$work"/*/; do [ -e "$d/front.pid" ] && stop "$(basename "$d")"; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export OMP_WAIT_POLICY=passive
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/net/core/somaxconn ]; then
    [ "$(cat /proc/sys/net/core/somaxconn)" -ge 4096 ] || echo 4096 >/proc/sys/net/core/somaxconn
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lighttpd=$(command -v lighttpd || echo /usr/sbin/lighttpd)
apache=/usr/sbin/apache2
py=/usr/bin/python3

"$build/cultivate-ml" train --model classic --data "$top/data/questions.csv" --out "$work/models" >/dev/null 2>&1
"$build/cultivate-ml" train --model ensemble --data "$top/data/questions.csv" --out "$work/models" >/dev/null 2>&1
export MODEL_CACHE_DIR="$work/models" TRAINING_DATA="$top/data/questions.csv"

# shape TSV XCOL YCOL WHAT: one sentence naming how column YCOL grows with column XCOL, from
# the log-log slope of each step (0 flat, 1 linear, above 1 faster than linear, below 0 falling), and where the
# slope changes most (the bend).
shape() {
    awk -F'\t' -v xc="$2" -v yc="$3" -v what="$4" '
        function word(e) { return e < -0.75 ? "falling in proportion" : e < -0.25 ? "falling" : e < 0.25 ? "flat" : e < 0.75 ? "sublinear" : e < 1.3 ? "linear" : "faster than linear" }
        NR > 1 && $yc + 0 > 0 { n++; x[n] = $xc; y[n] = $yc }
        END {
            if (n < 2) { print "shape: too few points"; exit }
            s = ""; bend = ""; best = 0
            for (i = 2; i <= n; i++) {
                e[i] = log(y[i] / y[i - 1]) / log(x[i] / x[i - 1])
                s = s sprintf("%s%s->%s %s (slope %.2f)", i > 2 ? ", " : "", x[i - 1], x[i], word(e[i]), e[i])
                if (i > 2 && (d = e[i] - e[i - 1]) * (d < 0 ? -1 : 1) > best) { best = d * (d < 0 ? -1 : 1); bend = x[i - 1] }
            }
            printf "shape of %s: %s%s\n", what, s, (best > 0.3 ? "; it bends at " bend : "; no bend")
        }' "$1"
}
# timed_post PORT PATH TYPE FILE: prints the seconds a POST took; a status other than 200 is
# reported on standard error (the figure would not be the route's).
timed_post() {
    r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "Content-Type: $3" --data-binary @"$4" "http://127.0.0.1:$1$2")
    [ "${r%% *}" = 200 ] || echo "bench: $2 answered ${r%% *}" >&2
    echo "${r#* }"
}
# start NAME FRONT(lighttpd|apache) WORKERS THREADS PROGRAM [ARGS...]: prints the port.
start() {
    name=$1 front=$2 n=$3 threads=$4
    shift 4
    d="$work/$name"
    mkdir -p "$d"
    port=${START_PORT:-$(free_port)}
    CML_WORKER_LOG="$d/worker.log" FCGI_THREADS=$threads STATE_DIR="$d/state" spawn-fcgi -s "$d/sock" -b 4096 -F "$n" -P "$d/fcgi.pid" -- \
        /bin/sh -c 'exec "$0" "$@" 2>>"$CML_WORKER_LOG"' "$@" >/dev/null
    if [ "$front" = lighttpd ]; then
        sed -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$d/sock|g" -e "s|@DIR@|$d|g" -e "s|@ERRORS@|$top/etc/errors|g" \
            "$top/etc/lighttpd/standalone.conf.in" >"$d/front.conf"
        "$lighttpd" -D -f "$d/front.conf" >"$d/front.out" 2>&1 &
    else
        sed -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$d/sock|g" -e "s|@DIR@|$d|g" -e "s|@ERRORS@|$top/etc/errors|g" \
            "$top/etc/apache2/standalone.conf.in" >"$d/front.conf"
        "$apache" -f "$d/front.conf" -DFOREGROUND >"$d/front.out" 2>&1 &
    fi
    echo $! >"$d/front.pid"
    echo "$port"
}
# Stops a stack; awk, not cat, reads the pid files: spawn-fcgi ends its file without a newline,
# so cat would glue its last pid to the next file's first. A process still there after 1 s of
# SIGTERM is killed.
stop() { # NAME
    ps=$(awk 1 "$work/$1"/*.pid 2>/dev/null || true)
    for p in $ps; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in $ps; do kill -9 "$p" 2>/dev/null || true; done
    rm -f "$work/$1"/*.pid
}
wait_ready() { # URL
    i=0
    until curl -fsS "$1" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt 3000 ] && { echo "bench: $1 never answered" >&2; tail -5 "$work"/*/worker.log >&2; exit 1; }
        sleep 0.01
    done
}
# A classify body of N characters (corpus words repeated; timing only).
text_of() { $py -c 'import sys; w="What do you think will happen when the ice melts in the sun "; n=int(sys.argv[1]); print((w * (n // len(w) + 1))[:n].strip().ljust(n, "x"))' "$1"; }
lua_for() { # FILE BODYFILE: a wrk script posting that body
    $py - "$2" >"$1" <<'PY'
import json, sys
body = open(sys.argv[1], encoding="utf-8").read()
print('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ' + json.dumps(body))
PY
}
# wrk URL LUA CONNECTIONS -> "rps p50_ms p99_ms failed" (non-2xx answers and socket errors)
wrk_run() {
    t=2
    [ "$3" -lt 2 ] && t=1
    o=$(wrk -t$t -c"$3" -d"$dur" --timeout 10s --latency -s "$2" "$1" 2>&1)
    echo "$o" | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
        /Non-2xx/ { bad += $NF } /Socket errors/ { bad += $4 + $6 + $8 + $10 }
        END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad }'
}
echo '{"text": "What do you think will happen next?"}' >"$work/short.json"
lua_for "$work/short.lua" "$work/short.json"
$py -c 'import json; print(json.dumps({"text": "What do you think will happen next?", "model_type": "classic"}))' >"$work/short_classic.json"
lua_for "$work/short_classic.lua" "$work/short_classic.json"

echo "== How cost grows (wrk $dur per point, through lighttpd, MODEL_TYPE=ensemble unless named) =="

# 1. Text length, 2x2, 32 connections.
port=$(start len lighttpd 2 2 env MODEL_TYPE=ensemble LOG_LEVEL=warn "$build/cultivate-ml-fcgi")
wait_ready "http://127.0.0.1:$port/api/ready"
printf 'chars\treq_s\tp50_ms\tp99_ms\n' >"$out/text_length.tsv"
echo "-- classify latency and throughput vs text length (2 processes x 2 threads, 32 connections)"
printf '%8s %10s %9s %9s\n' chars req/s p50_ms p99_ms
for n in 10 100 1000 10000; do
    $py -c 'import json,sys; print(json.dumps({"text": sys.stdin.read().strip()}))' <<<"$(text_of $n)" >"$work/len$n.json"
    lua_for "$work/len$n.lua" "$work/len$n.json"
    set -- $(wrk_run "http://127.0.0.1:$port/api/v1/models/classify" "$work/len$n.lua" 32)
    printf '%8s %10s %9s %9s%s\n' "$n" "$1" "$2" "$3" "$([ "$4" = 0 ] || echo "  failed $4")"
    printf '%s\t%s\t%s\t%s\n' "$n" "$1" "$2" "$3" >>"$out/text_length.tsv"
done
shape "$out/text_length.tsv" 1 3 "p50 latency against text length"
shape "$out/text_length.tsv" 1 2 "throughput against text length"

# 2. Batch size, each model: median of 5 requests through the same stack.
echo "-- batch route time vs batch size (median of 5, curl)"
printf 'size\tclassic_ms\tensemble_ms\n' >"$out/batch.tsv"
printf '%6s %12s %12s\n' texts classic_ms ensemble_ms
for n in 1 10 100 1000; do
    row="$n"
    for m in classic ensemble; do
        $py - "$top/data/questions.csv" "$n" "$m" >"$work/batch.json" <<'PY'
import csv, json, random, sys
rows = [r["text"] for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))]
rnd = random.Random(int(sys.argv[2]))
print(json.dumps({"questions": [rnd.choice(rows) for _ in range(int(sys.argv[2]))], "model": sys.argv[3]}))
PY
        ts=""
        for _ in 1 2 3 4 5; do
            ts="$ts $(timed_post "$port" /api/v1/classify/batch application/json "$work/batch.json")"
        done
        row="$row $(echo "$ts" | tr ' ' '\n' | grep . | sort -n | sed -n 3p | awk '{printf "%.2f", $1 * 1000}')"
    done
    set -- $row
    printf '%6s %12s %12s\n' "$1" "$2" "$3"
    printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$out/batch.tsv"
done
shape "$out/batch.tsv" 1 2 "classic batch time against batch size"
shape "$out/batch.tsv" 1 3 "ensemble batch time against batch size"

# 5. Transcript analysis vs lesson length (WebVTT, 12 cues a minute, ~13 words a cue).
echo "-- transcript analysis vs lesson length (ensemble, median of 5)"
printf 'minutes\twords\tms\n' >"$out/transcript.tsv"
printf '%8s %8s %10s\n' minutes words ms
for minutes in 1 10 60; do
    $py "$top/tests/bench/make_lesson.py" "$top/data" "$minutes" >"$work/lesson.vtt"
    ts=""
    for _ in 1 2 3 4 5; do
        ts="$ts $(timed_post "$port" /api/v1/transcripts/analyze text/vtt "$work/lesson.vtt")"
    done
    ms=$(echo "$ts" | tr ' ' '\n' | grep . | sort -n | sed -n 3p | awk '{printf "%.1f", $1 * 1000}')
    words=$(wc -w <"$work/lesson.vtt")
    printf '%8s %8s %10s\n' "$minutes" "$words" "$ms"
    printf '%s\t%s\t%s\n' "$minutes" "$words" "$ms" >>"$out/transcript.tsv"
done
shape "$out/transcript.tsv" 1 3 "analysis time against lesson minutes"

# 3. Concurrent connections, 2x2.
echo "-- throughput and p99 vs concurrent connections (2 processes x 2 threads)"
printf 'connections\treq_s\tp50_ms\tp99_ms\n' >"$out/connections.tsv"
printf '%12s %10s %9s %9s\n' connections req/s p50_ms p99_ms
for c in 1 8 32 128 512 2048; do
    set -- $(wrk_run "http://127.0.0.1:$port/api/v1/models/classify" "$work/short.lua" "$c")
    printf '%12s %10s %9s %9s%s\n' "$c" "$1" "$2" "$3" "$([ "$4" = 0 ] || echo "  failed $4")"
    printf '%s\t%s\t%s\t%s\n' "$c" "$1" "$2" "$3" >>"$out/connections.tsv"
done
shape "$out/connections.tsv" 1 2 "throughput against connections"
shape "$out/connections.tsv" 1 4 "p99 against connections"
stop len

# 4. Workers x threads, 32 connections.
echo "-- throughput vs workers x threads (32 connections)"
printf 'layout\treq_s\tp99_ms\n' >"$out/layout.tsv"
printf '%8s %10s %9s\n' layout req/s p99_ms
for wt in 1x1 1x2 2x2 4x1 4x2; do
    port=$(start "wt$wt" lighttpd "${wt%x*}" "${wt#*x}" env MODEL_TYPE=ensemble LOG_LEVEL=warn "$build/cultivate-ml-fcgi")
    wait_ready "http://127.0.0.1:$port/api/ready"
    set -- $(wrk_run "http://127.0.0.1:$port/api/v1/models/classify" "$work/short.lua" 32)
    printf '%8s %10s %9s\n' "$wt" "$1" "$3"
    printf '%s\t%s\t%s\n' "$wt" "$1" "$3" >>"$out/layout.tsv"
    stop "wt$wt"
done
awk -F'\t' 'NR > 1 { r[$1] = $2; if ($2 + 0 > best) { best = $2; at = $1 } } END { printf "shape of throughput against layout: 1x1 -> 1x2 %.2fx, 1x2 -> 2x2 %.2fx ; past 2x2 (more workers than cores) 4x1 %.2fx and 4x2 %.2fx of 2x2; best %s\n", r["1x2"] / r["1x1"], r["2x2"] / r["1x2"], r["4x1"] / r["2x2"], r["4x2"] / r["2x2"], at }' "$out/layout.tsv"

# 6. Training time and peak memory vs corpus size (rows resampled from the bundled data, half
# of them recombined from two rows of the same label: timing only, never for accuracy).
echo "-- training time and peak memory vs corpus size (cultivate-ml train, /usr/bin/time -v)"
printf 'rows\tclassic_s\tclassic_mb\tensemble_s\tensemble_mb\n' >"$out/training.tsv"
printf '%8s %10s %11s %11s %12s\n' rows classic_s classic_MB ensemble_s ensemble_MB
for n in 1000 5000 20000 100000; do
    $py - "$top/data/questions.csv" "$n" >"$work/train.csv" <<'PY'
import csv, random, sys
src, n = sys.argv[1], int(sys.argv[2])
rows = list(csv.DictReader(open(src, encoding="utf-8")))
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r["text"].split())
rnd = random.Random(n)
w = csv.writer(sys.stdout)
w.writerow(["text", "label"])
for i in range(n):
    r = rnd.choice(rows)
    t = r["text"].split()
    if i % 2:
        o = rnd.choice(by[r["label"]])
        t = t[: max(1, len(t) // 2)] + o[len(o) // 2 :]
    w.writerow([" ".join(t), r["label"]])
PY
    row="$n"
    for m in classic ensemble; do
        if timeout "$train_limit" /usr/bin/time -v "$build/cultivate-ml" train --model "$m" --data "$work/train.csv" \
            --non-questions "$top/data/nonquestions.csv" --out "$work/train-models" >/dev/null 2>"$work/time.txt"; then
            row="$row $(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.2f", s }' "$work/time.txt")"
            row="$row $(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$work/time.txt")"
        else
            row="$row >$train_limit -"
        fi
    done
    set -- $row
    printf '%8s %10s %11s %11s %12s\n' "$1" "$2" "$3" "$4" "$5"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$out/training.tsv"
done
shape "$out/training.tsv" 1 2 "classic training time against rows"
shape "$out/training.tsv" 1 4 "ensemble training time against rows"
shape "$out/training.tsv" 1 5 "ensemble peak memory against rows"

# The bars: 2 processes x 2 threads, 32 connections, default log level; trivial, classic and
# ensemble interleaved behind each front end. One ensemble stack serves both models (the
# classic requests name model_type), so its workers hold both when their RSS is read.
echo "== Bars (2 processes x 2 threads, 32 connections, default log level, wrk $dur) =="
printf 'front\ttrivial\tclassic\tensemble\n' >"$out/bars.tsv"
for front in lighttpd apache; do
    [ "$front" = apache ] && { [ -x "$apache" ] && [ -e /usr/lib/apache2/modules/mod_proxy_fcgi.so ] || { echo "apache: skipped"; continue; }; }
    tport=$(start "triv-$front" "$front" 2 2 "$build/tests/bench/trivial_fcgi")
    # Start to ready: from spawn-fcgi's start (the port picked before) to the first 200 of
    # /api/ready through the front end, polled every 10 ms.
    START_PORT=$(free_port)
    t0=$(date +%s.%N)
    sport=$(start "svc-$front" "$front" 2 2 env MODEL_TYPE=ensemble "$build/cultivate-ml-fcgi")
    unset START_PORT
    wait_ready "http://127.0.0.1:$sport/api/ready"
    t1=$(date +%s.%N)
    wait_ready "http://127.0.0.1:$tport/x"
    [ "$front" = lighttpd ] && echo "start to ready (models cached, $front, 2 workers): $(echo "$t1 $t0" | awk '{printf "%.3f", $1 - $2}') s (bar < 0.3 s)"
    set -- $(wrk_run "http://127.0.0.1:$tport/api/v1/models/classify" "$work/short.lua" 32)
    tr1=$1
    set -- $(wrk_run "http://127.0.0.1:$sport/api/v1/models/classify" "$work/short_classic.lua" 32)
    cl=$1
    set -- $(wrk_run "http://127.0.0.1:$sport/api/v1/models/classify" "$work/short.lua" 32)
    en=$1
    set -- $(wrk_run "http://127.0.0.1:$tport/api/v1/models/classify" "$work/short.lua" 32)
    tr=$(((tr1 + $1) / 2))
    printf '%s\t%s\t%s\t%s\n' "$front" "$tr" "$cl" "$en" >>"$out/bars.tsv"
    echo "$front: trivial $tr req/s (mean of before and after), classic $cl, ensemble $en;" \
        "classic/trivial $(awk -v a="$cl" -v b="$tr" 'BEGIN{printf "%.2f", a / b}') (bar >= 0.90)," \
        "ensemble/trivial $(awk -v a="$en" -v b="$tr" 'BEGIN{printf "%.2f", a / b}') (bar >= 0.80)"
    if [ "$front" = lighttpd ]; then
        for p in $(cat "$work/svc-$front/fcgi.pid"); do
            echo "resident memory, worker $p with both models loaded: $(awk '/VmRSS/ {printf "%.1f MB", $2 / 1024}' /proc/"$p"/status) (bar < 40 MB)"
        done
    fi
    stop "triv-$front"
    stop "svc-$front"
done
