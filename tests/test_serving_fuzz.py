"""Hostile input against a live `ccfrec serve`: 10,000+ generated malformed or hostile REST
requests (bodies, JSON shapes, unicode, b64, tf.Examples, sizes, paths, methods, headers, raw
HTTP) from 8 concurrent clients, and gRPC requests with random tensors and model specs. No
answer is a 5xx (or INTERNAL/UNKNOWN), valid requests mixed in are answered, the server keeps
answering health checks and its memory stays bounded."""

import base64
import collections
import concurrent.futures
import http.client
import json
import random
import socket

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tests import serving_server
from tests.serving_server import ITEM_IDS

REQUESTS = 10_400
MAX_BODY = 65536


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    serving_server.export(str(base / "ccfrec" / "1"), seed=0)
    server = serving_server.start(["--model-base", str(base), "--model-name", "ccfrec",
                                   "--max-body-bytes", str(MAX_BODY), "--max-rows", "64"],
                                  str(tmp_path_factory.mktemp("logs")))
    yield server
    assert server.stop() == 0


def _text(rng: random.Random) -> str:
    """Unicode of every kind: ids, controls, NUL, emoji, right-to-left, combining marks, long."""
    choice = rng.randrange(8)
    if choice == 0:
        return rng.choice(ITEM_IDS)
    if choice == 1:
        return rng.choice(ITEM_IDS).upper() + rng.choice(["", " ", "\u3000", "\u0301"])
    if choice == 2:
        return "".join(chr(rng.randrange(0, 0x300)) for _ in range(rng.randrange(0, 40)))
    if choice == 3:
        return "".join(chr(rng.choice([0x1F600, 0x202E, 0x200B, 0xFEFF, 0x0000, 0x10FFFF,
                                       0xE000])) for _ in range(rng.randrange(1, 10)))
    if choice == 4:
        return "x" * rng.choice([1, 100, 1000, 5000])
    if choice == 5:
        return ""
    if choice == 6:
        return "".join(chr(rng.randrange(0x3000, 0x30FF)) for _ in range(rng.randrange(1, 8)))
    return rng.choice(["'; DROP TABLE items; --", "../../etc/passwd", "%s%n", "${jndi:x}",
                       "<script>", "\\", "\"", "null"])


def _value(rng: random.Random, depth: int = 0):
    """A random JSON value."""
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2 ** 63, -2 ** 70, 1.5, 1e308, 3])
    if kind == 3:
        return _text(rng)
    if kind == 4:
        return {"b64": rng.choice(["", "!!", "AAAA", "////", "bm9wZQ==", "a" * 5, 7])}
    if kind == 5:
        return []
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(1, 5))]
    if kind == 7:
        return {rng.choice(["history", "examples", "b64", "instances", "x", ""]):
                _value(rng, depth + 1) for _ in range(rng.randrange(1, 4))}
    return [[_text(rng) for _ in range(rng.randrange(0, 6))] for _ in range(rng.randrange(1, 4))]


def _example(rng: random.Random) -> str:
    """A b64 tf.Example, well-formed or not: wrong feature types, two targets, junk."""
    feature = {}
    kind = rng.randrange(7)
    if kind != 0:
        feature["history"] = tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[_text(rng).encode("utf-8", "surrogatepass") for _ in range(rng.randrange(4))]))
    if kind == 1:
        feature["history"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[1, 2]))
    if kind == 2:
        feature["target"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a", b"b"]))
    elif kind == 3:
        feature["target"] = tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))
    else:
        feature["target"] = tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[rng.choice(ITEM_IDS).encode()]))
    data = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    if kind == 4:
        data = data[:rng.randrange(len(data) + 1)]
    if kind == 5:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
    return base64.b64encode(data).decode()


def _raw_json_with(rng: random.Random) -> bytes:
    """JSON text a serializer would not write: lone surrogates, NaN, deep nesting, junk."""
    return rng.choice([
        b'{"instances": [["\\ud800"]]}', b'{"instances": [["\\udfff\\ud800"]]}',
        b'{"instances": NaN}', b'{"instances": [[Infinity]]}', b'{"instances": [-Infinity]}',
        b'{"instances": [["a"]], "instances": 3}', b'{"instances": [["\\u0000"]]}',
        b'[' * 20000 + b']' * 20000, b'{"a":' * 3000 + b'1' + b'}' * 3000,
        b'{"instances": [["a"]]', b'\xef\xbb\xbf{"instances": [["a"]]}', b'\xff\xfe{}',
        b'{"instances": [' + b'["a"],' * 70 + b'["a"]]}', b'  ', b'',
        json.dumps({"instances": [["a" * 70000]]}).encode()])


def _request(rng: random.Random, i: int):
    """(method, path, headers, body, valid): one generated request."""
    path = "/v1/models/ccfrec:predict"
    headers = {"Content-Type": "application/json"}
    kind = i % 10
    if kind == 0:  # valid, mixed in: must be answered
        signature = rng.choice(["serving_default", "serving_excluding_history", "embed_query"])
        body = {"signature_name": signature, "instances": [
            [rng.choice(ITEM_IDS) for _ in range(rng.randrange(0, 8))]
            for _ in range(rng.randrange(1, 5))], "search": rng.choice(["exact", "scann"])}
        return "POST", path, headers, json.dumps(body).encode(), True
    if kind == 1:
        return "POST", path, headers, bytes(rng.randrange(256)
                                            for _ in range(rng.randrange(0, 300))), False
    if kind == 2:
        text = json.dumps({"instances": _value(rng)})
        return "POST", path, headers, text[:rng.randrange(len(text) + 1)].encode(), False
    if kind == 3:
        body = {rng.choice(["instances", "inputs"]): _value(rng)}
        if rng.random() < 0.5:
            body["signature_name"] = rng.choice([_text(rng), 3, None, "serve_tf_examples",
                                                 "embed_items", "serving_default"])
        if rng.random() < 0.3:
            body["search"] = _value(rng)
        return "POST", path, headers, json.dumps(body).encode(), False
    if kind == 4:
        rows = [[_text(rng) for _ in range(rng.randrange(0, 6))]
                for _ in range(rng.randrange(1, 70))]
        body = json.dumps({"instances": rows}, ensure_ascii=rng.random() < 0.5)
        return "POST", path, headers, body.encode("utf-8", "surrogatepass"), False
    if kind == 5:
        body = {"signature_name": "serve_tf_examples",
                "instances": [{"b64": _example(rng)} for _ in range(rng.randrange(1, 6))]}
        return "POST", path, headers, json.dumps(body).encode(), False
    if kind == 6:
        body = {"signature_name": rng.choice(["serving_default", "embed_items"]),
                "instances": [[{"b64": base64.b64encode(bytes(
                    rng.randrange(256) for _ in range(rng.randrange(0, 20)))).decode()}]
                    if rng.random() < 0.5 else {"b64": rng.choice(["AA==", "/w=="])}
                    for _ in range(rng.randrange(1, 4))]}
        return "POST", path, headers, json.dumps(body).encode(), False
    if kind == 7:
        return "POST", path, headers, _raw_json_with(rng), False
    if kind == 8:
        method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "POST"])
        path = rng.choice([
            "/v1/models/ccfrec", "/v1/models/ccfrec/metadata", "/v1/models/ccfrec/versions/1",
            "/v1/models/ccfrec/versions/99999999999999999999999:predict",
            "/v1/models/ccfrec/versions/-1:predict", "/v1/models/ccfrec/labels/%E2%98%83",
            "/v1/models/%00:predict", "/v1/models//versions/1", "/v1/models/ccfrec:predict/x",
            "/" + "a" * 2000, "/v1/models/ccfrec/labels/stable/metadata", "/monitoring",
            "/v1/models/ccfrec:classify", "/v2/models/ccfrec:predict", "/%ff%fe"])
        return method, path, headers, json.dumps({"instances": [["a"]]}).encode(), False
    headers = rng.choice([{"Content-Type": "text/plain"}, {"Content-Encoding": "gzip"},
                          {"Content-Encoding": "br"}, {"Content-Type": "\u00ff"},
                          {"Expect": "100-continue"}, {"X-" + "a" * 100: "b" * 4000},
                          {"Accept-Encoding": "gzip"}, {}])
    return "POST", path, headers, json.dumps({"instances": [[rng.choice(ITEM_IDS)]]}).encode(), \
        False


def _raw_http(port: int, rng: random.Random):
    """Malformed HTTP on a raw socket: the status line's code, or None if the server closed."""
    data = rng.choice([
        b"GARBAGE\r\n\r\n", b"POST /v1/models/ccfrec:predict HTTP/1.1\r\nContent-Length: 100\r\n"
        b"\r\n{\"instances\"", b"POST /v1/models/ccfrec:predict HTTP/1.1\r\nContent-Length: -5\r\n"
        b"\r\n", b"POST /v1/models/ccfrec:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n{}\r\n0\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00",
        b"GET /v1/models/ccfrec HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 200 + b"\r\n"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        try:
            connection.shutdown(socket.SHUT_WR)
            answer = connection.recv(64)
        except OSError:
            return None
    if answer.startswith(b"HTTP/"):
        return int(answer.split()[1])
    return None


def test_rest_fuzz_has_no_5xx(server):
    rest_port = server.rest_port
    codes = collections.Counter()
    valid = collections.Counter()
    failures = []

    def worker(offset: int, start: int, stop: int):
        rng = random.Random(offset * 7919 + start)
        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=60)
        for i in range(start + offset, stop, 8):
            if i % 97 == 0:
                status = _raw_http(rest_port, rng)
                if status is not None:
                    codes[status] += 1
                    if status >= 500:
                        failures.append(("raw", status))
                continue
            method, path, headers, body, is_valid = _request(rng, i)
            try:
                connection.request(method, path, body, headers)
                answer = connection.getresponse()
                text = answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException):
                # The server may close a connection after a malformed request; open another.
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=60)
                codes["closed"] += 1
                continue
            codes[status] += 1
            if status >= 500 or (is_valid and status != 200):
                failures.append((method, path, body[:200], status, text[:300]))
            if is_valid:
                valid[status] += 1
            if status != 200 and method != "HEAD" and text:
                try:
                    json.loads(text)
                except ValueError:
                    if status != 400:  # aiohttp's own answer to unparseable HTTP is text
                        failures.append((method, path, body[:200], status, text[:300]))
            if i % 1000 < 8:
                health = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=10)
                health.request("GET", "/v1/models/ccfrec")
                assert health.getresponse().status == 200
                health.close()

    rss = [server.rss_mib()]
    for start, stop in ((0, REQUESTS // 2), (REQUESTS // 2, REQUESTS)):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda offset: worker(offset, start, stop), range(8)))
        rss.append(server.rss_mib())
    sent = sum(codes.values())
    print("REST fuzz answers:", dict(codes), "valid:", dict(valid),
          "RSS MiB before, after each half:", [round(r) for r in rss])
    assert not failures, failures[:5]
    assert sent >= 10_000
    assert valid[200] >= 1000
    assert codes[400] > 3000 and codes[404] > 100
    assert server.call("/v1/models/ccfrec")[0] == 200
    # The first half warms the allocator's pools; the second adds no more than noise.
    assert rss[2] - rss[1] < 40, rss


def test_grpc_fuzz_has_no_internal_errors(server):
    predictions, _ = serving_server.grpc_stub(server)
    rng = random.Random(1)
    codes = collections.Counter()
    for i in range(600):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = rng.choice(["ccfrec", "ccfrec", "", "nope", "\u2603"])
        if rng.random() < 0.2:
            request.model_spec.version.value = rng.choice([1, 0, -1, 2 ** 62])
        elif rng.random() < 0.1:
            request.model_spec.version_label = _text(rng)[:50] or "x"
        request.model_spec.signature_name = rng.choice(
            ["", "serving_default", "serve_tf_examples", "embed_items", _text(rng)[:30]])
        name = rng.choice(["history", "history", "examples", "item_ids", "x"])
        kind = rng.randrange(6)
        if kind == 0:
            value = tf.make_tensor_proto([[rng.choice(ITEM_IDS)] * rng.randrange(1, 5)] *
                                         rng.randrange(1, 70))
        elif kind == 1:
            value = tf.make_tensor_proto(rng.random(), tf.float32)
        elif kind == 2:
            value = tf.make_tensor_proto([[bytes(rng.randrange(256) for _ in range(5))]])
        elif kind == 3:
            value = tf.make_tensor_proto([base64.b64decode(_example(rng))])
        elif kind == 4:
            value = tf.make_tensor_proto([[_text(rng).encode("utf-8", "surrogatepass")]])
        else:
            value = tf.make_tensor_proto([["a"]])
            value.dtype = rng.choice([0, 7, 23, 1000])
        request.inputs[name].CopyFrom(value)
        if rng.random() < 0.1:
            request.output_filter.append(rng.choice(["item_ids", "nope"]))
        try:
            predictions.Predict(request, 30)
            codes["OK"] += 1
        except grpc.RpcError as error:
            codes[error.code().name] += 1
    print("gRPC fuzz answers:", dict(codes))
    assert set(codes) <= {"OK", "INVALID_ARGUMENT", "NOT_FOUND"}, dict(codes)
    assert codes["OK"] > 0 and codes["INVALID_ARGUMENT"] > 0
