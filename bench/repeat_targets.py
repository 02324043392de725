"""Full-ranking metrics split by whether the target repeats an item of the user's history.

Usage (inside the environment):
    bin/env-run python bench/repeat_targets.py --model-dir out/runs/yelp-ccfrec [--split test]

Prints one JSON line: for all examples, for those whose target is the last history item, for
those whose target is elsewhere in the (20-item) history, and for new targets, the share of
examples and recall@5/10, ndcg@5/10 (full ranking over the catalog, no exclusion); and the
seconds the ranking took (catalog fusion, scoring every example against the whole catalog,
tracing included).
"""

import argparse
import json
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    from tf_ccfrec.training import evaluation, inputs
    from tf_ccfrec.training.restore import load_run

    model, run = load_run(args.model_dir)
    data = inputs.make_dataset(run["prepared"], args.split, run["item_ids"], 1024,
                               model.config.max_history)
    started = time.time()
    scores_of = evaluation.ranking_function(model)
    ranks, groups = [], []
    for batch in data:
        history, target = batch["history"].numpy(), batch["target"].numpy()
        ranks.append(scores_of(batch["history"], batch["target"])[1].numpy())
        last = history[:, -1]  # right-aligned: the most recent item is the last column
        in_history = (history == target[:, None]).any(axis=1)
        groups.append(np.where(last == target, "last", np.where(in_history, "earlier", "new")))
    ranks, groups = np.concatenate(ranks), np.concatenate(groups)
    result = {"model_dir": args.model_dir, "split": args.split,
              "seconds": round(time.time() - started, 1)}
    for name in ("all", "last", "earlier", "new"):
        rows = np.ones_like(ranks, bool) if name == "all" else groups == name
        metrics = evaluation.metrics_from_ranks(ranks[rows]) if rows.any() else {}
        result[name] = {"share": round(float(rows.mean()), 4),
                        **{k: round(float(v), 4) for k, v in metrics.items()}}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
