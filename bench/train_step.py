"""Seconds per training step of CCFRec variants on a prepared dataset and its codes.

Usage (inside the environment, after `make run`):
    bin/env-run python bench/train_step.py [--data out/office/prepared] [--codes out/office/codes]
        [--batch-size 400] [--steps 3] [--variants full no-aux full-jit no-aux-jit]

Each variant runs one warm-up step (tracing) and then times --steps steps of forward, backward and
AdamW update on the same batch, and the process's peak RSS so far (run one variant per process to
read it per variant). Results: docs/model.md.
"""

import argparse
import resource
import time

import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)

import tensorflow as tf

from tf_ccfrec.codes import artifact as artifact_lib
from tf_ccfrec.models.config import ModelConfig
from tf_ccfrec.models.run_directory import build_model
from tf_ccfrec.training import inputs

VARIANTS = {
    "full": (ModelConfig(), False),
    "no-aux": (ModelConfig(mcm_weight=0.0, msa_weight=0.0), False),
    "full-jit": (ModelConfig(), True),
    "no-aux-jit": (ModelConfig(mcm_weight=0.0, msa_weight=0.0), True),
    "sampled": (ModelConfig(loss="sampled", num_negatives=1024), False),
    # Fusion activations kept for the backward pass instead of recomputed there.
    "full-keep": (ModelConfig(recompute=False), False),
    "sampled-keep": (ModelConfig(loss="sampled", num_negatives=1024, recompute=False), False),
    # The fusion in bfloat16 (mixed precision; fast only with AVX-512 BF16 or AMX).
    "full-bf16": (ModelConfig(precision="mixed_bfloat16"), False),
    "full-keep-bf16": (ModelConfig(recompute=False, precision="mixed_bfloat16"), False),
    "sampled-keep-bf16": (ModelConfig(loss="sampled", num_negatives=1024, recompute=False,
                                       precision="mixed_bfloat16"), False),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="out/office/prepared")
    parser.add_argument("--codes", default="out/office/codes")
    parser.add_argument("--batch-size", type=int, default=400)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=["full", "no-aux", "no-aux-jit"],
                        choices=VARIANTS)
    args = parser.parse_args()
    artifact = artifact_lib.load(args.codes)
    batch = next(iter(inputs.make_dataset(args.data, "train", artifact.item_ids,
                                          args.batch_size, shuffle=True)))
    for name in args.variants:
        config, jit = VARIANTS[name]
        model = build_model("ccfrec", config, artifact)
        optimizer = tf.keras.optimizers.AdamW(1e-3)

        @tf.function(jit_compile=jit)
        def step(features):
            with tf.GradientTape() as tape:
                loss = model.compute_loss(features, training=True)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        try:
            step(batch)
            started = time.time()
            for _ in range(args.steps):
                step(batch)
            seconds = (time.time() - started) / args.steps
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(f"{name:12s} {seconds:6.2f} s/step  {args.batch_size / seconds:7.1f} examples/s"
                  f"  peak RSS so far {peak:.1f} GiB", flush=True)
        except (tf.errors.InvalidArgumentError, ValueError) as error:
            print(f"{name:12s} failed: {str(error).splitlines()[0][:160]}", flush=True)


if __name__ == "__main__":
    main()
