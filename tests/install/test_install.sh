#!/bin/sh
# `make install DESTDIR=...` lays out everything, and the installed program serves from there:
# spawn-fcgi starts the installed cultivate-ml-fcgi with the installed configuration and
# bundled data (first start trains the models), lighttpd fronts it with the installed
# snippet, and the API answers.
set -eu
top=${CML_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${CML_TOP_BUILDDIR:-.}
work=$(mktemp -d /tmp/cml-install.XXXXXX)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "install test: $*"; cat "$work/fcgi.log" 2>/dev/null | tail -n 20; exit 1; }
export OMP_WAIT_POLICY=passive

make -C "$build" install DESTDIR="$work/root" >"$work/install.log" 2>&1 || { tail "$work/install.log"; fail "make install failed"; }
var() { sed -n "s|^$1 = ||p" "$build/Makefile" | head -n1; }
prefix=$(var prefix)
sysconfdir=$(var sysconfdir | sed "s|\${prefix}|$prefix|")
root="$work/root"
bindir="$root$prefix/bin" sbindir="$root$prefix/sbin" datadir="$root$prefix/share/cultivate-ml"
mandir="$root$prefix/share/man"
for f in "$bindir/cultivate-ml" "$sbindir/cultivate-ml-fcgi" "$datadir/questions.csv" \
    "$datadir/README.md" "$root$sysconfdir/cultivate-ml.conf" "$mandir/man1/cultivate-ml.1" \
    "$mandir/man8/cultivate-ml-fcgi.8" "$mandir/man5/cultivate-ml.conf.5" \
    "$datadir/etc/lighttpd/cultivate-ml.conf" "$datadir/etc/apache2/cultivate-ml.conf" \
    "$datadir/etc/haproxy/cultivate-ml.cfg" \
    "$datadir/etc/errors/411.html" "$datadir/etc/errors/502.html" "$datadir/etc/lighttpd/request-id.lua" \
    "$datadir/apidocs/openapi.json" "$datadir/apidocs/index.html" "$datadir/apidocs/init.js" \
    "$datadir/apidocs/swagger-ui-bundle.js" "$datadir/apidocs/swagger-ui.css" \
    "$root$prefix/lib/systemd/system/cultivate-ml.service" "$datadir/dashboard/index.html" \
    "$datadir/dashboard/js/main.js"; do
    [ -e "$f" ] || fail "not installed: ${f#$root}"
done
grep -q -- "-- $prefix/sbin/cultivate-ml-fcgi" "$root$prefix/lib/systemd/system/cultivate-ml.service" ||
    fail "the systemd unit does not run the installed program"
grep -q "$sysconfdir/cultivate-ml.conf" "$mandir/man8/cultivate-ml-fcgi.8" || fail "man page paths not filled in"
"$sbindir/cultivate-ml-fcgi" -c "$root$sysconfdir/cultivate-ml.conf" --check-config >/dev/null ||
    fail "the installed configuration does not validate"
"$bindir/cultivate-ml" --version | grep -q cultivate-ml || fail "installed CLI does not run"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$work/sock|g" -e "s|@DIR@|$work|g" -e "s|@ERRORS@|$datadir/etc/errors|g" \
    -e "s|@APIDOCS@|$datadir/apidocs|g" \
    -e "s|@DASHBOARD@|$datadir/dashboard|g" \
    "$datadir/etc/lighttpd/standalone.conf.in" >"$work/lighttpd.conf"
STATE_DIR="$work/state" MODEL_CACHE_DIR="$work/models" TRAINING_DATA="$datadir/questions.csv" \
    CML_TRAINER="$bindir/cultivate-ml" MODEL_TYPE=classic OPENAPI_DOCUMENT="$datadir/apidocs/openapi.json" \
    spawn-fcgi -n -s "$work/sock" -- "$sbindir/cultivate-ml-fcgi" -c "$root$sysconfdir/cultivate-ml.conf" \
    --workers 1 >"$work/fcgi.log" 2>&1 &
pids="$pids $!"
lighttpd=$(command -v lighttpd || echo /usr/sbin/lighttpd)
"$lighttpd" -D -f "$work/lighttpd.conf" &
pids="$pids $!"
i=0
until curl -fsS "http://127.0.0.1:$port/api/ready" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -gt 1200 ] && fail "the installed service never became ready"
    sleep 0.1
done
out=$(curl -fsS -X POST "http://127.0.0.1:$port/api/v1/models/classify" -H 'Content-Type: application/json' \
    -d '{"text": "Why do you think the ice melted?"}') || fail "classify failed"
echo "$out" | grep -q '"classification":"OEQ"' || fail "classify answered $out"
# The installed OpenAPI document (the service) and its page (lighttpd, static files).
curl -fsS "http://127.0.0.1:$port/api/openapi.json" | cmp -s - "$datadir/apidocs/openapi.json" ||
    fail "GET /api/openapi.json is not the installed document"
curl -fsS "http://127.0.0.1:$port/api/docs/" | grep -q 'swagger-ui-bundle.js' || fail "GET /api/docs/ is not the page"
# lighttpd's own answer (411: a POST without Content-Length) carries an X-Request-Id from the
# installed mod_magnet script (a missing script only logs, so look at the header).
hdr=$(curl -sS -o /dev/null -D - -X POST "http://127.0.0.1:$port/api/v1/models/classify") || fail "no 411"
echo "$hdr" | grep -q '^HTTP/1.1 411' || fail "a POST without Content-Length answered $(echo "$hdr" | head -n1)"
echo "$hdr" | tr -d '\r' | grep -Eqi '^X-Request-Id: [0-9a-f]{32}$' || fail "lighttpd's 411 has no X-Request-Id"
# The dashboard from the installed files, beside the API.
ct=$(curl -fsS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$port/dashboard/") || fail "no /dashboard/"
case "$ct" in text/html*) ;; *) fail "/dashboard/ is $ct" ;; esac
echo "install test: installed under $prefix in a DESTDIR, ready after $((i / 10)) s, classify answered, dashboard served"
echo "1 passed, 0 failed"
