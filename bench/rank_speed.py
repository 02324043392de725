"""Full-ranking evaluation's inner loop alone: scores of a batch of users against a catalog of
random unit vectors, and the target's rank among them, per user, by batch size.

Usage (inside the environment):
    bin/env-run python bench/rank_speed.py [--items 1000000] [--dim 128] [--batches 64 134 256]
        [--rounds 3] [--repeats 4]

Variants, each timed `--repeats` times per round, rounds interleaved (this machine's speed
drifts):
  product   `tf.matmul` of the unit users with the catalog alone
  library   scores divided by the temperature, then `ranking.rank_of_target` (TensorFlow ops:
            a boolean and an integer copy of the scores)
  fused     the same scores, then `evaluation.fused_rank_of_target` (the same function compiled
            by XLA: one pass, no copies), as `evaluation.ranking_function` does

Prints one JSON line per variant and batch size: ms per user of each round and their median,
and for "fused" whether its ranks equal the library's. Results: docs/scale.md.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 134, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.07)
    args = parser.parse_args()

    import tf_ccfrec.compat  # noqa: F401  (before TensorFlow)
    import tensorflow as tf

    from tf_ccfrec.ranking import rank_of_target
    from tf_ccfrec.training.evaluation import fused_rank_of_target

    rng = np.random.default_rng(0)
    catalog = rng.standard_normal((args.items, args.dim)).astype(np.float32)
    catalog /= np.linalg.norm(catalog, axis=1, keepdims=True)
    items = tf.constant(catalog)
    del catalog

    def unit_product(users):
        return tf.matmul(tf.math.l2_normalize(users, -1), items, transpose_b=True)

    def scores(users):
        return unit_product(users) / args.temperature

    @tf.function
    def product(users, targets):
        return unit_product(users)[:, 0]

    @tf.function
    def library(users, targets):
        return rank_of_target(scores(users), targets)

    @tf.function
    def fused(users, targets):
        return fused_rank_of_target(scores(users), targets)

    variants = {"product": product, "library": library, "fused": fused}
    timings, same = {}, {}
    for _ in range(args.rounds):
        for batch in args.batches:
            users = tf.constant(rng.standard_normal((batch, args.dim)).astype(np.float32))
            targets = tf.constant(rng.integers(1, args.items + 1, batch), tf.int64)
            for name, function in variants.items():
                result = function(users, targets).numpy()   # traced and compiled untimed
                started = time.perf_counter()
                for _ in range(args.repeats):
                    function(users, targets).numpy()
                seconds = (time.perf_counter() - started) / args.repeats
                timings.setdefault((name, batch), []).append(seconds / batch * 1000)
                if name == "library":
                    reference = result
                if name == "fused":
                    same[batch] = same.get(batch, True) and bool(np.array_equal(result,
                                                                                reference))
    for (name, batch), values in timings.items():
        line = {"variant": name, "batch": batch, "items": args.items,
                "ms_per_user": [round(v, 3) for v in values],
                "median_ms_per_user": round(statistics.median(values), 3), "cpus": os.cpu_count()}
        if name == "fused":
            line["ranks_equal_library"] = same[batch]
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
