#!/usr/bin/env python3
"""The live comparison through a front end (issue 12), in phases run by test_live_comparison.sh.

  traffic BASE STATE TEXTS  classify the texts with both types; shadow counts equal the
                      requests sent and reach the shared state's SQLite within 10 s; feedback
                      switches the recommendation; feedback accuracy equals a recomputation from
                      the stored items. Writes STATE/expect.json for the next phase.
  restart BASE STATE OLD_VERSION  after every worker was restarted: the same counts, accuracy
                      and recommendation; the history route's rows; /metrics; a classic version
                      selected later scores the stored items.
"""
import json
import math
import os
import sqlite3
import sys
import time
import urllib.error
import urllib.request

KEY = os.environ.get("CML_TEST_API_KEY", "")
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def call(base, path, body=None, admin=False):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    if data:
        req.add_header("Content-Type", "application/json")
    if admin:
        req.add_header("X-API-Key", KEY)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def pairs_by_type(cmp):
    return {(p["answering"]["model_type"], p["shadow"]["model_type"]): p
            for p in cmp["live"]["shadow"]["pairs"]}


def wait_for(fn, seconds=15.0):
    """Polls fn until it returns a true value (returned), else None after `seconds`."""
    end = time.time() + seconds
    while True:
        v = fn()
        if v or time.time() > end:
            return v or None
        time.sleep(0.25)


def db(state):
    return sqlite3.connect(os.path.join(state, "state.sqlite3"))


def recomputed_accuracy(base, state, model_type):
    """Accuracy of the resident version of model_type on the stored items, by classifying."""
    with db(state) as d:
        items = d.execute("SELECT text, correct_class FROM feedback ORDER BY id").fetchall()
    right = 0
    for text, label in items:
        _, a = call(base, "/api/v1/models/classify", {"text": text, "model_type": model_type})
        right += a["classification"] == label
    return len(items), right / len(items)


def feedback_settled(base, n):
    _, cmp = call(base, "/api/v1/models/comparison")
    fb = cmp["live"]["feedback"]
    return cmp if all(fb[t] and fb[t]["n"] == n for t in ("classic", "ensemble")) else None


def wilson(k, n, z=1.959963984540054):
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, c - h), min(1.0, c + h)


def batch_labels(base, path, texts):
    labels = []
    for i in range(0, len(texts), 1000):
        _, a = call(base, path, {"questions": texts[i:i + 1000]})
        labels += [r["classification"] for r in a["results"]]
    return labels


def traffic(base, state, candidates):
    # The batch routes are not shadow-scored: they find texts the types disagree on.
    c = batch_labels(base, "/api/v1/classify/batch", candidates)
    e = batch_labels(base, "/api/v2/classify/batch", candidates)
    split = [x for x, a, b in zip(candidates, c, e) if a != b]
    texts = candidates[:40] + [x for x in split[:3] if x not in candidates[:40]]
    answers = {}
    for t in ("classic", "ensemble"):
        for x in texts:
            s, a = call(base, "/api/v1/models/classify", {"text": x, "model_type": t})
            if s != 200:
                check(False, f"classify {t}: {s}")
            answers[(t, x)] = a
    agree = sum(answers[("classic", x)]["classification"] ==
                answers[("ensemble", x)]["classification"] for x in texts)
    n = len(texts)

    def counted():
        _, c = call(base, "/api/v1/models/comparison")
        p = pairs_by_type(c)
        done = all(k in p and p[k]["requests"] >= n
                   for k in (("classic", "ensemble"), ("ensemble", "classic")))
        return c if done else None

    cmp = wait_for(counted, 5)
    check(cmp is not None, "both pairs are counted")
    if cmp is None:
        return
    p = pairs_by_type(cmp)
    for k in (("classic", "ensemble"), ("ensemble", "classic")):
        check(p[k]["requests"] == n, f"{k[0]} answering, {k[1]} shadow: {p[k]['requests']} "
              f"shadow scorings for {n} classify requests")
        check(p[k]["agreements"] == agree,
              f"{k}: {p[k]['agreements']} agreements, {agree} counted from the answers")
        shares = p[k]["label_share"]["answering"]
        check(abs(sum(shares.values()) - 1.0) < 1e-9, f"{k}: answering label shares sum to 1")
        mean_conf = sum(answers[(k[0], x)]["confidence"] for x in texts) / n
        check(abs(p[k]["mean_confidence"]["answering"] - mean_conf) < 1e-4,
              f"{k}: mean answering confidence {p[k]['mean_confidence']['answering']:.5f} "
              f"= {mean_conf:.5f} from the answers")
    check(p[("classic", "ensemble")]["shadow"]["version"] ==
          answers[("ensemble", texts[0])]["model_version"], "the shadow version is the resident one")

    def flushed():
        with db(state) as d:
            r = d.execute("SELECT SUM(requests) FROM shadow_daily WHERE s_type != ''").fetchone()
        return r[0] == 2 * n
    t0 = time.time()
    check(wait_for(flushed, 10.5), "shadow counts are in SQLite within 10 s "
          f"({time.time() - t0:.1f} s)")

    # A text the two types disagree on decides the feedback.
    split = [x for x in texts if answers[("classic", x)]["classification"] !=
             answers[("ensemble", x)]["classification"]]
    check(len(split) > 0, f"{len(split)} texts the types disagree on")
    if not split:
        return
    x = split[0]
    lc, le = answers[("classic", x)]["classification"], answers[("ensemble", x)]["classification"]
    check(cmp["recommendation"] is None or cmp["recommendation"]["evidence"] == "held_out",
          f"before the feedback: held-out evidence ({cmp['recommendation']})")
    # Five confirmations of classic's answer (correct_class == predicted_class).
    for _ in range(5):
        s, _ = call(base, "/api/feedback", {"text": x, "correct_class": lc, "predicted_class": lc,
                                           "model_type": "classic"})
        if s != 200:
            check(False, f"feedback: {s}")
    cmp = wait_for(lambda: feedback_settled(base, 5))
    check(cmp is not None, "every resident version scored the 5 items")
    rec = cmp["recommendation"]
    check(rec["evidence"] == "feedback" and rec["model"] == "classic",
          f"5 items for classic: {rec['model']} on {rec['evidence']}: {rec['reason']}")
    check("accuracy 1.0000" in rec["reason"] and "5 items" in rec["reason"],
          "the reason names the evidence and its numbers")
    fb = cmp["live"]["feedback"]
    check(fb["classic"]["accuracy"] == 1.0 and fb["ensemble"]["accuracy"] == 0.0,
          f"accuracy classic {fb['classic']['accuracy']}, ensemble {fb['ensemble']['accuracy']}")
    lo, hi = fb["classic"]["accuracy_ci95"]
    wlo, whi = wilson(5, 5)
    check(abs(lo - wlo) < 1e-9 and abs(hi - whi) < 1e-9, f"Wilson interval of 5/5: [{lo:.4f}, {hi}]")
    # Eleven corrections to the ensemble's answer: now it is right on 11 of 16.
    for _ in range(11):
        call(base, "/save_feedback", {"text": x, "correct_class": le})
    cmp = wait_for(lambda: feedback_settled(base, 16))
    check(cmp is not None, "every resident version scored the 16 items")
    rec = cmp["recommendation"]
    check(rec["evidence"] == "feedback" and rec["model"] == "ensemble",
          f"then 11 for the ensemble: {rec['model']} on {rec['evidence']}: {rec['reason']}")
    for t in ("classic", "ensemble"):
        n_items, acc = recomputed_accuracy(base, state, t)
        got = cmp["live"]["feedback"][t]
        check(got["n"] == n_items and abs(got["accuracy"] - acc) < 1e-12,
              f"{t}: feedback accuracy {got['accuracy']:.4f} on {got['n']} = {acc:.4f} "
              f"recomputed from the {n_items} stored items")
    with db(state) as d:
        rows = d.execute("SELECT model_type, model_version, predicted_class FROM feedback"
                         " ORDER BY id").fetchall()
    check(all(r[0] and r[1] and r[2] for r in rows),
          "every stored item records the model type, version and prediction")
    check(rows[-1][2] == answers[(rows[-1][0], x)]["classification"],
          "a prediction the client did not send is the active model's")
    # The recomputation's classify requests (16 a type) are shadow-scored too, in the background.
    def all_counted():
        _, c = call(base, "/api/v1/models/comparison")
        p = pairs_by_type(c)
        return c if all(p[k]["requests"] == n + 16 for k in p) and len(p) == 2 else None
    cmp = wait_for(all_counted, 10)
    check(cmp is not None, f"the recomputation's classify requests are shadow-scored too")
    with open(os.path.join(state, "expect.json"), "w") as f:
        json.dump({"live": cmp["live"],
                   "recommendation": cmp["recommendation"]}, f)


def restart(base, state, old_version):
    with open(os.path.join(state, "expect.json")) as f:
        want = json.load(f)
    _, cmp = call(base, "/api/v1/models/comparison")
    p, wp = pairs_by_type(cmp), pairs_by_type(want)
    for k in wp:
        check(k in p and p[k]["requests"] == wp[k]["requests"] and
              p[k]["agreements"] == wp[k]["agreements"],
              f"{k}: the same requests and agreements after every worker restarted")
    for t in ("classic", "ensemble"):
        check(cmp["live"]["feedback"][t] == want["live"]["feedback"][t],
              f"{t}: feedback figures unchanged after the restart")
    check(cmp["recommendation"] == want["recommendation"], "the recommendation is unchanged")
    check(cmp["live"]["since"] is not None, f"since {cmp['live']['since']}")
    s, rows = call(base, "/api/v1/models/live/history?days=7")
    check(s == 200 and len(rows) == 2, f"history: {len(rows)} rows (one a version, today)")
    for r in rows:
        t = r["model_type"]
        other = "ensemble" if t == "classic" else "classic"
        mine, theirs = wp[(t, other)], wp[(other, t)]
        agreement = (mine["agreements"] + theirs["agreements"]) / (mine["requests"] +
                                                                  theirs["requests"])
        fb = want["live"]["feedback"][t]
        check(r["answered"] == mine["requests"] and r["shadowed"] == theirs["requests"] and
              r["feedback_n"] == fb["n"] and r["feedback_accuracy"] == fb["accuracy"] and
              abs(r["agreement"] - agreement) < 1e-12, f"history row {r}")
    s, rows = call(base, "/api/v1/models/live/history?days=7&model_type=classic")
    check(s == 200 and [r["model_type"] for r in rows] == ["classic"], "model_type filters")
    s, e = call(base, "/api/v1/models/live/history?days=0")
    check(s == 400 and e["error"] == "invalid_days", f"days=0: {s} {e}")
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        metrics = r.read().decode()
    total = sum(int(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                if line.startswith("cultivate_ml_shadow_requests_total{"))
    check(total == sum(p["requests"] for p in wp.values()), f"/metrics: {total} shadow requests")
    check('cultivate_ml_config{key="shadow_sample"} 1' in metrics, "/metrics shows shadow_sample")
    # Label shares and mean confidence per pair and side, as counters that give the
    # comparison's figures back: answers per label / requests, confidence sum / requests.
    series = {}
    for line in metrics.splitlines():
        for name in ("cultivate_ml_shadow_label_answers_total", "cultivate_ml_shadow_confidence_sum"):
            if line.startswith(name + "{"):
                labels = dict(kv.split("=", 1) for kv in line[len(name) + 1:line.index("}")].split(","))
                labels = {k: v.strip('"') for k, v in labels.items()}
                series[(name, labels["answering_type"], labels["shadow_type"], labels["side"],
                        labels.get("label"))] = float(line.rsplit(" ", 1)[1])
    for (at, st), pair in wp.items():
        n = pair["requests"]
        for side in ("answering", "shadow"):
            for label, share in pair["label_share"][side].items():
                got = series.get(("cultivate_ml_shadow_label_answers_total", at, st, side, label))
                check(got is not None and abs(got / n - share) < 1e-9,
                      f"/metrics: {at}->{st} {side} {label} answers {got} of {n} (share {share})")
            got = series.get(("cultivate_ml_shadow_confidence_sum", at, st, side, None))
            check(got is not None and abs(got / n - pair["mean_confidence"][side]) < 1e-9,
                  f"/metrics: {at}->{st} {side} confidence sum {got} over {n} requests "
                  f"(mean {pair['mean_confidence'][side]})")
    # A version selected later scores the stored items off the request path.
    s, _ = call(base, "/api/v1/models/select", {"model_type": "classic", "version": old_version},
                admin=True)
    check(s == 200, f"select classic {old_version}: {s}")

    def rescored():
        _, c = call(base, "/api/v1/models/comparison")
        f = c["live"]["feedback"]["classic"]
        return f if f and f["version"] == old_version and f["n"] == 16 else None
    f = wait_for(rescored, 10)
    check(f is not None, f"classic {old_version} scored the 16 stored items: {f}")


def main():
    phase, base, state = sys.argv[1], sys.argv[2], sys.argv[3]
    if phase == "traffic":
        with open(sys.argv[4]) as f:
            texts = list(dict.fromkeys(line.strip() for line in f if line.strip()))
        traffic(base, state, texts)
    else:
        restart(base, state, sys.argv[4])
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
