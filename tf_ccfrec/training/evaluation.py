"""Full-ranking evaluation (ccfrec.md §7): Recall@k and NDCG@k, one target per user."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import tensorflow as tf


def rank_of_target(scores: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """0-based rank of each target among all items (ties count against the target).

    Args:
      scores: float [batch, num_items].
      targets: int [batch], item indices >= 1 (column target - 1).
    """
    target_scores = tf.gather(scores, tf.cast(targets, tf.int32) - 1, batch_dims=1)
    return tf.reduce_sum(tf.cast(scores >= target_scores[:, tf.newaxis], tf.int32), axis=1) - 1


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (5, 10)) -> Dict[str, float]:
    """Recall@k (= HR@k with one target) and NDCG@k from 0-based target ranks."""
    ranks = np.asarray(ranks)
    result = {}
    for k in ks:
        hit = ranks < k
        result[f"recall@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        result[f"ndcg@{k}"] = float((hit / np.log2(ranks + 2)).mean()) if len(ranks) else 0.0
    return result


def evaluate(model, dataset: tf.data.Dataset, ks: Sequence[int] = (5, 10)) -> Dict[str, float]:
    """Full-ranking metrics of `model` (a CCFRecModel) over every example of `dataset`."""
    table = model.item_vectors(training=False)

    @tf.function
    def ranks(history, targets):
        users = model.user_vectors(history, table, training=False)
        return rank_of_target(model.scores(users, table), targets)

    collected = [ranks(batch["history"], batch["target"]).numpy() for batch in dataset]
    result = metrics_from_ranks(np.concatenate(collected) if collected else np.zeros(0), ks)
    result["examples"] = int(sum(len(r) for r in collected))
    return result
