"""Multi-head attention with seeded dropout on the attention probabilities."""

from __future__ import annotations

import math

import tensorflow as tf

from tf_ccfrec.layers.seeded_dropout import seeded_dropout


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class SeededMultiHeadAttention(tf.keras.layers.MultiHeadAttention):
    """tf.keras `MultiHeadAttention` (same projections and variables, so checkpoints of either
    load into the other) whose dropout on the attention probabilities is drawn from an explicit
    seed (`seeded_dropout`), so that recomputing the layer reproduces it. No attention mask:
    every key position is attended to.

    Call args:
      query: float [batch, T, dim].
      value: float [batch, S, dim] (also the keys).
      seed: int [2], or None for no dropout (inference).

    Returns:
      float [batch, T, dim].
    """

    def call(self, query, value, seed=None):
        if not self._built_from_signature:
            self._build_from_signature(query=query, value=value)
        q = self._query_dense(query) * (1.0 / math.sqrt(float(self._key_dim)))  # [B, T, N, H]
        k, v = self._key_dense(value), self._value_dense(value)                 # [B, S, N, H]
        probs = self._softmax(tf.einsum(self._dot_product_equation, k, q))       # [B, N, T, S]
        probs = seeded_dropout(probs, self._dropout, seed, 0)
        return self._output_dense(tf.einsum(self._combine_equation, probs, v))
