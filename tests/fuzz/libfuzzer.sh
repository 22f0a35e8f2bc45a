#!/bin/bash
# libFuzzer builds of the fuzz harnesses, each run for FUZZ_SECONDS (what `make fuzz` does).
#   FUZZ_SECONDS=N tests/fuzz/libfuzzer.sh SRCDIR BUILDDIR
# The core library's sources are compiled again with clang, -fsanitize=fuzzer-no-link and
# ASan+UBSan, under BUILDDIR/tests/fuzz/libfuzzer/ (only what changed); each harness is linked
# with -fsanitize=fuzzer. Each runs on its seed corpus kept in the repository
# (tests/fuzz/corpus/NAME/, read only) plus a work corpus under the build directory (kept
# between runs, so runs add up), and its executions, coverage (edges, features) and corpus
# size are printed. A crash, leak, timeout or sanitizer report fails the run and leaves the
# input as BUILDDIR/tests/fuzz/libfuzzer/crash-NAME-*: add it to tests/fuzz/corpus/NAME/.
# make passes CORE_SOURCES, FUZZ_CPPFLAGS and FUZZ_LIBS (the build's own flags); FUZZ_CC
# (default clang) and FUZZ_HARNESS (one name, default all) may be set.
set -eu
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
seconds=${FUZZ_SECONDS:-60}
cc=${FUZZ_CC:-clang}
: "${CORE_SOURCES:?run through make fuzz}" "${FUZZ_CPPFLAGS:?}" "${FUZZ_LIBS:?}"
command -v "$cc" >/dev/null 2>&1 || {
    echo "make fuzz needs clang with libFuzzer (scripts/install-deps.sh installs clang and libclang-rt-dev)" >&2
    exit 1
}
# make's quoting of the string macros (-DCML_DATADIR='"..."') is gone by now: quote them again.
cppflags=()
for f in $FUZZ_CPPFLAGS; do
    case "$f" in
    -DCML_*=*) cppflags+=("${f%%=*}=\"${f#*=}\"") ;;
    *) cppflags+=("$f") ;;
    esac
done
out="$build/tests/fuzz/libfuzzer"
mkdir -p "$out/obj"
# UBSan is built recoverable so that tests/fuzz/known_findings.supp can let the findings not
# fixed yet pass; halt_on_error stops at any other.
san="-fsanitize=address,undefined -fno-omit-frame-pointer"
# ASan does not see through OpenSSL's or XGBoost's uninstrumented code; leaks are reported.
cflags="-g -O1 -std=c11 -D_GNU_SOURCE $san"

cd "$build"
# A changed header or configuration rebuilds everything; a changed source file, its object.
if [ -e "$out/libcultivate-fuzz.a" ] && [ -n "$(find "$src/core" "$build/config.h" -name '*.h' \
    -newer "$out/libcultivate-fuzz.a" | head -n 1)" ]; then
    rm -f "$out"/obj/*.o
fi
objs=
for s in $CORE_SOURCES; do
    case "$s" in *.c) ;; *) continue ;; esac
    o="$out/obj/$(echo "$s" | tr / _ | sed 's/\.c$/.o/')"
    if [ ! -e "$o" ] || [ "$src/$s" -nt "$o" ]; then
        # shellcheck disable=SC2086
        "$cc" $cflags -fsanitize=fuzzer-no-link "${cppflags[@]}" -I"$build" -I"$src/core" \
            -c "$src/$s" -o "$o"
    fi
    objs="$objs $o"
done
rm -f "$out/libcultivate-fuzz.a"
# shellcheck disable=SC2086
ar rcs "$out/libcultivate-fuzz.a" $objs

harnesses=${FUZZ_HARNESS:-"csv text config transcript model_file connection_string oip_request json_body database_url"}
for h in $harnesses; do
    # The JSON body harness also takes the FastCGI program's request reading and the unit
    # tests' fake libfcgi (FUZZ_JSON_BODY_SOURCES from make).
    extra=()
    if [ "$h" = json_body ]; then
        for s in ${FUZZ_JSON_BODY_SOURCES:?run through make fuzz}; do extra+=("$src/$s"); done
        extra+=(-I"$src/fcgi" -I"$src/tests/unit")
    fi
    # shellcheck disable=SC2086
    "$cc" $cflags -fsanitize=fuzzer "${cppflags[@]}" -I"$build" -I"$src/core" \
        "$src/tests/fuzz/fuzz_$h.c" "${extra[@]}" "$out/libcultivate-fuzz.a" $FUZZ_LIBS -lstdc++ \
        -o "$out/fuzz_$h"
done

# One harness: its run, then its result line in $out/result-NAME (ok or FAILED first).
run_harness() {
    local h=$1 work="$out/corpus-$1" log="$out/fuzz_$1.log" max_len= r
    mkdir -p "$work"
    [ "$h" = model_file ] && max_len=-max_len=65536
    echo "fuzz_$h: ${seconds} s on $(find "$src/tests/fuzz/corpus/$h" -type f | wc -l) seeds and $(find "$work" -type f | wc -l) kept inputs"
    # shellcheck disable=SC2086
    if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$src/tests/fuzz/known_findings.supp" \
        "$out/fuzz_$h" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$out/crash-$h-" $max_len \
        "$work" "$src/tests/fuzz/corpus/$h" >"$log" 2>&1; then
        r=ok
    else
        r=FAILED
        grep -E 'ERROR|SUMMARY|Test unit written|deadly signal|timeout' "$log" | head -n 8
    fi
    local execs speed last cov ft corp
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
    echo "fuzz_$h: $r, ${execs:-?} executions (${speed:-?}/s), coverage ${cov:-?} edges, ${ft:-?} features, corpus ${corp:-?}" |
        tee "$out/result-$h"
}
# FUZZ_JOBS harnesses at once (default: one per core): each still runs FUZZ_SECONDS on a core.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
running=0
for h in $harnesses; do
    rm -f "$out/result-$h"
    run_harness "$h" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
summary=
status=0
for h in $harnesses; do
    line=$(cat "$out/result-$h" 2>/dev/null || echo "fuzz_$h: FAILED, no result")
    case "$line" in "fuzz_$h: ok,"*) ;; *) status=1 ;; esac
    summary="$summary
$line"
done
echo "libFuzzer, ${seconds} s a harness:$summary"
known=$(grep -c '^[a-z]' "$src/tests/fuzz/known_findings.supp" || true)
[ "$known" -eq 0 ] || echo "($known known finding(s) suppressed: tests/fuzz/known_findings.supp)"
exit $status
