"""Full-ranking metrics split by whether the target repeats an item of the user's history.

Usage (inside the environment):
    bin/env-run python bench/repeat_targets.py --model-dir out/runs/yelp-ccfrec [--split test]

Prints one JSON line: for all examples, for those whose target is the last history item, for
those whose target is elsewhere in the (20-item) history, and for new targets, the share of
examples and recall@5/10, ndcg@5/10 (full ranking over the catalog, no exclusion); how much of
the top 10 the history's own items take ("history_in_top10": the share of examples whose first
item is a history item, history items per top 10, the share whose last history item is in the
top 10, and that item's median 1-based rank); and the seconds the ranking took (catalog fusion,
scoring every example against the whole catalog, tracing included).
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    from tf_ccfrec import ranking
    from tf_ccfrec.training import evaluation, inputs
    from tf_ccfrec.models.run_directory import load_run

    model, run = load_run(args.model_dir)
    data = inputs.make_dataset(run["prepared"], args.split, run["item_ids"], 1024,
                               model.config.max_history)
    started = time.time()
    scores_of = evaluation.ranking_function(model)
    ranks, groups, top1, in_top10, last_ranks = [], [], [], [], []
    for batch in data:
        history, target = batch["history"].numpy(), batch["target"].numpy()
        scores, target_ranks = scores_of(batch["history"], batch["target"])
        ranks.append(target_ranks.numpy())
        top = tf.math.top_k(scores, k=10).indices.numpy() + 1      # item indices (column + 1)
        seen = (top[:, :, None] == history[:, None, :]) & (history[:, None, :] > 0)
        seen = seen.any(axis=2)                                        # [b, 10]
        top1.append(seen[:, 0])
        in_top10.append(seen.sum(axis=1))
        last_ranks.append(ranking.rank_of_target(scores, batch["history"][:, -1]).numpy())
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
    last_ranks = np.concatenate(last_ranks)
    result["history_in_top10"] = {
        "first_is_history": round(float(np.concatenate(top1).mean()), 4),
        "history_items": round(float(np.concatenate(in_top10).mean()), 3),
        "last_item_in_top10": round(float((last_ranks < 10).mean()), 4),
        "last_item_median_rank": float(np.median(last_ranks) + 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
