"""Where one fusion block's time goes: forward + backward of its parts over a Beauty-sized catalog,
in float32 and in mixed bfloat16.

Usage (inside the environment):
    bin/env-run python bench/fusion_parts.py [--items 12101] [--codes 12] [--views 3] [--steps 3]

Random inputs of the given shape (the cost does not depend on the values). Parts: the whole block
in training (every dropout on), self-attention among the codes, cross-attention to the views, the
FFN, the three LayerNorms, the three dropouts of code-token size (`seeded_dropout`). Results:
docs/model.md.
"""

import argparse
import time

import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)

import tensorflow as tf

from tf_ccfrec.layers.code_guided_fusion_block import CodeGuidedFusionBlock
from tf_ccfrec.layers.seeded_dropout import seeded_dropout
from tf_ccfrec.models.config import PRECISIONS


def timed(function, steps, *args):
    function(*args)
    started = time.perf_counter()
    for _ in range(steps):
        function(*args)
    return (time.perf_counter() - started) / steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=12101)
    parser.add_argument("--codes", type=int, default=12)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    seed = tf.constant([1, 2])
    codes = tf.random.normal([args.items, args.codes, args.dim])
    views = tf.random.normal([args.items, args.views, args.dim])
    print(f"# one block, {args.items:,} items x {args.codes} codes, {args.views} views, "
          f"dim {args.dim}; seconds forward + backward")
    for precision in PRECISIONS:
        block = CodeGuidedFusionBlock(dim=args.dim, dtype=precision)
        block(codes, views)
        x, v = tf.cast(codes, block.compute_dtype), tf.cast(views, block.compute_dtype)
        inner, _, outer = block.ffn.layers

        def dropouts(a):
            for salt in range(3):
                a = seeded_dropout(a, 0.1, seed, salt)
            return a

        parts = {
            "block (training)": lambda a, b: block(a, b, training=True, seed=seed),
            "self-attention": lambda a, b: block.self_attention(a, a, seed=seed),
            "cross-attention": lambda a, b: block.cross_attention(a, b, seed=seed),
            "FFN": lambda a, b: outer(inner(a)),
            "3 LayerNorms": lambda a, b: block.norms[2](block.norms[1](block.norms[0](a))),
            "3 dropouts": lambda a, b: dropouts(a),
        }
        for name, part in parts.items():
            def gradients(a, b, part=part):
                with tf.GradientTape() as tape:
                    tape.watch(a)
                    total = tf.reduce_sum(tf.cast(part(a, b), tf.float32))
                return tape.gradient(total, [a] + block.trainable_variables)

            seconds = timed(tf.function(gradients), args.steps, x, v)
            print(f"{precision:15s} {name:18s} {seconds:6.3f}", flush=True)


if __name__ == "__main__":
    main()
