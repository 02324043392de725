"""Run as a script by test_distribute.py: TensorFlow must see two logical CPU devices before it
starts, which a test process that has already run TensorFlow cannot arrange.

Prints one JSON object comparing one replica with a 2-replica MirroredStrategy on the same global
batch: the loss, the weights after one SGD step, the MCM and MSA losses alone.
"""

import json
import sys

import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

from tf_ccfrec import distribute  # noqa: E402
from tf_ccfrec.layers.masked_code_modeling_loss import MaskedCodeModelingLoss  # noqa: E402
from tf_ccfrec.layers.symmetric_info_nce import SymmetricInfoNCE  # noqa: E402
from tf_ccfrec.models.ccfrec import CCFRecModel  # noqa: E402
from tf_ccfrec.models.config import ModelConfig  # noqa: E402

NUM_ITEMS, NUM_CODES, DIM, K, BATCH = 40, 6, 16, 16, 8


def build(loss):
    rng = np.random.default_rng(0)
    config = ModelConfig(dim=DIM, ffn_dim=32, max_history=5, dropout=0.0, mask_prob=0.0,
                          loss=loss)
    codes = rng.integers(0, K, (NUM_ITEMS, NUM_CODES))
    views = rng.standard_normal((NUM_ITEMS, 2, DIM)).astype(np.float32)
    return CCFRecModel(config, codes, views, codebook_size=K, seed=0)


def split(strategy, arrays):
    """The global batch as per-replica halves."""
    def half(context):
        i, n = context.replica_id_in_sync_group, context.num_replicas_in_sync
        size = BATCH // n
        return tuple(tf.constant(a[i * size:(i + 1) * size]) for a in arrays)
    return strategy.experimental_distribute_values_from_function(half)


def main():
    rng = np.random.default_rng(1)
    history = rng.integers(0, NUM_ITEMS + 1, (BATCH, 5)).astype(np.int32)
    history[:, -1] = rng.integers(1, NUM_ITEMS + 1, BATCH)
    target = rng.integers(1, NUM_ITEMS + 1, BATCH).astype(np.int32)
    mirrored = distribute.make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2, mirrored.extended.worker_devices
    result = {"replicas": mirrored.num_replicas_in_sync}

    single = build("full")
    single.compute_loss({"history": history, "target": target})
    initial = [w.numpy() for w in single.weights]
    optimizer = tf.keras.optimizers.SGD(0.1)

    def sgd_step(model, optimizer, features):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(features, training=True)
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    result["loss_1"] = float(sgd_step(single, optimizer, {"history": history, "target": target}))
    with mirrored.scope():
        double = build("full")
        double.compute_loss({"history": history, "target": target})
        double.set_weights(initial)
        optimizer2 = tf.keras.optimizers.SGD(0.1)

    @tf.function
    def distributed_step(h, t):
        return mirrored.run(lambda a, b: sgd_step(double, optimizer2, {"history": a, "target": b}),
                            args=(h, t))

    per_replica = distributed_step(*split(mirrored, [history, target]))
    result["loss_2"] = float(mirrored.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))
    result["max_weight_difference"] = max(
        float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(single.weights, double.weights))
    result["max_weight_change"] = max(
        float(np.abs(a.numpy() - b).max()) for a, b in zip(single.weights, initial))

    # The losses alone: MCM over selections spread unevenly, MSA with cross-replica negatives.
    hidden = rng.standard_normal((BATCH, NUM_CODES, DIM)).astype(np.float32)
    table = rng.standard_normal((K * NUM_CODES + 2, DIM)).astype(np.float32)
    tokens = rng.integers(1, K * NUM_CODES + 1, (BATCH, NUM_CODES)).astype(np.int32)
    selected = rng.random((BATCH, NUM_CODES)) < 0.3
    selected[:4] = rng.random((4, NUM_CODES)) < 0.8
    clean = rng.standard_normal((BATCH, DIM)).astype(np.float32)
    masked = clean + 2.0 * rng.standard_normal((BATCH, DIM)).astype(np.float32)
    mcm, msa = MaskedCodeModelingLoss(), SymmetricInfoNCE()
    result["mcm_1"] = float(mcm(hidden, table, tokens, selected))
    result["msa_1"] = float(msa(clean, masked))
    h, s, tk, c, m = split(mirrored, [hidden, selected, tokens, clean, masked])
    result["mcm_2"] = float(mirrored.reduce(tf.distribute.ReduceOp.SUM, mirrored.run(
        tf.function(lambda a, b, d: mcm(a, table, d, b)), args=(h, s, tk)), axis=None))
    result["msa_2"] = float(mirrored.reduce(tf.distribute.ReduceOp.SUM, mirrored.run(
        tf.function(msa), args=(c, m)), axis=None))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
