#!/bin/sh
# Quality on real classroom speech: trains both models on the bundled data, scores them on
# ../shared/realdev (real transcribed questions and clips, for measuring only: nothing is fitted
# on it) as a whole and by kind, and the scikit-learn peer trained on the same data in the same
# run when its Debian packages are installed. Prints the bars of the issue beside the figures.
#   tests/bench/bench_realdev.sh BUILDDIR
set -eu
build=${1:-.}
top=$(cd "$(dirname "$0")/../.." && pwd)
realdev=${CML_REALDEV:-$top/../shared/realdev/real_dev.csv}
if [ ! -f "$realdev" ]; then
    echo "realdev: skipped ($realdev not found)"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for type in classic ensemble; do
    "$build/cultivate-ml" train --model "$type" --data "$top/data/questions.csv" --out "$work" \
        --measure "$realdev" --by kind --json >"$work/$type.json" 2>"$work/$type.err" ||
        { cat "$work/$type.err" >&2; exit 1; }
done
# Per kind, as the peer reports it: one CSV per kind.
python3 - "$realdev" "$work" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
for kind in sorted({r["kind"] for r in rows}):
    with open(f"{sys.argv[2]}/kind_{kind}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for r in rows:
            if r["kind"] == kind:
                w.writerow([r["text"], r["label"]])
PY
peer="$top/../shared/peer"
if [ -d "$peer" ] && /usr/bin/python3 -c 'import sklearn' 2>/dev/null; then
    (cd "$peer" && /usr/bin/python3 peer_models.py train --data "$top/data/questions.csv" \
        --model ensemble --out "$work/peer.joblib" --cv-folds 0 >/dev/null 2>&1)
    for f in "$realdev" "$work"/kind_*.csv; do
        (cd "$peer" && /usr/bin/python3 peer_models.py eval --model "$work/peer.joblib" --data "$f" |
            tail -n 1) >"$work/peer_$(basename "$f" .csv).json"
    done
else
    echo "peer: skipped (apt-get install python3-sklearn)"
fi
python3 - "$work" "$(basename "$realdev" .csv)" <<'PY'
import glob, json, os, sys
work, whole = sys.argv[1], sys.argv[2]
def last_json(path):
    for line in reversed(open(path).read().splitlines()):
        if line.startswith("{") and '"f1_macro"' in line:
            return json.loads(line)
f1 = {}
for t in ("classic", "ensemble"):
    m = last_json(f"{work}/{t}.json")
    f1[t] = {"all": m["f1_macro"], **{k: v["f1_macro"] for k, v in m["by"].items()}}
peer = {}
for p in glob.glob(f"{work}/peer_*.json"):
    name = os.path.basename(p)[5:-5]
    peer["all" if name == whole else name[5:]] = json.load(open(p))["macro_f1"]
kinds = ["all"] + sorted(k for k in f1["ensemble"] if k != "all")
print("realdev macro F1 (trained on the bundled data; realdev never fitted on)")
print(f"  {'set':10s} {'ensemble':>9s} {'classic':>9s} {'peer':>9s}  bars")
for k in kinds:
    e, c, p = f1["ensemble"][k], f1["classic"][k], peer.get(k)
    bar = 0.93 if k == "all" else 0.90
    ok = e >= bar and e >= c + 0.02 and (p is None or e > p)
    ps = f"{p:9.4f}" if p is not None else "        -"
    print(f"  {k:10s} {e:9.4f} {c:9.4f} {ps}  >= {bar:.2f}, >= classic + 0.02, > peer: {'met' if ok else 'NOT met'}")
PY
