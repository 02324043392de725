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
        return self.attend(*self.project(query, value), seed=seed)

    def project(self, query, value):
        """The projections `attend` takes: (q [B, T, N, H] scaled by 1/sqrt(H), k [B, S, N, H],
        v [B, S, N, H]), N heads of H dims."""
        if not self._built_from_signature:
            self._build_from_signature(query=query, value=value)
        q = self._query_dense(query) * (1.0 / math.sqrt(float(self._key_dim)))
        return q, self._key_dense(value), self._value_dense(value)

    def project_rows(self, rows):
        """`project(rows, rows)` of rows float32 [V, dim] without their batch axis, in float32
        from the float32 variables whatever the compute dtype: (q, k, v), each [V, N, H], a
        table for `tf.gather` (whose gradient, a sum over the gathered rows, stays float32)."""
        def dense(layer):
            out = tf.einsum(layer.equation, rows[tf.newaxis], tf.cast(layer.kernel, tf.float32))
            if layer.bias is not None:
                out += tf.cast(layer.bias, tf.float32)
            return out[0]

        q = dense(self._query_dense) * (1.0 / math.sqrt(float(self._key_dim)))
        return q, dense(self._key_dense), dense(self._value_dense)

    def attend(self, q, k, v, seed=None):
        """Attention of projected q [B, T, N, H] over k, v [B, S, N, H] -> float [B, T, dim]."""
        probs = self._softmax(tf.einsum(self._dot_product_equation, k, q))       # [B, N, T, S]
        probs = seeded_dropout(probs, self._dropout, seed, 0)
        return self._output_dense(tf.einsum(self._combine_equation, probs, v))
