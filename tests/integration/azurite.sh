# shellcheck shell=bash
# Azurite (the Azure Storage emulator, blob service) for tests: a helper to source from bash.
#
#   . tests/integration/azurite.sh
#   azurite_available || exit 77          # node and the npm packages are installed?
#   trap azurite_stop EXIT
#   azurite_start [extra azurite-blob options, e.g. --cert C --key K --oauth basic] || exit 1
#   ... use $AZURITE_CONNECTION_STRING, $AZURITE_BLOB_ENDPOINT, $AZURITE_PORT ...
#   azurite_stop
#
# Azurite listens on 127.0.0.1 on a free port, keeps its data in a fresh temporary directory,
# and is stopped (and the directory removed) by azurite_stop. The npm packages come from
# `npm ci` in tests/integration (package.json pins azurite@3.35.0); CML_NODE_MODULES
# overrides where node_modules is.

AZURITE_DEV_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
AZURITE_PID=
AZURITE_DIR=
AZURITE_PORT=

azurite_node_modules() {
    if [ -n "${CML_NODE_MODULES:-}" ]; then
        printf '%s\n' "$CML_NODE_MODULES"
    else
        printf '%s\n' "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/node_modules"
    fi
}

# True when node and azurite-blob are installed.
azurite_available() {
    command -v node >/dev/null 2>&1 && [ -e "$(azurite_node_modules)/.bin/azurite-blob" ]
}

# A TCP port that was free on 127.0.0.1 a moment ago.
azurite_free_port() {
    node -e 'const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { process.stdout.write(String(s.address().port)); s.close(); });'
}

# Starts Azurite; extra arguments go to azurite-blob. Sets AZURITE_PORT, AZURITE_PID,
# AZURITE_DIR, AZURITE_BLOB_ENDPOINT and AZURITE_CONNECTION_STRING.
azurite_start() {
    local bin scheme=http _try _i
    bin="$(azurite_node_modules)/.bin/azurite-blob"
    case " $* " in *" --cert "*) scheme=https ;; esac
    AZURITE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/azurite.XXXXXX") || return 1
    for _try in 1 2 3; do
        AZURITE_PORT=$(azurite_free_port) || return 1
        "$bin" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --location "$AZURITE_DIR" \
            --silent --disableTelemetry --skipApiVersionCheck "$@" \
            >>"$AZURITE_DIR/azurite.log" 2>&1 &
        AZURITE_PID=$!
        for _i in $(seq 1 150); do
            if ! kill -0 "$AZURITE_PID" 2>/dev/null; then
                break
            fi
            if (exec 3<>"/dev/tcp/127.0.0.1/$AZURITE_PORT") 2>/dev/null; then
                AZURITE_BLOB_ENDPOINT="$scheme://127.0.0.1:$AZURITE_PORT/devstoreaccount1"
                AZURITE_CONNECTION_STRING="DefaultEndpointsProtocol=$scheme;AccountName=devstoreaccount1;AccountKey=$AZURITE_DEV_KEY;BlobEndpoint=$AZURITE_BLOB_ENDPOINT;"
                export AZURITE_PORT AZURITE_PID AZURITE_DIR AZURITE_BLOB_ENDPOINT \
                    AZURITE_CONNECTION_STRING
                return 0
            fi
            sleep 0.1
        done
        # Died (port taken between the check and the bind?) or never listened: try again.
        kill "$AZURITE_PID" 2>/dev/null
        wait "$AZURITE_PID" 2>/dev/null
        AZURITE_PID=
    done
    echo "azurite did not start; its log:" >&2
    cat "$AZURITE_DIR/azurite.log" >&2
    rm -rf "$AZURITE_DIR"
    AZURITE_DIR=
    return 1
}

# Stops the Azurite started by azurite_start (TERM, then KILL after 5 s) and removes its data.
# With arguments PID DIR it stops that instance instead (when a test runs more than one:
# save $AZURITE_PID and $AZURITE_DIR after each azurite_start).
azurite_stop() {
    local _i pid=${1:-$AZURITE_PID} dir=${2:-$AZURITE_DIR}
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        for _i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    [ -n "$dir" ] && rm -rf "$dir"
    if [ $# -eq 0 ] || [ "$pid" = "$AZURITE_PID" ]; then
        AZURITE_PID=
        AZURITE_DIR=
    fi
    return 0
}

# For the Azurite test scripts: unless node, azurite and @azure/storage-blob are installed,
# exits 77 (skipped), or 1 when CML_REQUIRE_AZURITE=1 makes that a failure. Exports NODE_PATH
# for the SDK scripts.
azurite_require_sdk() {
    if ! azurite_available || [ ! -e "$(azurite_node_modules)/@azure/storage-blob/package.json" ]; then
        echo "node, azurite or @azure/storage-blob missing: run 'npm ci' in tests/integration"
        if [ "${CML_REQUIRE_AZURITE:-0}" = 1 ]; then
            echo "CML_REQUIRE_AZURITE=1: that is a failure"
            exit 1
        fi
        exit 77
    fi
    NODE_PATH=$(azurite_node_modules)
    export NODE_PATH
}

# azurite_step NAME COMMAND...: runs one step of a test script and adds its "N passed, M
# failed" line to total_pass and total_fail; a step without that line, or exiting non-zero,
# counts as a failure.
total_pass=0
total_fail=0
azurite_step() {
    local name=$1 out rc counts p f
    shift
    echo "--- $name"
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    counts=$(printf '%s\n' "$out" | sed -n 's/^.*: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' | tail -n 1)
    if [ -z "$counts" ]; then
        p=0
        f=1
    else
        read -r p f <<<"$counts"
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}
