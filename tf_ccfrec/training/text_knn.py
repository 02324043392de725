"""The text-only nearest-neighbour recommender, with no training: an item is the mean of its
views' unit sentence embeddings (the frozen encoder the codes use, through the embedding cache),
a user the mean of the history's items, scored by cosine against every item. The cold-start
baseline: it knows every catalog item's text and nothing of the interactions."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_ccfrec import ranking


def item_vectors(item_ids: Sequence[str], items: Dict[str, Dict[str, str]],
                 views: Sequence[str], encoder_dir: Optional[str] = None,
                 cache_dir: Optional[str] = None) -> np.ndarray:
    """float32 [num_items + 1, d]: unit mean of each item's view embeddings (row 0 padding)."""
    from tf_ccfrec.text import embeddings, encoder as encoder_lib

    encoder = embeddings.TextEncoder(encoder_dir or encoder_lib.minilm_checkpoint_dir())
    vectors = embeddings.embed_views(list(item_ids), items, list(views), encoder,
                                     cache_dir)["vectors"].mean(axis=1)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return np.concatenate([np.zeros((1, vectors.shape[1]), np.float32), vectors]).astype(
        np.float32)


def ranking_function(table: np.ndarray, exclude_history: bool = False):
    """`evaluation.ranking_function`'s contract over a fixed item table float [num_items + 1,
    d]: a user is the unit mean of its history's rows (padding rows are zero)."""
    table = tf.constant(table)
    items = table[1:]

    @tf.function
    def scores_of(history, targets):
        users = tf.math.l2_normalize(tf.reduce_sum(tf.gather(table, history), axis=1), axis=-1)
        scores = tf.matmul(users, items, transpose_b=True)
        if exclude_history:
            scores = ranking.remove_history(scores, history, targets)
        return scores, ranking.rank_of_target(scores, targets)

    return scores_of


def evaluate_prepared(prepared_dir: str, split: str = "test", sampled_negatives: int = 100,
                      seed: int = 0, encoder_dir: Optional[str] = None,
                      cache_dir: Optional[str] = None, max_history: int = 20,
                      exclude_history: bool = False,
                      sampled_protocol: str = "unseen") -> Dict[str, object]:
    """The baseline's metrics on a prepared dataset's split, sliced as a trained run's (head /
    tail, and warm / cold when the data has cold items)."""
    from tf_ccfrec.data import prepare, tfrecords
    from tf_ccfrec.training import evaluation, inputs

    views = prepare.load_statistics(prepared_dir)["views"]
    item_ids, items = tfrecords.read_catalog(prepared_dir, views)
    table = item_vectors(item_ids, items, views, encoder_dir, cache_dir)
    data = inputs.make_dataset(prepared_dir, split, item_ids, 1024, max_history)
    counts = ranking.training_interactions(prepared_dir, item_ids)
    return {"model": "text-knn", "split": split, **evaluation.evaluate_ranking(
        ranking_function(table, exclude_history), len(item_ids), data,
        sampled_negatives=sampled_negatives, head=ranking.head_items(counts), seed=seed,
        cold=evaluation.cold_items(prepared_dir, item_ids), sampled_protocol=sampled_protocol)}
