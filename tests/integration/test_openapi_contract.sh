#!/bin/bash
# docs/openapi.yaml against the real server through lighttpd (issue 18): requests built from
# the document (openapi_contract.py), every answer validated against it (python3-jsonschema),
# and the router's routes all documented. Routes another branch adds (the Open Inference
# Protocol) are reported as "documented, not answered", not failed. Exits 77 when python3's
# jsonschema, spawn-fcgi or lighttpd is missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
py=${PYTHON3:-python3}
"$py" -c 'import jsonschema' 2>/dev/null || {
    echo "python3-jsonschema is not installed"
    exit 77
}
cml_require lighttpd || exit 77
doc="$CML_TOP_BUILDDIR/apidocs/openapi.json"
[ -f "$doc" ] || {
    echo "$doc is not built (make)"
    exit 1
}
cml_env_init
cml_prepare_models
# Small limits so that the oversized bodies are cheap to send.
cml_stack_start lighttpd fork 2 "$(cml_new_state contract)" API_KEY=contract-key \
    MAX_BODY_BYTES=65536 MAX_TRANSCRIPT_BYTES=65536
t0=$(cml_now)
"$py" "$here/openapi_contract.py" "$CML_BASE_URL" "$doc" "$CML_TOP_SRCDIR/fcgi/router.c" \
    contract-key 65536 || cml_fail "answers of the server do not match docs/openapi.yaml"
echo "contract test: $(cml_elapsed "$t0") s"
# The document the service serves is the one built, and the page is served as static files.
check_page() { # front end name, for the messages
    curl -fsS "$CML_BASE_URL/api/openapi.json" | cmp -s - "$doc" ||
        cml_fail "$1: GET /api/openapi.json is not the built document"
    page=$(curl -fsS "$CML_BASE_URL/api/docs/") || cml_fail "$1: GET /api/docs/ failed"
    case "$page" in *swagger-ui-bundle.js*) ;; *) cml_fail "$1: GET /api/docs/ is not the page" ;; esac
    ct=$(curl -fsS -o /dev/null -w '%{content_type}' "$CML_BASE_URL/api/docs/swagger-ui-bundle.js")
    case "$ct" in text/javascript*) ;; *) cml_fail "$1: swagger-ui-bundle.js served as $ct" ;; esac
    # Swagger UI itself, not the stand-in of a build that had no npm (allowed outside CI only).
    if ! curl -fsS "$CML_BASE_URL/api/docs/swagger-ui-bundle.js" | grep -q SwaggerUIBundle; then
        [ "${CML_REQUIRE_AZURITE:-0}" = 1 ] &&
            cml_fail "$1: /api/docs/swagger-ui-bundle.js is the stand-in, not Swagger UI"
        echo "$1: warning: /api/docs/ serves the stand-in bundle (no npm at build time)"
    fi
    ct=$(curl -fsS -o /dev/null -w '%{content_type}' "$CML_BASE_URL/api/docs/swagger-ui.css")
    case "$ct" in text/css*) ;; *) cml_fail "$1: swagger-ui.css served as $ct" ;; esac
    loc=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "$CML_BASE_URL/api/docs")
    case "$loc" in 30[12]" $CML_BASE_URL/api/docs/") ;; *) cml_fail "$1: GET /api/docs answered $loc" ;; esac
    # Beside the page the workers still answer /api/ (a JSON 404, not a file of the tree).
    st=$(cml_http_status "$CML_BASE_URL/api/docsx")
    [ "$st" = 404 ] || cml_fail "$1: GET /api/docsx answered $st"
    echo "$1: /api/docs/ and /api/openapi.json served"
}
check_page lighttpd
cml_stack_stop >/dev/null || true
# The same through Apache (its static block in standalone.conf.in).
if cml_require apache >/dev/null; then
    cml_stack_start apache fork 1 "$(cml_new_state contract-apache)"
    check_page Apache
    cml_stack_stop >/dev/null || true
fi
echo "1 passed, 0 failed"
