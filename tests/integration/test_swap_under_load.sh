#!/bin/bash
# Classification under load while the classic model is switched between two versions 50
# times, through each front end installed, with spawn-fcgi -F 4 (suite swap of
# test_service: 6 client threads; no request may fail, and every answer must come from one of
# the two versions -- the one selected when the request was sent, whichever worker took it).
# Then, when wrk is installed, SIGTERM to the whole stack in the middle of a wrk run: it must
# be gone within 10 s (the time is printed).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require_fronts "lighttpd apache"
fronts=$CML_FRONTS
cml_env_init
cml_prepare_models
fails=0
for f in $fronts; do
    cml_stack_start "$f" fork 4 "$(cml_new_state "swap-$f")"
    cml_client swap || { fails=$((fails + 1)) && cml_dump_logs; }
    if ! command -v wrk >/dev/null 2>&1; then
        cml_stack_stop || cml_fail "$f stack did not stop within 10 s of SIGTERM"
        echo "stop time ($f, spawn-fcgi -F 4, idle): $CML_STOP_SECONDS s"
        continue
    fi
    # Stop under load: wrk runs (its own tag, so the stop waits only for the stack) until
    # the workers have logged 2,000 more requests, then SIGTERM goes to the stack.
    cat >"$CML_RUN_DIR/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"text":"What do you think will happen next?"}'
wrk.headers["Content-Type"] = "application/json"
LUA
    before=$(wc -l <"$CML_FCGI_LOG")
    env "CML_STACK_TAG=$CML_TAG.wrk" wrk -t2 -c16 -d60s -s "$CML_RUN_DIR/post.lua" \
        "$CML_BASE_URL/api/v1/models/classify" >"$CML_RUN_DIR/wrk.out" 2>&1 &
    wrk_pid=$!
    for _ in $(seq 1 200); do
        [ $(($(wc -l <"$CML_FCGI_LOG") - before)) -ge 2000 ] && break
        sleep 0.05
    done
    under_load=$(($(wc -l <"$CML_FCGI_LOG") - before))
    cml_stack_stop || cml_fail "$f stack did not stop within 10 s of SIGTERM under load"
    echo "stop time ($f, spawn-fcgi -F 4, under wrk load after $under_load requests): $CML_STOP_SECONDS s"
    kill -INT "$wrk_pid" 2>/dev/null
    wait "$wrk_pid" 2>/dev/null
    sed -n '/Requests\/sec\|requests in\|Socket errors\|Non-2xx/p' "$CML_RUN_DIR/wrk.out"
    [ "$under_load" -ge 2000 ] || cml_fail "wrk did not load the $f stack"
done
[ "$fails" -eq 0 ] || cml_fail "the swap test failed"
