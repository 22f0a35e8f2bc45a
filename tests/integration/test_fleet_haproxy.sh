#!/bin/bash
# A fleet as it is deployed: three instances (lighttpd + cultivate-ml-fcgi --workers 2, each
# its own STATE_DIR, MODEL_CACHE_DIR and port) on one Azurite container, behind HAProxy run
# from etc/haproxy/cultivate-ml.cfg (only its bind and server lines and the path of the error
# files replaced) with health checks on /api/ready. A load client (fleet_load.py: 3 keep-alive connections, classify back
# to back) runs through HAProxy during each scenario, and every non-2xx answer or request
# without an answer is an error; a request HAProxy retried and then got answered is served:
#   a select   a pin on instance 1 (direct): the seconds until each instance serves it
#              (polled on each one's /api/v1/models/current), then HAProxy answers with it
#   b retrain  a classic retrain on instance 1: its version becomes every instance's
#   c rolling  each instance in turn stopped, started (same port), ready, back in HAProxy
#   d kill -9  one whole instance (supervisor, workers, lighttpd) killed: HAProxy marks it
#              down; started again, back in rotation, serving the fleet's version
#   e store    Azurite stopped for 30 s (health degraded everywhere, classify served) and
#              restarted: every instance healthy again, and a select converges again
# and, once every instance is stopped, HAProxy's own 503 is the API's JSON error.
# Zero errors in every scenario; the figures (requests, errors, HAProxy's retries and
# redispatches, convergence seconds) are printed per scenario. About 2 to 3 minutes.
# Exits 77 (skipped) when node and the npm packages (`npm ci` in tests/integration) or
# haproxy are missing, unless CML_REQUIRE_AZURITE=1, which makes that a failure.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
# shellcheck source-path=SCRIPTDIR source=azurite.sh
. "$here/azurite.sh"
# shellcheck source-path=SCRIPTDIR source=checks.sh
. "$here/checks.sh"

azurite_require_sdk
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
if [ ! -x "$HAPROXY" ]; then
    echo "haproxy is not installed (scripts/install-deps.sh)"
    [ "${CML_REQUIRE_AZURITE:-0}" = 1 ] && exit 1
    exit 77
fi
cml_require lighttpd || exit 77
cml_require_python
export OMP_WAIT_POLICY=passive

cml_env_init
T0=$(cml_now)
CML_MODEL_TYPE=classic
INTERVAL=2
N=3
# A convergence slower than this is a failure (the figure itself is printed): the sync
# interval, then a download, a load and a warm-up, on a shared 2-core machine.
CONVERGE_LIMIT=$((2 * INTERVAL + 8))


get() { curl --noproxy '*' -s --max-time 10 "$1" 2>/dev/null || true; }
BODY_FILE="$CML_TMP/body"
# post URL JSON: prints the status; the body is in $BODY_FILE.
post() {
    curl --noproxy '*' -s -o "$BODY_FILE" -w '%{http_code}' --max-time 30 -X POST \
        -H 'Content-Type: application/json' -H "X-API-Key: $CML_TEST_API_KEY" \
        --data-binary "$2" "$1" 2>/dev/null || true
}
version_of() { get "$(url_of "$1")/api/v1/models/current" | jfield 'j["version"]'; }
health_of() { get "$1/api/health" | jfield '"%s,%s" % (j["status"], j["storage"]["reachable"])'; }

# --- Azurite, tagged so that the clean-up ends it whatever happens -----------------------------
AZ_BIN="$(azurite_node_modules)/.bin/azurite-blob"
AZ_DIR="$CML_TMP/azurite"
AZ_PID=
az_start() {
    mkdir -p "$AZ_DIR"
    env "CML_STACK_TAG=$CML_TAG.azurite" "$AZ_BIN" --blobHost 127.0.0.1 --blobPort "$1" \
        --location "$AZ_DIR" --silent --disableTelemetry --skipApiVersionCheck \
        >>"$AZ_DIR/azurite.out" 2>&1 &
    AZ_PID=$!
    for _ in $(seq 1 150); do
        cml_alive "$AZ_PID" || return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
az_stop() {
    [ -n "$AZ_PID" ] && azurite_stop "$AZ_PID" ""
    AZ_PID=
}
AZ_PORT=
for _ in 1 2 3; do
    AZ_PORT=$(azurite_free_port) && az_start "$AZ_PORT" && break
    az_stop
    AZ_PORT=
done
[ -n "$AZ_PORT" ] || cml_fail "Azurite did not start: $(cat "$AZ_DIR/azurite.out" 2>/dev/null)"
CONN="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_DEV_KEY;BlobEndpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1;"
export AZURE_STORAGE_CONNECTION_STRING=$CONN AZURE_STORAGE_CONTAINER=fleet

# Two classic versions published in the store (V2 the latest); the instances start with
# empty caches and download V2.
publish() {
    OMP_WAIT_POLICY=passive "$CML_CLI_BIN" train --model classic --folds 0 --data "$CML_DATA" \
        --out "$CML_TMP/publish" --upload --json "$@" 2>>"$CML_TMP/publish.err" | jfield 'j["version"]'
}
V1=$(publish --seed 11)
V2=$(publish --seed 23)
if [ -z "$V1" ] || [ -z "$V2" ] || [ "$V1" = "$V2" ]; then
    cml_fail "could not publish two versions ($V1, $V2): $(cat "$CML_TMP/publish.err")"
fi
cml_log "Azurite on port $AZ_PORT; published classic $V1 and $V2 in 'fleet'"

svc_env=(USE_AZURE_STORAGE=true "AZURE_STORAGE_CONNECTION_STRING=$CONN"
    AZURE_STORAGE_CONTAINER=fleet "MODEL_SYNC_INTERVAL=$INTERVAL" OMP_WAIT_POLICY=passive)

fleet_start "$N"

# --- HAProxy from the shipped snippet ----------------------------------------------------------
HP_PORT=$(cml_free_port)
STATS_PORT=$(cml_free_port)
HP_CONF="$CML_TMP/haproxy.cfg"
{
    # HAProxy's request log (termination state of each request) goes to haproxy.log.
    printf 'global\n    maxconn 4000\n    log stderr format raw local0 info\n\n'
    sed -e "s|^\\(    bind \\):80\$|\\1127.0.0.1:$HP_PORT|" -e '/^    server app/d' \
        -e "s|/usr/share/cultivate-ml/etc/errors/|$CML_TOP_SRCDIR/etc/errors/|g" \
        "$CML_TOP_SRCDIR/etc/haproxy/cultivate-ml.cfg"
    for i in $(seq 1 $N); do
        p="PORT_$i"
        echo "    server app$i 127.0.0.1:${!p}"
    done
    printf '\nlisten stats\n    bind 127.0.0.1:%s\n    stats enable\n    stats uri /stats\n' "$STATS_PORT"
} >"$HP_CONF"
grep -q "bind 127.0.0.1:$HP_PORT" "$HP_CONF" || cml_fail "the snippet has no 'bind :80' line to replace"
"$HAPROXY" -c -q -f "$HP_CONF" >"$CML_TMP/haproxy.check" 2>&1 ||
    cml_fail "haproxy rejects the configuration: $(cat "$CML_TMP/haproxy.check")"
env "CML_STACK_TAG=$CML_TAG.haproxy" "$HAPROXY" -db -f "$HP_CONF" >>"$CML_TMP/haproxy.log" 2>&1 &
HP_PID=$!
HP="http://127.0.0.1:$HP_PORT"

stats_csv() { get "http://127.0.0.1:$STATS_PORT/stats;csv"; }
# hp_status SERVER: UP, DOWN, "UP 1/2", ... as HAProxy's health checks see it.
hp_status() { stats_csv | awk -F, -v s="$1" '$1 == "cultivate-ml" && $2 == s { print $18 }'; }
hp_is() { [ "$(hp_status "$1")" = "$2" ]; }
# hp_backend_counter FIELD: a counter of the backend (16 retries, 17 redispatches).
hp_backend_counter() { stats_csv | awk -F, -v f="$1" '$1 == "cultivate-ml" && $2 == "BACKEND" { print $f + 0 }'; }
all_up() {
    local i
    for i in $(seq 1 $N); do hp_is "app$i" UP || return 1; done
}
wait_for 20 all_up || cml_fail "HAProxy does not see all three up: $(stats_csv | cut -d, -f1,2,18)"
cml_log "HAProxy on port $HP_PORT in front of ports $PORT_1 $PORT_2 $PORT_3 (all up)"

# --- load and figures --------------------------------------------------------------------------
LOAD_PID=
load_start() {
    LOAD_OUT="$CML_TMP/load.$1.json"
    env "CML_STACK_TAG=$CML_TAG.load" "$CML_PY" "$here/fleet_load.py" 127.0.0.1 "$HP_PORT" 3 0.002 \
        >"$LOAD_OUT" 2>"$CML_TMP/load.$1.err" &
    LOAD_PID=$!
    RETR0=$(hp_backend_counter 16)
    REDIS0=$(hp_backend_counter 17)
    sleep 1
}
FIGURES=
# load_stop NAME CONVERGENCE: ends the load, prints and checks the scenario's figures.
load_stop() {
    local name=$1 conv=$2 r e c retr redis
    sleep 1
    kill -TERM "$LOAD_PID" 2>/dev/null
    wait "$LOAD_PID"
    LOAD_PID=
    r=$(jfield 'j["requests"]' <"$LOAD_OUT")
    e=$(jfield 'j["errors"]' <"$LOAD_OUT")
    c=$(jfield 'j["connections"]' <"$LOAD_OUT")
    retr=$(($(hp_backend_counter 16) - RETR0))
    redis=$(($(hp_backend_counter 17) - REDIS0))
    local line
    line=$(printf '%-9s requests %6s  errors %s  client connections %s  HAProxy retries %s redispatches %s  convergence %s' \
        "$name" "$r" "$e" "$c" "$retr" "$redis" "$conv")
    echo "figures: $line"
    FIGURES="$FIGURES$line"$'\n'
    expect "$name: the load client was served ($r requests)" test "${r:-0}" -gt 100
    expect "$name: no failed request through HAProxy" eq "$e" 0
    if [ "$e" != 0 ]; then
        jfield '"\n".join(j["first_errors"])' <"$LOAD_OUT"
        # HAProxy's log lines of requests that did not end normally (termination state other
        # than ----) or answered other than 200: who closed what, and when.
        echo "    HAProxy's log of what went wrong:"
        grep -v ' 200 [0-9-]* - - ---- ' "$CML_TMP/haproxy.log" | grep -v 'GET /api/ready\|GET /stats' | tail -n 20
    fi
    echo "    statuses $(jfield 'j["statuses"]' <"$LOAD_OUT"), versions answered $(jfield 'j["versions"]' <"$LOAD_OUT")"
}

# through_haproxy_is V: ten classify answers through HAProxy all come from V.
through_haproxy_is() {
    local k st got=
    for k in $(seq 1 10); do
        st=$(curl --noproxy '*' -s -o "$BODY_FILE" -w '%{http_code}' --max-time 10 -X POST \
            -H 'Content-Type: application/json' --data-binary "{\"text\":\"Why do leaves fall $k?\"}" \
            "$HP/api/v1/models/classify" 2>/dev/null)
        got="$got $st:$(jfield 'j["model_version"]' <"$BODY_FILE")"
    done
    [ "$(tr ' ' '\n' <<<"$got" | sed '/^$/d' | sort -u)" = "200:$1" ] || {
        echo "    answers:$got"
        return 1
    }
}

expect "every instance starts on the latest version $V2" converge "$V2" 10

# --- a. a select on one instance ---------------------------------------------------------------
echo "=== a: select (pin $V1) on instance 1"
load_start select
st=$(post "$(url_of 1)/api/v1/models/select" "{\"model_type\":\"classic\",\"version\":\"$V1\"}")
expect "select on instance 1: 200" eq "$st" 200
expect "every instance serves $V1 within $CONVERGE_LIMIT s" converge "$V1" "$CONVERGE_LIMIT"
echo "    seconds from the select's answer until each instance served it:$CONV_EACH (sync interval $INTERVAL s)"
CONV_A=$CONV
expect "HAProxy answers with $V1" through_haproxy_is "$V1"
load_stop select "${CONV_A} s (interval $INTERVAL s)"

# --- b. a retrain on one instance --------------------------------------------------------------
echo "=== b: retrain (classic) on instance 1"
load_start retrain
st=$(post "$(url_of 1)/api/v1/models/retrain" '{"model_type":"classic"}')
task=$(jfield 'j["task_id"]' <"$BODY_FILE")
expect "retrain on instance 1: 202 with a task id" eq "$st,${task:+id}" "202,id"
job_state() { get "$(url_of 1)/api/v1/models/training/status/$task" | jfield 'j["status"]'; }
job_ended() { case $(job_state) in completed | failed) return 0 ;; esac; return 1; }
t_job=$(cml_now)
wait_for 120 job_ended
T_TRAIN=$(cml_elapsed "$t_job")
expect "the job completed (in $T_TRAIN s)" eq "$(job_state)" completed
VR=$(get "$(url_of 1)/api/v1/models/training/status/$task" | jfield 'j["version"]')
[ -n "$VR" ] || VR=$(sed -n 's/.*training_completed.*version=\([^ ]*\).*/\1/p' "$CML_SAVED_I1_CML_FCGI_LOG" | tail -n 1)
expect "the retrained version is a new one ('$VR')" test -n "$VR" -a "$VR" != "$V1" -a "$VR" != "$V2"
expect "every instance serves $VR within $CONVERGE_LIMIT s" converge "$VR" "$CONVERGE_LIMIT"
echo "    seconds from the job's end until each instance served it:$CONV_EACH"
CONV_B=$CONV
expect "HAProxy answers with $VR" through_haproxy_is "$VR"
load_stop retrain "${CONV_B} s after the job (training $T_TRAIN s)"

# --- c. a rolling restart ----------------------------------------------------------------------
echo "=== c: rolling restart"
load_start rolling
ROLL=
for i in $(seq 1 $N); do
    cml_stack_use "I$i"
    cml_stack_stop || not_ok "instance $i did not stop within 10 s of SIGTERM"
    t=$(cml_now)
    node_start "$i"
    t_ready=$(cml_elapsed "$t")
    expect "instance $i back in HAProxy within 20 s" wait_for 20 hp_is "app$i" UP
    t_up=$(cml_elapsed "$t")
    expect "instance $i serves $VR after its restart" eq "$(version_of "$i")" "$VR"
    echo "    instance $i: stopped in $CML_STOP_SECONDS s, ready $t_ready s after its start, in HAProxy after $t_up s"
    ROLL="$ROLL $t_up"
done
load_stop rolling "back in rotation after$ROLL s"

# --- d. kill -9 of a whole instance ------------------------------------------------------------
echo "=== d: kill -9 of instance 2 (supervisor, workers, lighttpd)"
load_start kill9
victims=$(cml_tagged_pids "$CML_SAVED_I2_CML_STACK_TAG" | tr '\n' ' ')
echo "    killing $victims"
t=$(cml_now)
# The shell's "Killed" notices of its own background jobs go to /dev/null with the wait.
{
    # shellcheck disable=SC2086
    kill -KILL $victims
    wait "$CML_SAVED_I2_CML_SUPERVISOR_PID" "$CML_SAVED_I2_CML_FRONT_PID"
} 2>/dev/null
gone() { [ -z "$(cml_tagged_pids "$CML_SAVED_I2_CML_STACK_TAG")" ]; }
expect "every process of instance 2 is gone" wait_for 5 gone
expect "HAProxy marks instance 2 down" wait_for 10 hp_is app2 DOWN
T_DOWN=$(cml_elapsed "$t")
node_start 2
T_READY=$(cml_elapsed "$t")
expect "instance 2 back in HAProxy within 20 s" wait_for 20 hp_is app2 UP
T_BACK=$(cml_elapsed "$t")
expect "instance 2 serves $VR after its return" eq "$(version_of 2)" "$VR"
echo "    down in HAProxy $T_DOWN s after the kill; restarted and ready at $T_READY s; in HAProxy at $T_BACK s"
load_stop kill9 "down after $T_DOWN s, back in rotation after $T_BACK s"

# --- e. the blob store stopped for 30 s --------------------------------------------------------
echo "=== e: Azurite stopped for 30 s and restarted"
load_start store
az_stop
t=$(cml_now)
all_degraded() {
    local i
    for i in $(seq 1 $N); do [ "$(health_of "$(url_of "$i")")" = "degraded,False" ] || return 1; done
}
expect "every instance reports the store unreachable (health degraded)" wait_for 28 all_degraded
T_DEGRADED=$(cml_elapsed "$t")
sleep "$(awk -v e="$(cml_elapsed "$t")" 'BEGIN { s = 30 - e; print (s > 0 ? s : 0) }')"
T_STOPPED=$(cml_elapsed "$t")
az_start "$AZ_PORT" || cml_fail "Azurite did not restart on port $AZ_PORT"
t=$(cml_now)
all_healthy() {
    local i
    for i in $(seq 1 $N); do [ "$(health_of "$(url_of "$i")")" = "healthy,True" ] || return 1; done
}
expect "every instance healthy again within 30 s" wait_for 30 all_healthy
T_HEALTHY=$WAITED
echo "    store down for $T_STOPPED s (all degraded after $T_DEGRADED s); all healthy $T_HEALTHY s after its restart"
st=$(post "$(url_of 3)/api/v1/models/select" "{\"model_type\":\"classic\",\"version\":\"$V2\"}")
expect "select (pin $V2) on instance 3 after the outage: 200" eq "$st" 200
expect "every instance serves $V2 within $CONVERGE_LIMIT s" converge "$V2" "$CONVERGE_LIMIT"
echo "    seconds until each instance served it:$CONV_EACH"
load_stop store "healthy after $T_HEALTHY s, then a select in $CONV s"

# --- HAProxy's own answer with no instance left ------------------------------------------------
echo "=== every instance stopped: HAProxy's own 503"
for i in $(seq 1 $N); do
    cml_stack_use "I$i"
    cml_stack_stop >/dev/null 2>&1
done
hdrs="$CML_TMP/hp503.headers"
st=$(curl --noproxy '*' -s -D "$hdrs" -o "$BODY_FILE" -w '%{http_code}' --max-time 20 -X POST \
    -H 'Content-Type: application/json' --data-binary '{"text":"Why?"}' "$HP/api/v1/models/classify")
expect "no instance up: 503 with the JSON error service_unavailable" \
    eq "$st,$(jfield 'j["error"]' <"$BODY_FILE")" "503,service_unavailable"
expect "... as application/json with an X-Request-Id" \
    eq "$(grep -ci '^content-type: application/json' "$hdrs"),$(grep -ci '^x-request-id: [0-9a-f-]\{16,\}' "$hdrs")" "1,1"

kill -TERM "$HP_PID" 2>/dev/null
wait "$HP_PID" 2>/dev/null
echo "--- figures per scenario (sync interval $INTERVAL s, $N instances x 2 workers, total $(cml_elapsed "$T0") s)"
printf '%s' "$FIGURES"
[ "$fails" -eq 0 ] || cml_fail "$fails check(s) failed"
echo "fleet behind HAProxy: all checks passed"
