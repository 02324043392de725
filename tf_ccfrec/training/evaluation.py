"""Evaluation (ccfrec.md §7), one target per user:

- full ranking: Recall@k and NDCG@k of the target among all catalog items;
- the sampled protocol: HR@10 and NDCG@10 of the target among itself and `sampled_negatives`
  items drawn uniformly from the items the user has not interacted with (its history and
  target excluded, as LLM-ESR and H2Rec draw them; `ranking.draw_negatives`' protocol "unseen"), or
  from every item other than the target ("uniform"); a seeded function of the example, so
  reruns, batchings and the exported model's TFMA signature draw the same ones;
- optionally with the history's items removed from the ranking (not the target itself);
- sliced by the target's popularity: head = the most popular 20% of items by training
  interactions, tail = the rest.

Ties count against the target everywhere.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_ccfrec.ranking import (draw_negatives, popularity_ranking, rank_among_negatives,
                               rank_of_target, remove_history)

def popularity_metrics(counts: np.ndarray, dataset: tf.data.Dataset,
                       ks: Sequence[int] = (5, 10), **slices) -> Dict[str, float]:
    """The popularity baseline scored like a model (full ranking); `slices`: `head`, `cold`,
    `sampled_negatives`, `seed` of `evaluate_ranking`."""
    return evaluate_ranking(popularity_ranking(counts), len(counts) - 1, dataset, ks, **slices)


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (5, 10),
                       prefix: str = "recall") -> Dict[str, float]:
    """Recall@k (= HR@k with one target) and NDCG@k from 0-based target ranks."""
    ranks = np.asarray(ranks)
    result = {}
    for k in ks:
        hit = ranks < k
        result[f"{prefix}@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        result[f"ndcg@{k}"] = float((hit / np.log2(ranks + 2)).mean()) if len(ranks) else 0.0
    return result


def _summary(full: np.ndarray, sampled: Optional[np.ndarray], ks) -> Dict[str, float]:
    result = metrics_from_ranks(full, ks)
    if sampled is not None:
        result.update({f"sampled_{k}": v for k, v in
                       metrics_from_ranks(sampled, (10,), prefix="hr").items()})
    result["examples"] = int(len(full))
    return result


SCORES_BUDGET = 1 << 28   # scores held at once in full-ranking evaluation (1 GiB of float32)

# `rank_of_target` compiled by XLA: the gather, the comparison with the target's score and the
# count run as one pass over the scores, with no boolean or integer copy of them (1.3 GB at 268
# users a batch and a million items). The scores themselves still come from
# the model's own product, so the ranks are those of `rank_of_target` bit for bit.
fused_rank_of_target = tf.function(rank_of_target, jit_compile=True)


def ranking_function(model, exclude_history: bool = False):
    """A tf.function (history [b, max_history], targets [b]) -> (scores float [b, num_items],
    column i the item of index i + 1; 0-based target ranks [b]) against the whole catalog,
    fused once here (inference mode), its scored form (`model.unit`) computed once too."""
    table = model.item_vectors(training=False)
    items = model.scored_items(table)

    @tf.function
    def scores_of(history, targets):
        scores = model.scores(model.user_vectors(history, table, training=False), table, items)
        if exclude_history:
            scores = remove_history(scores, history, targets)
        return scores, fused_rank_of_target(scores, targets)

    return scores_of


def evaluate(model, dataset: tf.data.Dataset, ks: Sequence[int] = (5, 10),
             exclude_history: bool = False, sampled_negatives: int = 0,
             head: Optional[np.ndarray] = None, seed: int = 0,
             cold: Optional[np.ndarray] = None,
             sampled_protocol: str = "unseen", with_ranks: bool = False) -> Dict[str, object]:
    """Metrics of `model` over every example of `dataset` (batches with "history", "target").

    Returns:
      recall@k, ndcg@k (full ranking) and examples; with `sampled_negatives`, sampled_hr@10 and
      sampled_ndcg@10; with `head` (bool [num_items + 1]), "head" and "tail" dicts of the same
      metrics over the examples whose target is in / not in the head; with `cold` (bool
      [num_items + 1], `cold_items`), "warm" and "cold" dicts over the examples whose target
      was / was not trained on.
    """
    return evaluate_ranking(ranking_function(model, exclude_history), model.num_items, dataset,
                            ks, sampled_negatives, head, seed, cold, sampled_protocol,
                            with_ranks)


def evaluate_ranking(scores_of, num_items: int, dataset: tf.data.Dataset,
                     ks: Sequence[int] = (5, 10), sampled_negatives: int = 0,
                     head: Optional[np.ndarray] = None, seed: int = 0,
                     cold: Optional[np.ndarray] = None,
                     sampled_protocol: str = "unseen", with_ranks: bool = False
                     ) -> Dict[str, object]:
    """`evaluate` of any scorer: `scores_of(history, targets)` -> (scores float [b, num_items],
    0-based target ranks [b]) (`ranking_function`'s contract). `with_ranks`: the result's
    "ranks" holds every example's 0-based full-ranking rank, int [examples], in data order.

    Batches are re-cut so that no more than `SCORES_BUDGET` scores exist at once (268 users a
    batch at a million items), and the last one is padded to their size, which changes no
    result: each example's ranks and sampled negatives are its own."""
    rows = max(1, SCORES_BUDGET // max(num_items, 1))
    recut = rows < 1024
    if recut:
        dataset = dataset.unbatch().batch(rows)
    full, sampled, targets = [], [], []
    for batch in dataset:
        history, target = batch["history"], batch["target"]
        size = int(target.shape[0])
        if recut and size < rows:
            # The last batch, its last example repeated up to the others' shape: no new trace
            # and XLA compile for one batch. The repeats' results are dropped below.
            index = tf.minimum(tf.range(rows), size - 1)
            history, target = tf.gather(history, index), tf.gather(target, index)
        scores, ranks = scores_of(history, target)
        full.append(ranks.numpy()[:size])
        targets.append(batch["target"].numpy())
        if sampled_negatives:
            negatives = draw_negatives(history, target, num_items, sampled_negatives, seed,
                                       sampled_protocol)
            sampled.append(rank_among_negatives(scores, target, negatives).numpy()[:size])
        del scores   # before the next batch's are made: one batch's scores at a time
    join = lambda parts: np.concatenate(parts) if parts else np.zeros(0, int)  # noqa: E731
    full, targets = join(full), join(targets)
    sampled = join(sampled) if sampled_negatives else None
    result = _summary(full, sampled, ks)
    for mask, names in ((head, ("head", "tail")), (cold, ("cold", "warm"))):
        if mask is not None:
            for name, rows in zip(names, (mask[targets], ~mask[targets])):
                result[name] = _summary(full[rows], None if sampled is None else sampled[rows],
                                        ks) if rows.any() else {"examples": 0}
    if with_ranks:
        result["ranks"] = full
    return result


def cold_items(prepared_dir: str, item_ids) -> Optional[np.ndarray]:
    """bool [num_items + 1]: the prepared dataset's cold-start items (None without them)."""
    from tf_ccfrec.data import prepare

    cold = set(prepare.load_cold_items(prepared_dir))
    if not cold:
        return None
    return np.array([False] + [item in cold for item in item_ids])
