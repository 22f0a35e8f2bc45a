#!/bin/bash
# The dashboard (issue 12) in a real browser: Debian's chromium, headless, driven by
# chromium-driver and python3-selenium (dashboard.py), against the service behind lighttpd
# (spawn-fcgi -F 2, the API key of the tests configured). First the static files as served:
# /dashboard/ and its modules with their types, Chart.js from libjs-chart.js's installed files,
# /dashboard redirected, the API still the service's (then the same through Apache). Screenshots of every panel at 1280x800
# and 390x844 are kept in tests/integration/artifacts/dashboard/ of the build tree. Exits 77
# when chromium, chromium-driver, python3-selenium or libjs-chart.js is missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require lighttpd || exit 77
# Debian's python3 has python3-selenium; a python3 earlier in PATH (pyenv, a venv) may not.
py=
for p in ${PYTHON3:-} /usr/bin/python3 python3; do
    if "$p" -c 'import selenium' 2>/dev/null; then
        py=$p
        break
    fi
done
[ -n "$py" ] || { echo "python3-selenium is not installed"; exit 77; }
for f in /usr/bin/chromium /usr/bin/chromedriver /usr/share/javascript/chart.js/chart.min.js; do
    [ -e "$f" ] || { echo "$f is missing (chromium, chromium-driver, libjs-chart.js)"; exit 77; }
done
art="$CML_TOP_BUILDDIR/tests/integration/artifacts/dashboard"
rm -rf "$art" && mkdir -p "$art" || exit 1

cml_env_init
cml_prepare_models
cml_stack_start lighttpd fork 2 "$(cml_new_state dashboard)"

# The static side: each answer's status and type, with a header dump on failure.
expect() {
    local path=$1 want_status=$2 want_type=$3 got
    got=$(curl --noproxy '*' -s -o /dev/null -w '%{http_code} %{content_type}' --max-time 5 "$CML_BASE_URL$path")
    case "$got" in
    "$want_status $want_type"*) echo "ok: GET $path: $got" ;;
    *) cml_fail "GET $path answered '$got', wanted '$want_status $want_type'" ;;
    esac
}
expect /dashboard/ 200 text/html
expect /dashboard/index.html 200 text/html
expect /dashboard/dashboard.css 200 text/css
expect /dashboard/js/main.js 200 text/javascript
expect /javascript/chart.js/chart.min.js 200 text/javascript
expect /dashboard 301 ""
expect /dashboard/no-such-file.js 404 application/json
expect /api/v1/models/current 200 application/json
expect /dashboardx 404 application/json

"$py" "$here/dashboard.py" "$CML_BASE_URL" "$CML_TEST_API_KEY" "$art" || cml_fail "the browser test failed (screenshots in $art)"
cml_stack_stop >/dev/null || true

# The same static side through Apache, when it is installed.
if cml_require apache >/dev/null; then
    cml_stack_start apache fork 1 "$(cml_new_state dashboard-apache)"
    expect /dashboard/ 200 text/html
    expect /dashboard/js/main.js 200 text/javascript
    expect /dashboard/dashboard.css 200 text/css
    expect /javascript/chart.js/chart.min.js 200 text/javascript
    expect /dashboard 301 ""
    expect /dashboard/no-such-file.js 404 application/json
    expect /api/v1/models/current 200 application/json
    cml_stack_stop >/dev/null || true
fi
echo "dashboard: all checks passed; screenshots in $art"
