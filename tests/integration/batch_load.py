#!/usr/bin/env python3
"""Maximal batches against single classify on 127.0.0.1 (issue 15, defect 8), bounded in time.

BATCHERS clients each send, one after another, the largest batch the service takes (--batch
texts of --chars characters, under the body limit) to /api/v1/classify/batch; meanwhile one
client sends single classify requests to /api/v1/models/classify, one at a time. Prints the
figures (single classify p50/p99/max, batch answers by status and error code) and a JSON line
of them. Exits 0 when every single classify answered 200 and every batch answer was 200 or
503 server_busy with Retry-After; exits 1 otherwise. It asserts no time.

  batch_load.py PORT [--batchers 8] [--seconds 10] [--batch 1000] [--chars 10000]
"""
import argparse
import http.client
import json
import sys
import threading
import time


def post(port, path, body, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        return r.status, data, r.getheader("Retry-After"), r.getheader("X-Request-Id")
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--batchers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--chars", type=int, default=10000)
    a = ap.parse_args()
    unit = "What do you think happens when the tower of blocks gets taller? "
    text = (unit * (a.chars // len(unit) + 1))[: a.chars - 1] + "?"
    batch = json.dumps({"questions": [text] * a.batch}).encode()
    single = json.dumps({"text": "What do you see in the picture?"}).encode()
    stop = time.monotonic() + a.seconds
    lock = threading.Lock()
    batches = {}  # "status error" -> count
    bad = []
    lat = []

    def batcher():
        while time.monotonic() < stop:
            try:
                st, data, ra, rid = post(a.port, "/api/v1/classify/batch", batch)
            except OSError as e:
                with lock:
                    bad.append("batch: %s" % e)
                continue
            code = ""
            if st != 200:
                try:
                    code = json.loads(data).get("error", "")
                except ValueError:
                    code = "not-json"
            ok = st == 200 or (st == 503 and code == "server_busy" and ra is not None)
            with lock:
                key = "%d %s" % (st, code) if code else str(st)
                batches[key] = batches.get(key, 0) + 1
                if not ok or not rid:
                    bad.append("batch answered %d %s (Retry-After %s, X-Request-Id %s)"
                               % (st, code, ra, rid))
            if st == 503:
                # A client honouring Retry-After (capped, so the run ends on time).
                try:
                    time.sleep(min(float(ra or 1), 1.0))
                except ValueError:
                    time.sleep(1.0)

    threads = [threading.Thread(target=batcher) for _ in range(a.batchers)]
    for t in threads:
        t.start()
    time.sleep(min(1.0, a.seconds / 4))  # the batches are under way
    while time.monotonic() < stop:
        t0 = time.monotonic()
        try:
            st, data, _, _ = post(a.port, "/api/v1/models/classify", single, timeout=30)
        except OSError as e:
            bad.append("classify: %s" % e)
            continue
        lat.append(time.monotonic() - t0)
        if st != 200:
            bad.append("classify answered %d: %s" % (st, data[:200]))
        time.sleep(0.02)
    for t in threads:
        t.join()
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3 if lat else float("nan")

    fig = {"batchers": a.batchers, "batch_bytes": len(batch), "classify_requests": len(lat),
           "classify_p50_ms": round(pct(0.50), 2), "classify_p99_ms": round(pct(0.99), 2),
           "classify_max_ms": round(lat[-1] * 1e3, 2) if lat else None, "batches": batches,
           "errors": len(bad)}
    print("%d clients sending %.1f MB batches for %.0f s: single classify p50 %.1f ms, p99 %.1f ms,"
          " max %.1f ms over %d requests; batch answers %s"
          % (a.batchers, len(batch) / 1e6, a.seconds, fig["classify_p50_ms"],
             fig["classify_p99_ms"], fig["classify_max_ms"] or 0, len(lat), batches))
    print(json.dumps(fig))
    for b in bad[:10]:
        print("FAIL:", b, file=sys.stderr)
    return 1 if bad or not lat else 0


if __name__ == "__main__":
    sys.exit(main())
