"""Where a CCFRec training step spends its time: forward + backward of each part, timed alone.

Usage (inside the environment):
    bin/env-run python bench/profile_step.py [--data out/office/prepared]
        [--codes out/office/codes] [--batch-size 400] [--steps 3] [--jit]
        [--precision float32|mixed_bfloat16] [--no-recompute]

Parts: the catalog fusion (every item, as the full softmax needs), the sequence encoder over the
clean history, L_rec over the catalog, the masked re-fusion of the history's real items, the MCM
softmax, the masked sequence encoder + MSA, and the whole step. Results: docs/model.md.
"""

import argparse
import time

import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)

import tensorflow as tf

from tf_ccfrec.codes import artifact as artifact_lib
from tf_ccfrec.models.config import PRECISIONS, ModelConfig
from tf_ccfrec.models.run_directory import build_model
from tf_ccfrec.training import inputs


def timed(function, steps):
    function()
    started = time.perf_counter()
    for _ in range(steps):
        function()
    return (time.perf_counter() - started) / steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="out/office/prepared")
    parser.add_argument("--codes", default="out/office/codes")
    parser.add_argument("--batch-size", type=int, default=400)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--jit", action="store_true")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--recompute", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    artifact = artifact_lib.load(args.codes)
    batch = next(iter(inputs.make_dataset(args.data, "train", artifact.item_ids,
                                          args.batch_size, shuffle=True)))
    config = ModelConfig(precision=args.precision, recompute=args.recompute)
    model = build_model("ccfrec", config, artifact)
    model.compute_loss(batch, training=True)
    history = tf.cast(batch["history"], tf.int32)
    real = history > 0
    positions = tf.where(real)
    items = tf.gather_nd(history, positions)
    table = model.item_vectors(training=True)
    users = model.user_vectors(history, table, training=True)

    def grad_of(loss_fn):
        @tf.function(jit_compile=args.jit)
        def run():
            with tf.GradientTape() as tape:
                loss = loss_fn()
            return tape.gradient(loss, model.trainable_variables)
        return run

    def masked_fusion():
        tokens = tf.gather(model.code_tokens, items)
        masked, selected = model.masker(tokens, training=True)
        vectors, hidden = model.fuse(masked, tf.gather(model.view_vectors, items), training=True)
        return vectors, hidden, tokens, selected

    def masked_all():
        vectors, hidden, tokens, selected = masked_fusion()
        mcm = model.mcm_loss(hidden, model.code_embedding.embeddings, tokens, selected)
        shape = tf.concat([tf.shape(history, out_type=tf.int64), [model.config.dim]], axis=0)
        masked_users, _ = model.encoder(tf.scatter_nd(positions, vectors, shape), real,
                                        training=True)
        return mcm + model.msa_loss(users, masked_users)

    fixed_hidden = masked_fusion()
    parts = {
        "catalog fusion": lambda: tf.reduce_sum(model.item_vectors(training=True)),
        "sequence encoder": lambda: tf.reduce_sum(model.user_vectors(history, table,
                                                                     training=True)),
        "L_rec (scores + softmax)": lambda: model.full_softmax_loss(users, table,
                                                                    batch["target"]),
        "masked re-fusion": lambda: tf.reduce_sum(masked_fusion()[0]),
        "MCM softmax": lambda: model.mcm_loss(fixed_hidden[1], model.code_embedding.embeddings,
                                              fixed_hidden[2], fixed_hidden[3]),
        "masked fusion + MCM + MSA": masked_all,
        "whole loss": lambda: model.compute_loss(batch, training=True),
    }
    print(f"# {args.data}: batch {args.batch_size}, {len(artifact.item_ids):,} items, "
          f"{int(tf.size(items)):,} real history positions, jit={args.jit}, "
          f"{args.precision}, recompute={args.recompute}")
    for name, loss_fn in parts.items():
        try:
            seconds = timed(grad_of(loss_fn), args.steps)
            print(f"{name:28s} {seconds:6.2f} s (forward + backward)", flush=True)
        except (tf.errors.InvalidArgumentError, ValueError) as error:
            print(f"{name:28s} failed: {str(error).splitlines()[0][:120]}", flush=True)


if __name__ == "__main__":
    main()
