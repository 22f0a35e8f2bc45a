#!/bin/sh
# docker/Dockerfile passes dockerfilelint (npm, pinned in package.json; settings in
# .dockerfilelintrc). Exit 77 when the npm packages are absent and CML_REQUIRE_AZURITE is unset.
top=${CML_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
lint="$top/tests/integration/node_modules/.bin/dockerfilelint"
if [ ! -x "$lint" ]; then
    echo "dockerfilelint missing (cd tests/integration && npm ci)"
    [ "${CML_REQUIRE_AZURITE:-0}" = 1 ] && exit 1
    exit 77
fi
cd "$top" && "$lint" -c "$top" docker/Dockerfile
