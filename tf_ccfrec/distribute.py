"""Distribution helpers: choosing a `tf.distribute` strategy, and losses that stay the global
mean when the batch is split over replicas.

`tfrs.Model.train_step` does not scale the loss and the optimizer sums gradients over replicas,
so each replica returns its share of the global mean (`replica_share`); with one replica that is
the plain mean.

Under MultiWorkerMirroredStrategy every worker runs the whole program: `is_chief` says which one
writes, `worker_directory` gives the others a scratch directory, and `ChiefDecision` shares the
chief's stop decisions.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Iterator

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


# --------------------------------------------------------------------------------------------
# Several workers (MultiWorkerMirroredStrategy): one writer, shared decisions.

def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` spans several worker processes."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().jobs:
        return False
    spec = resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in spec.jobs if job in ("chief", "worker")) > 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's outputs: always with one worker; under
    MultiWorkerMirroredStrategy, the "chief" task, or worker 0 when there is none."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().jobs)


class ChiefDecision:
    """`decide(flag) -> bool`: the chief's `flag`, the same on every worker.

    With several workers each call is one collective (about 5 ms on loopback), so every worker
    must call it at the same point of its program: a decision (stop now) is taken once, by the
    chief's clock and metrics, and no worker is left waiting in a collective the others skipped.
    With one worker it returns `flag`."""

    def __init__(self, strategy: tf.distribute.Strategy):
        self.multi = is_multi_worker(strategy)
        self.chief = is_chief(strategy)
        if self.multi:
            @tf.function
            def summed(value):
                return strategy.reduce(tf.distribute.ReduceOp.SUM,
                                       strategy.run(lambda: tf.identity(value)), axis=None)

            self._summed = summed

    def __call__(self, flag: bool) -> bool:
        if not self.multi:
            return bool(flag)
        mine = 1.0 if (flag and self.chief) else 0.0
        return float(self._summed(tf.constant(mine))) > 0.0


WORKER_PREFIX = "ccfrec-worker-"


@contextlib.contextmanager
def worker_directory(path: str, strategy: tf.distribute.Strategy) -> Iterator[str]:
    """Yields where this process writes what belongs at `path`: `path` itself on the chief; a
    local temporary directory on other workers (they must still write: saving may run
    collectives), deleted on exit."""
    if is_chief(strategy):
        yield path
        return
    # local-only: a non-chief worker's scratch copy of the run directory, deleted here.
    with tempfile.TemporaryDirectory(prefix=WORKER_PREFIX, ignore_cleanup_errors=True) as scratch:
        yield os.path.join(scratch, "run")
