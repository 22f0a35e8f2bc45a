#!/bin/sh
# Fails when a C file of the project departs from .clang-format (the written code style) or
# calls what the code should never call (curl's checksrc habit): strcpy, sprintf and vsprintf
# (unbounded), atoi (no error), strtok (hidden state), gmtime (a shared static result), and a
# realloc whose size is a product (it can overflow unseen: use cml_realloc_array).
top=${CML_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top" || exit 1
bad=0
files=$(find core cli fcgi tests -path tests/integration/node_modules -prune -o \( -name '*.c' -o -name '*.h' \) -print | sort)
for f in $files; do
    # Comments and string literals may name the banned calls; code may not.
    sed -e 's|//.*||' -e 's|/\*.*\*/||g' -e 's|"[^"]*"|""|g' "$f" >/tmp/cml-style.$$
    for n in $(grep -nE '(^|[^A-Za-z0-9_])(strcpy|sprintf|vsprintf|atoi|strtok|gmtime)[[:space:]]*\(' \
        /tmp/cml-style.$$ | cut -d: -f1); do
        echo "style: $f:$n: a banned call: $(sed -n "${n}p" "$f" | sed 's/^ *//')"
        bad=1
    done
    # realloc(p, a * b): the product can overflow unseen (cml_realloc_array checks it).
    for n in $(grep -nE '(^|[^A-Za-z0-9_])(cml_)?realloc[[:space:]]*\([^,]*,[^,;]*[[:alnum:]_)] \*' \
        /tmp/cml-style.$$ | cut -d: -f1); do
        echo "style: $f:$n: realloc of a product (use cml_realloc_array): $(sed -n "${n}p" "$f" | sed 's/^ *//')"
        bad=1
    done
done
rm -f /tmp/cml-style.$$
if ! command -v clang-format >/dev/null 2>&1; then
    echo "clang-format is not installed (apt-get install clang-format)"
    [ $bad -eq 0 ] && exit 77
    exit 1
fi
for f in $files; do
    if ! clang-format --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "style: $f differs from .clang-format (run: clang-format -i $f)"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "style: every C file follows .clang-format and calls nothing banned"
exit $bad
