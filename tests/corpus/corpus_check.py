#!/usr/bin/env python3
"""Quality bars of the bundled corpus (data/questions.csv), run by `make check`.

Checks, each printed with its measured figure:
  - header has `text` and `label`; every label in the label set; no empty text
  - at least MIN_ROWS rows; OEQ share within [0.45, 0.55]
  - no exact duplicate after lower-casing and stripping punctuation
  - near-duplicates (rows differing from another row by one word substituted,
    inserted or deleted) under 2 % of rows
  - no sentence frame in more than 1 % of rows: a frame is the word sequence
    with every content word (anything outside a closed list of function words)
    replaced by a slot, so "what colour is the ball" and "what colour is the
    cup" share the frame "what colour is the _"
Exit status 0 when every bar holds, 1 otherwise. `--report` prints the most
common frames and near-duplicate examples.
"""
import csv
import re
import sys
from collections import Counter, defaultdict

LABELS = {"OEQ", "CEQ"}
MIN_ROWS = 4000
OEQ_SHARE = (0.45, 0.55)
NEAR_DUP_MAX = 0.02
FRAME_MAX = 0.01

FUNCTION_WORDS = set("""
a an the this that these those it its it's i i'm me my mine you you're your yours we we're
us our he she him her his they them their there here what what's whats which who whose whom
where where's when why how how's do does did done don't doesn't didn't is are was were be
been being am isn't aren't wasn't weren't can could can't couldn't will would won't wouldn't
shall should shouldn't may might must have has had haven't hasn't to of in on at for with
from by up down out off over under into onto about and or but so if then than too very
just not no yes ok okay um uh oh hmm well now let's let some any all one more most much many
tell think know want like see look say go going gonna wanna gotta get got make made
""".split())

TOKEN = re.compile(r"[a-z0-9']+")


def tokens(text):
    return TOKEN.findall(text.lower().replace("\u2019", "'"))


def frame(toks):
    out = []
    for t in toks:
        slot = t if t in FUNCTION_WORDS else "_"
        if slot == "_" and out and out[-1] == "_":
            continue
        out.append(slot)
    return " ".join(out)


def main(argv):
    path = argv[1] if len(argv) > 1 else "data/questions.csv"
    report = "--report" in argv
    failures = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    n = len(rows)
    if n == 0 or "text" not in rows[0] or "label" not in rows[0]:
        print("FAIL header must name text and label")
        return 1
    bad_labels = [r for r in rows if r["label"] not in LABELS]
    empty = [r for r in rows if not r["text"].strip()]
    oeq = sum(r["label"] == "OEQ" for r in rows) / n
    print(f"rows: {n} (min {MIN_ROWS})")
    print(f"OEQ share: {oeq:.3f} (bounds {OEQ_SHARE[0]}..{OEQ_SHARE[1]})")
    print(f"bad labels: {len(bad_labels)}; empty texts: {len(empty)}")
    if n < MIN_ROWS:
        failures.append("too few rows")
    if not OEQ_SHARE[0] <= oeq <= OEQ_SHARE[1]:
        failures.append("label balance")
    if bad_labels or empty:
        failures.append("bad label or empty text")

    toks = [tokens(r["text"]) for r in rows]
    keys = Counter(" ".join(t) for t in toks)
    dups = {k: c for k, c in keys.items() if c > 1}
    print(f"exact duplicates (normalised): {sum(dups.values()) - len(dups)}")
    if dups:
        failures.append("duplicates")
        if report:
            for k in list(dups)[:20]:
                print("  dup:", k)

    # Near duplicates: one word substituted (same length, one slot wild) or
    # one word inserted/deleted (a row equals another with one token removed).
    wild = defaultdict(set)
    for i, t in enumerate(toks):
        for j in range(len(t)):
            wild[" ".join(t[:j] + ["*"] + t[j + 1:])].add(i)
    near = set()
    for members in wild.values():
        if len(members) > 1:
            near.update(members)
    full = {" ".join(t): i for i, t in enumerate(toks)}
    for i, t in enumerate(toks):
        for j in range(len(t)):
            k = " ".join(t[:j] + t[j + 1:])
            if k in full and full[k] != i:
                near.add(i)
                near.add(full[k])
    near_share = len(near) / n
    print(f"near-duplicates: {len(near)} rows = {100 * near_share:.2f} % (max {100 * NEAR_DUP_MAX:.0f} %)")
    if near_share >= NEAR_DUP_MAX:
        failures.append("near duplicates")
    if report:
        shown = 0
        for key, members in wild.items():
            if len(members) > 1 and shown < 30:
                print("  near:", " | ".join(rows[i]["text"] for i in sorted(members)))
                shown += 1

    frames = Counter(frame(t) for t in toks)
    top, top_n = frames.most_common(1)[0]
    print(f"most common frame: '{top}' in {top_n} rows = {100 * top_n / n:.2f} % (max {100 * FRAME_MAX:.0f} %)")
    if top_n / n > FRAME_MAX:
        failures.append("template frame")
    if report:
        for fr, c in frames.most_common(25):
            print(f"  {c:4d}  {fr}")

    if failures:
        print("FAIL: " + ", ".join(failures))
        return 1
    print("corpus: all bars hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
