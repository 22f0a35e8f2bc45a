#!/usr/bin/env python3
"""The OpenAPI document checked against the real server, both ways (issue 18).

    openapi_contract.py BASE_URL OPENAPI_JSON ROUTER_C API_KEY

Requests are built from the document: each operation's examples, then, for every property of a
JSON body, a wrong-typed value, the property missing, an extra member, out-of-range values
(bounds, enums, NaN, Infinity, 1e999, integers json-c would clamp, an embedded NUL), plus a
wrong method (405), no admin key (401), a wrong Content-Type (415) and an oversized body
(413). Every answer's status must be documented for its operation, its required headers
present, its Content-Type documented, and its JSON body valid against the documented schema
(python3-jsonschema, Draft 2020-12). Wrong-typed and out-of-range fields must get 400.

Reported, not failed: documented statuses no request produced. Failed, both ways: a documented
operation the server does not answer (its generic 404 not_found), and a route of fcgi/router.c's
table that is not in the document. Path parameters are filled with what exists (a task id once
a job ran, the classic model and its version, {v} included). Exit status 0 when nothing failed.
"""
import copy
import json
import re
import sys
import urllib.error
import urllib.request
import warnings

import jsonschema

warnings.filterwarnings("ignore", category=DeprecationWarning)

BASE, DOC_PATH, ROUTER_C, API_KEY = sys.argv[1:5]
with open(DOC_PATH, encoding="utf-8") as f:
    DOC = json.load(f)
RESOLVER = jsonschema.RefResolver(base_uri="", referrer=DOC)
NUL = "__NUL__"  # placeholders replaced in the JSON text, which json.dumps cannot write
RAW = {"__NAN__": "NaN", "__INF__": "Infinity", "__BIG__": "1e999",
       "__HUGEINT__": "99999999999999999999"}

failures = []
front_end_answers = set()
FRONT_END_CODES = {"bad_request", "request_timeout", "length_required", "uri_too_long",
                   "expectation_failed", "request_header_fields_too_large", "not_implemented",
                   "bad_gateway", "service_unavailable", "gateway_timeout",
                   "http_version_not_supported"}
seen = {}  # (path, method) -> set of statuses
not_answered = set()
requests_sent = 0


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def deref(node):
    while isinstance(node, dict) and "$ref" in node:
        node = RESOLVER.resolve(node["$ref"])[1]
    return node


def send(method, path, body=None, ctype=None, headers=None):
    """Returns (status, headers dict lower-cased, body bytes)."""
    global requests_sent
    requests_sent += 1
    h = dict(headers or {})
    if ctype:
        h["Content-Type"] = ctype
    data = body.encode("utf-8") if isinstance(body, str) else body
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def check_answer(path, method, op, what, status, hdrs, raw, want=None):
    """Validates one answer against op's documented responses; returns the parsed body."""
    key = (path, method)
    ctype = hdrs.get("content-type", "").split(";")[0].strip()
    parsed = None
    if ctype == "application/json":
        try:
            parsed = json.loads(raw)
        except ValueError:
            fail(f"{method} {path} [{what}]: {status} body is not JSON: {raw[:120]!r}")
            return None
    if status == 404 and isinstance(parsed, dict) and parsed.get("error") == "not_found":
        not_answered.add(key)  # the generic "No such route."
        return parsed
    seen.setdefault(key, set()).add(status)
    if want is not None and status not in want:
        fail(f"{method} {path} [{what}]: status {status}, want {sorted(want)}: {raw[:200]!r}")
    resp = op["responses"].get(str(status))
    if resp is None:
        fail(f"{method} {path} [{what}]: status {status} is not documented: {raw[:200]!r}")
        return parsed
    resp = deref(resp)
    # lighttpd's own refusals (etc/errors, e.g. %00 in the query) cannot carry an id without
    # mod_magnet: noted, not failed; the service's own answers must carry it.
    front = isinstance(parsed, dict) and parsed.get("error") in FRONT_END_CODES
    if "x-request-id" not in hdrs and front:
        front_end_answers.add(f"{status} {parsed.get('error')}")
    for name, h in (resp.get("headers") or {}).items():
        h = deref(h)
        if name == "X-Request-Id" and front:
            continue
        if h.get("required") and name.lower() not in hdrs:
            fail(f"{method} {path} [{what}]: {status} without the {name} header")
        elif name.lower() in hdrs and "schema" in h:
            try:
                jsonschema.validate(hdrs[name.lower()], h["schema"], resolver=RESOLVER,
                                    cls=jsonschema.Draft202012Validator)
            except jsonschema.ValidationError as e:
                fail(f"{method} {path} [{what}]: header {name}: {e.message}")
    content = resp.get("content") or {}
    if content and ctype not in content:
        fail(f"{method} {path} [{what}]: {status} Content-Type {ctype!r} not in {list(content)}")
        return parsed
    schema = (content.get(ctype) or {}).get("schema")
    if schema is not None and ctype == "application/json":
        try:
            jsonschema.validate(parsed, schema, resolver=RESOLVER,
                                cls=jsonschema.Draft202012Validator)
        except jsonschema.ValidationError as e:
            fail(f"{method} {path} [{what}]: {status} body: {e.message} at "
                 f"{'/'.join(str(p) for p in e.absolute_path)}")
    return parsed


def encode(value):
    text = json.dumps(value)
    text = text.replace(NUL, "\\u0000")
    for k, v in RAW.items():
        text = text.replace(json.dumps(k), v)
    return text


def wrong_type(schema):
    types = schema.get("type", "object" if "properties" in schema else None)
    types = set(types if isinstance(types, list) else [types])
    for candidate, t in (("not a number", "string"), (12345, "integer"), ({"x": 1}, "object"),
                         ([1], "array"), (True, "boolean")):
        if t in types or (t == "integer" and "number" in types):
            continue
        if t == "string" and "enum" in schema:
            continue
        return candidate
    return None


def out_of_range(schema):
    """Values beyond the schema's bounds (and non-standard numbers, NUL strings)."""
    s = deref(schema)
    types = s.get("type")
    types = set(types if isinstance(types, list) else [types])
    vals = []
    if "enum" in s:
        vals.append(("enum", "not-a-member"))
    if "string" in types and "enum" not in s:
        vals.append(("nul", "a" + NUL + "b"))
    if types & {"number", "integer"}:
        if "maximum" in s:
            vals.append(("above maximum", s["maximum"] + 1))
        if "minimum" in s:
            vals.append(("below minimum", s["minimum"] - 1))
        vals += [("NaN", "__NAN__"), ("Infinity", "__INF__"), ("1e999", "__BIG__")]
        if "integer" in types:
            vals += [("1e23", 1e23), ("huge integer", "__HUGEINT__")]
    if "array" in types:
        if "maxItems" in s:
            vals.append(("too many items", ["Is it red?"] * (s["maxItems"] + 1)))
        if "minItems" in s and s["minItems"] > 0:
            vals.append(("too few items", []))
        items = deref(s.get("items") or {})
        if items.get("type") == "string":
            vals.append(("item with NUL", ["a" + NUL]))
            vals.append(("item wrong type", [5]))
    return vals


def sample_path(path, ctx):
    return (path.replace("{task_id}", ctx.get("task_id", "no-such-task"))
            .replace("{name}", "classic").replace("{version}", ctx.get("classic_version", "1"))
            .replace("{v}", ctx.get("classic_version", "1")))


def run_op(path, method, op, ctx):
    url = sample_path(path, ctx)
    admin = bool(op.get("security"))
    auth = {"Authorization": "Bearer " + API_KEY} if admin else {}
    body_spec = deref(op.get("requestBody") or {})
    content = body_spec.get("content") or {}
    # Examples: query parameter examples, body examples of each media type.
    query = ""
    for p in op.get("parameters", []):
        p = deref(p)
        if p.get("in") == "query" and "example" in p:
            query = f"?{p['name']}={urllib.request.quote(str(p['example']))}"
    if not content:
        st, h, raw = send(method, url + query, headers=auth)
        check_answer(path, method, op, "plain", st, h, raw)
    base_example = None
    for ctype, media in content.items():
        examples = []
        if "example" in media:
            examples.append(media["example"])
        for ex in (media.get("examples") or {}).values():
            examples.append(deref(ex).get("value"))
        for ex in examples:
            text = ex if isinstance(ex, str) else json.dumps(ex)
            st, h, raw = send(method, url, text, ctype, auth)
            check_answer(path, method, op, f"example {ctype}", st, h, raw)
            if ctype == "application/json" and base_example is None and isinstance(ex, dict):
                base_example = (ex, st)
    if not body_spec.get("required", False) and content:
        st, h, raw = send(method, url, None, None, auth)
        check_answer(path, method, op, "no body", st, h, raw)
    # Query parameters: wrong types and out-of-range values get 400.
    for p in op.get("parameters", []):
        p = deref(p)
        if p.get("in") != "query":
            continue
        s = deref(p.get("schema") or {})
        bad = []
        if s.get("type") in ("integer", "number"):
            bad += [("wrong type", "x"), ("NaN", "nan")]
            if "minimum" in s:
                bad.append(("below minimum", str(s["minimum"] - 1)))
            if "maximum" in s:
                bad.append(("above maximum", str(s["maximum"] + 1)))
        if "enum" in s:
            bad.append(("enum", "not-a-member"))
        bad.append(("%00", "a%00b"))
        for what, v in bad:
            q = f"?{p['name']}={v}" if v.startswith("a%") else \
                f"?{p['name']}={urllib.request.quote(v)}"
            # A body the parameter applies to: a non-JSON example (a CSV that needs
            # ?model_type=, a transcript) before the JSON one, which may override the query.
            body = ctype = None
            for ct, media in content.items():
                if ct != "application/json" and isinstance(media.get("example"), str):
                    body, ctype = media["example"], ct
                    break
            if body is None and base_example is not None:
                body, ctype = json.dumps(base_example[0]), "application/json"
            st, h, raw = send(method, url + q, body, ctype, auth)
            check_answer(path, method, op, f"query {p['name']} {what}", st, h, raw, want={400})
    # Body properties: wrong type, missing, extra, out of range.
    if base_example is not None:
        ex, base_status = base_example
        schema = deref(content["application/json"]["schema"])
        required = set(schema.get("required", []))
        for prop, ps in (schema.get("properties") or {}).items():
            ps = deref(ps)
            wt = wrong_type(ps)
            if wt is not None:
                b = dict(ex, **{prop: wt})
                st, h, raw = send(method, url, encode(b), "application/json", auth)
                check_answer(path, method, op, f"{prop} wrong type", st, h, raw, want={400})
            for what, v in out_of_range(ps):
                b = dict(ex, **{prop: v})
                st, h, raw = send(method, url, encode(b), "application/json", auth)
                check_answer(path, method, op, f"{prop} {what}", st, h, raw, want={400})
            if prop in ex:
                b = {k: v for k, v in ex.items() if k != prop}
                st, h, raw = send(method, url, encode(b), "application/json", auth)
                check_answer(path, method, op, f"{prop} missing", st, h, raw,
                             want={400} if prop in required else None)
        b = dict(copy.deepcopy(ex), zz_extra_member={"ignored": [1, 2]})
        st, h, raw = send(method, url, encode(b), "application/json", auth)
        parsed = check_answer(path, method, op, "extra member", st, h, raw)
        if st == 400:
            fail(f"{method} {path}: an extra member was refused: {parsed}")
    # A JSON route with another Content-Type, an oversized body, no admin key.
    if content:
        st, h, raw = send(method, url, "<text>hello</text>", "application/xml", auth)
        check_answer(path, method, op, "application/xml body", st, h, raw, want={415})
    if content:
        big = "x" * (ctx["max_body"] + 10)
        ctype = "text/plain" if "text/plain" in content else "application/json"
        st, h, raw = send(method, url, json.dumps({"text": big}) if ctype != "text/plain" else big,
                          ctype, auth)
        check_answer(path, method, op, "oversized body", st, h, raw, want={413})
    if admin:
        for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
            body = json.dumps(base_example[0]) if base_example else None
            st, h, raw = send(method, url, body, "application/json" if body else None, hdrs)
            check_answer(path, method, op, "no valid key", st, h, raw, want={401})
        if base_example:
            st, h, raw = send(method, url, json.dumps(base_example[0]), "application/json",
                              {"X-API-Key": API_KEY})
            check_answer(path, method, op, "X-API-Key", st, h, raw)


def router_routes():
    with open(ROUTER_C, encoding="utf-8") as f:
        text = f.read()
    return re.findall(r'\{(GET|POST), "([^"]+)", handle_', text)


def main():
    ctx = {"max_body": int(sys.argv[5]) if len(sys.argv) > 5 else 65536}
    st, h, raw = send("GET", "/api/v1/models")
    if st == 200:
        for m in json.loads(raw).get("models", []):
            if m.get("model_type") == "classic":
                ctx["classic_version"] = m["version"]
                break
    paths = DOC["paths"]
    # Retraining last: its jobs make later requests 409 while they run.
    order = sorted(paths, key=lambda p: (p == "/api/v1/models/retrain", p))
    for path in order:
        methods = {m: op for m, op in paths[path].items() if m in ("get", "post")}
        for method, op in methods.items():
            run_op(path, method.upper(), op, ctx)
        # A method the path does not take: 405 with Allow (documented for every API route).
        method, op = next(iter(methods.items()))
        if "405" in op["responses"]:
            other = "POST" if "post" not in methods else ("GET" if "get" not in methods else "PUT")
            st, h, raw = send(other, sample_path(path, ctx))
            check_answer(path, method.upper(), op, f"{other} (wrong method)", st, h, raw,
                         want={405})
    # A job's status by id, once one exists.
    st, h, raw = send("GET", "/api/v1/models/training/status")
    if st == 200 and json.loads(raw).get("task_id"):
        ctx["task_id"] = json.loads(raw)["task_id"]
        p = "/api/v1/models/training/status/{task_id}"
        st, h, raw = send("GET", sample_path(p, ctx))
        check_answer(p, "GET", paths[p]["get"], "known task", st, h, raw, want={200})
    # The other way: every route of the router's table that answers is documented.
    documented = {(re.sub(r"\{[^}]+\}", "{}", p), m.upper()) for p in paths for m in paths[p]}
    for method, route in router_routes():
        key = (re.sub(r"\{[^}]+\}", "{}", route), method)
        if key not in documented:
            fail(f"{method} {route}: the server answers it, the document lacks it")
    print(f"requests: {requests_sent}")
    for (path, method) in sorted(not_answered):
        fail(f"{method} {path}: documented, but the server does not answer it (404 not_found)")
    for a in sorted(front_end_answers):
        print(f"answered by lighttpd itself (no X-Request-Id): {a}")
    for path in sorted(paths):
        for method, op in paths[path].items():
            key = (path, method.upper())
            if key in not_answered:
                continue
            never = sorted(set(op["responses"]) - {str(s) for s in seen.get(key, set())})
            if never:
                print(f"documented, never seen: {method.upper()} {path}: {', '.join(never)}")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
