#!/bin/bash
# Batches must not starve classify (issue 15, defect 8), through lighttpd + spawn-fcgi -F 2 with
# 2 request threads each (4 in all): 8 clients send maximal batches (1,000 texts of 10,000
# characters, 10 MB) for 8 s while one client sends single classify requests. Each worker serves
# at most threads - 1 heavy requests at once, so: every single classify answers 200, batches
# beyond the limit are answered 503 server_busy with Retry-After (and some are refused), the
# others 200. Times are printed (tests/bench/bench_batches.sh is the benchmark), never
# asserted. Exits 77 without lighttpd or python3.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require lighttpd || exit 77
command -v python3 >/dev/null 2>&1 || exit 77
cml_env_init
CML_TEST_MAX_BODY=10485760
cml_prepare_models
CML_MODEL_TYPE=classic
cml_stack_start lighttpd fork 2 "$(cml_new_state batches)" FCGI_THREADS=2 MAX_BATCH_SIZE=1000 \
    MAX_TEXT_CHARS=10000
out=$(python3 "$here/batch_load.py" "$CML_PORT" --batchers 8 --seconds "${CML_BATCH_SECONDS:-8}") ||
    { cml_dump_logs; cml_fail "batch load: $out"; }
printf '%s\n' "$out" | sed -n 1p
fig=$(printf '%s\n' "$out" | tail -1)
printf '%s' "$fig" | grep -q '"503 server_busy": [1-9]' ||
    cml_fail "no batch was refused while 8 ran on 2 workers: $fig"
printf '%s' "$fig" | grep -q '"200": [1-9]' || cml_fail "no batch was served: $fig"
cml_stack_stop || cml_fail "lighttpd stack did not stop within 10 s of SIGTERM"
