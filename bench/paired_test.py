"""Paired test of two runs over the same test examples (`tf_ccfrec.training.significance`).

Usage: bin/env-run python bench/paired_test.py RUN_A RUN_B [--ranks test_ranks.npz]

Each run directory holds its per-example test ranks (`ccfrec train` writes test_ranks.npz and,
history items left out, test_ranks_excluding_history.npz; `ccfrec evaluate --write-ranks
[--exclude-history]` writes them for older runs). Prints one JSON object: A against B (A - B).
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tf_ccfrec.training import significance  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--ranks", default="test_ranks.npz", help="the file in each run")
    args = parser.parse_args(argv)
    ranks = []
    for run in (args.run_a, args.run_b):
        path = os.path.join(run, args.ranks)
        if not os.path.exists(path):
            print(f"paired_test: {path}: no such file (ccfrec evaluate --write-ranks writes it)",
                  file=sys.stderr)
            return 2
        ranks.append(np.load(path)["ranks"])
    result = significance.paired_test(*ranks)
    print(json.dumps({"a": args.run_a, "b": args.run_b, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
