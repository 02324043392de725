"""Masked sequence alignment, an auxiliary objective (ccfrec.md §5)."""

from __future__ import annotations

import tensorflow as tf

from tf_ccfrec.distribute import gather_replicas, replica_share


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class SymmetricInfoNCE(tf.keras.layers.Layer):
    """Masked sequence alignment: in-batch InfoNCE between the user vectors of clean and
    code-masked histories, in both directions, averaged. Under a distribution strategy the
    negatives are the whole global batch (gathered from every replica).

    Call args:
      clean: float [batch, dim].
      masked: float [batch, dim].

    Returns:
      scalar loss (this replica's share of the global mean).
    """

    def __init__(self, temperature: float = 0.07, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature

    def call(self, clean, masked):
        clean = tf.math.l2_normalize(clean, axis=-1)
        masked = tf.math.l2_normalize(masked, axis=-1)
        all_clean, offset = gather_replicas(clean)
        all_masked, _ = gather_replicas(masked)
        rows = tf.shape(clean)[0]
        labels = tf.range(rows) + offset
        forward = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=tf.matmul(clean, all_masked, transpose_b=True) / self.temperature)
        backward = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=tf.matmul(masked, all_clean, transpose_b=True) / self.temperature)
        return replica_share(0.5 * tf.reduce_sum(forward + backward), rows)

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature)
        return config
