#!/bin/bash
# The live comparison of ensemble and classic (issue 12) through lighttpd with 2 workers
# (spawn-fcgi -F 2, SHADOW_SAMPLE=1, COMPARISON_MIN_FEEDBACK=5): shadow counts equal the
# classify requests sent, feedback accuracy equals a recomputation from the stored items, the
# recommendation switches when the feedback says the other model is better, and everything
# survives a restart of every worker (live_comparison.py). Exits 77 without python3, lighttpd
# and spawn-fcgi, or in a classic-only build (there is no other type to shadow).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
py=${PYTHON3:-python3}
command -v "$py" >/dev/null 2>&1 || {
    echo "python3 is not installed"
    exit 77
}
cml_require lighttpd >/dev/null || {
    echo "lighttpd or spawn-fcgi is not installed"
    exit 77
}
cml_have_ensemble || {
    echo "a classic-only build has no second type to compare"
    exit 77
}
cml_env_init
cml_prepare_models
state=$(cml_new_state live)
texts="$CML_TMP/live_texts.txt"
# 40 corpus questions to classify, then the whole corpus and short fragments on which the two types are likelier to differ.
"$py" -c 'import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
for r in rows[::max(1, len(rows) // 40)][:40] + rows:
    print(r["text"].replace("\n", " "))' "$CML_DATA" >"$texts"
cat >>"$texts" <<'TEXTS'
so what
you know what
and then?
which one
how come
what if
really?
is that so
can you tell me
what about it
TEXTS
settings=(SHADOW_SAMPLE=1 COMPARISON_MIN_FEEDBACK=5)
cml_stack_start lighttpd fork 2 "$state" "${settings[@]}"
CML_TEST_API_KEY=$CML_TEST_API_KEY "$py" "$here/live_comparison.py" traffic "$CML_BASE_URL" "$state" "$texts" ||
    { cml_dump_logs; cml_fail "live comparison before the restart"; }
cml_stack_stop || cml_fail "the stack did not stop within 10 s of SIGTERM"
# Every worker is a new process now; the counts must come from the shared state.
cml_stack_start lighttpd fork 2 "$state" "${settings[@]}"
CML_TEST_API_KEY=$CML_TEST_API_KEY "$py" "$here/live_comparison.py" restart "$CML_BASE_URL" "$state" "$CML_V1" ||
    { cml_dump_logs; cml_fail "live comparison after restarting every worker"; }
cml_stack_stop || cml_fail "the stack did not stop within 10 s of SIGTERM"
echo "live comparison: shadow counts, feedback accuracy and the recommendation hold across a restart"
