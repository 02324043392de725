"""The exported retrieval module: raw item-id strings in, top-k item ids and scores out, with
stock TensorFlow ops only (TF Serving loads it as it is).

The catalog's item vectors are computed once at export (the fusion does not run at serving
time); a request runs the sequence encoder over its history and scores every item exactly.

Conventions of every signature:
- `history`: string [batch, n], a user's item ids oldest first, right-padded with "" (rows of a
  batch may differ in length). Ids the catalog does not know are ignored (`known_items` counts
  the rest); the most recent `max_history` known items are used.
- A row with no known item gets the most popular items (by training interactions) and
  `fallback` = True.
- Scores are cos(user, item) / tau; popularity fallback rows score log(1 + count).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_ccfrec.ranking import (draw_negatives, rank_among_negatives, rank_of_target, remove_history,
                               right_align)

EXAMPLE_FEATURES = {
    "history": tf.io.RaggedFeature(tf.string),
    "target": tf.io.FixedLenFeature([], tf.string, default_value=""),
}


class RetrievalModule(tf.Module):
    """Serving signatures over a trained model's encoder and its catalog.

    Args:
      encoder: the trained `CausalSequenceEncoder`.
      item_vectors: float [num_items + 1, dim], the model's `item_vectors()` (row 0 padding).
      item_ids: the catalog's ids, item index i + 1 = item_ids[i].
      popularity: int [num_items + 1], training interactions (the empty-history fallback).
      temperature: tau.
      similarity: "cosine" (unit vectors, scores divided by tau) or "dot" (the vectors as they
        are, temperature 1), the model's `config.similarity`.
      max_history: items of history the encoder reads.
      top_k: how many items `serving_default` returns.
      id_lookup: callable string tensor -> int32 indices of the same shape (0 = unknown), a
        tf.Module (e.g. one applying a tf.Transform graph); default a hash table of `item_ids`.
      sampled_negatives, seed, sampled_protocol: the sampled protocol of `serve_tf_examples`
        (`ranking.draw_negatives`).
      history_vectors: float [num_items + 1, dim], what the encoder reads for a history item
        (the model's `history_table`); None: `item_vectors`.
    """

    def __init__(self, encoder, item_vectors: np.ndarray, item_ids, popularity: np.ndarray,
                 temperature: float, max_history: int, top_k: int, id_lookup=None,
                 sampled_negatives: int = 100, seed: int = 0, history_vectors=None,
                 similarity: str = "cosine", sampled_protocol: str = "unseen"):
        super().__init__(name="ccfrec_retrieval")
        self.encoder = encoder
        self.max_history, self.top_k = max_history, min(top_k, len(item_ids))
        self.similarity = similarity
        self.temperature = temperature if similarity == "cosine" else 1.0
        self.item_table = tf.Variable(np.asarray(item_vectors, np.float32), trainable=False,
                                      name="item_vectors")
        self.history_table = self.item_table if history_vectors is None else tf.Variable(
            np.asarray(history_vectors, np.float32), trainable=False, name="history_vectors")
        self.item_ids = tf.Variable(np.array([""] + list(item_ids), object), trainable=False,
                                    dtype=tf.string, name="item_ids")
        self.log_popularity = tf.Variable(np.log1p(np.asarray(popularity, np.float32)[1:]),
                                          trainable=False, name="log_popularity")
        self.num_items = len(item_ids)
        self.sampled_negatives, self.seed = sampled_negatives, seed
        self.sampled_protocol = sampled_protocol
        self.id_lookup = id_lookup
        self.table = None if id_lookup is not None else tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(item_ids)), tf.range(1, len(item_ids) + 1, dtype=tf.int32)), 0)
        if id_lookup is not None:
            # Saved as a function of its own, so a later version can call it again
            # (`tf_ccfrec.export.added_ids`: `ccfrec catalog add` on this export).
            self.lookup_ids = tf.function(
                lambda ids: tf.cast(id_lookup(ids), tf.int32),
                input_signature=[tf.TensorSpec([None], tf.string, name="ids")])

    # -- building blocks -----------------------------------------------------------------

    def index_of(self, ids):
        """string ids (any shape) -> int32 indices (0 = unknown)."""
        if self.id_lookup is not None:
            return tf.reshape(self.lookup_ids(tf.reshape(ids, [-1])), tf.shape(ids))
        return self.table.lookup(ids)

    def indices(self, history):
        """string [batch, n] -> right-aligned indices int32 [batch, max_history]."""
        ids = self.index_of(history)
        return right_align(tf.ragged.boolean_mask(ids, ids > 0), self.max_history)

    def _unit(self, vectors):
        return tf.math.l2_normalize(vectors, axis=-1) if self.similarity == "cosine" else vectors

    def unit_items(self):
        """The catalog's vectors as scored (unit vectors under cosine): float [num_items, dim]."""
        return self._unit(self.item_table[1:])

    def user_vectors(self, indices):
        """User vectors as scored (unit under cosine) float [batch, dim] of right-aligned
        indices."""
        users, _ = self.encoder(tf.gather(self.history_table, indices), indices > 0,
                                training=False)
        return self._unit(users)

    def all_scores(self, indices):
        """(scores float [batch, num_items], fallback bool [batch])."""
        scores = tf.matmul(self.user_vectors(indices), self.unit_items(),
                           transpose_b=True) / self.temperature
        fallback = tf.reduce_all(indices == 0, axis=1)
        popular = tf.broadcast_to(self.log_popularity[tf.newaxis], tf.shape(scores))
        return tf.where(fallback[:, tf.newaxis], popular, scores), fallback

    def recommend(self, history, exclude_history):
        return self._top_k(self.indices(history), exclude_history)[0]

    def _top_k(self, indices, exclude_history):
        """(top-k outputs, scores [batch, num_items]) of right-aligned indices."""
        scores, fallback = self.all_scores(indices)
        if exclude_history:
            scores = remove_history(scores, indices, tf.zeros_like(indices[:, 0]))
        top = tf.math.top_k(scores, k=self.top_k)
        # Fewer than k items left after excluding the history: the rest is "" / -inf.
        ids = tf.where(tf.math.is_finite(top.values), tf.gather(self.item_ids, top.indices + 1),
                       "")
        return {"item_ids": ids, "scores": top.values,
                "fallback": fallback,
                "known_items": tf.reduce_sum(tf.cast(indices > 0, tf.int32), axis=1)}, scores

    # -- signatures -----------------------------------------------------------------------

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="history")])
    def serve(self, history):
        """Top-k over the whole catalog (exact)."""
        return self.recommend(history, exclude_history=False)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="history")])
    def serve_excluding_history(self, history):
        """Top-k over the catalog without the history's items."""
        return self.recommend(history, exclude_history=True)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="history")])
    def embed_query(self, history):
        """User vectors as scored (`user_vectors`): the query side of an approximate index; `history_items` are the
        catalog ids the encoder read (string [batch, max_history], "" padding, normalized as
        the catalog's), what `serving_excluding_history` leaves out."""
        indices = self.indices(history)
        return {"query": self.user_vectors(indices),
                "known_items": tf.reduce_sum(tf.cast(indices > 0, tf.int32), axis=1),
                "history_items": tf.gather(self.item_ids, indices)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_ids")])
    def embed_items(self, item_ids):
        """Item vectors as scored (`unit_items`); unknown ids get zeros and known = False."""
        index = self.index_of(item_ids)
        vectors = tf.gather(tf.concat([tf.zeros_like(self.item_table[:1]),
                                       self.unit_items()], 0),
                            index)
        return {"vectors": vectors, "known": index > 0}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_tf_examples(self, examples):
        """Serialized tf.Examples with `history` (bytes list, oldest first) and `target`:
        top-k as `serving_default`, plus what TFMA's retrieval metrics read: the target's
        0-based rank among all items (`target_rank`) and among itself and `sampled_negatives`
        uniform negatives (`sampled_rank`, the library's sampled protocol, same draws); ties
        count against the target; -1 when the target is unknown."""
        parsed = tf.io.parse_example(examples, EXAMPLE_FEATURES)
        indices = self.indices(parsed["history"].to_tensor(""))
        result, scores = self._top_k(indices, exclude_history=False)
        target = self.index_of(parsed["target"])
        known = target > 0
        target = tf.maximum(target, 1)
        negatives = draw_negatives(indices, target, self.num_items, self.sampled_negatives,
                                   self.seed, self.sampled_protocol)
        result["target_rank"] = tf.where(known, rank_of_target(scores, target), -1)
        result["sampled_rank"] = tf.where(
            known, rank_among_negatives(scores, target, negatives), -1)
        return result

    def signatures(self):
        return {"serving_default": self.serve,
                "serving_excluding_history": self.serve_excluding_history,
                "embed_query": self.embed_query, "embed_items": self.embed_items,
                "serve_tf_examples": self.serve_tf_examples}
