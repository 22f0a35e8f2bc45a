# shellcheck shell=bash
# The assertions, polling and instances of the fleet tests (test_fleet_*.sh): a helper to
# source from bash after service_env.sh (and cml_require_python, for jfield).
#
#   expect "what is checked" COMMAND...   # ok/not ok line; a failure counts in $fails
#   expect "..." eq "$got" "$want"        # prints both when they differ
#   wait_for SECONDS COMMAND...           # polls every 0.1 s; $WAITED: the seconds it took
#   secs_over A B                         # true when A > B (decimal seconds)
#   ... | jfield 'j["field"]'             # a Python expression on JSON from stdin
#   svc_env=(VAR=value ...); fleet_start 3   # instances 1..3, lighttpd + 2 supervised workers
#   node_start I; url_of I                # (re)start instance I on its port; its base URL
#   converge V LIMIT [T0 [PAUSE]]         # until instances 1..$N serve V (the test's
#                                         # version_of I); $CONV_EACH, $CONV: seconds from T0

fails=0
ok() { echo "ok - $*"; }
not_ok() {
    fails=$((fails + 1))
    echo "not ok - $*"
}
expect() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
eq() { [ "$1" = "$2" ] || {
    echo "    got '$1', want '$2'"
    return 1
}; }
secs_over() { awk -v w="$1" -v l="$2" 'BEGIN { exit !(w > l) }'; }

# jfield EXPR: a Python expression on the JSON from stdin (as j); "" when absent or not JSON.
jfield() {
    "$CML_PY" -c '
import json, sys
try:
    j = json.load(sys.stdin)
    v = eval(sys.argv[1])
except Exception:
    v = None
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))' "$1"
}

# wait_for SECONDS COMMAND...: polls every 0.1 s; $WAITED is the time it took (or the limit).
WAITED=0
wait_for() {
    local limit=$1 t0
    shift
    t0=$(cml_now)
    while :; do
        if "$@"; then
            WAITED=$(cml_elapsed "$t0")
            return 0
        fi
        WAITED=$(cml_elapsed "$t0")
        secs_over "$WAITED" "$limit" && return 1
        sleep 0.1
    done
}

# node_start I: instance I on its own port ($PORT_I) and state ($CML_TMP/nodeI, kept across
# restarts), with the service variables of the array svc_env.
node_start() {
    local p="PORT_$1"
    mkdir -p "$CML_TMP/node$1/models"
    CML_STACK_PORT=${!p} cml_stack_start lighttpd supervised 2 "$CML_TMP/node$1" "${svc_env[@]}"
    cml_stack_save "I$1"
}
# fleet_start N: instances 1..N, each on a free port.
fleet_start() {
    local i
    for i in $(seq 1 "$1"); do
        printf -v "PORT_$i" '%s' "$(cml_free_port)"
        node_start "$i"
    done
}
# url_of I: the base URL of instance I.
url_of() {
    local v="CML_SAVED_I${1}_CML_BASE_URL"
    printf '%s\n' "${!v}"
}

# converge V LIMIT [T0 [PAUSE]]: waits, LIMIT s at most, until every instance 1..$N serves V
# (version_of I, defined by the test), polling every PAUSE s (default 0.1). CONV_EACH lists
# each instance's seconds from T0 (default: now), CONV the slowest; false on the limit.
converge() {
    local v=$1 limit=$2 t0=${3:-$(cml_now)} pause=${4:-0.1} i left w
    declare -A done_at=()
    CONV_EACH=
    while :; do
        left=0
        for i in $(seq 1 "$N"); do
            [ -n "${done_at[$i]:-}" ] && continue
            if [ "$(version_of "$i")" = "$v" ]; then
                done_at[$i]=$(cml_elapsed "$t0")
            else
                left=$((left + 1))
            fi
        done
        [ "$left" -eq 0 ] && break
        w=$(cml_elapsed "$t0")
        secs_over "$w" "$limit" && break
        sleep "$pause"
    done
    for i in $(seq 1 "$N"); do CONV_EACH="$CONV_EACH ${done_at[$i]:-never}"; done
    CONV=$(tr ' ' '\n' <<<"$CONV_EACH" | sed '/^$/d' | sort -g | tail -n 1)
    [ "$left" -eq 0 ]
}
