# shellcheck shell=bash
# The service stack for integration tests (spawn-fcgi + cultivate-ml-fcgi + lighttpd or
# Apache, all on 127.0.0.1): a library to source from bash.
#
#   . tests/integration/service_env.sh
#   cml_env_init                          # temp dir; EXIT trap stops everything and removes it
#   cml_require lighttpd || exit 77       # spawn-fcgi, the front end and the programs present?
#   cml_prepare_models                    # trains the model cache once: $CML_V1, $CML_V2 (classic)
#   state=$(cml_new_state NAME)           # a fresh state dir whose model cache is pre-filled
#   cml_stack_start lighttpd fork 4 "$state" [VAR=value ...]   # spawn-fcgi -F 4
#   cml_stack_start apache supervised 2 "$state"               # ... -- cultivate-ml-fcgi --workers 2
#   ... $CML_BASE_URL, $CML_FCGI_LOG, $CML_SUPERVISOR_PID, $CML_WORKER_PIDS ...
#   cml_stack_stop                        # SIGTERM, waits (10 s at most); $CML_STOP_SECONDS
#   cml_stack_save A ... cml_stack_use A  # several stacks at once: keep and restore the current one
#
# Every process started here carries CML_STACK_TAG=<tag of this run>.<stack> in its
# environment; stopping and the final clean-up find them by that tag (and only by it), so
# workers that spawn-fcgi forked away, Apache's children and training jobs are all reaped,
# even when a test fails half-way. The service sees only the variables set here (plus the
# caller's environment) and an empty configuration file, never the system one.
# CML_KEEP_TMP=1 keeps the temporary directory (logs, state) of a failed run.

CML_TOP_SRCDIR=${CML_TOP_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
CML_TOP_BUILDDIR=${CML_TOP_BUILDDIR:-$(pwd)}
CML_FCGI_BIN="$CML_TOP_BUILDDIR/cultivate-ml-fcgi"
CML_CLI_BIN="$CML_TOP_BUILDDIR/cultivate-ml"
CML_DATA=${CML_TEST_DATA:-$CML_TOP_SRCDIR/data/questions.csv}
CML_TEST_API_KEY=${CML_TEST_API_KEY:-integration-test-key-0123456789}
CML_TEST_ORIGIN=${CML_TEST_ORIGIN:-http://client.example.test}
CML_TEST_MAX_BODY=${CML_TEST_MAX_BODY:-65536}
CML_TMP=
CML_TAG=
CML_STACK_N=0
CML_STACK_TAG=
CML_STOP_SECONDS=
CML_APACHE_BIN=${CML_APACHE_BIN:-/usr/sbin/apache2}

cml_log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*" >&2; }

# Prints a failure (and the tails of the stack's logs) and exits 1; the EXIT trap cleans up.
cml_fail() {
    cml_log "FAIL: $*"
    cml_dump_logs
    exit 1
}

cml_dump_logs() {
    local f
    [ -n "${CML_RUN_DIR:-}" ] || return 0
    for f in "$CML_RUN_DIR"/fcgi.log "$CML_RUN_DIR"/front.out "$CML_RUN_DIR"/*error.log; do
        [ -s "$f" ] || continue
        echo "--- last lines of $f" >&2
        tail -n 25 "$f" >&2
    done
}

# Seconds since the epoch with fractions.
cml_now() { date +%s.%N; }
cml_elapsed() { awk -v a="$1" -v b="$(cml_now)" 'BEGIN { printf "%.3f", b - a }'; }

cml_env_init() {
    CML_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cml-int.XXXXXX") || exit 1
    CML_TAG="cml-int-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
    : >"$CML_TMP/empty.conf"
    trap 'cml_env_cleanup' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Pids of live (non-zombie) processes whose environment holds CML_STACK_TAG=$1 exactly, or
# (with a trailing dot) starting with it.
cml_tagged_pids() {
    local pattern f pid
    case "$1" in
    *.) pattern="^CML_STACK_TAG=${1//./\\.}" ;;
    *) pattern="^CML_STACK_TAG=${1//./\\.}\$" ;;
    esac
    grep -l -z -e "$pattern" /proc/[0-9]*/environ 2>/dev/null | while read -r f; do
        pid=${f#/proc/}
        pid=${pid%/environ}
        if [ "$pid" != "$$" ] && cml_alive "$pid"; then
            echo "$pid"
        fi
    done
    return 0
}

# True when pid exists and is not a zombie.
cml_alive() {
    local s
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ]
}

# Ends every process this run started (TERM, then KILL after 10 s) and removes the temp dir.
cml_env_cleanup() {
    local rc=$? left
    trap - EXIT INT TERM
    if [ -n "$CML_TAG" ]; then
        left=$(cml_tagged_pids "$CML_TAG.")
        if [ -n "$left" ]; then
            # shellcheck disable=SC2086
            kill -TERM $left 2>/dev/null
            for _ in $(seq 1 100); do
                left=$(cml_tagged_pids "$CML_TAG.")
                [ -z "$left" ] && break
                sleep 0.1
            done
            if [ -n "$left" ]; then
                cml_log "still running 10 s after SIGTERM: $left; killing"
                # shellcheck disable=SC2086
                kill -KILL $left 2>/dev/null
                for _ in $(seq 1 50); do
                    [ -z "$(cml_tagged_pids "$CML_TAG.")" ] && break
                    sleep 0.1
                done
            fi
        fi
        wait 2>/dev/null
        if [ -n "$(cml_tagged_pids "$CML_TAG.")" ]; then
            cml_log "processes of this test are still running: $(cml_tagged_pids "$CML_TAG.")"
            rc=1
        fi
    fi
    if [ -n "$CML_TMP" ] && [ -d "$CML_TMP" ]; then
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${CML_KEEP_TMP:-}" ]; then
            cml_log "kept $CML_TMP"
        else
            rm -rf "$CML_TMP"
        fi
    fi
    exit "$rc"
}

# True when what a stack with this front end needs is installed and built.
cml_require() {
    local front=$1
    command -v spawn-fcgi >/dev/null 2>&1 || {
        echo "spawn-fcgi is not installed"
        return 1
    }
    case "$front" in
    lighttpd)
        command -v lighttpd >/dev/null 2>&1 || [ -x /usr/sbin/lighttpd ] || {
            echo "lighttpd is not installed"
            return 1
        }
        ;;
    apache)
        if [ ! -x "$CML_APACHE_BIN" ] || [ ! -e /usr/lib/apache2/modules/mod_proxy_fcgi.so ]; then
            echo "apache2 with mod_proxy_fcgi is not installed"
            return 1
        fi
        ;;
    esac
    if [ ! -x "$CML_FCGI_BIN" ] || [ ! -x "$CML_CLI_BIN" ]; then
        echo "build cultivate-ml and cultivate-ml-fcgi first"
        return 1
    fi
}

# Sets CML_FRONTS to those of the front ends named (default: lighttpd apache) whose stack is
# installed; exits 77 (skipped) when none is.
cml_require_fronts() {
    local f
    CML_FRONTS=
    for f in ${1:-lighttpd apache}; do
        cml_require "$f" >/dev/null && CML_FRONTS="$CML_FRONTS $f"
    done
    [ -n "$CML_FRONTS" ] || {
        echo "neither lighttpd nor Apache (with spawn-fcgi) is installed"
        exit 77
    }
}

# Sets CML_PY to python3 ($PYTHON3 when set); exits 77 (skipped) when it is missing.
cml_require_python() {
    CML_PY=${PYTHON3:-python3}
    command -v "$CML_PY" >/dev/null 2>&1 || {
        echo "python3 is not installed"
        exit 77
    }
}

# True when this build serves the ensemble (HAVE_ENSEMBLE in config.h).
cml_have_ensemble() { grep -q '^#define HAVE_ENSEMBLE 1' "$CML_TOP_BUILDDIR/config.h" 2>/dev/null; }

# Trains one model into dir; prints its version. Extra arguments go to `cultivate-ml train`.
# OMP_WAIT_POLICY=passive: XGBoost's OpenMP threads otherwise spin, and two trainings at once
# (make -j check) on 2 cores took 78 s each instead of 1.5 s.
cml_train() {
    local dir=$1 type=$2 out
    shift 2
    out=$(OMP_WAIT_POLICY=passive "$CML_CLI_BIN" train --model "$type" --folds 0 --data "$CML_DATA" --out "$dir" --json \
        "$@" 2>"$CML_TMP/train.err") || {
        cat "$CML_TMP/train.err" >&2
        return 1
    }
    printf '%s\n' "$out" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p'
}

# Fills $CML_TMP/cache once: two classic versions ($CML_V1 older, $CML_V2 the latest) and, when
# the build has it, an ensemble ($CML_VE). Sets CML_MODEL_TYPE (ensemble if built, else classic).
cml_prepare_models() {
    local dir="$CML_TMP/cache" t0
    mkdir -p "$dir"
    t0=$(cml_now)
    CML_V1=$(cml_train "$dir" classic --seed 11) || cml_fail "training the first classic model"
    # Versions are UTC milliseconds; trainings are still kept apart in time for clarity.
    CML_V2=$CML_V1
    for _ in 1 2 3 4 5; do
        [ "$CML_V2" != "$CML_V1" ] && break
        CML_V2=$(cml_train "$dir" classic --seed 23) || cml_fail "training the second classic model"
    done
    if [ -z "$CML_V1" ] || [ -z "$CML_V2" ] || [ "$CML_V1" = "$CML_V2" ]; then
        cml_fail "could not train two classic versions ($CML_V1, $CML_V2)"
    fi
    CML_MODEL_TYPE=classic
    CML_VE=
    if cml_have_ensemble; then
        CML_VE=$(cml_train "$dir" ensemble) || cml_fail "training the ensemble"
        CML_MODEL_TYPE=ensemble
    fi
    export CML_V1 CML_V2 CML_VE CML_MODEL_TYPE
    cml_log "model cache ready in $(cml_elapsed "$t0") s: classic $CML_V1 $CML_V2${CML_VE:+, ensemble $CML_VE}"
}

# Makes $CML_TMP/NAME with models/ copied from the cache; prints its path.
cml_new_state() {
    local d="$CML_TMP/$1"
    mkdir -p "$d" && cp -a "$CML_TMP/cache" "$d/models" && printf '%s\n' "$d"
}

# A TCP port that was free on 127.0.0.1 a moment ago.
cml_free_port() {
    local p
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' && return 0
    fi
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# The HTTP status of GET url (000 when nothing answered).
cml_http_status() {
    curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" 2>/dev/null || true
}

# Children (non-zombie) of a pid, one a line.
cml_children_of() {
    local f s pid
    for f in /proc/[0-9]*/stat; do
        { read -r s <"$f"; } 2>/dev/null || continue
        pid=${s%% *}
        s=${s##*) }
        # s is now "STATE PPID ..."
        [ "${s%% *}" != Z ] && s=${s#* } && [ "${s%% *}" = "$1" ] && echo "$pid"
    done
    return 0
}

# cml_stack_start FRONT MODE N STATE_DIR [VAR=value ...]
#   FRONT lighttpd|apache; MODE fork (spawn-fcgi -F N) or supervised (spawn-fcgi -n ...
#   cultivate-ml-fcgi --workers N). VAR=value pairs add to or override the service's
#   environment. Waits until /api/ready answers 200 (30 s at most), in supervised mode until
#   all N workers run, and then until all N have logged their start (60 s at most).
#   CML_STACK_PORT=N (in the caller's environment) puts the front end on that port (a restart
#   behind a load balancer that expects it), else a free one is picked. Sets CML_BASE_URL,
#   CML_PORT, CML_RUN_DIR, CML_FCGI_LOG, CML_STACK_TAG, CML_FRONT_PID, CML_WORKER_PIDS and
#   (supervised) CML_SUPERVISOR_PID.
cml_stack_start() {
    local front=$1 mode=$2 n=$3 state=$4 sock conf t0 st
    shift 4
    CML_STACK_N=$((CML_STACK_N + 1))
    CML_STACK_TAG="$CML_TAG.$CML_STACK_N"
    CML_RUN_DIR="$CML_TMP/run.$CML_STACK_N"
    mkdir -p "$CML_RUN_DIR"
    sock="$CML_RUN_DIR/fcgi.sock"
    CML_FCGI_LOG="$CML_RUN_DIR/fcgi.log"
    CML_SUPERVISOR_PID=
    CML_WORKER_PIDS=
    CML_FRONT_PID=
    local -a env=(
        "CML_STACK_TAG=$CML_STACK_TAG"
        "MODEL_CACHE_DIR=$state/models" "STATE_DIR=$state" "TRAINING_DATA=$CML_DATA"
        "CML_TRAINER=$CML_CLI_BIN" "MODEL_TYPE=$CML_MODEL_TYPE" "API_KEY=$CML_TEST_API_KEY"
        "CORS_ALLOWED_ORIGINS=$CML_TEST_ORIGIN" "MAX_BODY_BYTES=$CML_TEST_MAX_BODY"
        "USE_AZURE_STORAGE=false" "LOG_LEVEL=info" "LOG_FORMAT=logfmt" "FCGI_THREADS=2"
        "API_KEY_FILE=" "MAX_TEXT_CHARS=10000" "MAX_BATCH_SIZE=1000" "MODEL_RETAIN_VERSIONS=10"
        "OPENAPI_DOCUMENT=$CML_TOP_BUILDDIR/apidocs/openapi.json"
        "$@")
    t0=$(cml_now)
    case "$mode" in
    fork)
        # spawn-fcgi sends forked children's output to /dev/null: sh keeps it, then execs.
        # shellcheck disable=SC2016
        env "${env[@]}" "CML_FCGI_LOG_FILE=$CML_FCGI_LOG" \
            spawn-fcgi -s "$sock" -M 0600 -F "$n" -P "$CML_RUN_DIR/fcgi.pids" -- \
            /bin/sh -c 'exec "$0" "$@" 2>>"$CML_FCGI_LOG_FILE"' "$CML_FCGI_BIN" \
            -c "$CML_TMP/empty.conf" >"$CML_RUN_DIR/spawn.out" 2>&1 ||
            cml_fail "spawn-fcgi failed: $(cat "$CML_RUN_DIR/spawn.out")"
        ;;
    supervised)
        env "${env[@]}" spawn-fcgi -n -s "$sock" -M 0600 -- "$CML_FCGI_BIN" \
            -c "$CML_TMP/empty.conf" --workers "$n" >>"$CML_FCGI_LOG" 2>&1 &
        CML_SUPERVISOR_PID=$!
        ;;
    *) cml_fail "unknown mode $mode" ;;
    esac
    for _ in 1 2 3 4 5; do
        CML_PORT=${CML_STACK_PORT:-$(cml_free_port)} || cml_fail "no free port"
        CML_BASE_URL="http://127.0.0.1:$CML_PORT"
        case "$front" in
        lighttpd)
            conf="$CML_RUN_DIR/lighttpd.conf"
            sed -e "s|@PORT@|$CML_PORT|g" -e "s|@SOCKET@|$sock|g" -e "s|@DIR@|$CML_RUN_DIR|g" \
                -e "s|@ERRORS@|$CML_TOP_SRCDIR/etc/errors|g" -e "s|@DASHBOARD@|$CML_TOP_SRCDIR/dashboard|g" \
                -e "s|@APIDOCS@|$CML_TOP_BUILDDIR/apidocs|g" \
                "$CML_TOP_SRCDIR/etc/lighttpd/standalone.conf.in" >"$conf"
            env "CML_STACK_TAG=$CML_STACK_TAG" "$(command -v lighttpd || echo /usr/sbin/lighttpd)" \
                -D -f "$conf" >>"$CML_RUN_DIR/front.out" 2>&1 &
            ;;
        apache)
            conf="$CML_RUN_DIR/apache.conf"
            sed -e "s|@PORT@|$CML_PORT|g" -e "s|@SOCKET@|$sock|g" -e "s|@DIR@|$CML_RUN_DIR|g" \
                -e "s|@ERRORS@|$CML_TOP_SRCDIR/etc/errors|g" -e "s|@DASHBOARD@|$CML_TOP_SRCDIR/dashboard|g" \
                -e "s|@APIDOCS@|$CML_TOP_BUILDDIR/apidocs|g" \
                "$CML_TOP_SRCDIR/etc/apache2/standalone.conf.in" >"$conf"
            env "CML_STACK_TAG=$CML_STACK_TAG" "$CML_APACHE_BIN" -f "$conf" -DFOREGROUND \
                >>"$CML_RUN_DIR/front.out" 2>&1 &
            ;;
        *) cml_fail "unknown front end $front" ;;
        esac
        CML_FRONT_PID=$!
        # Wait for the service to be ready; a front end that died may have lost its port.
        for _ in $(seq 1 300); do
            cml_alive "$CML_FRONT_PID" || break
            st=$(cml_http_status "$CML_BASE_URL/api/ready")
            [ "$st" = 200 ] && break
            [ -n "$CML_SUPERVISOR_PID" ] && ! cml_alive "$CML_SUPERVISOR_PID" &&
                cml_fail "the FastCGI supervisor exited during start-up"
            sleep 0.1
        done
        if cml_alive "$CML_FRONT_PID"; then
            [ "$st" = 200 ] || cml_fail "$front stack not ready after 30 s (last status $st)"
            break
        fi
        wait "$CML_FRONT_PID" 2>/dev/null
        CML_FRONT_PID=
        grep -qiE 'in use|could not bind|make_sock' "$CML_RUN_DIR/front.out" \
            "$CML_RUN_DIR"/*error.log 2>/dev/null || cml_fail "$front did not start"
        [ -z "${CML_STACK_PORT:-}" ] || cml_fail "port $CML_PORT (CML_STACK_PORT) is taken"
        cml_log "port $CML_PORT was taken; trying another"
    done
    [ -n "$CML_FRONT_PID" ] || cml_fail "$front did not start on a free port"
    if [ "$mode" = supervised ]; then
        for _ in $(seq 1 200); do
            CML_WORKER_PIDS=$(cml_children_of "$CML_SUPERVISOR_PID" | tr '\n' ' ')
            [ "$(echo "$CML_WORKER_PIDS" | wc -w)" -ge "$n" ] && break
            sleep 0.05
        done
    else
        CML_WORKER_PIDS=$(tr '\n' ' ' <"$CML_RUN_DIR/fcgi.pids" 2>/dev/null)
        [ "$(echo "$CML_WORKER_PIDS" | wc -w)" -eq "$n" ] ||
            cml_fail "spawn-fcgi started '$CML_WORKER_PIDS', wanted $n workers"
    fi
    # /api/ready answers as soon as one worker serves; the others may still be loading their
    # models, and a test that needs every worker (a selection pinned on all of them) would see
    # only the first. Each worker logs event=started once it accepts requests.
    for _ in $(seq 1 600); do
        [ "$(grep -c 'event=started ' "$CML_FCGI_LOG" 2>/dev/null)" -ge "$n" ] && break
        sleep 0.1
    done
    [ "$(grep -c 'event=started ' "$CML_FCGI_LOG" 2>/dev/null)" -ge "$n" ] ||
        cml_log "NOTE: fewer than $n workers logged their start within 60 s"
    CML_STATE_DIR=$state
    export CML_BASE_URL CML_FCGI_LOG CML_SUPERVISOR_PID CML_WORKER_PIDS CML_STATE_DIR
    export CML_API_KEY=$CML_TEST_API_KEY CML_ALLOWED_ORIGIN=$CML_TEST_ORIGIN
    export CML_MAX_BODY=$CML_TEST_MAX_BODY CML_DATA
    cml_log "$front + $mode $n workers ($CML_WORKER_PIDS) ready at $CML_BASE_URL in $(cml_elapsed "$t0") s"
}

# Sends SIGTERM to the FastCGI side and the front end of the current stack and waits until
# every process of it is gone (10 s at most, then SIGKILL). Sets CML_STOP_SECONDS; returns 1
# when something had to be killed.
cml_stack_stop() {
    local t0 left pids rc=0
    [ -n "$CML_STACK_TAG" ] || return 0
    pids="$CML_FRONT_PID ${CML_SUPERVISOR_PID:-$CML_WORKER_PIDS}"
    t0=$(cml_now)
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    for _ in $(seq 1 500); do
        left=$(cml_tagged_pids "$CML_STACK_TAG")
        [ -z "$left" ] && break
        sleep 0.02
    done
    CML_STOP_SECONDS=$(cml_elapsed "$t0")
    if [ -n "$left" ]; then
        cml_log "still running ${CML_STOP_SECONDS} s after SIGTERM: $left; killing"
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null
        rc=1
    fi
    if [ -n "$CML_SUPERVISOR_PID" ]; then
        wait "$CML_SUPERVISOR_PID"
        CML_SUPERVISOR_STATUS=$?
    fi
    [ -n "$CML_FRONT_PID" ] && wait "$CML_FRONT_PID" 2>/dev/null
    CML_STACK_TAG=
    cml_log "stack stopped ${CML_STOP_SECONDS} s after SIGTERM"
    return $rc
}

# Several stacks at once: cml_stack_start sets the current stack's variables; cml_stack_save
# NAME keeps them under NAME (an identifier), and cml_stack_use NAME makes that stack current
# again (for cml_stack_stop, $CML_BASE_URL, $CML_FCGI_LOG, ...).
CML_STACK_VARS="CML_STACK_TAG CML_BASE_URL CML_PORT CML_RUN_DIR CML_FCGI_LOG CML_FRONT_PID
    CML_WORKER_PIDS CML_SUPERVISOR_PID CML_STATE_DIR"
cml_stack_save() {
    local v
    for v in $CML_STACK_VARS; do
        printf -v "CML_SAVED_${1}_$v" '%s' "${!v:-}"
    done
}
cml_stack_use() {
    local v s
    for v in $CML_STACK_VARS; do
        s="CML_SAVED_${1}_$v"
        printf -v "$v" '%s' "${!s:-}"
    done
    export CML_BASE_URL CML_FCGI_LOG CML_SUPERVISOR_PID CML_WORKER_PIDS CML_STATE_DIR
}

# Runs the Check client (tests/integration/test_service) on the current stack with the named
# suites; returns its exit status.
cml_client() {
    local bin="$CML_TOP_BUILDDIR/tests/integration/test_service"
    [ -x "$bin" ] || cml_fail "missing $bin (built by make check)"
    "$bin" "$@"
}

# The whole contract through one front end (used by test_service_lighttpd.sh and
# test_service_apache.sh):
#   1. spawn-fcgi -F 4: every route and error rule (suite routes), then a selection made on
#      one request holds for 200 requests on every worker (suite pin); SIGTERM stops it all;
#   2. a restart on the same state: the pinned selection is still there (suite persist);
#   3. supervised (--workers 2), no API key: a worker killed with SIGKILL is replaced while
#      the service keeps answering (suite worker); admin routes are open to 127.0.0.1 (suite
#      nokey); SIGTERM to the supervisor stops it all.
cml_service_test() {
    local front=$1 state fails=0
    cml_prepare_models
    state=$(cml_new_state "state-$front")

    cml_stack_start "$front" fork 4 "$state"
    cml_client routes pin || { fails=$((fails + 1)) && cml_dump_logs; }
    cml_stack_stop || cml_fail "$front stack ($CML_WORKER_PIDS) did not stop within 10 s of SIGTERM"
    echo "stop time ($front, spawn-fcgi -F 4): $CML_STOP_SECONDS s"

    cml_stack_start "$front" fork 4 "$state"
    cml_client persist || { fails=$((fails + 1)) && cml_dump_logs; }
    cml_stack_stop || cml_fail "$front stack did not stop within 10 s of SIGTERM"

    # No API_KEY this time: admin routes are open to loopback clients only.
    cml_stack_start "$front" supervised 2 "$(cml_new_state "supervised-$front")" API_KEY=
    cml_client worker nokey || { fails=$((fails + 1)) && cml_dump_logs; }
    cml_stack_stop || cml_fail "$front stack (supervised) did not stop within 10 s of SIGTERM"
    [ "$CML_SUPERVISOR_STATUS" = 0 ] || cml_fail "the supervisor exited with $CML_SUPERVISOR_STATUS"
    echo "stop time ($front, supervised --workers 2): $CML_STOP_SECONDS s"

    [ "$fails" -eq 0 ] || cml_fail "$fails client run(s) failed"
    echo "$front: all suites passed"
}
