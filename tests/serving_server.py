"""Test-side helpers for `ccfrec serve`: small exports, a real server process started through
bin/ccfrec (so through bin/env-run's wrapper) on free loopback ports, REST and gRPC calls."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import tensorflow as tf

from tests.conftest import REPO

NUM_ITEMS, DIM = 60, 16
ITEM_IDS = [f"item{i:03d}" for i in range(NUM_ITEMS)]


class NormalizingLookup(tf.Module):
    """Item ids -> indices after normalization (lower case; bytes that are not UTF-8 raise
    InvalidArgument), as the pipeline's tf.Transform lookup normalizes."""

    def __init__(self, item_ids):
        super().__init__(name="normalizing_lookup")
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(item_ids), tf.range(1, len(item_ids) + 1, dtype=tf.int32)), 0)

    def __call__(self, ids):
        valid = tf.strings.unicode_transcode(ids, "UTF-8", "UTF-8", errors="strict")
        return self.table.lookup(tf.strings.lower(valid))


def export(directory: str, seed: int, top_k: int = 5) -> str:
    """A small CCFRec export (60 items, top-5, normalizing ids) at `directory`."""
    from tf_ccfrec.export import saved_model
    from tf_ccfrec.models.ccfrec import CCFRecModel
    from tf_ccfrec.models.config import ModelConfig

    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    config = ModelConfig(dim=DIM, ffn_dim=32, max_history=5, dropout=0.0)
    model = CCFRecModel(config, rng.integers(0, 16, (NUM_ITEMS, 4)),
                        rng.standard_normal((NUM_ITEMS, 2, DIM)).astype(np.float32),
                        codebook_size=16, seed=0)
    model.compute_loss({"history": tf.ones([1, 5], tf.int32), "target": tf.ones([1], tf.int32)})
    saved_model.export(model, ITEM_IDS, np.arange(NUM_ITEMS + 1), directory, top_k=top_k,
                       id_lookup=NormalizingLookup(ITEM_IDS))
    return directory


def copy_in_place(source: str, destination: str, pause: float = 0.0) -> None:
    """Copies a version directory into place file by file, as TFX's Pusher does (no rename),
    the completion marker among the first files."""
    names = []
    for root, _, files in os.walk(source):
        names += [os.path.relpath(os.path.join(root, f), source) for f in files]
    names.sort(key=lambda n: (n != "_COMPLETE.json", n))
    for name in names:
        target = os.path.join(destination, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(source, name), target)
        time.sleep(pause)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    rest_port: int
    grpc_port: int
    log_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def call(self, path: str, body=None, raw: Optional[bytes] = None, timeout: float = 60):
        """(status, JSON answer) of GET path, or POST of body (JSON) / raw bytes."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data,
                                         method="GET" if data is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def predict(self, histories, signature="serving_default", model="ccfrec", **extra):
        return self.call(f"/v1/models/{model}:predict",
                         {"signature_name": signature, "instances": histories, **extra})

    def versions(self, model="ccfrec") -> dict:
        """{version: state} of the model's status."""
        status, answer = self.call(f"/v1/models/{model}")
        assert status == 200, answer
        return {int(v["version"]): v["state"] for v in answer["model_version_status"]}

    def wait_for(self, condition, timeout: float = 60, what: str = "a condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; server log:\n{self.log()[-3000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start(args: List[str], log_dir: str, timeout: float = 120) -> Server:
    """Starts `bin/ccfrec serve ARGS --port P --grpc-port Q` and waits until REST answers."""
    rest_port, grpc_port = free_port(), free_port()
    log_path = os.path.join(log_dir, f"serve-{rest_port}.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [os.path.join(REPO, "bin", "ccfrec"), "serve", *args, "--port", str(rest_port),
             "--grpc-port", str(grpc_port)], stdout=log, stderr=subprocess.STDOUT)
    server = Server(process, rest_port, grpc_port, log_path)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}:\n{server.log()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", rest_port), timeout=1):
                return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise AssertionError("server did not start:\n" + server.log()[-3000:])


def grpc_stub(server: Server):
    """(PredictionServiceStub, ModelServiceStub) on the server's gRPC port."""
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return (prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel))


def grpc_predict(stub, histories, signature="serving_default", model="ccfrec", version=None,
                 label=None, timeout=30):
    """A PredictResponse for string histories (padded with "")."""
    from tensorflow_serving.apis import predict_pb2

    width = max(1, max(len(h) for h in histories))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["history"].CopyFrom(tf.make_tensor_proto(
        [h + [""] * (width - len(h)) for h in histories], tf.string))
    return stub.Predict(request, timeout)
