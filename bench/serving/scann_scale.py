"""ScaNN vs exact search on unit vectors: recall@10 against exact top-10 and per-query latency,
at catalog sizes beyond the real ones (synthetic vectors drawn around the exported model's item
vectors when given, else Gaussian).

Usage (inside the environment):
    bin/env-run python bench/serving/scann_scale.py [--sizes 12101 100000 1000000] [--dim 128]
        [--queries 500]

Both searches run one query at a time, as a request would; exact search is a NumPy matrix-vector
product and a partial sort. The index is the one `ccfrec export` builds
(`tf_ccfrec.export.scann_index.build_searcher`). Results: docs/serving.md.
"""

import argparse
import time

import numpy as np

import tf_ccfrec.compat  # noqa: F401

from tf_ccfrec.export.scann_index import build_searcher


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[12101, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--item-noise", type=float, default=0.5,
                        help="spread of items around their cluster centre (relative norm)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| items | index | build s | recall@10 | exact ms/query | ScaNN ms/query | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        # Clustered, as item embeddings are: 1,000 random centres, each item a centre plus
        # noise of half its norm; queries are items plus noise of 0.3 their norm.
        def noise(rows):
            return rng.standard_normal((rows, args.dim)).astype(np.float32) / np.sqrt(args.dim)

        centres = unit(rng.standard_normal((1000, args.dim)).astype(np.float32))
        items = unit(centres[rng.integers(0, 1000, n)] + args.item_noise * noise(n))
        queries = unit(items[rng.integers(0, n, args.queries)] + 0.3 * noise(args.queries))
        started = time.perf_counter()
        searcher = build_searcher(items)
        build = time.perf_counter() - started
        exact, exact_time = [], time.perf_counter()
        for q in queries:
            scores = items @ q
            top = np.argpartition(-scores, 10)[:10]
            exact.append(set(top[np.argsort(-scores[top])].tolist()))
        exact_ms = (time.perf_counter() - exact_time) / len(queries) * 1000
        found, scann_time = [], time.perf_counter()
        for q in queries:
            neighbors, _ = searcher.search(q, final_num_neighbors=10)
            found.append(set(neighbors.tolist()))
        scann_ms = (time.perf_counter() - scann_time) / len(queries) * 1000
        recall = np.mean([len(a & b) / 10 for a, b in zip(exact, found)])
        kind = "brute force" if n < 20_000 else "tree + AH + reorder"
        print(f"| {n:,} | {kind} | {build:.1f} | {recall:.4f} | {exact_ms:.2f} | {scann_ms:.3f} | "
              f"{exact_ms / scann_ms:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
