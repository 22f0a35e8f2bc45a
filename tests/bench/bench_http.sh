#!/bin/sh
# HTTP benchmark (part of `make bench`): wrk through lighttpd, 2 worker processes x 2 threads,
# 32 connections, against (1) a static file, (2) a trivial FastCGI program answering fixed
# JSON, (3) cultivate-ml classify with the classic model, (4) with the ensemble, and (5) the
# FastAPI + scikit-learn design this service replaces (../shared/peer) when its Debian
# packages are installed. All in one run, interleaved, so the figures compare as ratios.
# Also: resident memory per worker with both models loaded, time from start to ready.
# It prints figures and never fails on them.
#   tests/bench/bench_http.sh BUILD_DIR [DURATION]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top}" && pwd)
dur=${2:-10s}
work=$(mktemp -d /tmp/cml-bench.XXXXXX)
pids=""
# Every server started here leaves its pids in $work/*/*.pid (start_stack runs in a command
# substitution, so a variable set there would not reach this shell).
cleanup() {
    # awk, not cat: spawn-fcgi ends its pid file without a newline (cat glued two pids together).
    for p in $pids $(awk 1 "$work"/*/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export OMP_WAIT_POLICY=passive
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lighttpd=$(command -v lighttpd || echo /usr/sbin/lighttpd)

# The models, trained once.
"$build/cultivate-ml" train --model classic --data "$top/data/questions.csv" --out "$work/models" >/dev/null 2>&1
have_ensemble=0
if "$build/cultivate-ml" train --model ensemble --data "$top/data/questions.csv" --out "$work/models" >/dev/null 2>&1; then
    have_ensemble=1
fi

start_stack() { # name, fastcgi program and args...
    name=$1
    shift
    mkdir -p "$work/$name"
    port=$(free_port)
    sed -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$work/$name/sock|g" -e "s|@DIR@|$work/$name|g" \
        -e "s|@ERRORS@|$top/etc/errors|g" -e "s|@DASHBOARD@|$top/dashboard|g" \
        "$top/etc/lighttpd/standalone.conf.in" > "$work/$name/lighttpd.conf"
    if [ "$1" = none ]; then
        # Static files only: the same server settings without FastCGI.
        sed -i -e '/^fastcgi.server/,$d' -e 's/"mod_fastcgi"/"mod_staticfile"/' "$work/$name/lighttpd.conf"
    else
        spawn-fcgi -s "$work/$name/sock" -F 2 -P "$work/$name/fcgi.pid" -- "$@" >/dev/null
    fi
    # Its output must not hold the caller's pipe open (stdout is the port).
    "$lighttpd" -D -f "$work/$name/lighttpd.conf" >"$work/$name/lighttpd.out" 2>&1 &
    echo $! >"$work/$name/front.pid"
    echo "$port"
}
wait_ready() { # url
    i=0
    until curl -fsS "$1" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt 600 ] && { echo "bench: $1 never answered" >&2; exit 1; }
        sleep 0.1
    done
}
body='{"text": "What do you think will happen next?"}'
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
run_wrk() { # label, url, [lua]
    label=$1 url=$2
    if [ -n "${3:-}" ]; then out=$(wrk -t2 -c32 -d"$dur" --latency -s "$3" "$url"); else out=$(wrk -t2 -c32 -d"$dur" --latency "$url"); fi
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    printf '%-28s %10s req/s  p50 %8s  p99 %8s  %s\n' "$label" "$rps" "$p50" "$p99" "$errs"
    echo "$rps" > "$work/rps.$label"
}

sport=$(start_stack static none)
echo '{"classification":"OEQ","confidence":0.9,"model":"none"}' > "$work/static/index.html"
tport=$(start_stack trivial "$build/tests/bench/trivial_fcgi")
export MODEL_CACHE_DIR="$work/models" TRAINING_DATA="$top/data/questions.csv" FCGI_THREADS=2
export STATE_DIR="$work/state-classic" MODEL_TYPE=classic LOG_LEVEL=warn
t0=$(date +%s.%N)
cport=$(start_stack classic "$build/cultivate-ml-fcgi")
wait_ready "http://127.0.0.1:$cport/api/ready"
t1=$(date +%s.%N)
echo "start to ready (classic, models cached): $(echo "$t1 $t0" | awk '{printf "%.2f", $1 - $2}') s"
eport=""
if [ $have_ensemble = 1 ]; then
    export STATE_DIR="$work/state-ensemble" MODEL_TYPE=ensemble
    eport=$(start_stack ensemble "$build/cultivate-ml-fcgi")
    wait_ready "http://127.0.0.1:$eport/api/ready"
fi
wait_ready "http://127.0.0.1:$sport/index.html"
wait_ready "http://127.0.0.1:$tport/x"

echo "wrk -t2 -c32 -d$dur through lighttpd, 2 processes x 2 threads:"
run_wrk static "http://127.0.0.1:$sport/index.html"
run_wrk trivial-fastcgi "http://127.0.0.1:$tport/api/v1/models/classify" "$work/post.lua"
run_wrk classic "http://127.0.0.1:$cport/api/v1/models/classify" "$work/post.lua"
[ -n "$eport" ] && run_wrk ensemble "http://127.0.0.1:$eport/api/v1/models/classify" "$work/post.lua"

# Transcript analysis against lesson length: WebVTT lessons of 1, 10 and 60 minutes (12 cues
# a minute, about 13 words a cue, so 60 minutes is about 9,000 words in 720 cues), made of
# corpus rows and non-questions for timing only. Median of 9 requests each, through lighttpd.
if [ -n "$eport" ]; then
    for minutes in 1 10 60; do
        python3 "$top/tests/bench/make_lesson.py" "$top/data" "$minutes" > "$work/lesson_$minutes.vtt"
        times=""
        for _ in 1 2 3 4 5 6 7 8 9; do
            times="$times $(curl -s -o /dev/null -w '%{time_total}' -X POST -H 'Content-Type: text/vtt' \
                --data-binary @"$work/lesson_$minutes.vtt" "http://127.0.0.1:$eport/api/v1/transcripts/analyze")"
        done
        echo "$times" | tr ' ' '\n' | grep . | sort -n | awk -v m="$minutes" -v w="$(wc -w < "$work/lesson_$minutes.vtt")" \
            '{ t[NR] = $1 } END { printf "transcript analysis, ensemble, %2d min lesson (%d words): median %.1f ms\n", m, w, t[int((NR + 1) / 2)] * 1000 }'
    done
fi

# The peer, when its packages are there (see ../shared/peer/README.md).
peer="$top/../shared/peer"
if [ -d "$peer" ] && /usr/bin/python3 -c 'import sklearn, fastapi, uvicorn' 2>/dev/null; then
    (cd "$peer" && /usr/bin/python3 peer_models.py train --data "$top/data/questions.csv" --model ensemble \
        --out "$work/peer/ensemble.joblib" --cv-folds 0 >/dev/null 2>&1 &&
        /usr/bin/python3 peer_models.py train --data "$top/data/questions.csv" --model classic \
            --out "$work/peer/classic.joblib" --cv-folds 0 >/dev/null 2>&1)
    pport=$(free_port)
    (cd "$peer" && PEER_ENSEMBLE_MODEL="$work/peer/ensemble.joblib" PEER_CLASSIC_MODEL="$work/peer/classic.joblib" \
        exec /usr/bin/python3 -m uvicorn peer_server:app --host 127.0.0.1 --port "$pport" --workers 2 \
        --log-level warning) &
    pids="$pids $!"
    wait_ready "http://127.0.0.1:$pport/api/health"
    run_wrk peer-ensemble "http://127.0.0.1:$pport/api/v1/models/classify" "$work/post.lua"
else
    echo "peer: skipped (apt-get install python3-sklearn python3-fastapi python3-uvicorn python3-uvloop python3-httptools)"
fi

ratio() { awk -v a="$(cat "$work/rps.$1" 2>/dev/null || echo 0)" -v b="$(cat "$work/rps.$2" 2>/dev/null || echo 0)" \
    'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
echo "ratios (same run): classic/trivial $(ratio classic trivial-fastcgi), ensemble/trivial $(ratio ensemble trivial-fastcgi), ensemble/peer $(ratio ensemble peer-ensemble), trivial/static $(ratio trivial-fastcgi static)"
for name in classic ensemble; do
    f="$work/$name/fcgi.pid"
    [ -f "$f" ] || continue
    for p in $(cat "$f"); do
        echo "resident memory, $name worker $p: $(awk '/VmRSS/ {print $2, $3}' /proc/$p/status)"
    done
    kill $(cat "$f") 2>/dev/null || true
done
kill $(cat "$work/trivial/fcgi.pid") 2>/dev/null || true
