#!/bin/bash
# The front ends' own errors as the contract's JSON error (issue 15, defect 6), through each
# front end installed, on raw sockets (error_pages.py): no Content-Length, bad chunking,
# Content-Length with Transfer-Encoding, a negative Content-Length, %00 and invalid UTF-8 in
# the path and query, an oversized URL and headers; then the workers killed with SIGKILL while a
# long request is in flight (502/503), and requests with the workers gone. Each answer must be
# {detail, error} as application/json with one X-Request-Id: Apache's UNIQUE_ID on its own
# errors; through lighttpd one well formed by the service's rule on every answer (mod_magnet's
# etc/lighttpd/request-id.lua), a valid incoming id echoed, an invalid one replaced.
# Exits 77 when python3, spawn-fcgi or both front ends are missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require_python
py=$CML_PY
cml_require_fronts "lighttpd apache"
fronts=$CML_FRONTS
cml_env_init
cml_prepare_models
fails=0
for f in $fronts; do
    cml_stack_start "$f" fork 2 "$(cml_new_state "errors-$f")" MAX_BODY_BYTES=10485760
    "$py" "$here/error_pages.py" "$CML_PORT" "$f" alive || fails=$((fails + 1))
    echo "$CML_WORKER_PIDS" >"$CML_RUN_DIR/workers.pids"
    "$py" "$here/error_pages.py" "$CML_PORT" "$f" midrequest "$CML_RUN_DIR/workers.pids" ||
        fails=$((fails + 1))
    "$py" "$here/error_pages.py" "$CML_PORT" "$f" gone || fails=$((fails + 1))
    cml_stack_stop >/dev/null || true
done
[ "$fails" -eq 0 ] || cml_fail "$fails run(s) got an answer that is not the JSON error"
echo "error pages: every answer through$fronts was the JSON error"
