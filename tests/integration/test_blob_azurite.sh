#!/bin/bash
# Integration test of the blob client against a real Azurite (started here on a free port,
# stopped at the end), with the official SDK (@azure/storage-blob) for interoperability:
#   1. the C client's round trip: containers, put/get/head/list/delete, block uploads,
#      conditional requests (tests/integration/test_blob_azurite.c, mode roundtrip)
#   2. the SDK lists and downloads what the C client uploaded (same bytes, sha256 metadata)
#   3. the SDK uploads (in blocks), the C client downloads and verifies
#   4. an account SAS made by the SDK, used by the C client; UseDevelopmentStorage=true
#   5. https Azurite with --oauth basic: the C client with a managed identity token from a
#      stand-in IDENTITY_ENDPOINT and a configured CA; an untrusted certificate is refused
# Exits 77 (skipped) when node or the npm packages are missing (`npm ci` in
# tests/integration), unless CML_REQUIRE_AZURITE=1, which makes that a failure.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${CML_TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${CML_TOP_BUILDDIR:-$(pwd)}
# shellcheck source-path=SCRIPTDIR source=azurite.sh
. "$src/tests/integration/azurite.sh"

client="$build/tests/integration/test_blob_azurite"
sdk="$src/tests/integration/sdk_interop.mjs"
azurite_require_sdk
if [ ! -x "$client" ]; then
    echo "missing $client (built by make check)"
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cml-azurite-test.XXXXXX") || exit 1
http_pid=''
http_dir=''
https_pid=''
https_dir=''
idp_pid=''
cleanup() {
    if [ -n "$idp_pid" ]; then
        kill "$idp_pid" 2>/dev/null
        wait "$idp_pid" 2>/dev/null
    fi
    [ -n "$https_pid" ] && azurite_stop "$https_pid" "$https_dir"
    [ -n "$http_pid" ] && azurite_stop "$http_pid" "$http_dir"
    rm -rf "$work"
}
trap cleanup EXIT


azurite_start || exit 1
http_pid=$AZURITE_PID
http_dir=$AZURITE_DIR
conn=$AZURITE_CONNECTION_STRING
endpoint=$AZURITE_BLOB_ENDPOINT
echo "azurite (http) on port $AZURITE_PORT"

azurite_step "C client round trip" "$client" roundtrip "$conn" "$work"
azurite_step "SDK reads the C upload" node "$sdk" verify "$conn" interop from-c/model.bin "$work/from-c.bin"
head -c 150001 /dev/urandom >"$work/from-sdk.bin"
azurite_step "SDK uploads" node "$sdk" upload "$conn" interop from-sdk/model.bin "$work/from-sdk.bin"
azurite_step "C client reads the SDK upload" "$client" download "$conn" interop from-sdk/model.bin \
    "$work/from-sdk.bin" "$work"
if sas=$(node "$sdk" sas "$conn") && [ -n "$sas" ]; then
    azurite_step "C client with an SDK-made account SAS" "$client" smoke \
        "BlobEndpoint=$endpoint;SharedAccessSignature=$sas" "$work"
else
    echo "could not make a SAS with the SDK"
    total_fail=$((total_fail + 1))
fi
azurite_step "C client with UseDevelopmentStorage=true" "$client" smoke \
    "UseDevelopmentStorage=true;BlobEndpoint=$endpoint" "$work"

# https + OAuth: a self-signed certificate for 127.0.0.1, trusted only through CML_TEST_CA.
if command -v openssl >/dev/null 2>&1 &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
        -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1; then
    if azurite_start --cert "$work/cert.pem" --key "$work/key.pem" --oauth basic; then
        https_pid=$AZURITE_PID
        https_dir=$AZURITE_DIR
        echo "azurite (https, oauth basic) on port $AZURITE_PORT"
        node "$sdk" identity-server "$work/idp.port" "identity-header-value" &
        idp_pid=$!
        for _ in $(seq 1 100); do
            [ -s "$work/idp.port" ] && break
            sleep 0.1
        done
        if [ -s "$work/idp.port" ]; then
            azurite_step "C client with a managed identity (https)" env \
                IDENTITY_ENDPOINT="http://127.0.0.1:$(cat "$work/idp.port")/msi/token" \
                IDENTITY_HEADER=identity-header-value CML_TEST_CA="$work/cert.pem" \
                "$client" mi-smoke "BlobEndpoint=$AZURITE_BLOB_ENDPOINT" "$work"
        else
            echo "the identity endpoint stand-in did not start"
            total_fail=$((total_fail + 1))
        fi
        azurite_step "an untrusted certificate is refused" env -u CML_TEST_CA "$client" tls-reject \
            "$AZURITE_CONNECTION_STRING"
    else
        total_fail=$((total_fail + 1))
    fi
else
    echo "openssl cannot make a test certificate"
    total_fail=$((total_fail + 1))
fi

echo "azurite: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
