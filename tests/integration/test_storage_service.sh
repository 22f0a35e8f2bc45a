#!/bin/bash
# Integration test of the SERVICE on blob storage (USE_AZURE_STORAGE=true): real stacks
# (spawn-fcgi + cultivate-ml-fcgi + lighttpd, or Apache when lighttpd is missing) against one
# Azurite, all on free 127.0.0.1 ports, with MODEL_SYNC_INTERVAL=1. Each behaviour is its own
# check (its "ok"/"not ok" lines, then "PASS:"/"FAIL:" with its name):
#   1 cold start       a model published with `cultivate-ml train --upload`; an instance with an
#                      empty cache downloads and serves that version (byte-identical file)
#   2 warm start       the same instance restarted on its up-to-date cache: Azurite's debug log
#                      shows HEADs of the pointer and no GET (nor PUT) of any model blob
#   3 empty container  the instance trains from TRAINING_DATA (300 rows), publishes
#                      classic/VERSION.model, the pointer, training_data.csv and active.json
#   4 two instances    A (from check 3) and B (other state dir and cache): a pinned select on A
#                      (a version only the store holds) reaches B, then a retrain on A becomes
#                      B's version; the times to converge are printed
#   5 store down       Azurite stopped: /api/health 200 "degraded", storage.reachable false with
#                      an error, classification answers; Azurite restarted on the same port and
#                      location: healthy again; the times are printed
#   6 corrupt blob     the pointer overwritten (SDK) with garbage, first with a wrong sha256,
#                      then with its own sha256 and the serving version's name: refused, the old
#                      model keeps serving, the cache directory is byte-for-byte unchanged
#   7 faults           a proxy (fault_proxy.mjs) answers 503 + Retry-After to every third request
#                      and delays others: start-up and sync succeed through retries (the retries
#                      counter in /metrics grows); then every request fails: the client gives up
#                      (health degraded) without hammering the store; faults stop: the instance
#                      converges on a version published meanwhile
#   8 bad connection   AccountKey not base64, or an unknown key: the service refuses to start
#                      with a message naming it, and never prints the key
#   9 late store       an instance started while Azurite is down trains locally, serves
#                      (degraded), and once Azurite is back publishes its model, the pointer,
#                      training_data.csv (sha256, rows) and active.json
# Checks 4-6 build on check 3's instances, 2 and 7 on check 1's version; when that is missing,
# the check is reported as failed. Every process started here is tagged (service_env.sh) and
# ended by the clean-up, Azurite and the proxy included. About 45 s (1 min with the ensemble).
# Exits 77 (skipped) when node or the npm packages (`npm ci` in tests/integration) are
# missing, unless CML_REQUIRE_AZURITE=1, which makes that a failure. CML_KEEP_TMP=1 keeps the
# logs and state of a failed run.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
# shellcheck source-path=SCRIPTDIR source=azurite.sh
. "$here/azurite.sh"

if ! azurite_available || [ ! -e "$(azurite_node_modules)/@azure/storage-blob/package.json" ]; then
    echo "node, azurite or @azure/storage-blob missing: run 'npm ci' in tests/integration"
    if [ "${CML_REQUIRE_AZURITE:-0}" = 1 ]; then
        echo "CML_REQUIRE_AZURITE=1: that is a failure"
        exit 1
    fi
    exit 77
fi
front=
for f in lighttpd apache; do
    if cml_require "$f" >/dev/null; then
        front=$f
        break
    fi
done
if [ -z "$front" ]; then
    cml_require lighttpd
    echo "this test needs spawn-fcgi and lighttpd or Apache (scripts/install-deps.sh)"
    exit 1
fi
export NODE_PATH
NODE_PATH=$(azurite_node_modules)
export OMP_WAIT_POLICY=passive

cml_env_init
T0=$(cml_now)
CML_MODEL_TYPE=classic
SMALL="$CML_TMP/small.csv"
head -n 301 "$CML_DATA" >"$SMALL"
SDK="$here/sdk_service.mjs"
INTERVAL=1

# --- reporting -------------------------------------------------------------------------------
total_pass=0
total_fail=0
check_fail=0
ok() {
    total_pass=$((total_pass + 1))
    echo "ok - $*"
}
not_ok() {
    total_fail=$((total_fail + 1))
    check_fail=$((check_fail + 1))
    echo "not ok - $*"
}
# expect DESCRIPTION COMMAND...: one assertion.
expect() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
eq() { [ "$1" = "$2" ] || {
    echo "    got '$1', want '$2'"
    return 1
}; }
# run_check N NAME FUNCTION [NEEDS]: runs one check, prints PASS/FAIL with its name; NEEDS is
# a function telling whether what an earlier check left (a version, a running instance) is there.
run_check() {
    local n=$1 name=$2 fn=$3 needs=${4:-} t0
    echo "=== check $n: $name"
    check_fail=0
    t0=$(cml_now)
    if [ -n "$needs" ] && ! "$needs"; then
        not_ok "what this check builds on is missing ($needs): see the earlier checks"
    else
        "$fn"
    fi
    if [ "$check_fail" -eq 0 ]; then
        echo "PASS: $n $name ($(cml_elapsed "$t0") s)"
    else
        echo "FAIL: $n $name ($(cml_elapsed "$t0") s)"
        cml_dump_logs
    fi
}

# --- helpers ---------------------------------------------------------------------------------
# jget EXPR: evaluates a JavaScript expression on the JSON read from stdin (as j); prints ""
# for undefined or null, JSON for objects.
jget() {
    node -e '
let s = ""; process.stdin.on("data", (c) => { s += c; });
process.stdin.on("end", () => {
  let j = null;
  try { j = JSON.parse(s); } catch (e) { process.exit(0); }
  let v;
  try { v = eval(process.argv[1]); } catch (e) { v = undefined; }
  process.stdout.write(v === undefined || v === null ? "" :
    typeof v === "object" ? JSON.stringify(v) : String(v));
});' "$1"
}

# req METHOD URL [JSON]: prints the HTTP status; the body is in $BODY_FILE.
BODY_FILE="$CML_TMP/body"
req() {
    local -a a=(--noproxy '*' -s -o "$BODY_FILE" -w '%{http_code}' --max-time 20 -X "$1")
    [ $# -ge 3 ] && a+=(-H 'Content-Type: application/json' -H "X-API-Key: $CML_TEST_API_KEY"
        --data-binary "$3")
    curl "${a[@]}" "$2" 2>/dev/null || true
}
body() { cat "$BODY_FILE"; }
# get URL: the body of GET URL ("" when nothing answered).
get() { curl --noproxy '*' -s --max-time 10 "$1" 2>/dev/null || true; }

version_of() { get "$1/api/v1/models/current" | jget j.version; }
version_is() { [ "$(version_of "$1")" = "$2" ]; }
health_field() { get "$1/api/health" | jget "$2"; }
storage_down() { [ "$(health_field "$1" j.storage.reachable)" = false ]; }
healthy() { [ "$(health_field "$1" j.status)" = healthy ]; }
# metric URL NAME: the value of an unlabelled counter in /metrics ("0" when absent).
metric() {
    get "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v == "" ? 0 : v }'
}
metric_above() { [ "$(metric "$1" "$2")" -gt "$3" ]; }
# version_other_than URL V...: the instance serves a version, none of those given.
version_other_than() {
    local v w
    v=$(version_of "$1")
    shift
    [ -n "$v" ] || return 1
    for w in "$@"; do [ "$v" != "$w" ] || return 1; done
}
# job_done URL TASK: the training job has ended (completed or failed).
job_done() {
    case $(get "$1/api/v1/models/training/status/$2" | jget j.status) in
    completed | failed) return 0 ;;
    esac
    return 1
}
classify_version() {
    local st
    st=$(req POST "$1/api/v1/models/classify" '{"text":"What do you think will happen next?"}')
    [ "$st" = 200 ] && body | jget j.model_version
}
# events FILE EVENT: how many log lines of that event the service wrote.
events() { grep -c -- "$2" "$1" 2>/dev/null || true; }
events_above() { [ "$(events "$1" "$2")" -gt "$3" ]; }

# wait_until SECONDS COMMAND...: polls every 0.2 s; $WAITED is the time it took (or the limit).
WAITED=0
wait_until() {
    local limit=$1 t0
    shift
    t0=$(cml_now)
    while :; do
        if "$@"; then
            WAITED=$(cml_elapsed "$t0")
            return 0
        fi
        WAITED=$(cml_elapsed "$t0")
        awk -v w="$WAITED" -v l="$limit" 'BEGIN { exit !(w > l) }' && return 1
        sleep 0.2
    done
}

cli() { "$CML_CLI_BIN" "$@"; }
# A cache directory's files and their hashes (symlinks as their targets), one a line.
cache_listing() {
    local f
    for f in "$1"/*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        if [ -L "$f" ]; then
            echo "${f##*/} -> $(readlink "$f")"
        else
            echo "${f##*/} $(sha256sum <"$f" | cut -d' ' -f1)"
        fi
    done
}
blobs_json() { node "$SDK" blobs "$CONN" "$1"; }
# pointer_names CONTAINER VERSION: classic_latest.model's version metadata is VERSION.
pointer_names() {
    [ "$(blobs_json "$1" 2>/dev/null | jget "(j['classic_latest.model'] || {metadata: {}}).metadata.version")" = "$2" ]
}

# --- Azurite (debug log on), tagged so that the clean-up ends it whatever happens ---------------
AZ_BIN="$(azurite_node_modules)/.bin/azurite-blob"
AZ_DIR="$CML_TMP/azurite"
AZ_RUNS=0
AZ_PID=
# az_start PORT: Azurite on that port with its data in $AZ_DIR (kept across restarts); its
# debug log is $AZ_DEBUG (a new file each start).
az_start() {
    AZ_RUNS=$((AZ_RUNS + 1))
    AZ_DEBUG="$AZ_DIR/debug.$AZ_RUNS.log"
    mkdir -p "$AZ_DIR"
    env "CML_STACK_TAG=$CML_TAG.azurite" "$AZ_BIN" --blobHost 127.0.0.1 --blobPort "$1" \
        --location "$AZ_DIR" --silent --disableTelemetry --skipApiVersionCheck \
        --debug "$AZ_DEBUG" >>"$AZ_DIR/azurite.out" 2>&1 &
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
for _ in 1 2 3; do
    AZ_PORT=$(azurite_free_port) && az_start "$AZ_PORT" && break
    az_stop
    AZ_PORT=
done
[ -n "$AZ_PORT" ] || {
    cat "$AZ_DIR/azurite.out" 2>/dev/null
    cml_fail "Azurite did not start"
}
CONN="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_DEV_KEY;BlobEndpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1;"
export AZURE_STORAGE_CONNECTION_STRING=$CONN
cml_log "Azurite on port $AZ_PORT; front end $front"

# The service's environment on blob storage (cml_stack_start adds the rest).
svc_env=(USE_AZURE_STORAGE=true "AZURE_STORAGE_CONNECTION_STRING=$CONN"
    "MODEL_SYNC_INTERVAL=$INTERVAL" "TRAINING_DATA=$SMALL" OMP_WAIT_POLICY=passive)
# new_state NAME: a state dir with an empty model cache.
new_state() { mkdir -p "$CML_TMP/$1/models" && echo "$CML_TMP/$1"; }
# Requests Azurite logged in $AZ_DEBUG from line $1 on, as "METHOD /container/blob?query".
az_requests() {
    tail -n +"$1" "$AZ_DEBUG" | sed -n 's/.*RequestMethod=\([A-Z]*\) RequestURL=http:\/\/[^/]*\/devstoreaccount1\([^ ]*\).*/\1 \2/p'
}
# az_rounds FROM CONTAINER: sync rounds seen from line FROM on (each reads active.json with
# If-None-Match); az_rounds_at_least FROM CONTAINER N.
az_rounds() {
    tail -n +"$1" "$AZ_DEBUG" | grep "RequestMethod=GET RequestURL=[^ ]*/$2/active.json " |
        grep -c '"if-none-match"'
}
az_rounds_at_least() { [ "$(az_rounds "$1" "$2")" -ge "$3" ]; }
# Waits until Azurite's debug log stops growing (its writes are asynchronous).
az_log_settled() {
    local a b
    for _ in $(seq 1 20); do
        a=$(wc -l <"$AZ_DEBUG")
        sleep 0.25
        b=$(wc -l <"$AZ_DEBUG")
        [ "$a" = "$b" ] && break
    done
    wc -l <"$AZ_DEBUG"
}

# --- 1. cold start ------------------------------------------------------------------------------
V1=
V1_FILE=
S1=
check_cold_start() {
    local out sha
    out=$(AZURE_STORAGE_CONTAINER=cold-start cli train --model classic --folds 0 --data "$SMALL" \
        --out "$CML_TMP/upload1" --upload --json 2>"$CML_TMP/train1.err")
    V1=$(printf '%s\n' "$out" | jget j.version)
    V1_FILE="$CML_TMP/upload1/classic_$V1.model"
    expect "train --upload published version '$V1'" \
        test -n "$V1" -a "$(printf '%s\n' "$out" | jget j.uploaded)" = true -a -f "$V1_FILE"
    [ -n "$V1" ] || return
    S1=$(new_state s1)
    cml_stack_start "$front" fork 2 "$S1" "${svc_env[@]}" AZURE_STORAGE_CONTAINER=cold-start
    cml_stack_save S1
    expect "/api/v1/models/current is the uploaded version" eq "$(version_of "$CML_BASE_URL")" "$V1"
    expect "classification answers with $V1" eq "$(classify_version "$CML_BASE_URL")" "$V1"
    sha=$(sha256sum <"$V1_FILE" | cut -d' ' -f1)
    expect "the cache holds the uploaded file byte for byte" \
        eq "$(sha256sum <"$S1/models/classic_$V1.model" 2>/dev/null | cut -d' ' -f1)" "$sha"
    expect "the log says model_downloaded" events_above "$CML_FCGI_LOG" model_downloaded 0
    expect "no classic model was trained locally" \
        eq "$(events "$CML_FCGI_LOG" 'training_default_model.*model=classic')" 0
    expect "health: healthy, storage azure and reachable" \
        eq "$(health_field "$CML_BASE_URL" '[j.status, j.storage.backend, j.storage.reachable].join()')" \
        "healthy,azure,true"
    cml_stack_stop || not_ok "the stack stopped within 10 s"
}

# --- 2. warm start ------------------------------------------------------------------------------
check_warm_start() {
    local from before reqs raw model_gets puts heads uncond
    before=$(cache_listing "$S1/models")
    from=$(($(az_log_settled) + 1))
    cml_stack_start "$front" fork 2 "$S1" "${svc_env[@]}" AZURE_STORAGE_CONTAINER=cold-start
    expect "serves $V1 again" eq "$(version_of "$CML_BASE_URL")" "$V1"
    # Each sync round reads active.json with If-None-Match: wait for three rounds.
    expect "three sync rounds within 15 s" wait_until 15 az_rounds_at_least "$from" cold-start 3
    cml_stack_stop || not_ok "the stack stopped within 10 s"
    az_log_settled >/dev/null
    reqs=$(az_requests "$from")
    raw=$(tail -n +"$from" "$AZ_DEBUG" | grep 'RequestMethod=')
    echo "    requests of the warm start (2 workers) and $(az_rounds "$from" cold-start) sync rounds:"
    printf '%s\n' "$reqs" | sed 's/?.*//' | sort | uniq -c | sed 's/^/    /'
    model_gets=$(printf '%s\n' "$reqs" | grep -c '^GET [^?]*\.model' || true)
    puts=$(printf '%s\n' "$reqs" | grep -c '^PUT /cold-start/' || true)
    heads=$(printf '%s\n' "$reqs" | grep -c '^HEAD /cold-start/classic_latest.model$' || true)
    uncond=$(printf '%s\n' "$raw" | grep 'RequestMethod=GET RequestURL=[^ ]*/cold-start/active.json ' |
        grep -v -c '"if-none-match"' || true)
    expect "no GET of a model blob (no download)" eq "$model_gets" 0
    expect "no blob written (container creation aside)" eq "$puts" 0
    expect "the pointer was HEADed at start-up and every round ($heads)" test "$heads" -ge 5
    expect "active.json read unconditionally only at start-up, once per worker ($uncond)" \
        test "$uncond" -le 2
    expect "no other GET than active.json and listings" \
        eq "$(printf '%s\n' "$reqs" | grep '^GET ' | grep -v -c -e '^GET /cold-start/active.json$' -e 'comp=list')" 0
    expect "the log has no model_downloaded" eq "$(events "$CML_FCGI_LOG" model_downloaded)" 0
    expect "the cache directory is unchanged" eq "$(cache_listing "$S1/models")" "$before"
}

# --- 3. empty container -------------------------------------------------------------------------
VA=
check_empty_container() {
    local blobs list sha data_sha
    cml_stack_start "$front" fork 2 "$(new_state a)" "${svc_env[@]}" AZURE_STORAGE_CONTAINER=empty-start
    cml_stack_save A
    VA=$(version_of "$CML_BASE_URL")
    expect "serves a version ('$VA')" test -n "$VA"
    expect "trained from TRAINING_DATA" grep -q "training_default_model.*$SMALL" "$CML_FCGI_LOG"
    expect "the log says model_published $VA" grep -q "model_published.*$VA" "$CML_FCGI_LOG"
    list=$(AZURE_STORAGE_CONTAINER=empty-start cli list --json 2>&1)
    expect "cultivate-ml list: the latest classic is $VA" eq "$(printf '%s' "$list" | jget j.latest.classic)" "$VA"
    blobs=$(blobs_json empty-start)
    echo "    blobs: $(printf '%s' "$blobs" | jget 'Object.keys(j).join(" ")')"
    sha=$(sha256sum <"$CML_STATE_DIR/models/classic_$VA.model" | cut -d' ' -f1)
    data_sha=$(sha256sum <"$SMALL" | cut -d' ' -f1)
    expect "classic/$VA.model with its sha256" \
        eq "$(printf '%s' "$blobs" | jget "j['classic/$VA.model'].metadata.sha256")" "$sha"
    expect "the pointer names $VA with its sha256" \
        eq "$(printf '%s' "$blobs" | jget "[j['classic_latest.model'].metadata.version, j['classic_latest.model'].metadata.sha256].join()")" \
        "$VA,$sha"
    expect "training_data.csv is TRAINING_DATA (sha256, rows)" \
        eq "$(printf '%s' "$blobs" | jget "[j['training_data.csv'].metadata.sha256, j['training_data.csv'].metadata.rows].join()")" \
        "$data_sha,$(($(wc -l <"$SMALL") - 1))"
    expect "active.json selects classic" \
        eq "$(node "$SDK" get "$CONN" empty-start active.json | jget j.active_type)" classic
    expect "health healthy" healthy "$CML_BASE_URL"
}

# --- 4. two instances converge ------------------------------------------------------------------
VR=
T_SELECT=
T_RETRAIN=
check_two_instances() {
    local A B st task
    cml_stack_use A
    A=$CML_BASE_URL
    # A second version in the store, without moving the pointer: only the store has it.
    expect "upload $V1 (not latest) into empty-start" \
        env AZURE_STORAGE_CONTAINER=empty-start "$CML_CLI_BIN" upload "$V1_FILE"
    cml_stack_start "$front" fork 2 "$(new_state b)" "${svc_env[@]}" AZURE_STORAGE_CONTAINER=empty-start
    cml_stack_save B
    B=$CML_BASE_URL
    expect "B (empty cache) serves A's version $VA" eq "$(version_of "$B")" "$VA"

    st=$(req POST "$A/api/v1/models/select" "{\"model_type\":\"classic\",\"version\":\"$V1\"}")
    expect "select classic $V1 on A: 200" eq "$st" 200
    expect "A serves $V1" eq "$(version_of "$A")" "$V1"
    expect "B follows the pin within 10 s" wait_until 10 version_is "$B" "$V1"
    T_SELECT=$WAITED
    echo "    select on A seen by B after $T_SELECT s (sync interval $INTERVAL s)"
    expect "B classifies with $V1" eq "$(classify_version "$B")" "$V1"

    st=$(req POST "$A/api/v1/models/retrain" '{"model_type":"classic"}')
    task=$(body | jget j.task_id)
    expect "retrain on A: 202 with a task id" eq "$st,${task:+id}" "202,id"
    # A liveness bound, not a timing: a classic retrain under ASan on a busy 2-core machine
    # has taken over a minute.
    wait_until 180 job_done "$A" "$task"
    expect "the job completed" eq "$(get "$A/api/v1/models/training/status/$task" | jget j.status)" completed
    VR=$(get "$A/api/v1/models/training/status/$task" | jget j.version)
    [ -n "$VR" ] || VR=$(grep -o "training_completed.*" "$CML_SAVED_A_CML_FCGI_LOG" | sed -n 's/.*version=\([^ ]*\).*/\1/p' | tail -n 1)
    wait_until 10 version_other_than "$A" "$V1" "$VA"
    [ -n "$VR" ] || VR=$(version_of "$A")
    expect "A serves the new version '$VR'" eq "$(version_of "$A")" "$VR"
    expect "B takes the retrained version within 10 s" wait_until 10 version_is "$B" "$VR"
    T_RETRAIN=$WAITED
    echo "    retrain on A seen by B $T_RETRAIN s after the job ended"
    expect "the pointer names $VR" \
        eq "$(blobs_json empty-start | jget "j['classic_latest.model'].metadata.version")" "$VR"
    expect "active.json pins nothing now" \
        eq "$(node "$SDK" get "$CONN" empty-start active.json | jget '[j.active_type, j.classic_version].join()')" "classic,"
}

# --- 5. Azurite stopped and restarted -----------------------------------------------------------
check_store_down() {
    local A B u h
    A=$CML_SAVED_A_CML_BASE_URL
    B=$CML_SAVED_B_CML_BASE_URL
    az_stop
    echo "    Azurite stopped"
    expect "A's health says storage unreachable within 20 s" wait_until 20 storage_down "$A"
    echo "    unreachable after $WAITED s"
    expect "B's health says storage unreachable within 10 s" wait_until 10 storage_down "$B"
    for u in "$A" "$B"; do
        h=$(get "$u/api/health")
        expect "health 200 degraded, reachable false, with an error" \
            eq "$(cml_http_status "$u/api/health"),$(printf '%s' "$h" | jget '[j.status, j.storage.reachable, !!j.storage.error].join()')" \
            "200,degraded,false,true"
        echo "    storage.error: $(printf '%s' "$h" | jget j.storage.error)"
        expect "classification still answers ($u)" eq "$(classify_version "$u")" "$VR"
    done
    az_start "$AZ_PORT" || cml_fail "Azurite did not restart on port $AZ_PORT"
    echo "    Azurite restarted on port $AZ_PORT with the same location"
    expect "A healthy again within 15 s" wait_until 15 healthy "$A"
    echo "    A healthy $WAITED s after the restart"
    expect "B healthy again within 10 s" wait_until 10 healthy "$B"
    expect "the store kept its data (pointer $VR)" \
        eq "$(blobs_json empty-start | jget "j['classic_latest.model'].metadata.version")" "$VR"
    expect "both still serve $VR" eq "$(version_of "$A"),$(version_of "$B")" "$VR,$VR"
}

# --- 6. a corrupted model blob --------------------------------------------------------------
check_corrupt_blob() {
    local A B la lb ra rb garbage sha etag gets out v6
    A=$CML_SAVED_A_CML_BASE_URL
    B=$CML_SAVED_B_CML_BASE_URL
    la=$(cache_listing "$CML_SAVED_A_CML_STATE_DIR/models")
    lb=$(cache_listing "$CML_SAVED_B_CML_STATE_DIR/models")
    garbage="$CML_TMP/garbage.model"
    head -c 70000 /dev/urandom >"$garbage"
    sha=$(sha256sum <"$garbage" | cut -d' ' -f1)
    # (a) a new version whose content does not match its sha256.
    ra=$(events "$CML_SAVED_A_CML_FCGI_LOG" blob_model_refused)
    rb=$(events "$CML_SAVED_B_CML_FCGI_LOG" blob_model_refused)
    node "$SDK" put "$CONN" empty-start classic_latest.model "$garbage" \
        "sha256=$(printf x | sha256sum | cut -d' ' -f1)" version=20300101T000000Z model_type=classic \
        >/dev/null || not_ok "overwrite the pointer with the SDK"
    expect "A refuses the blob with a wrong sha256" \
        wait_until 10 events_above "$CML_SAVED_A_CML_FCGI_LOG" blob_model_refused "$ra"
    expect "B refuses it too" wait_until 5 events_above "$CML_SAVED_B_CML_FCGI_LOG" blob_model_refused "$rb"
    grep blob_model_refused "$CML_SAVED_B_CML_FCGI_LOG" | tail -n 1 | sed 's/^/    /'
    expect "both still serve $VR" eq "$(version_of "$A"),$(version_of "$B")" "$VR,$VR"
    # (b) garbage under its own sha256, claiming to be the version that is serving.
    ra=$(events "$CML_SAVED_A_CML_FCGI_LOG" blob_model_refused)
    rb=$(events "$CML_SAVED_B_CML_FCGI_LOG" blob_model_refused)
    etag=$(node "$SDK" put "$CONN" empty-start classic_latest.model "$garbage" "sha256=$sha" \
        "version=$VR" model_type=classic) || not_ok "overwrite the pointer with the SDK"
    expect "A refuses garbage with a matching sha256" \
        wait_until 10 events_above "$CML_SAVED_A_CML_FCGI_LOG" blob_model_refused "$ra"
    expect "B refuses it too" wait_until 5 events_above "$CML_SAVED_B_CML_FCGI_LOG" blob_model_refused "$rb"
    grep blob_model_refused "$CML_SAVED_B_CML_FCGI_LOG" | tail -n 1 | sed 's/^/    /'
    # Left there for 4 more sync rounds: each instance downloads it at most twice.
    sleep $((4 * INTERVAL))
    expect "A classifies with $VR" eq "$(classify_version "$A")" "$VR"
    expect "B classifies with $VR" eq "$(classify_version "$B")" "$VR"
    expect "A's cache is unchanged (no bad or temporary file)" \
        eq "$(cache_listing "$CML_SAVED_A_CML_STATE_DIR/models")" "$la"
    expect "B's cache is unchanged (no bad or temporary file)" \
        eq "$(cache_listing "$CML_SAVED_B_CML_STATE_DIR/models")" "$lb"
    expect "health stays 200" eq "$(cml_http_status "$A/api/health"),$(cml_http_status "$B/api/health")" "200,200"
    gets=$(grep 'RequestMethod=GET RequestURL=[^ ]*/empty-start/classic_latest.model ' "$AZ_DEBUG" |
        grep -c "$etag")
    echo "    the corrupt pointer was downloaded $gets times by the two instances in ~5 rounds"
    expect "not downloaded again every round (at most twice per instance)" test "$gets" -le 4
    # A valid new version replaces it: both take it (a refusal does not block what follows).
    out=$(AZURE_STORAGE_CONTAINER=empty-start cli train --model classic --folds 0 --data "$SMALL" \
        --out "$CML_TMP/upload6" --upload --json 2>/dev/null)
    v6=$(printf '%s\n' "$out" | jget j.version)
    expect "published $v6 over the corrupt pointer" test -n "$v6"
    expect "A takes $v6 within 10 s" wait_until 10 version_is "$A" "$v6"
    expect "B takes $v6 within 5 s" wait_until 5 version_is "$B" "$v6"
    for s in A B; do
        cml_stack_use "$s"
        cml_stack_stop || not_ok "stack $s stopped within 10 s"
    done
}

# --- 7. faults between the service and Azurite ----------------------------------------------
check_faults() {
    local proxy_pid port conn_p C st r0 r1 f1 n0 n1 t0 secs v7 out
    rm -f "$CML_TMP/proxy.port"
    env "CML_STACK_TAG=$CML_TAG.proxy" node "$here/fault_proxy.mjs" "$AZ_PORT" "$CML_TMP/proxy.port" \
        "$CML_TMP/proxy.log" >>"$CML_TMP/proxy.out" 2>&1 &
    proxy_pid=$!
    wait_until 10 test -s "$CML_TMP/proxy.port" || cml_fail "the fault proxy did not start"
    port=$(cat "$CML_TMP/proxy.port")
    proxy() { get "http://127.0.0.1:$port/__proxy/$1"; }
    conn_p="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_DEV_KEY;BlobEndpoint=http://127.0.0.1:$port/devstoreaccount1;"
    # The container holds $V1 (published straight to Azurite).
    AZURE_STORAGE_CONTAINER=faults cli upload --latest "$V1_FILE" >/dev/null ||
        not_ok "upload $V1 into faults"
    proxy 'mode?set=flaky&every=3&delay_ms=300' >/dev/null
    cml_stack_start "$front" fork 1 "$(new_state c)" "${svc_env[@]}" "AZURE_STORAGE_CONNECTION_STRING=$conn_p" \
        AZURE_STORAGE_CONTAINER=faults
    C=$CML_BASE_URL
    expect "cold start through the faults: serves $V1" eq "$(version_of "$C")" "$V1"
    expect "the retries counter in /metrics grows" wait_until 15 metric_above "$C" cultivate_ml_blob_retries_total 0
    r0=$(metric "$C" cultivate_ml_blob_retries_total)
    echo "    proxy (flaky): $(proxy stats); /metrics retries $r0"
    expect "health healthy while requests are retried" wait_until 5 healthy "$C"

    # Every request fails: the client gives up after its retries, honouring Retry-After.
    n0=$(proxy stats | jget j.requests)
    t0=$(cml_now)
    proxy 'mode?set=down' >/dev/null
    expect "storage unreachable within 20 s of a store answering only 503" wait_until 20 storage_down "$C"
    echo "    degraded after $WAITED s: $(health_field "$C" j.storage.error)"
    expect "classification answers meanwhile" eq "$(classify_version "$C")" "$V1"
    # A new version published elsewhere while this instance cannot see the store.
    out=$(AZURE_STORAGE_CONTAINER=faults cli train --model classic --folds 0 --data "$SMALL" \
        --out "$CML_TMP/upload7" --upload --json 2>/dev/null)
    v7=$(printf '%s\n' "$out" | jget j.version)
    expect "published $v7 straight to Azurite" test -n "$v7"
    sleep 1
    n1=$(proxy stats | jget j.requests)
    secs=$(cml_elapsed "$t0")
    echo "    $((n1 - n0)) requests reached the proxy in $secs s of outage"
    expect "no hammering: at most 2 requests a second while every answer is 503 + Retry-After: 1" \
        awk -v n="$((n1 - n0))" -v s="$secs" 'BEGIN { exit !(n <= 2 * s + 2) }'
    proxy 'mode?set=pass' >/dev/null
    t0=$(cml_now)
    expect "converges on $v7 within 15 s once the faults stop" wait_until 15 version_is "$C" "$v7"
    echo "    converged $WAITED s after the faults stopped"
    expect "healthy again" wait_until 5 healthy "$C"
    r1=$(metric "$C" cultivate_ml_blob_retries_total)
    f1=$(metric "$C" cultivate_ml_blob_failures_total)
    echo "    /metrics: retries $r0 -> $r1, failures $f1, operations $(metric "$C" cultivate_ml_blob_operations_total); proxy $(proxy stats)"
    expect "retries grew during the outage" test "$r1" -gt "$r0"
    expect "failures counted" test "$f1" -gt 0
    for w in $CML_WORKER_PIDS; do
        expect "worker $w stayed up" cml_alive "$w"
    done
    st=$(cml_http_status "$C/api/ready")
    expect "ready" eq "$st" 200
    cml_stack_stop || not_ok "the stack stopped within 10 s"
    kill "$proxy_pid" 2>/dev/null
    wait "$proxy_pid" 2>/dev/null
}

# --- 8. a bad connection string -----------------------------------------------------------------
check_bad_connection() {
    local s secret conn rc out
    s=$(new_state bad)
    secret="Zz9-not+base64!secret$$"
    for conn in \
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$secret;BlobEndpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1;" \
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$AZURITE_DEV_KEY;Frobnicate=$secret;BlobEndpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1;"; do
        out=$(env "CML_STACK_TAG=$CML_TAG.bad" "STATE_DIR=$s" "MODEL_CACHE_DIR=$s/models" \
            USE_AZURE_STORAGE=true "AZURE_STORAGE_CONNECTION_STRING=$conn" "TRAINING_DATA=$SMALL" \
            MODEL_TYPE=classic LOG_FORMAT=logfmt timeout 30 "$CML_FCGI_BIN" -c "$CML_TMP/empty.conf" \
            </dev/null 2>&1)
        rc=$?
        echo "    $(printf '%s\n' "$out" | tail -n 1)"
        expect "refuses to start (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
        case $conn in
        *Frobnicate*) expect "the message names the unknown key" grep -q Frobnicate <<<"$out" ;;
        *) expect "the message names AccountKey" grep -q AccountKey <<<"$out" ;;
        esac
        expect "the message names the setting" grep -q azure_storage_connection_string <<<"$out"
        case $out in
        *"$secret"* | *"${secret:0:12}"* | *"$AZURITE_DEV_KEY"* | *"${AZURITE_DEV_KEY:0:16}"*)
            not_ok "the key is not printed" ;;
        *) ok "the key is not printed" ;;
        esac
        expect "no model was trained" test -z "$(ls "$s/models")"
    done
    out=$(env "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$secret;" \
        USE_AZURE_STORAGE=true "$CML_FCGI_BIN" -c "$CML_TMP/empty.conf" --check-config 2>&1)
    case $out in
    *"$secret"*) not_ok "--check-config does not print the key" ;;
    *) ok "--check-config does not print the key" ;;
    esac
}

# --- 9. started while the store is down ---------------------------------------------------------
check_late_publish() {
    local D VD blobs t0
    az_stop
    t0=$(cml_now)
    cml_stack_start "$front" fork 1 "$(new_state d)" "${svc_env[@]}" AZURE_STORAGE_CONTAINER=late-start
    echo "    ready $(cml_elapsed "$t0") s after the start with the store down"
    D=$CML_BASE_URL
    VD=$(version_of "$D")
    expect "serves a model trained locally ('$VD')" test -n "$VD"
    expect "health 200 degraded, storage unreachable" \
        eq "$(cml_http_status "$D/api/health"),$(health_field "$D" '[j.status, j.storage.reachable].join()')" \
        "200,degraded,false"
    az_start "$AZ_PORT" || cml_fail "Azurite did not restart on port $AZ_PORT"
    expect "the pointer names $VD within 15 s of the store's return" \
        wait_until 15 pointer_names late-start "$VD"
    echo "    published $WAITED s after Azurite came back"
    blobs=$(blobs_json late-start)
    echo "    blobs: $(printf '%s' "$blobs" | jget 'Object.keys(j).join(" ")')"
    expect "training_data.csv is TRAINING_DATA (sha256, rows)" \
        eq "$(printf '%s' "$blobs" | jget "[(j['training_data.csv'] || {metadata: {}}).metadata.sha256, (j['training_data.csv'] || {metadata: {}}).metadata.rows].join()")" \
        "$(sha256sum <"$SMALL" | cut -d' ' -f1),$(($(wc -l <"$SMALL") - 1))"
    expect "active.json exists" test -n "$(printf '%s' "$blobs" | jget "j['active.json']")"
    expect "healthy" wait_until 5 healthy "$D"
    cml_stack_stop || not_ok "the stack stopped within 10 s"
}

have_v1() { [ -n "$V1" ] && [ -f "$V1_FILE" ] && [ -n "$S1" ]; }
have_a() { [ -n "$VA" ] && [ -n "${CML_SAVED_A_CML_STACK_TAG:-}" ]; }
have_ab() { [ -n "$VR" ] && [ -n "${CML_SAVED_B_CML_STACK_TAG:-}" ]; }
run_check 1 "cold start: downloads and serves the store's model" check_cold_start
run_check 2 "warm start: only HEAD/conditional requests, no download" check_warm_start have_v1
run_check 3 "empty container: trains, publishes model, pointer, data, active.json" check_empty_container
run_check 4 "two instances converge on a pinned select and a retrain" check_two_instances have_a
run_check 5 "Azurite stopped: degraded, serving; restarted: healthy" check_store_down have_ab
run_check 6 "corrupted model blob refused, old model serves, cache clean" check_corrupt_blob have_ab
run_check 7 "faults (503 + Retry-After, delays): retried, bounded, converges" check_faults have_v1
run_check 8 "bad connection string: refuses to start, key never printed" check_bad_connection
run_check 9 "started while the store is down: publishes model and data once it is back" check_late_publish

echo "figures: select seen by B after ${T_SELECT:-?} s, retrain after ${T_RETRAIN:-?} s (interval $INTERVAL s); total $(cml_elapsed "$T0") s"
echo "storage service: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
