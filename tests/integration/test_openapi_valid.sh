#!/bin/sh
# The built OpenAPI document (apidocs/openapi.json, from docs/openapi.yaml) is valid OpenAPI 3.1
# (@seriousme/openapi-schema-validator, pinned in docs/api/package-lock.json), its error codes
# are exactly those of fcgi/api_errors.c and etc/errors, and every route of fcgi/router.c's
# table is in it. Exits 77 when the npm package is absent (npm ci in docs/api) unless
# CML_REQUIRE_AZURITE is set (CI, where scripts/test-all.sh installs it).
set -eu
top=${CML_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${CML_TOP_BUILDDIR:-.}
py=${PYTHON3:-python3}
doc="$build/apidocs/openapi.json"
[ -f "$doc" ] || { echo "$doc is not built (make)"; exit 1; }
validator="$top/docs/api/node_modules/.bin/validate-api"
if [ ! -x "$validator" ] || ! command -v node >/dev/null 2>&1; then
    echo "the OpenAPI validator is missing (cd docs/api && npm ci)"
    [ -n "${CML_REQUIRE_AZURITE:-}" ] && exit 1
    exit 77
fi
out=$("$validator" "$doc") || true
case "$out" in
*'"valid": true'*) echo "openapi: $doc is valid OpenAPI 3.1" ;;
*) echo "openapi: $doc is not valid OpenAPI 3.1:"; echo "$out" | head -n 40; exit 1 ;;
esac
"$py" - "$doc" "$top" <<'PY'
import glob, json, re, sys
doc, top = json.load(open(sys.argv[1])), sys.argv[2]
enum = set(doc["components"]["schemas"]["ErrorCode"]["enum"])
codes = set(re.findall(r'E\(API_ERR_\w+, HTTP_\w+, "([a-z0-9_]+)"',
                       open(top + "/fcgi/api_errors.c").read()))
codes |= {json.load(open(f))["error"] for f in glob.glob(top + "/etc/errors/*.html")}
bad = 0
for c in sorted(codes - enum):
    print(f"openapi: error code {c} (fcgi/api_errors.c or etc/errors) is not in ErrorCode"); bad = 1
for c in sorted(enum - codes):
    print(f"openapi: ErrorCode {c} is not a code of the server"); bad = 1
paths = {re.sub(r"\{[^}]+\}", "{}", p): {m.upper() for m in ops} for p, ops in doc["paths"].items()}
routes = re.findall(r'\{(GET|POST), "([^"]+)", handle_', open(top + "/fcgi/router.c").read())
for method, route in routes:
    if method not in paths.get(re.sub(r"\{[^}]+\}", "{}", route), set()):
        print(f"openapi: {method} {route} (fcgi/router.c) is not in the document"); bad = 1
print(f"openapi: {len(codes)} error codes and {len(routes)} routes checked")
sys.exit(bad)
PY
echo "1 passed, 0 failed"
