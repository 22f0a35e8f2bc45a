#!/usr/bin/env python3
"""A connection flood against a front end on 127.0.0.1 (issue 15, defect 1), bounded in time.

Holds IDLE connections that never send a byte (each one the server closes is opened again at
once, as a flooding client would) and SLOW clients that send a request header one byte every
SLOW_INTERVAL seconds, and meanwhile a normal client sends one classify request at a time on
a new connection. Passes (exit 0) when every normal request answered 200 within BUDGET
seconds and the flood did hold its connections; prints the figures either way.

  flood.py PORT [--idle 3000] [--slow 100] [--seconds 12] [--budget 1.0]

Only ever connects to 127.0.0.1, and stops by itself after --seconds (plus the setup).
"""
import argparse
import errno
import http.client
import json
import resource
import selectors
import socket
import sys
import threading
import time

BODY = json.dumps({"text": "What do you think will happen next?"})
SLOW_HEADER = (b"POST /api/v1/models/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\nX-Slow: " + b"a" * 4000)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--idle", type=int, default=3000)
    ap.add_argument("--slow", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--slow-interval", type=float, default=1.0)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.idle + a.slow + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    sel = selectors.DefaultSelector()
    addr = ("127.0.0.1", a.port)
    stats = {"opened": 0, "closed_by_server": 0, "slow_closed": 0, "connect_failed": 0}
    conns = {}  # fd -> [sock, kind, connected, slow_pos]

    def open_one(kind):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex(addr)
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            stats["connect_failed"] += 1
            return
        conns[s.fileno()] = [s, kind, rc == 0, 0]
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        stats["opened"] += 1

    def drop(fd):
        s = conns.pop(fd)[0]
        sel.unregister(s)
        s.close()

    for _ in range(a.idle):
        open_one("idle")
    for _ in range(a.slow):
        open_one("slow")

    def pump(timeout):
        for key, ev in sel.select(timeout):
            c = conns.get(key.fd)
            if c is None:
                continue
            s = c[0]
            if ev & selectors.EVENT_WRITE and not c[2]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    stats["connect_failed"] += 1
                    kind = c[1]
                    drop(key.fd)
                    open_one(kind)
                    continue
                c[2] = True
                sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:  # the server closed it (a timeout): a flooder opens another
                    kind = c[1]
                    stats["closed_by_server" if kind == "idle" else "slow_closed"] += 1
                    drop(key.fd)
                    open_one(kind)

    # Let the connects complete (those past the server's limit stay in the accept queue).
    t_setup = time.monotonic()
    while time.monotonic() - t_setup < 2.0:
        pump(0.05)
    held_before = sum(1 for c in conns.values() if c[2])

    results = []  # (seconds, status or error)
    stop = threading.Event()

    def normal_client():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                h = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.budget * 5)
                h.request("POST", "/api/v1/models/classify", BODY,
                          {"Content-Type": "application/json"})
                r = h.getresponse()
                r.read()
                h.close()
                results.append((time.monotonic() - t0, r.status))
            except OSError as e:
                results.append((time.monotonic() - t0, "error: %s" % e))
            stop.wait(0.2)

    th = threading.Thread(target=normal_client, daemon=True)
    th.start()
    t0 = time.monotonic()
    next_slow = t0
    held_min = None
    while time.monotonic() - t0 < a.seconds:
        pump(0.05)
        now = time.monotonic()
        if now >= next_slow:
            next_slow = now + a.slow_interval
            for fd, c in list(conns.items()):
                if c[1] == "slow" and c[2]:
                    try:
                        c[0].send(SLOW_HEADER[c[3]:c[3] + 1])
                        c[3] = (c[3] + 1) % len(SLOW_HEADER)
                    except BlockingIOError:
                        pass
                    except OSError:
                        stats["slow_closed"] += 1
                        drop(fd)
                        open_one("slow")
            held = sum(1 for c in conns.values() if c[2])
            held_min = held if held_min is None else min(held_min, held)
    stop.set()
    th.join(a.budget * 5 + 1)
    for fd in list(conns):
        drop(fd)

    lat = sorted(r[0] for r in results)
    bad = [r for r in results if r[1] != 200 or r[0] > a.budget]
    print("flood on 127.0.0.1:%d for %.0f s: %d idle + %d slow-header connections "
          "(connected after setup %d, fewest connected %s); the server closed %d idle and %d "
          "slow ones (each reopened at once); %d connects failed"
          % (a.port, a.seconds, a.idle, a.slow, held_before, held_min,
             stats["closed_by_server"], stats["slow_closed"], stats["connect_failed"]))
    if lat:
        print("normal client: %d classify requests, %d failed or over %.1f s; latency p50 %.1f ms,"
              " max %.1f ms" % (len(results), len(bad), a.budget, lat[len(lat) // 2] * 1e3,
                                lat[-1] * 1e3))
    for r in bad[:5]:
        print("  late or failed: %.3f s, %s" % r)
    if not results:
        print("normal client: no answer at all")
        return 1
    # A flood that never stood proves nothing: nearly every connection must have been up
    # after the setup, and its reconnects must have gone through. (The fewest connected at a
    # sample is no measure: lighttpd closes every idle one at once after 5 s, and a sample
    # can fall in the middle of the reconnects; 894 of 3,100 was seen.)
    want = a.idle + a.slow
    opened = stats["opened"] + stats["connect_failed"]
    if held_before < 0.95 * want or stats["connect_failed"] > 0.05 * max(opened, 1):
        print("the flood did not hold: %d of %d connected after setup, %d of %d connects failed"
              % (held_before, want, stats["connect_failed"], opened))
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
