#!/bin/sh
# Installs everything cultivate-ml needs to build, test and serve on Debian 12, idempotently.
#   scripts/install-deps.sh          build, test and serve dependencies
#   scripts/install-deps.sh --runtime only what the installed program needs to run
#   scripts/install-deps.sh --container  also podman, buildah and debootstrap for the image tests,
#                                        and debhelper and lintian for the Debian package test
# Run as root (or through sudo). Safe to run again: installed packages are skipped.
set -eu

runtime="libfcgi0ldbl spawn-fcgi lighttpd lighttpd-modules-lua libjson-c5 libcurl4 libssl3 libsqlite3-0 sqlite3 libpq5
  libxgboost0 liblinear4 libfann2 libstemmer0d libxxhash0 ca-certificates libjs-chart.js"
build="build-essential autoconf automake libtool pkg-config autoconf-archive libfcgi-dev
  libjson-c-dev libcurl4-openssl-dev libssl-dev libsqlite3-dev libxgboost-dev liblinear-dev
  libfann-dev libstemmer-dev libxxhash-dev libpq-dev check python3 python3-yaml"
test="apache2 valgrind wrk curl python3 python3-jsonschema clang-format clang libclang-rt-dev nodejs openssl procps psmisc iproute2 haproxy
  chromium chromium-driver python3-selenium postgresql"

container="podman buildah runc debootstrap uidmap debhelper lintian"
case "${1:-}" in
--runtime) want="$runtime" ;;
"") want="$runtime $build $test" ;;
--container) want="$runtime $build $test $container" ;;
*) echo "usage: $0 [--runtime]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# npm comes with NodeSource's nodejs; Debian's nodejs needs the separate package.
if [ "${1:-}" != --runtime ] && ! command -v npm >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
echo "dependencies: all installed"
