"""Distribution helpers: choosing a `tf.distribute` strategy, and losses that stay the global
mean when the batch is split over replicas.

`tfrs.Model.train_step` does not scale the loss and the optimizer sums gradients over replicas,
so each replica returns its share of the global mean (`replica_share`); with one replica that is
the plain mean.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi-worker")


def _context():
    context = tf.distribute.get_replica_context()
    return context if context is not None and context.num_replicas_in_sync > 1 else None


def replica_share(local_sum, local_count):
    """local_sum / (local_count summed over replicas): a replica's share of the global mean."""
    count = tf.cast(local_count, local_sum.dtype)
    context = _context()
    if context is not None:
        count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
    return tf.math.divide_no_nan(local_sum, tf.stop_gradient(count))


def gather_replicas(x):
    """(x of every replica concatenated on axis 0, offset of this replica's rows in it).

    Replicas must hold the same number of rows (training batches drop their remainder when
    distributed). Gradients flow back to each replica's own rows."""
    context = _context()
    if context is None:
        return x, 0
    rows = tf.shape(x)[0]
    return context.all_gather(x, axis=0), context.replica_id_in_sync_group * rows


def num_replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The strategy for `name`: "default" (one device), "mirrored" (every local GPU, or the
    logical CPU devices), "multi-worker" (MultiWorkerMirroredStrategy from TF_CONFIG, as on
    Kubeflow/Vertex), or "auto": multi-worker when TF_CONFIG names several workers, mirrored
    when there are several GPUs, else default."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        if sum(len(v) for k, v in cluster.items() if k in ("worker", "chief")) > 1:
            name = "multi-worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()
