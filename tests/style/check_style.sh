#!/bin/sh
# Fails when a C file of the project departs from .clang-format (the written code style).
top=${CML_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if ! command -v clang-format >/dev/null 2>&1; then
    echo "clang-format is not installed (apt-get install clang-format)"
    exit 77
fi
cd "$top" || exit 1
bad=0
for f in $(find core cli fcgi tests -name '*.c' -o -name '*.h' | sort); do
    if ! clang-format --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "style: $f differs from .clang-format (run: clang-format -i $f)"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "style: every C file follows .clang-format"
exit $bad
