"""Ranking: where a target ranks among the catalog or among sampled negatives, the sampled
protocol's negatives, item popularity and the head items, and the right-aligned histories every
scorer reads. Training's evaluation, the export's signatures and the pipeline's ExampleGen use
these functions, so each computes the same thing.

Item indices: 0 is padding, catalog item i is index i + 1. Histories are right-aligned (padding
first) int [batch, length]; targets are int [batch] indices >= 1. Ties count against the target
everywhere.
"""

from __future__ import annotations

import os

from typing import Iterable, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

HEAD_SHARE = 0.2


def rank_of_target(scores: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """0-based rank of each target among all items (ties count against the target).

    Args:
      scores: float [batch, num_items].
      targets: int [batch], item indices >= 1 (column target - 1).
    """
    target_scores = tf.gather(scores, tf.cast(targets, tf.int32) - 1, batch_dims=1)
    return tf.reduce_sum(tf.cast(scores >= target_scores[:, tf.newaxis], tf.int32), axis=1) - 1


def rank_among_negatives(scores: tf.Tensor, targets: tf.Tensor,
                         negatives: tf.Tensor) -> tf.Tensor:
    """0-based rank of each target among itself and its negatives.

    Args:
      scores: float [batch, num_items].
      targets: int [batch], indices >= 1.
      negatives: int [batch, n], indices >= 1, none equal to the row's target.
    """
    target_scores = tf.gather(scores, tf.cast(targets, tf.int32) - 1, batch_dims=1)
    negative_scores = tf.gather(scores, tf.cast(negatives, tf.int32) - 1, batch_dims=1)
    return tf.reduce_sum(tf.cast(negative_scores >= target_scores[:, tf.newaxis], tf.int32),
                         axis=1)


def remove_history(scores: tf.Tensor, history: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Scores with every history item other than the target set to -inf.

    Args:
      scores: float [batch, num_items]; history: int [batch, length] (0 = padding);
      targets: int [batch].
    """
    history = tf.cast(history, tf.int32)
    seen = tf.logical_and(history > 0, history != tf.cast(targets, tf.int32)[:, tf.newaxis])
    rows = tf.broadcast_to(tf.range(tf.shape(history)[0])[:, tf.newaxis], tf.shape(history))
    cells = tf.stack([tf.boolean_mask(rows, seen), tf.boolean_mask(history, seen) - 1], axis=1)
    return tf.tensor_scatter_nd_update(
        scores, cells, tf.fill([tf.shape(cells)[0]], tf.constant(-np.inf, scores.dtype)))


def right_align(history: tf.RaggedTensor, length: int) -> tf.Tensor:
    """Ragged [batch, None] -> int32 [batch, length]: the last `length` items, padding first."""
    history = history[:, -length:]
    padded = history.to_tensor(0, shape=[None, length])  # left-aligned
    lengths = history.row_lengths()
    shift = tf.cast(length - lengths, tf.int32)
    columns = (tf.range(length)[tf.newaxis] - shift[:, tf.newaxis]) % length
    return tf.gather(padded, columns, batch_dims=1)


SAMPLED_PROTOCOLS = ("unseen", "uniform")


def draw_negatives(history: tf.Tensor, targets: tf.Tensor, num_items: int, n: int,
                   seed: int = 0, protocol: str = "unseen") -> tf.Tensor:
    """int32 [batch, n]: uniform draws, with replacement, from the items a row may rank its
    target against: with `protocol` "unseen" (LLM-ESR's and H2Rec's), the items neither in its
    history nor its target; with "uniform", every item other than its target.

    A row's draws are a function of (seed, its history, its target) only, not of its position
    in the data, so any consumer of the same example (the library's evaluation, the exported
    `serve_tf_examples` signature that TFMA evaluates) draws the same negatives.

    Args:
      history: int [batch, length], right-aligned item indices (0 = padding); what the model
        reads (a history longer than max_history is cut to its last max_history items).
      targets: int [batch], item indices >= 1.
      num_items: catalog size, larger than any row's history and target together.
    """
    if protocol not in SAMPLED_PROTOCOLS:
        raise ValueError(f"sampled protocol must be one of {SAMPLED_PROTOCOLS}, got "
                         f"{protocol!r}")
    history = tf.cast(history, tf.int64)
    targets = tf.cast(targets, tf.int64)
    row_key = tf.strings.join([
        tf.strings.as_string(seed),
        tf.strings.reduce_join(tf.strings.as_string(history), axis=1, separator=","),
        tf.strings.as_string(targets)], separator="|")
    shape = [tf.shape(targets)[0], n]
    draw_keys = tf.strings.join([tf.broadcast_to(row_key[:, tf.newaxis], shape),
                                 tf.broadcast_to(tf.strings.as_string(tf.range(n)), shape)],
                                separator="#")
    if protocol == "uniform":
        # Uniform over 1..num_items - 1, then shifted past the target: uniform over the others.
        draws = tf.strings.to_hash_bucket_fast(draw_keys, num_items - 1) + 1
        draws += tf.cast(draws >= targets[:, tf.newaxis], tf.int64)
        return tf.cast(draws, tf.int32)
    # The row's distinct excluded items, ascending, padded with num_items + 1 (never reached).
    beyond = tf.constant(num_items + 1, tf.int64)
    excluded = tf.concat([history, targets[:, tf.newaxis]], axis=1)
    excluded = tf.sort(tf.where(excluded > 0, excluded, beyond), axis=1)
    repeated = tf.concat([tf.zeros_like(excluded[:, :1], tf.bool),
                          tf.equal(excluded[:, 1:], excluded[:, :-1])], axis=1)
    excluded = tf.sort(tf.where(repeated, beyond, excluded), axis=1)
    allowed = num_items - tf.reduce_sum(tf.cast(excluded <= num_items, tf.int64), axis=1)
    # Uniform over 1..allowed, then shifted past each excluded item in ascending order: the
    # u-th item that is not excluded.
    draws = tf.strings.to_hash_bucket_fast(draw_keys, 2**62) % allowed[:, tf.newaxis] + 1
    for column in range(excluded.shape[1]):
        draws += tf.cast(draws >= excluded[:, column:column + 1], tf.int64)
    return tf.cast(draws, tf.int32)


def count_interactions(rows: Iterable[Tuple[str, object, int, object]],
                       index: Mapping[object, int], num_items: int) -> np.ndarray:
    """int [num_items + 1]: how often each item occurs in the training sequences: every training
    target, plus each user's first item (the history of the user's example at position 1, in
    whichever split; a first item has no example of its own).

    Args:
      rows: (split, target, position, first history item) per example, items as keys of `index`.
      index: item -> index (1..num_items).
    """
    counts = np.zeros(num_items + 1, np.int64)
    for split, target, position, first in rows:
        if split == "train":
            counts[index[target]] += 1
        if position == 1:
            counts[index[first]] += 1
    return counts


def training_interactions(prepared_dir: str, item_ids: Sequence[str],
                          batch_size: int = 16384) -> np.ndarray:
    """`count_interactions` of a prepared dataset, indexed like `item_ids` (index i + 1): the
    examples parsed and looked up a batch at a time in TensorFlow (no Python object per example,
    so it keeps up with ten million interactions).

    Raises:
      ValueError: an example names an item that is not in `item_ids`.
    """
    from tf_ccfrec.data import tfrecords

    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(item_ids)), tf.range(1, len(item_ids) + 1, dtype=tf.int64)), -1)
    features = {"target": tf.io.FixedLenFeature([], tf.string),
                "position": tf.io.FixedLenFeature([], tf.int64),
                "history": tf.io.RaggedFeature(tf.string)}
    counts = np.zeros(len(item_ids) + 1, np.int64)
    for split in ("train", "valid", "test"):
        path = os.path.join(prepared_dir, tfrecords.EXAMPLES_DIR, split, tfrecords.SHARD)
        records = tf.data.TFRecordDataset(path, compression_type="GZIP").batch(batch_size)
        for batch in records.map(lambda r: tf.io.parse_example(r, features)):
            history = batch["history"]
            first = tf.gather(history.values, history.row_starts())   # histories are never empty
            keys = [first[batch["position"] == 1]] + ([batch["target"]] if split == "train"
                                                       else [])
            for key in keys:
                index = table.lookup(key).numpy()
                if (index < 0).any():
                    unknown = key.numpy()[index < 0][0].decode()
                    raise ValueError(f"{path}: item {unknown!r} is not in the item order")
                counts += np.bincount(index, minlength=len(counts))
    return counts


def head_items(counts: np.ndarray, share: float = HEAD_SHARE) -> np.ndarray:
    """bool [num_items + 1]: the most popular `share` of items (ties broken by index)."""
    order = np.argsort(-counts[1:], kind="stable")
    head = np.zeros(len(counts), bool)
    head[order[:int(round(share * (len(counts) - 1)))] + 1] = True
    return head


def popularity_ranking(counts: np.ndarray):
    """`ranking_function`'s contract for the popularity baseline: every user gets the catalog
    ordered by training interactions (`training_interactions`; ties by index)."""
    num_items = len(counts) - 1
    order = np.asarray(counts[1:], np.float64) + 0.5 * (1 - np.arange(num_items) / num_items)
    scores = tf.constant(order[np.newaxis], tf.float64)

    def scores_of(history, targets):
        batch = tf.broadcast_to(scores, [tf.shape(targets)[0], num_items])
        return batch, rank_of_target(batch, targets)

    return scores_of
