#!/bin/bash
# The Open Inference Protocol (v2 REST) routes through each front end installed (lighttpd,
# Apache), driven by oip_client.py with requests written the way tritonclient.http and
# KServe's InferRequest.to_rest() write them (JSON and binary tensor data), wrong datatypes
# and shapes, unknown models and versions, metadata and readiness, the batch limit; and that
# the installed Apache snippet routes /v2.
# Exits 77 when python3, spawn-fcgi or both front ends are missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require_python
py=$CML_PY
cml_require_fronts "lighttpd apache"
fronts=$CML_FRONTS
# The installed Apache snippet sends only the service's paths to it (a LocationMatch); the
# test stacks route every path, so check here that its pattern takes /v2 and what is below.
"$py" - "$CML_TOP_SRCDIR/etc/apache2/cultivate-ml.conf" <<'PY' || exit 1
import re, sys
pattern = re.search(r'<LocationMatch "([^"]+)">', open(sys.argv[1]).read()).group(1)
for path, routed in [("/v2", True), ("/v2/health/ready", True), ("/v2/models/classic/infer", True),
                     ("/api/health", True), ("/v2x", False), ("/index.html", False)]:
    if bool(re.search(pattern, path)) != routed:
        sys.exit(f"etc/apache2/cultivate-ml.conf: {path} {'not ' if routed else ''}routed by {pattern}")
PY
cml_env_init
cml_prepare_models
max_batch=8
fails=0
for f in $fronts; do
    cml_stack_start "$f" fork 2 "$(cml_new_state "oip-$f")" MAX_BATCH_SIZE=$max_batch
    "$py" "$here/oip_client.py" "$CML_PORT" "$f" "$CML_V1" "$CML_V2" "$CML_VE" "$max_batch" ||
        {
            fails=$((fails + 1))
            cml_dump_logs
        }
    cml_stack_stop >/dev/null || cml_fail "$f stack did not stop within 10 s of SIGTERM"
done
[ "$fails" -eq 0 ] || cml_fail "$fails front end(s) failed the Open Inference Protocol checks"
echo "Open Inference Protocol: passed through$fronts"
