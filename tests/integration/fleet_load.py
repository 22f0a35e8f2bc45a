#!/usr/bin/env python3
"""Continuous classify load for test_fleet_haproxy.sh: THREADS clients, each on one keep-alive
connection to the load balancer, POST /api/v1/models/classify back to back (PAUSE seconds
between requests) until SIGTERM or SIGINT; then one JSON line on stdout:
{"requests", "errors", "connections", "statuses": {code: n}, "versions": {v: n},
"first_errors": [...]}. Every answer that is not 2xx, and every request that got no answer
(refused, reset, timed out, closed), is an error: a request the balancer retried and that was
then answered counts as served, which is what its client sees.

usage: fleet_load.py HOST PORT [THREADS] [PAUSE]
"""
import http.client
import json
import signal
import sys
import threading
import time

BODY = json.dumps({"text": "What do you think will happen next?"}).encode()
HEADERS = {"Content-Type": "application/json"}


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.connections = 0
        self.statuses = {}
        self.versions = {}
        self.first_errors = []

    def error(self, what):
        with self.lock:
            self.errors += 1
            if len(self.first_errors) < 10:
                self.first_errors.append("%.3f %s" % (time.time(), what))


def client(host, port, pause, stop, counts):
    conn = None
    while not stop.is_set():
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=30)
            with counts.lock:
                counts.connections += 1
        try:
            conn.request("POST", "/api/v1/models/classify", BODY, HEADERS)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            with counts.lock:
                counts.requests += 1
            counts.error("no answer: %r" % e)
            conn.close()
            conn = None
            continue
        with counts.lock:
            counts.requests += 1
            counts.statuses[str(status)] = counts.statuses.get(str(status), 0) + 1
        if 200 <= status < 300:
            try:
                v = json.loads(data).get("model_version", "?")
            except ValueError:
                v = "?"
            with counts.lock:
                counts.versions[v] = counts.versions.get(v, 0) + 1
        else:
            counts.error("%d %s" % (status, data[:200].decode("utf-8", "replace")))
        if pause > 0:
            stop.wait(pause)
    if conn is not None:
        conn.close()


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    stop = threading.Event()
    counts = Counts()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ts = [threading.Thread(target=client, args=(host, port, pause, stop, counts))
          for _ in range(threads)]
    for t in ts:
        t.start()
    while not stop.is_set():
        stop.wait(0.5)
    for t in ts:
        t.join()
    print(json.dumps({"requests": counts.requests, "errors": counts.errors,
                      "connections": counts.connections, "statuses": counts.statuses,
                      "versions": counts.versions, "first_errors": counts.first_errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
