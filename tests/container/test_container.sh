#!/bin/sh
# Container test (make check-container): builds the production and fullml stages of
# docker/Dockerfile with podman (no Docker engine on these machines), on a local
# debian:bookworm-slim base made with debootstrap, runs the fullml image against Azurite and
# checks health, classify, select and retrain through the container's port, then reports
# each image's size. Exit 77 (skip) without podman, unless CML_REQUIRE_CONTAINER=1.
set -eu
top=${CML_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need podman || ! need debootstrap; then
    echo "container test: podman or debootstrap missing"
    [ "${CML_REQUIRE_CONTAINER:-0}" = 1 ] && exit 1
    exit 77
fi
podman_run() {
    podman --cgroup-manager=cgroupfs --events-backend=file --runtime runc "$@"
}
work=$(mktemp -d /tmp/cml-container.XXXXXX)
name="cml-test-$$"
azurite_pid=""
cleanup() {
    podman_run rm -f "$name" >/dev/null 2>&1 || true
    if [ -n "$azurite_pid" ]; then
        kill "$azurite_pid" 2>/dev/null || true
        wait "$azurite_pid" 2>/dev/null || true
    fi
    rm -rf "$work" 2>/dev/null || { sleep 1; rm -rf "$work"; }
}
trap cleanup EXIT

# 1. The base image, once per machine.
if ! podman image exists debian:bookworm-slim; then
    echo "container test: making debian:bookworm-slim with debootstrap"
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
    debootstrap --variant=minbase bookworm "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$work/rootfs" -c . | podman import - debian:bookworm-slim >/dev/null
    rm -rf "$work/rootfs"
fi

# 2. Both stages.
for target in production fullml; do
    start=$(date +%s)
    podman build --isolation=chroot --network=host -f "$top/docker/Dockerfile" \
        --target "$target" -t "cultivate-ml:$target" "$top" >"$work/build-$target.log" 2>&1 || {
        tail -n 40 "$work/build-$target.log"
        echo "container test: building $target failed"
        exit 1
    }
    echo "container test: built $target in $(($(date +%s) - start)) s"
done

# 3. Azurite on a free loopback port, the fullml image beside it on the host network.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
azport=$(free_port)
port=$(free_port)
azurite="$top/tests/integration/node_modules/.bin/azurite-blob"
if [ ! -x "$azurite" ]; then
    echo "container test: Azurite missing (cd tests/integration && npm ci)"
    exit 1
fi
"$azurite" --blobHost 127.0.0.1 --blobPort "$azport" --location "$work/azurite" --silent \
    --disableTelemetry --skipApiVersionCheck >"$work/azurite.log" 2>&1 &
azurite_pid=$!
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
conn="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$azport/devstoreaccount1;"
podman_run run -d --name "$name" --network host --ulimit nofile=20000:20000 \
    --ulimit nproc=1000:1000 -e PORT="$port" -e USE_AZURE_STORAGE=true \
    -e AZURE_STORAGE_CONNECTION_STRING="$conn" -e API_KEY=container-test-key \
    cultivate-ml:fullml >/dev/null

base="http://127.0.0.1:$port"
i=0
until curl -fsS "$base/api/ready" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 180 ]; then
        podman_run logs "$name" | tail -n 40
        echo "container test: the service never became ready"
        exit 1
    fi
    sleep 1
done
echo "container test: ready after ${i} s"

fail() { echo "container test: $*"; podman_run logs "$name" 2>&1 | tail -n 30; exit 1; }
body=$(curl -fsS "$base/api/health") || fail "health"
echo "$body" | grep -q '"status":"healthy"' || fail "health is not healthy: $body"
echo "$body" | grep -q '"backend":"azure"' || fail "health does not report blob storage: $body"
body=$(curl -fsS -X POST "$base/api/v1/models/classify" -H 'Content-Type: application/json' \
    -d '{"text":"What do you think will happen if we add more water?"}') || fail "classify"
echo "$body" | grep -q '"classification":"OEQ"' || fail "classify answered $body"
echo "$body" | grep -q '"model_type":"ensemble"' || fail "classify did not use the ensemble: $body"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/models/select" \
    -H 'Content-Type: application/json' -d '{"model_type":"classic"}')
[ "$code" = 401 ] || fail "select without the key answered $code"
body=$(curl -fsS -X POST "$base/api/v1/models/select" -H 'Authorization: Bearer container-test-key' \
    -H 'Content-Type: application/json' -d '{"model_type":"classic"}') || fail "select"
echo "$body" | grep -q '"current_model":"classic"' || fail "select answered $body"
body=$(curl -fsS -X POST "$base/api/v1/models/retrain" -H 'X-API-Key: container-test-key' \
    -H 'Content-Type: application/json' -d '{"model_type":"classic"}') || fail "retrain"
task=$(echo "$body" | sed -n 's/.*"task_id":"\([^"]*\)".*/\1/p')
[ -n "$task" ] || fail "retrain answered $body"
i=0
while :; do
    status=$(curl -fsS "$base/api/v1/models/training/status/$task" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
    [ "$status" = completed ] && break
    [ "$status" = failed ] && fail "retrain failed"
    i=$((i + 1))
    [ $i -gt 300 ] && fail "retrain did not finish"
    sleep 1
done
echo "container test: health, classify, select and retrain passed through port $port"
for target in production fullml; do
    size=$(podman image inspect --format '{{.Size}}' "cultivate-ml:$target")
    echo "container test: image cultivate-ml:$target is $((size / 1048576)) MiB"
done
rss=$(podman_run exec "$name" sh -c 'for d in /proc/[0-9]*; do
    case "$(tr "\0" " " < "$d/cmdline" 2>/dev/null)" in
    *cultivate-ml-fcgi\ ) grep VmRSS "$d/status" ;;
    esac
done' 2>/dev/null || true)
echo "container test: worker resident memory: $(echo "$rss" | tr '\n' ' ')"
echo "1 passed, 0 failed"
