#!/bin/bash
# Retraining, job status, evaluation, history, comparison, rollback and retention through
# lighttpd + spawn-fcgi -F 2 + cultivate-ml-fcgi on 127.0.0.1, with real training jobs (see
# tests/integration/test_training.c). Exits 77 when lighttpd or spawn-fcgi is missing.
#   1. suite train: retrains (text/csv, JSON, bundled data), 409 through the other worker,
#      bad uploads, a trainer killed with SIGKILL, evaluation against the CLI, rollback,
#      feedback in training; it leaves a pinned version and a record of its jobs;
#   2. the whole stack restarted on the same state: suite persist finds all of it;
#   3. a fresh stack with MODEL_RETAIN_VERSIONS=2: suite retention.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require lighttpd || exit 77
cml_env_init
# Training runs in the workers' children and here: OpenMP threads must not spin.
export OMP_WAIT_POLICY=passive
client="$CML_TOP_BUILDDIR/tests/integration/test_training"
[ -x "$client" ] || cml_fail "missing $client (built by make check)"
# The service's own default body limit (10 MiB), not the small one of the route tests.
CML_TEST_MAX_BODY=10485760
export CML_CLI_BIN CML_TRAINING_RECORD="$CML_TMP/training.record"
t0=$(cml_now)
fails=0

cml_prepare_models
# The classic model is the one retrained here: it is the active type even in a build with the
# ensemble (the ensemble stays loaded and shows in the comparison).
CML_MODEL_TYPE=classic
state=$(cml_new_state training)
cml_stack_start lighttpd fork 2 "$state"
"$client" train || { fails=$((fails + 1)) && cml_dump_logs; }
cml_stack_stop || cml_fail "lighttpd stack ($CML_WORKER_PIDS) did not stop within 10 s of SIGTERM"

cml_stack_start lighttpd fork 2 "$state"
"$client" persist || { fails=$((fails + 1)) && cml_dump_logs; }
cml_stack_stop || cml_fail "lighttpd stack did not stop within 10 s of SIGTERM"

cml_stack_start lighttpd fork 2 "$(cml_new_state retention)" MODEL_RETAIN_VERSIONS=2
CML_RETAIN=2 "$client" retention || { fails=$((fails + 1)) && cml_dump_logs; }
cml_stack_stop || cml_fail "lighttpd stack did not stop within 10 s of SIGTERM"

[ "$fails" -eq 0 ] || cml_fail "$fails client run(s) failed"
echo "training through lighttpd: all suites passed in $(cml_elapsed "$t0") s"
