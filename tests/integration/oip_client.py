#!/usr/bin/env python3
"""The Open Inference Protocol (v2 REST) routes through a front end (test_oip.sh).

Usage: oip_client.py PORT FRONT V1 V2 VE MAX_BATCH. V1 (older) and V2 (latest) are the
classic versions of the store, VE the ensemble's ('' in a classic-only build). Requests
are written the way tritonclient.http and KServe's InferRequest.to_rest() write them.
Exits 1 on the first failed check, naming it.
"""
import http.client
import json
import struct
import sys
import uuid

PORT, FRONT, V1, V2, VE, MAX_BATCH = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], \
    sys.argv[5], int(sys.argv[6])
TEXTS = ["What do you think will happen next?", "Is the ball red?"]
checks = 0


def fail(msg):
    print(f"FAIL ({FRONT}): {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        fail(msg)


def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", int(PORT), timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        fail(f"{method} {path}: not JSON: {data[:200]!r}")
    return r.status, doc, r


def post_json(path, doc, content_type="application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    return request("POST", path, json.dumps(doc).encode(), headers)


def assert_error(status, doc, want, what, needle=None):
    check(status == want, f"{what}: status {status}, want {want}: {doc}")
    check(isinstance(doc, dict) and list(doc) == ["error"] and isinstance(doc["error"], str),
          f"{what}: not the protocol's {{\"error\"}}: {doc}")
    if needle:
        check(needle in doc["error"], f"{what}: '{needle}' not in {doc['error']!r}")


def output(doc, name):
    for o in doc["outputs"]:
        if o["name"] == name:
            return o
    fail(f"no output {name} in {doc}")


def check_infer(doc, n, what, model="classic"):
    check(doc["model_name"] == model, f"{what}: model_name {doc.get('model_name')}")
    lab, pr = output(doc, "label"), output(doc, "probabilities")
    labels = pr["parameters"]["labels"].split(",")
    check(lab["datatype"] == "BYTES" and lab["shape"] == [n] and len(lab["data"]) == n,
          f"{what}: label tensor {lab}")
    check(pr["datatype"] == "FP32" and pr["shape"] == [n, len(labels)] and
          len(pr["data"]) == n * len(labels), f"{what}: probability tensor {pr}")
    for i in range(n):
        row = pr["data"][i * len(labels):(i + 1) * len(labels)]
        check(abs(sum(row) - 1) < 1e-4, f"{what}: row {i} sums to {sum(row)}")
        check(labels[row.index(max(row))] == lab["data"][i],
              f"{what}: text {i}: label {lab['data'][i]} is not the most probable of {row}")
    return lab["data"], pr["data"], labels


# --- health and server metadata ---------------------------------------------------------
st, doc, _ = request("GET", "/v2/health/live")
check(st == 200 and doc == {"live": True}, f"live: {st} {doc}")
st, doc, _ = request("GET", "/v2/health/ready")
check(st == 200 and doc == {"ready": True}, f"server ready: {st} {doc}")
st, doc, _ = request("GET", "/v2")
check(st == 200 and doc["name"] == "cultivate-ml" and isinstance(doc["version"], str) and
      doc["extensions"] == [], f"server metadata: {st} {doc}")
st, _, r = request("HEAD", "/v2/health/live")
check(st == 200, f"HEAD live: {st}")

# --- model metadata and readiness ------------------------------------------------------
st, doc, _ = request("GET", "/v2/models/classic")
check(st == 200, f"classic metadata: {st} {doc}")
check(doc["name"] == "classic" and doc["platform"] == "cultivate-ml", f"metadata: {doc}")
check(doc["versions"][:2] == [V2, V1], f"versions {doc['versions']}, want [{V2}, {V1}] first")
check(doc["version"] == V2, f"the resident classic is {doc['version']}, want {V2}")
check(doc["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
      f"inputs {doc['inputs']}")
outs = {o["name"]: o for o in doc["outputs"]}
check(outs["label"]["datatype"] == "BYTES" and outs["label"]["shape"] == [-1], f"{outs}")
labels = outs["probabilities"]["parameters"]["labels"].split(",")
check(sorted(labels) == ["CEQ", "OEQ"] and outs["probabilities"]["shape"] == [-1, 2], f"{outs}")

st, doc, _ = request("GET", f"/v2/models/classic/versions/{V1}")
check(st == 200 and doc["version"] == V1 and doc["name"] == "classic",
      f"metadata of the older version (loaded on demand): {st} {doc}")
st, doc, _ = request("GET", "/v2/models/classic/ready")
check(st == 200 and doc["ready"] is True and doc["name"] == "classic", f"ready: {st} {doc}")
st, doc, _ = request("GET", f"/v2/models/classic/versions/{V1}/ready")
check(st == 200 and doc == {"name": "classic", "version": V1, "ready": True},
      f"ready of {V1}: {st} {doc}")
if VE:
    st, doc, _ = request("GET", "/v2/models/ensemble")
    check(st == 200 and doc["version"] == VE and VE in doc["versions"], f"ensemble: {st} {doc}")
    st, doc, _ = request("GET", "/v2/models/ensemble/ready")
    check(st == 200 and doc["ready"] is True, f"ensemble ready: {st} {doc}")
else:
    # A classic-only build names the ensemble but cannot serve it.
    st, doc, _ = request("GET", "/v2/models/ensemble")
    assert_error(st, doc, 503, "the ensemble in a classic-only build", "built without")
    st, doc, _ = post_json("/v2/models/ensemble/infer", {"inputs": [
        {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["Why?"]}]})
    assert_error(st, doc, 503, "infer on the ensemble in a classic-only build", "built without")
    st, doc, _ = request("GET", "/v2/models/ensemble/ready")
    check(st == 400 and doc == {"name": "ensemble", "ready": False}, f"ensemble ready: {doc}")

# --- unknown model or version: 404 {"error"} ------------------------------------------
st, doc, _ = request("GET", "/v2/models/resnet50")
assert_error(st, doc, 404, "unknown model", "resnet50")
st, doc, _ = post_json("/v2/models/resnet50/infer", {"inputs": []})
assert_error(st, doc, 404, "infer on an unknown model")
st, doc, _ = request("GET", "/v2/models/classic/versions/19990101T000000000Z")
assert_error(st, doc, 404, "unknown version", "19990101T000000000Z")
st, doc, _ = request("GET", "/v2/models/classic/versions/19990101T000000000Z/ready")
assert_error(st, doc, 404, "ready of an unknown version")
# Apache refuses an encoded slash itself (its own JSON 404 page); the service never sees it.
st, doc, _ = request("GET", "/v2/models/classic/versions/..%2f..%2fetc/ready")
check(st == 404, f"a version that is a path: {st} {doc}")
st, doc, _ = post_json("/v2/models/classic/versions/19990101T000000000Z/infer",
                       {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                    "data": ["Why?"]}]})
assert_error(st, doc, 404, "infer on an unknown version")
st, doc, _ = request("GET", "/v2/nothing")
assert_error(st, doc, 404, "unknown /v2 path")
st, doc, r = request("GET", "/v2/models/classic/infer")
assert_error(st, doc, 405, "GET on infer")
check(r.getheader("Allow") == "POST", f"Allow: {r.getheader('Allow')}")
# The rest of the API keeps its own error shape.
st, doc, _ = request("GET", "/api/nothing")
check(st == 404 and set(doc) == {"detail", "error"}, f"the API's own 404: {doc}")

# --- inference, the way tritonclient.http writes it ------------------------------------
# InferInput("text", [2], "BYTES").set_data_from_numpy(a, binary_data=False) and
# InferRequestedOutput(name, binary_data=False): the JSON body, and no Content-Type.
triton_json = {
    "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": TEXTS}],
    "outputs": [{"name": "label", "parameters": {"binary_data": False}},
                {"name": "probabilities", "parameters": {"binary_data": False}}],
}
st, doc, _ = post_json("/v2/models/classic/infer", triton_json, content_type=None)
check(st == 200, f"tritonclient JSON request: {st} {doc}")
labs, probs, order = check_infer(doc, 2, "tritonclient JSON")
check(doc["model_version"] == V2 and "id" not in doc, f"version/id: {doc}")
check(labs == ["OEQ", "CEQ"], f"labels of the two texts: {labs}")

# The same texts through the batch route: the same labels and probabilities.
st, batch, _ = post_json("/api/v1/classify/batch", {"questions": TEXTS, "model": "classic"})
check(st == 200, f"batch: {st} {batch}")
for i, res in enumerate(batch["results"]):
    check(res["classification"] == labs[i], f"batch text {i}: {res['classification']}")
    for c, name in enumerate(order):
        check(abs(res["probabilities"][name] - probs[i * len(order) + c]) < 1e-6,
              f"batch text {i}, {name}: {res['probabilities'][name]} vs {probs}")

# tritonclient's default: set_data_from_numpy(binary_data=True), no outputs named, so
# "binary_data_output": true; the tensor after the JSON, Inference-Header-Content-Length.
raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in TEXTS)
head = json.dumps({"id": "triton-7", "inputs": [{
    "name": "text", "shape": [2], "datatype": "BYTES",
    "parameters": {"binary_data_size": len(raw)}}],
    "parameters": {"binary_data_output": True}}).encode()
st, doc, _ = request("POST", "/v2/models/classic/infer", head + raw,
                     {"Inference-Header-Content-Length": str(len(head))})
check(st == 200, f"tritonclient binary request: {st} {doc}")
check(doc["id"] == "triton-7", f"id not echoed: {doc}")
check(check_infer(doc, 2, "tritonclient binary")[0] == labs, "binary labels differ")
st, doc, _ = request("POST", "/v2/models/classic/infer", head + raw[:-1],
                     {"Inference-Header-Content-Length": str(len(head)),
                      "Content-Type": "application/octet-stream"})
assert_error(st, doc, 400, "binary data one byte short", "binary_data_size")
st, doc, _ = request("POST", "/v2/models/classic/infer", head + raw,
                     {"Inference-Header-Content-Length": "999999"})
assert_error(st, doc, 400, "header length beyond the body", "Inference-Header-Content-Length")

# --- inference, the way KServe's InferRequest.to_rest() writes it ----------------------
model = "ensemble" if VE else "classic"
rid = str(uuid.uuid4())
kserve = {"id": rid, "model_name": model, "inputs": [{
    "name": "text", "shape": [2], "datatype": "BYTES", "parameters": {"content_type": "str"},
    "data": TEXTS}]}
st, doc, _ = post_json(f"/v2/models/{model}/infer", kserve)
check(st == 200 and doc["id"] == rid, f"KServe request: {st} {doc}")
check_infer(doc, 2, "KServe", model)
check(doc["model_version"] == (VE or V2), f"KServe model_version {doc['model_version']}")

# A pinned older version, loaded on demand; nested data; one output asked for.
st, doc, _ = post_json(f"/v2/models/classic/versions/{V1}/infer", {
    "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                "data": [[TEXTS[0]], [TEXTS[1]]]}], "outputs": [{"name": "probabilities"}]})
check(st == 200 and doc["model_version"] == V1, f"versioned infer: {st} {doc}")
check([o["name"] for o in doc["outputs"]] == ["probabilities"], f"outputs {doc['outputs']}")

# --- what the protocol refuses: 400 {"error"} -------------------------------------------
def infer_bad(body, needle, what, status=400, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    st, doc, _ = request("POST", "/v2/models/classic/infer", data,
                         {"Content-Type": content_type})
    assert_error(st, doc, status, what, needle)


def one(**kw):
    t = {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["Why?"]}
    t.update(kw)
    return {"inputs": [t]}


infer_bad(one(datatype="FP32", data=[1.0]), "datatype FP32", "FP32 input")
infer_bad(one(datatype="INT64", data=[1]), "datatype INT64", "INT64 input")
infer_bad(one(shape=[1, 1]), "shape", "shape [1, 1]")
infer_bad(one(shape=[2]), "holds 1 elements", "shape larger than the data")
infer_bad(one(shape=[]), "shape", "rank 0 shape")
infer_bad(one(shape=["1"]), "shape", "a string dimension")
infer_bad(one(data=[7]), "not a string", "a number in BYTES data")
infer_bad(one(name="INPUT__0"), "unknown input", "wrong input name")
infer_bad({"inputs": one()["inputs"] * 2}, "2 inputs", "two inputs")
infer_bad({"inputs": one()["inputs"], "outputs": [{"name": "scores"}]}, "unknown output",
          "unknown output")
infer_bad({"id": 5, "inputs": one()["inputs"]}, "id must be a string", "numeric id")
infer_bad(b"{\"inputs\": [", "well-formed JSON", "malformed JSON")
infer_bad(b"", "", "no body")
infer_bad(one(data=["   "]), "1 to", "an empty text")
infer_bad(one(data=["x" * 10001]), "1 to 10000", "a text over the limit")
n = MAX_BATCH + 1
infer_bad(one(shape=[n], data=["Why?"] * n), f"1 to {MAX_BATCH} texts", "a batch over the limit")
infer_bad(one(), "application/json", "text/plain body", status=415, content_type="text/plain")

print(f"{FRONT}: {checks} Open Inference Protocol checks passed")
