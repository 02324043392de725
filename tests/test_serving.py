"""`ccfrec serve` on loopback: TF Serving's REST and gRPC APIs over two models of a model config
file, the official client (`tensorflow-serving-api`), bad input, strict JSON, ScaNN against
exact."""

import base64
import json
import os
import subprocess
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, predict_pb2)

from tests import serving_server
from tests.serving_server import ITEM_IDS, NUM_ITEMS

CONFIG = """
model_config_list {
  config {
    name: "ccfrec"
    base_path: "%(base)s/ccfrec"
    model_platform: "tensorflow"
    version_labels { key: "stable" value: 1 }
  }
  config {
    name: "wide"
    base_path: "%(base)s/wide"
    model_version_policy { specific { versions: 4 } }
  }
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    serving_server.export(str(base / "ccfrec" / "1"), seed=0)
    # Every item: rows are short once the history is left out.
    serving_server.export(str(base / "wide" / "4"), seed=2, top_k=NUM_ITEMS)
    config = base / "models.config"
    config.write_text(CONFIG % {"base": base})
    server = serving_server.start(
        ["--model_config_file", str(config), "--poll-seconds", "0.3", "--max-body-bytes",
         "20000", "--max-rows", "50"], str(tmp_path_factory.mktemp("logs")))
    server.base = base
    yield server
    assert server.stop() == 0


def test_status_and_metadata(server):
    assert server.versions() == {1: "AVAILABLE"}
    assert server.versions("wide") == {4: "AVAILABLE"}
    status, meta = server.call("/v1/models/ccfrec/versions/1/metadata")
    assert status == 200
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "embed_query", "serve_tf_examples"} <= set(signatures)
    assert signatures["serving_default"]["inputs"]["history"]["dtype"] == "DT_STRING"
    # The same SignatureDefMap over gRPC.
    predictions, _ = serving_server.grpc_stub(server)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "ccfrec"
    answer = predictions.GetModelMetadata(request, 30)
    unpacked = get_model_metadata_pb2.SignatureDefMap()
    answer.metadata["signature_def"].Unpack(unpacked)
    assert answer.model_spec.version.value == 1
    assert json_format.MessageToDict(unpacked, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True) == \
        meta["metadata"]["signature_def"]


def test_predict_rows_and_columns_equal_the_savedmodel(server):
    loaded = tf.saved_model.load(str(server.base / "ccfrec" / "1"))
    histories = [[ITEM_IDS[1], ITEM_IDS[2]], [ITEM_IDS[3]]]
    expected = loaded.signatures["serving_default"](
        history=tf.constant([histories[0], [ITEM_IDS[3], ""]]))
    status, rows = server.predict(histories)
    assert status == 200
    for i in range(2):
        assert rows["predictions"][i]["item_ids"] == \
            [x.decode() for x in expected["item_ids"][i].numpy()]
        np.testing.assert_allclose(rows["predictions"][i]["scores"],
                                   expected["scores"][i].numpy(), rtol=1e-5)
    status, columns = server.call("/v1/models/ccfrec/versions/1:predict",
                                  {"inputs": {"history": histories}})
    assert status == 200 and columns["outputs"]["item_ids"] == \
        [r["item_ids"] for r in rows["predictions"]]
    status, named = server.call("/v1/models/ccfrec/labels/stable:predict",
                                {"instances": [{"history": histories[0]}], "search": "scann"})
    assert status == 200 and named["predictions"][0]["item_ids"] == \
        rows["predictions"][0]["item_ids"]


def test_grpc_predict_equals_rest(server):
    """The official stub and tf.make_tensor_proto: the same top-k as REST for every
    addressing (latest, version, label), both signatures, batched rows; output_filter."""
    predictions, models = serving_server.grpc_stub(server)
    histories = [[ITEM_IDS[5], ITEM_IDS[9], ITEM_IDS[7]], [ITEM_IDS[11]], ["unknown"]]
    for signature in ("serving_default", "serving_excluding_history"):
        status, rest = server.predict(histories, signature)
        assert status == 200
        for address in ({}, {"version": 1}, {"label": "stable"}):
            answer = serving_server.grpc_predict(predictions, histories, signature, **address)
            assert answer.model_spec.name == "ccfrec" and answer.model_spec.version.value == 1
            assert answer.model_spec.signature_name == signature
            ids = tf.make_ndarray(answer.outputs["item_ids"])
            scores = tf.make_ndarray(answer.outputs["scores"])
            assert [[x.decode() for x in row] for row in ids] == \
                [r["item_ids"] for r in rest["predictions"]]
            np.testing.assert_allclose(scores, [r["scores"] for r in rest["predictions"]],
                                       rtol=1e-6)
            assert tf.make_ndarray(answer.outputs["fallback"]).tolist() == \
                [r["fallback"] for r in rest["predictions"]]
    request = predict_pb2.PredictRequest(output_filter=["item_ids"])
    request.model_spec.name = "ccfrec"
    request.inputs["history"].CopyFrom(tf.make_tensor_proto([[ITEM_IDS[1]]]))
    assert set(predictions.Predict(request, 30).outputs) == {"item_ids"}
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "wide"
    [entry] = models.GetModelStatus(status_request, 30).model_version_status
    assert entry.version == 4 and entry.state == entry.AVAILABLE and entry.status.error_code == 0


@pytest.mark.parametrize("change,code,message", [
    (lambda r: setattr(r.model_spec, "name", "nope"), "NOT_FOUND", "Servable not found"),
    (lambda r: r.model_spec.version.__setattr__("value", 9), "NOT_FOUND",
     "Specific(ccfrec, 9)"),
    (lambda r: setattr(r.model_spec, "version_label", "canary"), "NOT_FOUND", "label"),
    (lambda r: setattr(r.model_spec, "signature_name", "nope"), "NOT_FOUND",
     "not found in signature def"),
    (lambda r: r.inputs["history"].CopyFrom(tf.make_tensor_proto([[1, 2]])),
     "INVALID_ARGUMENT", "DT_STRING"),
    (lambda r: r.inputs["history"].CopyFrom(tf.make_tensor_proto(["a"])),
     "INVALID_ARGUMENT", "rank 2"),
    (lambda r: r.inputs["other"].CopyFrom(tf.make_tensor_proto([["a"]])),
     "INVALID_ARGUMENT", "expected inputs"),
    (lambda r: r.inputs["history"].CopyFrom(tf.make_tensor_proto([["a"]] * 51)),
     "INVALID_ARGUMENT", "at most 50"),
    (lambda r: setattr(r.inputs["history"], "dtype", 999), "INVALID_ARGUMENT",
     "not a valid TensorProto"),
    (lambda r: r.inputs["history"].CopyFrom(tf.make_tensor_proto([[b"\xff\xfe"]])),
     "INVALID_ARGUMENT", "the model refused the input: Invalid formatting"),
    (lambda r: r.output_filter.append("nope"), "INVALID_ARGUMENT", "output_filter"),
])
def test_grpc_faults_get_their_status_code(server, change, code, message):
    predictions, _ = serving_server.grpc_stub(server)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "ccfrec"
    request.inputs["history"].CopyFrom(tf.make_tensor_proto([[ITEM_IDS[1]]]))
    change(request)
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(request, 30)
    assert raised.value.code().name == code, raised.value.details()
    assert message in raised.value.details()


def test_grpc_classify_is_unimplemented(server):
    predictions, _ = serving_server.grpc_stub(server)
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "ccfrec"
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Classify(request, 30)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unknown_ids_and_empty_history(server):
    status, answer = server.predict([["nope", ITEM_IDS[4]], [], ["unknown"]])
    assert status == 200
    first, empty, unknown = answer["predictions"]
    assert first["known_items"] == 1 and not first["fallback"]
    assert empty["fallback"] and unknown["fallback"]
    assert empty["item_ids"] == [ITEM_IDS[i] for i in range(NUM_ITEMS - 1, NUM_ITEMS - 6, -1)]


def _example(history, target):
    return base64.b64encode(tf.train.Example(features=tf.train.Features(feature={
        "history": tf.train.Feature(bytes_list=tf.train.BytesList(value=history)),
        "target": tf.train.Feature(bytes_list=tf.train.BytesList(value=target)),
    })).SerializeToString()).decode()


@pytest.mark.parametrize("path,body,status,message", [
    ("/v1/models/ccfrec:predict", b"{not json", 400, "malformed JSON"),
    ("/v1/models/ccfrec:predict", b"[" * 9000 + b"]" * 9000, 400, "a JSON object"),
    ("/v1/models/ccfrec:predict", b'{"instances": [["\\ud800"]]}', 400, "not valid unicode"),
    ("/v1/models/ccfrec:predict", {"instances": [[1, 2]]}, 400, "expected a string"),
    ("/v1/models/ccfrec:predict", {"instances": "x"}, 400, "'instances' must be a list"),
    ("/v1/models/ccfrec:predict", {"instances": [["a"]], "inputs": {}}, 400, "exactly one"),
    ("/v1/models/ccfrec:predict", {"instances": [{"histories": ["a"]}]}, 400, "expected inputs"),
    ("/v1/models/ccfrec:predict", {"instances": [["a"]] * 51}, 400, "at most 50"),
    ("/v1/models/ccfrec:predict", {"instances": [["a"]], "search": "fast"}, 400, "search"),
    ("/v1/models/ccfrec:predict", {"instances": [[{"b64": "//4="}]]}, 400,
     "the model refused the input: Invalid formatting"),
    ("/v1/models/ccfrec:predict", {"signature_name": "serve_tf_examples",
                                   "instances": [{"b64": "bm90IGEgcHJvdG8="}]}, 400, "parse"),
    ("/v1/models/ccfrec:predict", {"signature_name": "serve_tf_examples", "instances": [
        {"b64": _example([b"item001"], [b"item002", b"item003"])}]}, 400, "target"),
    ("/v1/models/ccfrec:predict", {"instances": [["a"]], "signature_name": "nope"}, 404,
     "not found in signature def"),
    ("/v1/models/other:predict", {"instances": [["a"]]}, 404, "Servable not found"),
    ("/v1/models/ccfrec/versions/9:predict", {"instances": [["a"]]}, 404, "Specific(ccfrec, 9)"),
    ("/v1/models/ccfrec/labels/canary:predict", {"instances": [["a"]]}, 404, "label"),
    ("/v1/models/ccfrec:predict", {"instances": [["x" * 30000]]}, 413, "over 20000 bytes"),
])
def test_client_faults_get_a_4xx_with_an_error(server, path, body, status, message):
    code, answer = server.call(path, raw=body if isinstance(body, bytes) else None,
                               body=None if isinstance(body, bytes) else body)
    assert code == status, answer
    assert message in answer["error"], answer


def test_tf_examples_answer_ranks(server):
    status, answer = server.predict(
        [{"b64": _example([ITEM_IDS[1].encode(), ITEM_IDS[2].encode()], [ITEM_IDS[3].encode()])},
         {"b64": _example([ITEM_IDS[1].encode()], [b"unknown"])}], "serve_tf_examples")
    assert status == 200, answer
    known, unknown = answer["predictions"]
    assert 0 <= known["target_rank"] < NUM_ITEMS and unknown["target_rank"] == -1


def test_short_rows_are_strict_json(server):
    """All but the history is fewer than k items: the rest is "" with null scores, on both
    searches (a strict parser reads the answer)."""
    history = [ITEM_IDS[i].upper() for i in (3, 8, 13)]
    raw = {}
    for search in ("exact", "scann"):
        status, answer = server.predict([history], "serving_excluding_history", model="wide",
                                        search=search)
        assert status == 200
        row = answer["predictions"][0]
        assert row["item_ids"][-3:] == ["", "", ""] and row["scores"][-3:] == [None] * 3
        assert not set(row["item_ids"]) & {ITEM_IDS[i] for i in (3, 8, 13)}
        raw[search] = row
    assert raw["exact"]["item_ids"] == raw["scann"]["item_ids"]
    request = urllib.request.Request(
        server.url + "/v1/models/wide:predict", data=json.dumps(
            {"signature_name": "serving_excluding_history", "instances": [history]}).encode())
    text = urllib.request.urlopen(request).read().decode()

    def strict(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    json.loads(text, parse_constant=strict)


def test_scann_and_exact_leave_out_the_same_normalized_history(server):
    """Request ids the export normalizes (upper case here) are left out on both paths."""
    histories = [[ITEM_IDS[i].upper() for i in (1, 2, 3, 4)], [ITEM_IDS[7].upper()]]
    answers = {}
    for search in ("exact", "scann"):
        status, answer = server.predict(histories, "serving_excluding_history", search=search)
        assert status == 200
        answers[search] = answer["predictions"]
    for exact, scann, history in zip(answers["exact"], answers["scann"], histories):
        assert exact["item_ids"] == scann["item_ids"]
        np.testing.assert_allclose(exact["scores"], scann["scores"], rtol=1e-4)
        assert not set(exact["item_ids"]) & {h.lower() for h in history}


def test_prometheus_metrics(server):
    server.predict([[ITEM_IDS[1]]])
    predictions, _ = serving_server.grpc_stub(server)
    serving_server.grpc_predict(predictions, [[ITEM_IDS[1]]])
    text = urllib.request.urlopen(
        f"{server.url}/monitoring/prometheus/metrics").read().decode()
    assert 'ccfrec_requests_total{api="rest",code="200",endpoint="predict"}' in text
    assert 'ccfrec_requests_total{api="grpc",code="OK",endpoint="predict"}' in text
    assert "ccfrec_request_latency_seconds_bucket" in text


def test_a_bad_model_config_names_the_file_and_field(tmp_path):
    config = tmp_path / "bad.config"
    config.write_text('model_config_list { config { name: "a" base_path: "/x" '
                      'model_version_policy { specific { } } } }')

    result = subprocess.run([os.path.join(serving_server.REPO, "bin", "ccfrec"), "serve",
                             "--model_config_file", str(config)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2
    assert f"{config}: config 1 (a): a specific version policy names no version" in \
        result.stderr


def test_the_stock_tf_serving_config_parses_as_documented():
    """serving/models.config is TF Serving's ModelServerConfig text: two newest versions,
    labels stable and canary on timestamp versions."""
    from tf_ccfrec.serving import model_config

    [config] = model_config.read(os.path.join(serving_server.REPO, "serving", "models.config"))
    assert config.name == "ccfrec" and config.base_path == "/models/ccfrec"
    assert config.policy == model_config.VersionPolicy("latest", 2)
    assert set(config.labels) == {"stable", "canary"}
    assert all(version > 1_600_000_000 for version in config.labels.values())


def test_python_client_against_the_server(server):
    """`tf_ccfrec.serving.client`, the package's REST client: the server's own answers, its
    4xx as ServingError with the status, and its command line."""
    import contextlib
    import io

    from tf_ccfrec.serving import client

    ccfrec = client.Client(server.url, "ccfrec")
    histories = [[ITEM_IDS[1], ITEM_IDS[2]], [ITEM_IDS[3]]]
    _, expected = server.predict(histories, "serving_excluding_history")
    assert ccfrec.recommend(histories, exclude_history=True) == expected["predictions"]
    assert ccfrec.status() == server.call("/v1/models/ccfrec")[1]
    assert ccfrec.metadata()["model_spec"]["version"] == "1"
    with pytest.raises(client.ServingError) as fault:
        client.Client(server.url, "absent").recommend(histories)
    assert fault.value.status == 404 and "absent" in str(fault.value)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert client.main(["--url", server.url, ITEM_IDS[1], ITEM_IDS[2]]) == 0
    assert json.loads(printed.getvalue()) == server.predict([histories[0]])[1]["predictions"][0]
