"""`ccfrec serve` on loopback: TF Serving's REST API over exported versions, bad input, version
changes under load."""

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO
from tf_ccfrec.export import saved_model
from tf_ccfrec.models.ccfrec import CCFRecModel
from tf_ccfrec.models.config import CCFRecConfig

NUM_ITEMS, DIM = 60, 16
ITEM_IDS = [f"item{i:03d}" for i in range(NUM_ITEMS)]


def _export(directory, seed):
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    config = CCFRecConfig(dim=DIM, ffn_dim=32, max_history=5, dropout=0.0)
    model = CCFRecModel(config, rng.integers(0, 16, (NUM_ITEMS, 4)),
                        rng.standard_normal((NUM_ITEMS, 2, DIM)).astype(np.float32),
                        codebook_size=16, seed=0)
    model.compute_loss({"history": tf.ones([1, 5], tf.int32), "target": tf.ones([1], tf.int32)})
    saved_model.export(model, ITEM_IDS, np.arange(NUM_ITEMS + 1), directory, top_k=5)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(server, path, body=None, raw=None):
    """(status, JSON answer) of GET path, or POST of body (JSON) / raw bytes."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(f"{server['url']}{path}", data=data,
                                     method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    _export(str(base / "ccfrec" / "1"), seed=0)
    port = _free_port()
    process = subprocess.Popen(
        [os.path.join(REPO, "bin", "ccfrec"), "serve", "--model-base", str(base),
         "--model-name", "ccfrec", "--port", str(port), "--poll-seconds", "0.3",
         "--max-body-bytes", "20000", "--max-rows", "50", "--label", "stable=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    info = {"url": f"http://127.0.0.1:{port}", "base": base, "process": process}
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if call(info, "/v1/models/ccfrec")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("server did not start: " + process.stdout.read()[-3000:])
    yield info
    process.terminate()
    process.wait(timeout=30)


def test_status_and_metadata(server):
    status, answer = call(server, "/v1/models/ccfrec")
    assert status == 200
    assert answer["model_version_status"][0]["version"] == "1"
    assert answer["model_version_status"][0]["state"] == "AVAILABLE"
    status, meta = call(server, "/v1/models/ccfrec/versions/1/metadata")
    assert status == 200
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "embed_query", "serve_tf_examples"} <= set(signatures)
    assert signatures["serving_default"]["inputs"]["history"]["dtype"] == "DT_STRING"


def test_predict_rows_and_columns_equal_the_savedmodel(server):
    loaded = tf.saved_model.load(str(server["base"] / "ccfrec" / "1"))
    histories = [[ITEM_IDS[1], ITEM_IDS[2]], [ITEM_IDS[3]]]
    expected = loaded.signatures["serving_default"](
        history=tf.constant([histories[0], [ITEM_IDS[3], ""]]))
    status, rows = call(server, "/v1/models/ccfrec:predict", {"instances": histories})
    assert status == 200
    for i in range(2):
        assert rows["predictions"][i]["item_ids"] == \
            [x.decode() for x in expected["item_ids"][i].numpy()]
        np.testing.assert_allclose(rows["predictions"][i]["scores"],
                                   expected["scores"][i].numpy(), rtol=1e-5)
    status, columns = call(server, "/v1/models/ccfrec/versions/1:predict",
                           {"inputs": {"history": histories}})
    assert status == 200 and columns["outputs"]["item_ids"] == \
        [r["item_ids"] for r in rows["predictions"]]
    status, named = call(server, "/v1/models/ccfrec:predict",
                         {"instances": [{"history": histories[0]}], "search": "scann"})
    assert status == 200 and named["predictions"][0]["item_ids"] == \
        rows["predictions"][0]["item_ids"]


def test_unknown_ids_and_empty_history(server):
    status, answer = call(server, "/v1/models/ccfrec:predict",
                          {"instances": [["nope", ITEM_IDS[4]], [], ["unknown"]]})
    assert status == 200
    first, empty, unknown = answer["predictions"]
    assert first["known_items"] == 1 and not first["fallback"]
    assert empty["fallback"] and unknown["fallback"]
    assert empty["item_ids"] == [ITEM_IDS[i] for i in range(NUM_ITEMS - 1, NUM_ITEMS - 6, -1)]


@pytest.mark.parametrize("path,body,status,message", [
    ("/v1/models/ccfrec:predict", b"{not json", 400, "malformed JSON"),
    ("/v1/models/ccfrec:predict", {"instances": [[1, 2]]}, 400, "expected a string"),
    ("/v1/models/ccfrec:predict", {"instances": "x"}, 400, "'instances' must be a list"),
    ("/v1/models/ccfrec:predict", {"instances": [["a"]], "inputs": {}}, 400, "exactly one"),
    ("/v1/models/ccfrec:predict", {"instances": [{"histories": ["a"]}]}, 400, "expected inputs"),
    ("/v1/models/ccfrec:predict", {"instances": [["a"]] * 51}, 400, "at most 50"),
    ("/v1/models/ccfrec:predict", {"instances": [["a"]], "search": "fast"}, 400, "search"),
    ("/v1/models/ccfrec:predict", {"instances": [["a"]], "signature_name": "nope"}, 404,
     "not found in signature def"),
    ("/v1/models/other:predict", {"instances": [["a"]]}, 404, "Servable not found"),
    ("/v1/models/ccfrec/versions/9:predict", {"instances": [["a"]]}, 404, "Specific(ccfrec, 9)"),
    ("/v1/models/ccfrec/labels/canary:predict", {"instances": [["a"]]}, 404, "label"),
    ("/v1/models/ccfrec:predict", {"instances": [["x" * 30000]]}, 413, "over 20000 bytes"),
])
def test_client_faults_get_a_4xx_with_an_error(server, path, body, status, message):
    code, answer = call(server, path, raw=body if isinstance(body, bytes) else None,
                        body=None if isinstance(body, bytes) else body)
    assert code == status, answer
    assert message in answer["error"]


def test_new_corrupt_and_swapped_versions_under_load(server):
    directory = server["base"] / "ccfrec"
    (directory / "3").mkdir()
    (directory / "3" / "saved_model.pb").write_bytes(b"half-written")

    def ask(_):
        return call(server, "/v1/models/ccfrec:predict", {"instances": [[ITEM_IDS[1]]]})[0]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        load = pool.map(ask, range(400))
        staging = str(server["base"] / "staging")
        _export(staging, seed=1)
        shutil.move(staging, str(directory / "2"))
        time.sleep(3)
        codes = list(load)
    assert codes == [200] * 400
    status, answer = call(server, "/v1/models/ccfrec")
    assert [v["version"] for v in answer["model_version_status"]] == ["1", "2"]
    assert call(server, "/v1/models/ccfrec/versions/1:predict",
                {"instances": [[ITEM_IDS[1]]]})[0] == 200
    status, pinned = call(server, "/v1/models/ccfrec/labels/stable")
    assert status == 200 and pinned["model_version_status"][0]["version"] == "1"
    shutil.rmtree(directory / "2")
    time.sleep(1.5)
    status, answer = call(server, "/v1/models/ccfrec")
    assert [v["version"] for v in answer["model_version_status"]] == ["1"]


def test_prometheus_metrics(server):
    call(server, "/v1/models/ccfrec:predict", {"instances": [[ITEM_IDS[1]]]})
    request = urllib.request.urlopen(f"{server['url']}/monitoring/prometheus/metrics")
    text = request.read().decode()
    assert 'ccfrec_requests_total{code="200",endpoint="predict"}' in text
    assert "ccfrec_request_latency_seconds_bucket" in text
