"""Warm-up requests of an export: `assets.extra/tf_serving_warmup_requests`, a TFRecord file of
`tensorflow.serving.PredictionLog` records (predict logs), as TF Serving reads it. Stock TF
Serving and `ccfrec serve` replay every record before the version is AVAILABLE, so the first
real request does not pay for the first run of each signature's kernels."""

from __future__ import annotations

import os
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from tf_ccfrec import storage

PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000  # TF Serving reads at most this many


def requests(item_ids: Sequence[str], max_history: int) -> List[Tuple[str, Dict[str, np.ndarray]]]:
    """[(signature name, {input: array})]: every signature at batch sizes 1 and 8, histories
    of one item to `max_history` items of the catalog."""
    ids = [i.encode() for i in item_ids]
    rng = np.random.default_rng(0)

    def history(length):
        return [ids[j] for j in rng.integers(0, len(ids), length)]

    single = np.array([history(max_history)], object)
    batch = np.array([history(max_history) for _ in range(8)], object)
    batch[:4, :max_history - 1] = b""  # short rows, "" padded
    examples = [_example(history(length), ids[0]) for length in (1, max_history)]
    result = []
    for name in ("serving_default", "serving_excluding_history", "embed_query"):
        result += [(name, {"history": single}), (name, {"history": batch})]
    result += [("embed_items", {"item_ids": np.array(ids[:1], object)}),
               ("embed_items", {"item_ids": np.array(ids[:8], object)}),
               ("serve_tf_examples", {"examples": np.array(examples[:1], object)}),
               ("serve_tf_examples", {"examples": np.array(examples, object)})]
    return result


def _example(history: List[bytes], target: bytes) -> bytes:
    """A serialized tf.Example as `serve_tf_examples` reads it."""
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        "history": tf.train.Feature(bytes_list=tf.train.BytesList(value=history)),
        "target": tf.train.Feature(bytes_list=tf.train.BytesList(value=[target])),
    })).SerializeToString()


def write(export_dir: str, item_ids: Sequence[str], max_history: int) -> None:
    """Writes the warm-up file of an export directory."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    storage.makedirs(storage.join(export_dir, os.path.dirname(PATH)))
    with tf.io.TFRecordWriter(storage.join(export_dir, PATH)) as writer:
        for name, inputs in requests(item_ids, max_history):
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = name
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value, tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read(export_dir: str, signatures) -> Iterator[Tuple[str, Dict[str, np.ndarray]]]:
    """(signature name, {input: array}) of each predict record of an export's warm-up file
    (none when it has no file). Records for signatures the export lacks raise ValueError, as
    TF Serving refuses the version."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = storage.join(export_dir, PATH)
    if not storage.exists(path):
        return
    for i, record in enumerate(tf.data.TFRecordDataset(path)):
        if i >= MAX_RECORDS:
            return
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            continue
        request = log.predict_log.request
        name = request.model_spec.signature_name or "serving_default"
        if name not in signatures:
            raise ValueError(f"{path}: record {i} asks for signature {name!r}, which the "
                             "export does not have")
        yield name, {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
