#!/bin/bash
# Integration test of the blob model store (core/azure/blob_store.c) and the operator commands
# (cultivate-ml upload, download, list, train --upload) against a real Azurite, started here
# on a free loopback port and stopped at the end, with the official SDK for interoperability:
#   1. the store's C API (tests/integration/test_blob_store_azurite.c): publish, ensure-local
#      (downloaded, then not-modified with the remembered ETag: one request, no body),
#      conditional pointer moves, list, delete, active.json, retention, training data
#   2. corrupted model blobs are refused and nothing reaches the local store
#   3. two instances racing publish_if_absent on an empty container: one wins, one adopts
#   4. the CLI round trip: train --upload, list, download into another directory, info;
#      upload [--latest]; usage errors; the connection string is never echoed
#   5. the SDK lists and downloads what the CLI uploaded; a model the SDK published as
#      TYPE/VERSION.model + pointer is taken by ensure-local and by `cultivate-ml download`
# Exits 77 (skipped) when node or the npm packages are missing (`npm ci` in
# tests/integration), unless CML_REQUIRE_AZURITE=1, which makes that a failure.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${CML_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${CML_TOP_BUILDDIR:-$(pwd)}
# shellcheck source-path=SCRIPTDIR source=azurite.sh
. "$src/tests/integration/azurite.sh"

driver="$build/tests/integration/test_blob_store_azurite"
cli="$build/cultivate-ml"
sdk="$src/tests/integration/sdk_store.mjs"
data=${CML_TEST_DATA:-$src/data/questions.csv}
azurite_require_sdk
for prog in "$driver" "$cli"; do
    if [ ! -x "$prog" ]; then
        echo "missing $prog (built by make check)"
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/cml-blob-store-test.XXXXXX") || exit 1
cleanup() {
    azurite_stop
    rm -rf "$work"
}
trap cleanup EXIT


check() {
    if [ "$1" = 0 ]; then
        total_pass=$((total_pass + 1))
        echo "ok - $2"
    else
        total_fail=$((total_fail + 1))
        echo "not ok - $2"
    fi
}

# cli WANT_RC DESCRIPTION ARGS...: runs cultivate-ml, output (stdout and stderr) in $out;
# checks the exit status and that the account key never shows.
out=''
cli() {
    local want=$1 what=$2 rc
    shift 2
    out=$("$cli" "$@" 2>&1)
    rc=$?
    if [ "$rc" != "$want" ]; then
        printf '%s\n' "$out" | tail -n 20
        check 1 "$what: exit $rc, want $want"
    else
        check 0 "$what"
    fi
    case $out in
    *"$AZURITE_DEV_KEY"* | *Eby8vdM02xNOcqFl*) check 1 "$what: the account key was echoed" ;;
    esac
}

# json_get FIELD-EXPRESSION: evaluates a JavaScript expression on the JSON in $out (as j).
json_get() {
    printf '%s' "$out" | node -e '
let s = ""; process.stdin.on("data", (c) => { s += c; });
process.stdin.on("end", () => {
  const line = s.split("\n").filter((l) => l.startsWith("{")).pop();
  const j = JSON.parse(line);
  const v = eval(process.argv[1]);
  process.stdout.write(v === undefined || v === null ? "" : String(v));
});' "$1"
}

azurite_start || exit 1
conn=$AZURITE_CONNECTION_STRING
echo "azurite (http) on port $AZURITE_PORT"

# A small training set and one classic model to derive versions from.
head -n 301 "$data" >"$work/small.csv"
if ! "$cli" train --model classic --folds 0 --data "$work/small.csv" --out "$work/base" \
    >"$work/base.log" 2>&1; then
    cat "$work/base.log"
    echo "cannot train the base model"
    exit 1
fi
model=$(readlink -f "$work/base/classic_latest.model")

azurite_step "store API" "$driver" store "$conn" "$work" "$model"
azurite_step "corrupted blobs are refused" "$driver" corrupt "$conn" "$work" "$model"
azurite_step "first-start race" "$driver" race "$conn" "$work" "$model"

echo "--- CLI round trip"
export AZURE_STORAGE_CONNECTION_STRING=$conn AZURE_STORAGE_CONTAINER=cli-test
cli 0 "train --upload" train --model classic --folds 0 --data "$work/small.csv" \
    --out "$work/cli1" --upload --json
v1=$(json_get 'j.version')
check "$([ -n "$v1" ] && [ "$(json_get 'j.uploaded')" = true ] && echo 0 || echo 1)" \
    "train --upload reports version $v1 uploaded"
f1="$work/cli1/classic_$v1.model"
sha1=$(sha256sum "$f1" | cut -d' ' -f1)
cli 0 "list --json" list --json
check "$([ "$(json_get 'j.container')" = cli-test ] && echo 0 || echo 1)" "list names the container"
check "$([ "$(json_get 'j.latest.classic')" = "$v1" ] && echo 0 || echo 1)" "list: latest classic is $v1"
check "$([ -z "$(json_get 'j.latest.ensemble')" ] && echo 0 || echo 1)" "list: no ensemble"
check "$([ "$(json_get "j.models.find((m) => m.version === '$v1').sha256")" = "$sha1" ] && echo 0 || echo 1)" \
    "list: sha256 of $v1"
check "$([ "$(json_get "j.models.find((m) => m.version === '$v1').size_bytes")" = "$(stat -c %s "$f1")" ] && echo 0 || echo 1)" \
    "list: size of $v1"
cli 0 "list classic" list classic
check "$(printf '%s\n' "$out" | grep -q "^classic  *$v1 .*$sha1  latest$" && echo 0 || echo 1)" \
    "list prints version, size, sha256 and the latest mark"
cli 0 "download classic --out DIR" download classic --out "$work/cli2"
check "$(cmp -s "$f1" "$work/cli2/classic_$v1.model" && echo 0 || echo 1)" "downloaded file is the uploaded one"
check "$([ "$(readlink "$work/cli2/classic_latest.model")" = "classic_$v1.model" ] && echo 0 || echo 1)" \
    "download points classic_latest.model at it"
cli 0 "download again" download classic --out "$work/cli2" --json
check "$([ "$(json_get 'j.status')" = present ] && echo 0 || echo 1)" "second download: already present"
cli 0 "info on the downloaded model" info "$work/cli2/classic_latest.model"
check "$(printf '%s\n' "$out" | grep -q "classic model $v1" && echo 0 || echo 1)" "info shows $v1"
cli 0 "download classic VERSION" download classic "$v1" --out "$work/cli3"
check "$([ -f "$work/cli3/classic_$v1.model" ] && [ ! -e "$work/cli3/classic_latest.model" ] && echo 0 || echo 1)" \
    "a given version is downloaded without moving the latest link"
cli 1 "download of a missing version" download classic 20200101T000000Z --out "$work/cli3"
cli 1 "download of a type the store lacks" download ensemble --out "$work/cli4"
check "$([ ! -e "$work/cli4" ] && echo 0 || echo 1)" "nothing written for a missing model"

# upload: a second version (the same model under another version name).
"$driver" derive "$f1" "$work/cli5" 20270101T000000Z >/dev/null 2>&1
f2="$work/cli5/classic_20270101T000000Z.model"
cli 0 "upload FILE" upload "$f2"
check "$(printf '%s\n' "$out" | grep -q '^uploaded cli-test/classic/20270101T000000Z.model' && echo 0 || echo 1)" \
    "upload names the blob"
cli 0 "list after upload" list --json
check "$([ "$(json_get 'j.latest.classic')" = "$v1" ] && [ "$(json_get 'j.models.length')" = 2 ] && echo 0 || echo 1)" \
    "upload without --latest leaves the pointer"
cli 0 "upload FILE --latest" upload "$f2" --latest --json
check "$([ "$(json_get 'j.existed')" = true ] && [ "$(json_get 'j.latest')" = true ] && echo 0 || echo 1)" \
    "upload --latest of a stored version moves the pointer"
cli 0 "upload --latest again" upload "$f2" --latest
cli 0 "download the new latest" download classic --out "$work/cli2" --json
check "$([ "$(json_get 'j.version')" = 20270101T000000Z ] && [ "$(json_get 'j.status')" = downloaded ] && echo 0 || echo 1)" \
    "download follows the pointer"
head -c 2000 /dev/urandom >"$work/garbage.model"
cli 1 "upload of a file that is not a model" upload "$work/garbage.model"

# Usage and configuration errors.
cli 2 "download without TYPE" download
cli 2 "download of an unknown type" download bogus
cli 2 "download of an invalid version" download classic ../x
cli 2 "list with two operands" list classic ensemble
cli 2 "upload without FILE" upload
cli 2 "invalid container name" list --container Bad_Name
unset AZURE_STORAGE_CONNECTION_STRING
cli 2 "list without a connection string" list
cli 2 "train --upload without a connection string" train --model classic --folds 0 \
    --data "$work/small.csv" --out "$work/cli6" --upload
check "$([ ! -e "$work/cli6" ] && echo 0 || echo 1)" "no training without a connection string"
cli 0 "--connection-string instead of the environment" list --connection-string "$conn"
cli 2 "a bad connection string" list \
    --connection-string "AccountName=x;AccountKey=$AZURITE_DEV_KEY;Frobnicate=1"
cli 1 "a missing container" list --connection-string "$conn" --container no-such-container
export AZURE_STORAGE_CONNECTION_STRING=$conn

azurite_step "SDK reads the CLI upload" node "$sdk" verify "$conn" cli-test classic 20270101T000000Z \
    "$f2" classic_latest.model

"$driver" derive "$f1" "$work/sdk-src" 20280101T000000Z >/dev/null 2>&1
f3="$work/sdk-src/classic_20280101T000000Z.model"
azurite_step "SDK publishes" node "$sdk" publish "$conn" sdk-pub classic 20280101T000000Z "$f3" \
    classic_latest.model
azurite_step "ensure-local takes the SDK's model" "$driver" ensure "$conn" sdk-pub classic \
    "$work/sdk-local" 20280101T000000Z
cli 0 "cultivate-ml download of the SDK's model" download classic --container sdk-pub \
    --out "$work/sdk-cli"
check "$(cmp -s "$f3" "$work/sdk-cli/classic_20280101T000000Z.model" && echo 0 || echo 1)" \
    "the CLI downloads the SDK's model"

echo "blob store: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
