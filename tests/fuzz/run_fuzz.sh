#!/bin/sh
# Runs every fuzz harness on its seeds and mutations of them (FUZZ_RUNS each, fewer under
# the memory checkers). A crash, an abort or a sanitizer report fails the test.
set -eu
top=${CML_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${CML_TOP_BUILDDIR:-.}
if [ -n "${CML_TEST_LIGHT:-}" ] && [ "${CML_TEST_LIGHT}" != 0 ]; then
    export FUZZ_RUNS=${FUZZ_RUNS:-2000}
else
    export FUZZ_RUNS=${FUZZ_RUNS:-20000}
fi
seeds="$top/tests/fuzz/seeds"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A small real model file as the seed of the model-file harness.
head -n 301 "$top/data/questions.csv" > "$work/small.csv"
"$build/cultivate-ml" train --model classic --data "$work/small.csv" --out "$work" --folds 0 >/dev/null 2>&1
# Every file of each harness's kept corpus (tests/fuzz/corpus), the findings of make fuzz
# (finding-*) among them: a regression of a fixed crash fails here, not only under make fuzz.
corpus="$top/tests/fuzz/corpus"
"$build/tests/fuzz/fuzz_csv" "$seeds/small.csv" "$corpus/csv/"*
"$build/tests/fuzz/fuzz_text" "$seeds/speech.txt" "$corpus/text/"*
"$build/tests/fuzz/fuzz_config" "$seeds/config.conf" "$corpus/config/"*
"$build/tests/fuzz/fuzz_transcript" "$seeds/lesson.vtt" "$seeds/lesson.srt" "$seeds/lesson.json" \
    "$corpus/transcript/"*
"$build/tests/fuzz/fuzz_model_file" "$work"/classic_2*.model "$corpus/model_file/"*
"$build/tests/fuzz/fuzz_connection_string" "$corpus/connection_string/"*
"$build/tests/fuzz/fuzz_oip_request" "$corpus/oip_request/"*
"$build/tests/fuzz/fuzz_json_body" "$corpus/json_body/"*
"$build/tests/fuzz/fuzz_database_url" "$corpus/database_url/"*
