#!/bin/sh
# The bundled corpus meets its quality bars (data/README.md).
top=${CML_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "${PYTHON3:-python3}" "$top/tests/corpus/corpus_check.py" "$top/data/questions.csv"
