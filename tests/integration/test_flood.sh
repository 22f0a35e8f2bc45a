#!/bin/bash
# A connection flood through each front end installed (issue 15, defect 1): 3,000 idle
# connections and 100 slow-header clients held (the ones the server closes are opened again)
# while a normal client's classify requests must each answer 200 within 1 s (flood.py, 127.0.0.1
# only, 15 s a front end). Exits 77 when python3, spawn-fcgi or both front ends are missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require_python
py=$CML_PY
cml_require_fronts "${CML_FLOOD_FRONTS:-}"
fronts=$CML_FRONTS
cml_env_init
cml_prepare_models
fails=0
for f in $fronts; do
    cml_stack_start "$f" fork 2 "$(cml_new_state "flood-$f")" MODEL_TYPE=classic
    echo "$f:"
    "$py" "$here/flood.py" "$CML_PORT" --idle "${CML_FLOOD_IDLE:-3000}" \
        --slow "${CML_FLOOD_SLOW:-100}" --seconds "${CML_FLOOD_SECONDS:-15}" --budget 1.0 ||
        fails=$((fails + 1))
    [ "$(cml_http_status "$CML_BASE_URL/api/ready")" = 200 ] ||
        cml_fail "$f does not answer after the flood"
    cml_stack_stop || cml_fail "$f stack did not stop within 10 s of SIGTERM"
done
[ "$fails" -eq 0 ] || cml_fail "a normal client was locked out by the flood ($fails front end(s))"
echo "flood: a normal client was served within 1 s through$fronts"
