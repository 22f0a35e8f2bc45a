#!/usr/bin/env python3
"""Hostile requests on raw sockets to a front end on 127.0.0.1 (issue 15, defect 6): every
answer, whoever gives it (lighttpd, Apache or the service), must be the contract's JSON error
{"detail": str, "error": str} with Content-Type application/json, and carry X-Request-Id:
through lighttpd exactly one, well formed by the service's rule (fcgi/http.c request_id_valid:
1 to 64 of A-Z a-z 0-9 - _ .), a valid incoming one echoed and an invalid one replaced (the
mod_magnet script etc/lighttpd/request-id.lua); through Apache one from mod_unique_id.

  error_pages.py PORT FRONT CASES...   (FRONT lighttpd|apache; CASES: names below, or "alive"
                                        for every case a running service gets, "gone" for
                                        requests with the workers dead)
  error_pages.py PORT FRONT midrequest PIDFILE   (kill -9 the pids listed in PIDFILE while a
                                        long evaluate request is in flight)
Prints one line a case; exit 1 when any case fails.
"""
import json
import os
import re
import signal
import socket
import sys
import time

H = b"Host: 127.0.0.1\r\nConnection: close\r\n"
CLASSIFY = b"/api/v1/models/classify"
CASES = {
    "no_content_length": b"POST " + CLASSIFY + b" HTTP/1.1\r\n" + H
    + b"Content-Type: application/json\r\n\r\n",
    "bad_chunking": b"POST " + CLASSIFY + b" HTTP/1.1\r\n" + H
    + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
    "cl_with_te": b"POST " + CLASSIFY + b" HTTP/1.1\r\n" + H
    + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
    b"2\r\n{}\r\n0\r\n\r\n",
    "negative_cl": b"POST " + CLASSIFY + b" HTTP/1.1\r\n" + H
    + b"Content-Type: application/json\r\nContent-Length: -1\r\n\r\n",
    "nul_in_path": b"GET /api/health%00x HTTP/1.1\r\n" + H + b"\r\n",
    "nul_in_query": b"GET /api/health?x=%00 HTTP/1.1\r\n" + H + b"\r\n",
    "bad_utf8_in_path": b"GET /api/health%C3%28 HTTP/1.1\r\n" + H + b"\r\n",
    "bad_utf8_in_query": b"GET /api/health?x=%C3%28 HTTP/1.1\r\n" + H + b"\r\n",
    "raw_byte_in_path": b"GET /api/\xff\xfe HTTP/1.1\r\n" + H + b"\r\n",
    "huge_url": b"GET /api/health?q=" + b"a" * 70000 + b" HTTP/1.1\r\n" + H + b"\r\n",
    "huge_header": b"GET /api/health HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n",
    "many_headers": b"GET /api/health HTTP/1.1\r\n" + H
    + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(400)) + b"\r\n",
    "bad_request_line": b"GET\r\n" + H + b"\r\n",
    "unknown_te": b"POST " + CLASSIFY + b" HTTP/1.1\r\n" + H
    + b"Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n",
    "classify_when_gone": b"POST " + CLASSIFY + b" HTTP/1.1\r\n" + H
    + b"Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"text\":\"hi\"}",
    "health_when_gone": b"GET /api/health HTTP/1.1\r\n" + H + b"\r\n",
}
# The statuses each case may get: what HTTP says of it, as lighttpd or Apache word it (a URL
# too long is 414 from Apache and 431 from lighttpd, which counts the request line among the
# headers; Apache answers a decoded NUL in the path 404, as it does for any path it refuses to
# map). Anything else, a 200 above all, is a failure.
STATUSES = {
    "no_content_length": {411, 400}, "bad_chunking": {400}, "cl_with_te": {400},
    "negative_cl": {400}, "nul_in_path": {400, 404}, "nul_in_query": {400},
    "bad_utf8_in_path": {400}, "bad_utf8_in_query": {400}, "raw_byte_in_path": {400},
    "huge_url": {414, 431}, "huge_header": {431, 400}, "many_headers": {431, 400},
    "bad_request_line": {400}, "unknown_te": {501, 400},
    "classify_when_gone": {502, 503}, "health_when_gone": {502, 503},
    "valid_id_echoed_by_lighttpd": {411}, "bad_id_replaced_by_lighttpd": {411},
    "long_id_replaced_by_lighttpd": {411}, "valid_id_echoed_by_service": {404},
    "worker_killed_mid_request": {500, 502, 503},
}
ALIVE = [k for k in CASES if not k.endswith("_when_gone")]
GONE = ["classify_when_gone", "health_when_gone"]
# Through lighttpd only (Apache's UNIQUE_ID ignores the client's id): the request's X-Request-Id
# on an answer lighttpd gives itself (411) and on one the service gives (its 404), echoed when
# valid, replaced when not (ECHO: the id expected back, None for a fresh one).
ECHO_ID = "cml-Test_1.2"
ECHO = {
    "valid_id_echoed_by_lighttpd": (b"POST " + CLASSIFY + b" HTTP/1.1\r\n" + H
                                    + b"X-Request-Id: " + ECHO_ID.encode() + b"\r\n\r\n", ECHO_ID),
    "bad_id_replaced_by_lighttpd": (b"POST " + CLASSIFY + b" HTTP/1.1\r\n" + H
                                    + b"X-Request-Id: not valid!\r\n\r\n", None),
    "long_id_replaced_by_lighttpd": (b"POST " + CLASSIFY + b" HTTP/1.1\r\n" + H
                                     + b"X-Request-Id: " + b"a" * 65 + b"\r\n\r\n", None),
    "valid_id_echoed_by_service": (b"GET /api/no-such-route HTTP/1.1\r\n" + H
                                   + b"X-Request-Id: " + ECHO_ID.encode() + b"\r\n\r\n", ECHO_ID),
}
VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")


def exchange(port, data, timeout=15.0, during=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may answer and close before the whole request is sent
    if during:
        during()
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return out


def check(name, raw, front, echo=False):
    """echo: False for no id in the request, else the id expected back (None: a fresh one)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0] if lines else ""
    hdr = {}
    ids = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdr[k.strip().lower()] = v.strip()
        if k.strip().lower() == "x-request-id":
            ids.append(v.strip())
    problems = []
    try:
        code = int(status.split()[1])
    except (IndexError, ValueError):
        return False, "no HTTP answer: %r" % raw[:120]
    if code not in STATUSES[name]:
        want = " or ".join(map(str, sorted(STATUSES[name])))
        problems.append("status %d, want %s" % (code, want))
    if "chunked" in hdr.get("transfer-encoding", ""):
        body = dechunk(body)
    if not hdr.get("content-type", "").startswith("application/json"):
        problems.append("Content-Type %r" % hdr.get("content-type"))
    try:
        doc = json.loads(body.decode("utf-8"))
        if code >= 400 and not (isinstance(doc, dict) and isinstance(doc.get("detail"), str)
                                and isinstance(doc.get("error"), str)):
            problems.append("not {detail, error}: %r" % body[:100])
    except (ValueError, UnicodeDecodeError):
        problems.append("body not JSON: %r" % body[:100])
    if not ids or not ids[0]:
        problems.append("no X-Request-Id")
    elif len(ids) > 1:
        problems.append("%d X-Request-Id headers %r" % (len(ids), ids))
    elif front == "lighttpd" and not VALID_ID.match(ids[0]):
        problems.append("X-Request-Id %r not well formed" % ids[0])
    elif echo is not False and echo is not None and ids[0] != echo:
        problems.append("X-Request-Id %r, not the request's %r" % (ids[0], echo))
    elif echo is None and not re.match(r"[0-9a-f]{32}\Z", ids[0]):
        problems.append("X-Request-Id %r, not a fresh 32-hex-digit id" % ids[0])
    desc = "%d %s [id %s]" % (code, body[:90].decode("utf-8", "replace").strip(),
                              ids[0] if ids else "-")
    return not problems, desc + ("" if not problems else " -- " + "; ".join(problems))


def dechunk(b):
    out = b""
    while b:
        size, _, rest = b.partition(b"\r\n")
        try:
            n = int(size.split(b";")[0], 16)
        except ValueError:
            return out + b
        if n == 0:
            break
        out += rest[:n]
        b = rest[n + 2:]
    return out


def midrequest(port, pidfile, front):
    """An evaluate request that takes seconds; the workers are killed while it runs."""
    key = os.environ.get("CML_API_KEY", "")
    # Clips of several sentences: each of their questions is classified too, so evaluating
    # these 100,000 rows (7.7 MB) takes seconds even for the classic model on a fast machine.
    rows = "".join("Look at page %d. What happens next? Why? Is it the cat?,OEQ\n" % i
                   for i in range(100000))
    body = json.dumps({"model_type": "ensemble" if os.environ.get("CML_VE") else "classic",
                       "data": "text,label\n" + rows}).encode()
    req = (b"POST /api/v1/models/evaluate HTTP/1.1\r\n" + H + b"Content-Type: application/json\r\n"
           + b"Authorization: Bearer " + key.encode() + b"\r\n"
           + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def kill():
        time.sleep(0.3)  # the body is sent: the worker is reading or evaluating it
        with open(pidfile) as f:
            for pid in f.read().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    t0 = time.monotonic()
    raw = exchange(port, req, timeout=60, during=kill)
    ok, desc = check("worker_killed_mid_request", raw, front)
    if desc.split()[0] == "200":
        desc += " -- the request finished before the kill (make it longer)"
    return ok, "%s (after %.1f s)" % (desc, time.monotonic() - t0)


def main():
    port, front = int(sys.argv[1]), sys.argv[2]
    names = sys.argv[3:]
    results = []
    if names[:1] == ["midrequest"]:
        results.append(("worker_killed_mid_request",) + midrequest(port, names[1], front))
    else:
        expanded = []
        for n in names:
            if n == "alive":
                expanded += ALIVE + (list(ECHO) if front == "lighttpd" else [])
            else:
                expanded += GONE if n == "gone" else [n]
        for n in expanded:
            if n in ECHO:
                req, want = ECHO[n]
                results.append((n,) + check(n, exchange(port, req), front, want))
            else:
                results.append((n,) + check(n, exchange(port, CASES[n]), front))
    bad = 0
    for name, ok, desc in results:
        print("%s %-26s %s: %s" % ("ok  " if ok else "FAIL", name, front, desc))
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
