#!/bin/bash
# Two `make run` instances (scripts/serve.sh) in one build tree (issue 15, defect 7): a second
# one started on the first one's RUN_DIR with another PORT must be refused, naming RUN_DIR,
# without touching the first one's socket or lighttpd configuration, and the first must keep
# serving; a second one with its own RUN_DIR serves beside the first, and stopping it leaves
# the first untouched. Exits 77 when lighttpd or spawn-fcgi is missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require lighttpd || exit 77
cml_env_init

# A model cache with every type this build serves, so no instance trains at start.
cache="$CML_TMP/cache"
mkdir -p "$cache"
cml_train "$cache" classic >/dev/null || cml_fail "training classic"
if cml_have_ensemble; then
    cml_train "$cache" ensemble >/dev/null || cml_fail "training the ensemble"
fi

serve_pid=
# serve NAME RUN_DIR PORT: scripts/serve.sh in the background, tagged for the clean-up.
serve() {
    mkdir -p "$2"
    [ -d "$2/models" ] || cp -a "$cache" "$2/models"
    env "CML_STACK_TAG=$CML_TAG.$1" "RUN_DIR=$2" "PORT=$3" MODEL_TYPE=classic WORKERS=1 \
        "TRAINING_DATA=$CML_DATA" API_KEY= API_KEY_FILE= USE_AZURE_STORAGE=false FCGI_THREADS=2 \
        "$CML_TOP_SRCDIR/scripts/serve.sh" "$CML_TOP_BUILDDIR" >"$CML_TMP/$1.out" 2>&1 &
    serve_pid=$!
}

# wait_ready PORT PID: 200 from /api/ready within 60 s while PID lives.
wait_ready() {
    for _ in $(seq 1 600); do
        [ "$(cml_http_status "http://127.0.0.1:$1/api/ready")" = 200 ] && return 0
        cml_alive "$2" || return 1
        sleep 0.1
    done
    return 1
}

classify_status() {
    curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
        -H 'Content-Type: application/json' -d '{"text":"What do you think will happen next?"}' \
        "http://127.0.0.1:$1/api/v1/models/classify" 2>/dev/null || true
}

stop_serve() {
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 1 150); do
        cml_alive "$1" || break
        sleep 0.1
    done
    wait "$1" 2>/dev/null
    for _ in $(seq 1 100); do
        [ -z "$(cml_tagged_pids "$CML_TAG.$2")" ] && return 0
        sleep 0.1
    done
    cml_fail "instance $2 still has processes 10 s after SIGTERM: $(cml_tagged_pids "$CML_TAG.$2")"
}

run1="$CML_TMP/run"
p1=$(cml_free_port) || cml_fail "no free port"
serve first "$run1" "$p1"
first=$serve_pid
wait_ready "$p1" "$first" || {
    cat "$CML_TMP/first.out" >&2
    cml_fail "the first instance did not serve on $p1"
}
echo "first instance: pid $first, port $p1, RUN_DIR $run1"
sock_id=$(stat -c '%d:%i' "$run1/fcgi.sock") || cml_fail "no socket in $run1"
conf_sum=$(md5sum <"$run1/lighttpd.conf")

# The second one on the same RUN_DIR with another PORT: refused, quickly, naming RUN_DIR.
p2=$(cml_free_port) || cml_fail "no free port"
serve second "$run1" "$p2"
second=$serve_pid
for _ in $(seq 1 100); do
    cml_alive "$second" || break
    sleep 0.1
done
if cml_alive "$second"; then
    stop_serve "$second" second
    cml_fail "a second instance on the same RUN_DIR was started (port $p2): $(cat "$CML_TMP/second.out")"
fi
wait "$second"
rc=$?
[ "$rc" -ne 0 ] || cml_fail "the refused second instance exited with 0"
grep -q 'set RUN_DIR' "$CML_TMP/second.out" ||
    cml_fail "the refusal does not name RUN_DIR: $(cat "$CML_TMP/second.out")"
echo "second instance on the same RUN_DIR refused (exit $rc): $(cat "$CML_TMP/second.out")"
[ "$(stat -c '%d:%i' "$run1/fcgi.sock" 2>/dev/null)" = "$sock_id" ] ||
    cml_fail "the first instance's socket was replaced or removed"
[ "$(md5sum <"$run1/lighttpd.conf")" = "$conf_sum" ] ||
    cml_fail "the first instance's lighttpd.conf was rewritten"
[ "$(cml_http_status "http://127.0.0.1:$p2/api/ready")" = 000 ] ||
    cml_fail "something answers on the refused instance's port $p2"
for i in 1 2 3 4 5; do
    st=$(classify_status "$p1")
    [ "$st" = 200 ] || cml_fail "the first instance answered classify $i with $st after the refusal"
done
echo "first instance still serves from its own socket"

# A second one with its own RUN_DIR serves beside the first; stopping it leaves the first.
run2="$CML_TMP/run2"
serve second2 "$run2" "$p2"
second=$serve_pid
wait_ready "$p2" "$second" || {
    cat "$CML_TMP/second2.out" >&2
    cml_fail "a second instance with its own RUN_DIR did not serve on $p2"
}
[ "$(classify_status "$p2")" = 200 ] || cml_fail "the second instance does not classify"
[ "$(classify_status "$p1")" = 200 ] || cml_fail "the first instance stopped classifying"
echo "second instance with RUN_DIR $run2 serves on $p2 beside the first"
stop_serve "$second" second2
[ "$(stat -c '%d:%i' "$run1/fcgi.sock" 2>/dev/null)" = "$sock_id" ] ||
    cml_fail "stopping the second instance removed the first one's socket"
[ "$(classify_status "$p1")" = 200 ] || cml_fail "the first instance stopped with the second"
stop_serve "$first" first
[ ! -e "$run1/fcgi.sock" ] || cml_fail "the first instance left its socket behind"

# Once the first is gone, its RUN_DIR is free again.
serve third "$run1" "$p2"
third=$serve_pid
wait_ready "$p2" "$third" || cml_fail "RUN_DIR $run1 is still refused after its instance stopped"
stop_serve "$third" third
echo "two instances in one tree: all checks passed"
