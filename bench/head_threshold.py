"""The head/tail split of the popularity slices, stated as a threshold: per prepared dataset, how
many items the head holds (the most popular 20% by training interactions, `ranking.head_items`),
the fewest training interactions a head item has and the most a tail item has (equal where the
cut falls inside a run of tied counts; ties go to the lower index), and the head's share of the
training interactions and of the test targets.

Usage (inside the environment):
    bin/env-run python bench/head_threshold.py --data out/beauty/prepared50 --codes out/beauty/codes

Prints one JSON line.
"""

import argparse
import json

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="a prepared dataset")
    parser.add_argument("--codes", required=True, help="its code artifact (the item order)")
    args = parser.parse_args()

    from tf_ccfrec import ranking
    from tf_ccfrec.codes import artifact
    from tf_ccfrec.training import inputs

    item_ids = artifact.load(args.codes).item_ids
    counts = ranking.training_interactions(args.data, item_ids)
    head = ranking.head_items(counts)
    targets = np.concatenate([batch["target"].numpy() for batch in inputs.make_dataset(
        args.data, "test", item_ids, 4096)])
    print(json.dumps({
        "data": args.data, "items": len(item_ids), "head_items": int(head.sum()),
        "head_min_training_interactions": int(counts[head].min()),
        "tail_max_training_interactions": int(counts[1:][~head[1:]].max()),
        "head_share_of_training_interactions": round(float(counts[head].sum() / counts.sum()), 4),
        "head_share_of_test_targets": round(float(head[targets].mean()), 4)}))


if __name__ == "__main__":
    main()
