#!/bin/bash
# Benchmark (part of `make bench`): single classify latency while 8 clients send maximal
# batches (1,000 texts of 10,000 characters, 10 MB each) through lighttpd + 2 worker processes
# x 2 request threads (issue 15, defect 8; target p99 under 50 ms). Uses the integration
# tests' stack (tests/integration/service_env.sh) and driver (batch_load.py); prints figures
# and never fails on them.
#   tests/bench/bench_batches.sh BUILD_DIR [SECONDS]
set -u
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CML_TOP_SRCDIR=$top
CML_TOP_BUILDDIR=$(cd "${1:-$top}" && pwd)
export CML_TOP_BUILDDIR
secs=${2:-20}
# shellcheck source=tests/integration/service_env.sh
. "$top/tests/integration/service_env.sh"
cml_require lighttpd || { echo "bench_batches: lighttpd or spawn-fcgi missing, skipped"; exit 0; }
cml_env_init
export OMP_WAIT_POLICY=passive
CML_TEST_MAX_BODY=10485760
cml_prepare_models >/dev/null 2>&1
CML_MODEL_TYPE=classic
cml_stack_start lighttpd fork 2 "$(cml_new_state bench)" FCGI_THREADS=2 MAX_BATCH_SIZE=1000 \
    MAX_TEXT_CHARS=10000 2>/dev/null
echo "classic model, lighttpd, 2 processes x 2 threads:"
python3 "$top/tests/integration/batch_load.py" "$CML_PORT" --batchers 8 --seconds "$secs" | sed -n 1p
python3 "$top/tests/integration/batch_load.py" "$CML_PORT" --batchers 0 --seconds 5 |
    sed -n 1p | sed 's/^/  without batches: /'
cml_stack_stop >/dev/null 2>&1
exit 0
