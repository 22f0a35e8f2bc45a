#!/bin/bash
# A fleet on one PostgreSQL (issue 19): three instances (lighttpd + cultivate-ml-fcgi
# --workers 2, each its own STATE_DIR and MODEL_CACHE_DIR) with DATABASE_URL naming one
# throwaway PostgreSQL cluster (postgres.sh) and one Azurite container for the models:
#   a feedback   nine items posted round-robin: every instance's live comparison counts nine,
#                each once, and the database holds nine
#   b retrain    a retrain on instance 1: 409 training_in_progress on instances 2 and 3 while
#                it runs; the job and its history entry are the same on every instance
#   c select     a pin on instance 2: the seconds until each instance serves it (LISTEN/NOTIFY,
#                not the sync interval), all within 1 s
#   d kill -9    instance 3 killed whole (supervisor, workers, lighttpd, its trainer) while its
#                job runs: the job is failed within its lease, as instance 1 reports, and a
#                new retrain on instance 1 is accepted
#   e outage     PostgreSQL stopped for 20 s under a classify load on every instance: classify
#                never fails; health says degraded (state unreachable); feedback and select
#                get 503 state_unavailable with Retry-After; after the restart the same writes
#                succeed, health is healthy, a select reaches every instance again, and every
#                feedback item acknowledged before, during and after is in the database
#   f secrets    the database password is in no log, answer or --check-config output
# The figures (convergence, lease, outage) are printed. About 2 minutes.
# Exits 77 (skipped) without PostgreSQL, node and the npm packages, or lighttpd, unless
# CML_REQUIRE_POSTGRES=1 / CML_REQUIRE_AZURITE=1 make that a failure.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
# shellcheck source-path=SCRIPTDIR source=azurite.sh
. "$here/azurite.sh"
# shellcheck source-path=SCRIPTDIR source=checks.sh
. "$here/checks.sh"
# shellcheck source-path=SCRIPTDIR source=postgres.sh
. "$here/postgres.sh"

pg_require
azurite_require_sdk
cml_require lighttpd || exit 77
cml_require_python
export OMP_WAIT_POLICY=passive

cml_env_init
# The database and the store go first: the stacks' own clean-up (cml_env_cleanup) exits.
fleet_cleanup() {
    local rc=$?
    pg_cleanup
    azurite_stop
    (exit "$rc")
    cml_env_cleanup
}
trap fleet_cleanup EXIT
T0=$(cml_now)
CML_MODEL_TYPE=classic
INTERVAL=2
N=3
# The trainer renews its lease this far ahead (CML_JOB_LEASE_S in core/state/shared_state.h).
LEASE=$(sed -n 's/^#define CML_JOB_LEASE_S \([0-9]*\).*/\1/p' "$CML_TOP_SRCDIR/core/state/shared_state.h")
[ -n "$LEASE" ] || cml_fail "CML_JOB_LEASE_S not found in core/state/shared_state.h"


ANSWERS="$CML_TMP/answers"
mkdir -p "$ANSWERS"
get() { curl --noproxy '*' -s --max-time 10 "$1" 2>/dev/null | tee -a "$ANSWERS/all" || true; }
BODY_FILE="$CML_TMP/body"
HEADERS_FILE="$CML_TMP/headers"
# post URL JSON: prints the status; the body is in $BODY_FILE, the headers in $HEADERS_FILE.
post() {
    local st
    st=$(curl --noproxy '*' -s -D "$HEADERS_FILE" -o "$BODY_FILE" -w '%{http_code}' --max-time 30 \
        -X POST -H 'Content-Type: application/json' -H "X-API-Key: $CML_TEST_API_KEY" \
        --data-binary "$2" "$1" 2>/dev/null) || true
    cat "$HEADERS_FILE" "$BODY_FILE" >>"$ANSWERS/all" 2>/dev/null
    printf '%s\n' "${st:-000}"
}
version_of() { get "$(url_of "$1")/api/v1/models/current" | jfield 'j["version"]'; }
health_of() {
    get "$(url_of "$1")/api/health" | jfield '"%s,%s,%s" % (j["status"], j["state"]["backend"], j["state"]["reachable"])'
}

# --- PostgreSQL and Azurite --------------------------------------------------------------------
pg_start || cml_fail "PostgreSQL did not start"
azurite_start || cml_fail "Azurite did not start"
export AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CONNECTION_STRING AZURE_STORAGE_CONTAINER=fleet
publish() {
    "$CML_CLI_BIN" train --model classic --folds 0 --data "$CML_DATA" --out "$CML_TMP/publish" \
        --upload --json "$@" 2>>"$CML_TMP/publish.err" | jfield 'j["version"]'
}
V1=$(publish --seed 11)
V2=$(publish --seed 23)
if [ -z "$V1" ] || [ -z "$V2" ] || [ "$V1" = "$V2" ]; then
    cml_fail "could not publish two versions ($V1, $V2): $(cat "$CML_TMP/publish.err")"
fi
cml_log "PostgreSQL on port $PG_PORT, Azurite on port $AZURITE_PORT; published classic $V1 and $V2"

svc_env=(USE_AZURE_STORAGE=true "AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CONNECTION_STRING"
    AZURE_STORAGE_CONTAINER=fleet "MODEL_SYNC_INTERVAL=$INTERVAL" "DATABASE_URL=$CML_PG_URL")
fleet_start "$N"
for i in $(seq 1 $N); do
    expect "instance $i: healthy on PostgreSQL" eq "$(health_of "$i")" "healthy,postgresql,True"
done
expect "the schema is at the latest version (cultivate-ml state check)" \
    env "DATABASE_URL=$CML_PG_URL" "$CML_CLI_BIN" state check --config "$CML_TMP/empty.conf"

psql_count() { pg_psql -d cml -At -c "$1"; }

# --- a. feedback round-robin -------------------------------------------------------------------
echo "=== a: nine feedback items posted round-robin"
ACKED=()
# feedback I K: posts item K to instance I; the status in FB_ST; an acknowledged id joins
# ACKED (run it in this shell, not in $(...)).
FB_ST=
feedback() {
    local id label=OEQ
    [ $(($2 % 2)) -eq 0 ] && label=CEQ
    FB_ST=$(post "$(url_of "$1")/api/feedback" \
        "{\"text\":\"What happened to the tower number $2?\",\"correct_class\":\"$label\"}")
    if [ "$FB_ST" = 200 ]; then
        id=$(jfield 'j["feedback_id"]' <"$BODY_FILE")
        [ -n "$id" ] && ACKED+=("$id")
    fi
    return 0
}
codes=
for k in $(seq 1 9); do
    feedback $(((k - 1) % N + 1)) "$k"
    codes="$codes $FB_ST"
done
expect "nine feedback posts answered 200" eq "$codes" " 200 200 200 200 200 200 200 200 200"
expect "the last answer counts nine entries" eq "$(jfield 'j["total_entries"]' <"$BODY_FILE")" 9
expect "nine distinct feedback ids" eq "$(printf '%s\n' "${ACKED[@]}" | sort -u | wc -l)" 9
fb_n() { get "$(url_of "$1")/api/v1/models/comparison" | jfield 'j["live"]["feedback"]["classic"]["n"]'; }
all_count_nine() {
    local i
    for i in $(seq 1 $N); do [ "$(fb_n "$i")" = 9 ] || return 1; done
}
expect "every instance's live comparison counts the nine items once" wait_for 10 all_count_nine
for i in $(seq 1 $N); do echo "    instance $i: classic feedback n = $(fb_n "$i")"; done
expect "the database holds nine feedback rows" eq "$(psql_count 'SELECT count(*) FROM feedback')" 9

# --- b. one retrain across the fleet -----------------------------------------------------------
echo "=== b: a retrain on instance 1; instances 2 and 3 refuse theirs"
st=$(post "$(url_of 1)/api/v1/models/retrain" '{"model_type":"classic"}')
task=$(jfield 'j["task_id"]' <"$BODY_FILE")
expect "retrain on instance 1: 202 with a task id" eq "$st,${task:+id}" "202,id"
for i in 2 3; do
    st=$(post "$(url_of "$i")/api/v1/models/retrain" '{"model_type":"classic"}')
    expect "retrain on instance $i while it runs: 409 training_in_progress" \
        eq "$st,$(jfield 'j["error"]' <"$BODY_FILE")" "409,training_in_progress"
done
job_state() { get "$(url_of "$1")/api/v1/models/training/status/$2" | jfield 'j["status"]'; }
job_ended() { case $(job_state "$1" "$2") in completed | failed) return 0 ;; esac; return 1; }
wait_for 180 job_ended 2 "$task"
T_TRAIN=$WAITED
expect "instance 2 reports instance 1's job completed (in $T_TRAIN s)" eq "$(job_state 2 "$task")" completed
hist_tasks() { get "$(url_of "$1")/api/v1/models/performance/history?limit=50" | jfield '" ".join(e["task_id"] or "" for e in j)'; }
H1=$(hist_tasks 1)
in_history() { case " $H1 " in *" $task "*) return 0 ;; esac; return 1; }
expect "the job is in instance 1's history" in_history
for i in 2 3; do
    expect "instance $i's history is instance 1's" eq "$(hist_tasks "$i")" "$H1"
done

# --- c. a selection seen by every instance -----------------------------------------------------
echo "=== c: select (pin $V1) on instance 2"
st=$(post "$(url_of 2)/api/v1/models/select" "{\"model_type\":\"classic\",\"version\":\"$V1\"}")
t_sel=$(cml_now)
expect "select on instance 2: 200" eq "$st" 200
# within_a_second V: every instance serves V within 1 s of the select's answer ($t_sel).
within_a_second() { converge "$1" 5 "$t_sel" 0.02 && ! secs_over "$CONV" 1; }
expect "every instance serves $V1 within 1 s of the answer (sync interval $INTERVAL s)" within_a_second "$V1"
echo "    seconds from the select's answer until each instance served it:$CONV_EACH"
CONV_C=$CONV

# --- d. kill -9 of the instance running a job --------------------------------------------------
echo "=== d: kill -9 of instance 3 while its job runs"
st=$(post "$(url_of 3)/api/v1/models/retrain" '{"model_type":"classic"}')
task3=$(jfield 'j["task_id"]' <"$BODY_FILE")
expect "retrain on instance 3: 202" eq "$st,${task3:+id}" "202,id"
trainer_running() { pgrep -f "train.*--job $task3" >/dev/null 2>&1 || pgrep -f "$task3" >/dev/null 2>&1; }
wait_for 10 trainer_running || echo "    (no trainer process seen for $task3)"
victims=$(cml_tagged_pids "$CML_SAVED_I3_CML_STACK_TAG" | tr '\n' ' ')
echo "    killing $victims"
t_kill=$(cml_now)
{
    # shellcheck disable=SC2086
    kill -KILL $victims
    wait "$CML_SAVED_I3_CML_SUPERVISOR_PID" "$CML_SAVED_I3_CML_FRONT_PID"
} 2>/dev/null
gone() { [ -z "$(cml_tagged_pids "$CML_SAVED_I3_CML_STACK_TAG")" ]; }
expect "every process of instance 3 is gone" wait_for 5 gone
job_failed() { [ "$(job_state 1 "$task3")" = failed ]; }
wait_for $((LEASE + 10)) job_failed
T_FAILED=$(cml_elapsed "$t_kill")
failed_within_lease() { job_failed && ! secs_over "$T_FAILED" "$LEASE"; }
expect "instance 1 reports the job failed within the lease ($LEASE s): $T_FAILED s" \
    failed_within_lease
st=$(post "$(url_of 1)/api/v1/models/retrain" '{"model_type":"classic"}')
task4=$(jfield 'j["task_id"]' <"$BODY_FILE")
expect "a new retrain on instance 1 is accepted: 202" eq "$st,${task4:+id}" "202,id"
wait_for 180 job_ended 1 "$task4"
expect "... and completes" eq "$(job_state 1 "$task4")" completed
node_start 3
expect "instance 3 is back, healthy" eq "$(health_of 3)" "healthy,postgresql,True"

# --- e. PostgreSQL stopped for 20 s ------------------------------------------------------------
echo "=== e: PostgreSQL stopped for 20 s under a classify load"
LOAD_PIDS=()
for i in $(seq 1 $N); do
    p="PORT_$i"
    env "CML_STACK_TAG=$CML_TAG.load" "$CML_PY" "$here/fleet_load.py" 127.0.0.1 "${!p}" 1 0.01 \
        >"$CML_TMP/load.$i.json" 2>"$CML_TMP/load.$i.err" &
    LOAD_PIDS+=($!)
done
sleep 1
before=${#ACKED[@]}
pg_stop_server fast || cml_fail "PostgreSQL did not stop"
t_down=$(cml_now)
all_degraded() {
    local i
    for i in $(seq 1 $N); do [ "$(health_of "$i")" = "degraded,postgresql,False" ] || return 1; done
}
expect "every instance says degraded, state unreachable" wait_for 15 all_degraded
T_DEGRADED=$(cml_elapsed "$t_down")
refusals=0 others=
k=100
while ! secs_over "$(cml_elapsed "$t_down")" 18; do
    k=$((k + 1))
    feedback $((k % N + 1)) "$k"
    st=$FB_ST
    code=$(jfield 'j["error"]' <"$BODY_FILE")
    if [ "$st,$code" = "503,state_unavailable" ] && grep -qi '^retry-after: [0-9]' "$HEADERS_FILE"; then
        refusals=$((refusals + 1))
    else
        others="$others $st:$code"
    fi
    sleep 0.5
done
st=$(post "$(url_of 2)/api/v1/models/select" "{\"model_type\":\"classic\",\"version\":\"$V2\"}")
expect "select while the database is down: 503 state_unavailable" \
    eq "$st,$(jfield 'j["error"]' <"$BODY_FILE")" "503,state_unavailable"
expect "feedback while the database is down: 503 state_unavailable with Retry-After ($refusals times)" \
    eq "${others:-none}" none
expect "nothing was acknowledged while the database was down" eq "${#ACKED[@]}" "$before"
sleep "$(awk -v e="$(cml_elapsed "$t_down")" 'BEGIN { s = 20 - e; print (s > 0 ? s : 0) }')"
T_STOPPED=$(cml_elapsed "$t_down")
pg_start_server || cml_fail "PostgreSQL did not start again"
t_up=$(cml_now)
# write_back I K: feedback to instance I succeeds within 15 s of the restart, answered only
# 503 state_unavailable until then (never a 500 from a connection the restart broke).
write_back() {
    local t0
    t0=$(cml_now)
    while feedback "$1" "$2" && [ "$FB_ST" != 200 ]; do
        if [ "$FB_ST,$(jfield 'j["error"]' <"$BODY_FILE")" != "503,state_unavailable" ]; then
            echo "    instance $1 answered $FB_ST: $(cat "$BODY_FILE")"
            return 1
        fi
        secs_over "$(cml_elapsed "$t0")" 15 && return 1
        sleep 0.2
    done
}
for i in $(seq 1 $N); do
    k=$((k + 1))
    expect "instance $i stores feedback again after the restart" write_back "$i" "$k"
done
T_WRITES=$(cml_elapsed "$t_up")
all_healthy() {
    local i
    for i in $(seq 1 $N); do [ "$(health_of "$i")" = "healthy,postgresql,True" ] || return 1; done
}
expect "every instance healthy again" wait_for 15 all_healthy
T_HEALTHY=$(cml_elapsed "$t_up")
st=$(post "$(url_of 1)/api/v1/models/select" "{\"model_type\":\"classic\",\"version\":\"$V2\"}")
t_sel=$(cml_now)
expect "select on instance 1 after the outage: 200" eq "$st" 200
expect "every instance serves $V2 within 1 s of it (the watchers reconnected)" within_a_second "$V2"
echo "    seconds until each instance served it:$CONV_EACH"
CONV_E=$CONV
for p in "${LOAD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
wait "${LOAD_PIDS[@]}" 2>/dev/null
for i in $(seq 1 $N); do
    r=$(jfield 'j["requests"]' <"$CML_TMP/load.$i.json")
    e=$(jfield 'j["errors"]' <"$CML_TMP/load.$i.json")
    expect "instance $i: classify never failed ($r requests, $e errors)" eq "${e:-missing},$([ "${r:-0}" -gt 100 ] && echo many)" "0,many"
    [ "${e:-0}" = 0 ] || jfield '"\n".join(j["first_errors"])' <"$CML_TMP/load.$i.json"
done
want=$(printf '%s\n' "${ACKED[@]}" | sort -n | tr '\n' ' ')
have=$(psql_count 'SELECT string_agg(id::text, '"' '"' ORDER BY id) FROM feedback')
expect "every acknowledged feedback item (${#ACKED[@]}) is in the database, none other" eq "$have " "$want"

# --- f. the password nowhere -------------------------------------------------------------------
echo "=== f: the database password in no log or answer"
check_out=$(env "DATABASE_URL=$CML_PG_URL" "$CML_FCGI_BIN" -c "$CML_TMP/empty.conf" --check-config 2>&1)
printf '%s\n' "$check_out" >"$CML_TMP/check-config.out"
masked() { grep -qF "postgresql://cml:***@127.0.0.1:$PG_PORT/cml" "$CML_TMP/check-config.out"; }
expect "--check-config shows the URL masked" masked
leaks=$(grep -rlF -- "$PG_PASSWORD" "$CML_TMP" 2>/dev/null | tr '\n' ' ')
expect "the password is in no file of the run (logs, answers, outputs)" eq "${leaks:-none}" none
not_in_server_log() { ! grep -qF -- "$PG_PASSWORD" "$PG_DIR/server.log"; }
expect "... nor in the server's log" not_in_server_log

echo "--- figures ($N instances x 2 workers on one PostgreSQL, sync interval $INTERVAL s, total $(cml_elapsed "$T0") s)"
echo "figures: select seen by every instance after $CONV_C s (after the outage $CONV_E s)"
echo "figures: job of a killed instance failed after $T_FAILED s (lease $LEASE s); training $T_TRAIN s"
echo "figures: database down $T_STOPPED s: all degraded after $T_DEGRADED s, $refusals writes refused 503;" \
    "writes back $T_WRITES s and all healthy $T_HEALTHY s after the restart"
[ "$fails" -eq 0 ] || cml_fail "$fails check(s) failed"
echo "fleet on PostgreSQL: all checks passed"
