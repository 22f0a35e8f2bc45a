#!/bin/sh
# The whole test suite, as CI runs it, from a clean checkout on Debian 12 (as root):
#   1. installs what the build and the tests need (Debian packages, npm test tools, Swagger UI);
#   2. builds with every learner and runs `make check` (unit tests, corpus bars, style,
#      integration tests against lighttpd, Apache, spawn-fcgi and Azurite);
#   2b. fuzzes every parser harness with libFuzzer (clang, ASan+UBSan) for FUZZ_SECONDS each
#      (default 120; two at a time on two cores: about 10 minutes for the nine with the
#      build), printing executions and coverage (make fuzz);
#   3. builds again with AddressSanitizer and UndefinedBehaviorSanitizer and runs the tests;
#   4. runs the unit tests under valgrind;
#   5. builds the classic-only configuration (the `production` image's) and runs its tests;
#   6. builds both images with podman (installed in step 1 with --container) and runs the
#      fullml one against Azurite (make check-container);
#   7. then too, builds the Debian packages (DEB_BUILD_OPTIONS=nocheck: step 2 ran the unit
#      tests), runs lintian, and installs, upgrades, removes and purges them in a clean
#      Debian 12 container (make check-package).
# Build trees go under build/ (ignored by git); an in-tree build is removed first (make
# distclean). Exit status 0 only when everything passed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)

# --container: podman, debootstrap, debhelper and lintian too, for steps 6 and 7.
"$top/scripts/install-deps.sh" --container
# Azurite and the Azure SDK for the blob storage tests, exactly as the lock file pins them;
# from here on a missing Azurite fails those tests instead of skipping them.
(cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
# Swagger UI (vendored into the data directory by the build, for /api/docs/) and the OpenAPI
# validator of make check, as docs/api/package-lock.json pins them.
(cd docs/api && npm ci --no-audit --no-fund --loglevel=error)
export CML_REQUIRE_AZURITE=1
# Likewise PostgreSQL (Debian's postgresql, installed in step 1) for the shared-state tests.
export CML_REQUIRE_POSTGRES=1
[ -x configure ] || ./autogen.sh
# The suites build out of tree (build/NAME), which configure refuses while the checkout holds
# an in-tree build (README's first command, `make run`): that one is cleaned away first.
if [ -f config.status ]; then
    echo "an in-tree build is here (./configure was run in $top): make distclean first"
    make distclean >/dev/null
fi

summary=""
run_suite() { # name, configure flags, make target
    name=$1 flags=$2 target=$3
    mkdir -p "build/$name"
    (cd "build/$name" && "$top/configure" $flags >/dev/null && make -j"$jobs" >/dev/null &&
        make -j"$jobs" $target) || {
        echo "FAILED: $name ($target)"
        for log in $(find "build/$name/tests" -name '*.log' 2>/dev/null); do
            grep -q "^FAIL\|^ERROR" "$log" 2>/dev/null || continue
            echo "--- $log"
            # Check's failure lines first: the tail may be all server log.
            grep -E ':[FE]:|^request ' "$log" | head -n 20
            tail -n 40 "$log"
        done
        exit 1
    }
    summary="$summary $name"
}

run_suite full "" check
# libFuzzer on each harness; its work corpus stays in build/full/tests/fuzz/libfuzzer/.
# A harness with a memory error not fixed yet is left out of FUZZ_HARNESS until it is.
(cd build/full && make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-120}" \
    FUZZ_HARNESS="${FUZZ_HARNESS:-csv text config transcript model_file connection_string oip_request json_body database_url}") || {
    echo "FAILED: fuzz (a crashing input is in build/full/tests/fuzz/libfuzzer/crash-*)"
    exit 1
}
summary="$summary fuzz"
# Memory checkers slow training by 3x (sanitizers) to 50x (valgrind): those runs train on
# smaller slices of the corpus and skip the quality bars, which the full run checks.
export CML_TEST_LIGHT=1
run_suite sanitizers "--enable-sanitizers" check
run_suite valgrind "" check-valgrind
unset CML_TEST_LIGHT
run_suite classic-only "--without-xgboost --without-fann" check
if command -v podman >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then
    (cd build/full && make check-container) || { echo "FAILED: container"; exit 1; }
    summary="$summary container"
    container_passed=1
    (cd build/full && make check-package CML_REQUIRE_PACKAGE=1) || { echo "FAILED: package"; exit 1; }
    summary="$summary package"
    package_passed=1
else
    echo "container test: skipped (podman not installed; scripts/install-deps.sh --container)"
    echo "package test: skipped (podman not installed; scripts/install-deps.sh --container)"
fi

# One closing line that every CI reader understands.
passed=0 failed=0
for trs in $(find build -name '*.trs'); do
    if grep -q '^:test-result: PASS' "$trs"; then passed=$((passed + 1));
    elif grep -q '^:test-result: SKIP' "$trs"; then :;
    else failed=$((failed + 1)); fi
done
[ -n "${container_passed:-}" ] && passed=$((passed + 1))
[ -n "${package_passed:-}" ] && passed=$((passed + 1))
echo "suites:$summary"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
