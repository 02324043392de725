"""How the item-ID variant's hashed table (`--item-id-buckets B`,
`tf_ccfrec.layers.hashed_id_embedding.hashed_id_rows`) shares its rows on a prepared dataset:
per table size, the items that share their row with another item, the items whose row also
holds a more popular item (by training interactions; the row's vector is then mostly that
item's), and those items' share of the training interactions.

Usage (inside the environment):
    bin/env-run python bench/id_collisions.py --data out/yelp/prepared50 --codes out/yelp/codes
        [--buckets 16384 65536 262144]

Prints one JSON line per table size.
"""

import argparse
import json

import numpy as np


def sharing(rows: np.ndarray, counts: np.ndarray) -> dict:
    """rows int [n] (each item's table row), counts int [n] (its training interactions) ->
    {"sharing": items whose row holds another item too, "outranked": items whose row holds an
    item with more interactions (ties: the lower index wins), "outranked_interactions": their
    share of all interactions}."""
    order = np.lexsort((np.arange(len(rows)), -counts))  # most interactions first
    first = {}
    for i in order:
        first.setdefault(int(rows[i]), int(i))
    owner = np.array([first[int(r)] for r in rows])
    _, inverse, per_row = np.unique(rows, return_inverse=True, return_counts=True)
    outranked = owner != np.arange(len(rows))
    return {"sharing": int((per_row[inverse] > 1).sum()), "outranked": int(outranked.sum()),
            "outranked_interactions": round(float(counts[outranked].sum() / counts.sum()), 4)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="a prepared dataset")
    parser.add_argument("--codes", required=True, help="its code artifact (the item order)")
    parser.add_argument("--buckets", type=int, nargs="+", default=[16384, 65536, 262144])
    args = parser.parse_args()

    from tf_ccfrec import ranking
    from tf_ccfrec.codes import artifact
    from tf_ccfrec.layers.hashed_id_embedding import hashed_id_rows

    item_ids = artifact.load(args.codes).item_ids
    counts = ranking.training_interactions(args.data, item_ids)[1:]
    for buckets in args.buckets:
        print(json.dumps({"data": args.data, "items": len(item_ids), "buckets": buckets,
                          **sharing(hashed_id_rows(item_ids, buckets), counts)}))


if __name__ == "__main__":
    main()
