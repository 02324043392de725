"""Masked code modeling, an auxiliary objective (ccfrec.md §5)."""

from __future__ import annotations

import tensorflow as tf

from tf_ccfrec.distribute import replica_share


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class MaskedCodeModelingLoss(tf.keras.layers.Layer):
    """Each selected code position predicts its original token by cos(h, E_k) / tau over the code
    tokens of the table (padding and [MASK] excluded); cross-entropy averaged over selections.

    Call args:
      hidden: float [..., num_codes, dim], fusion outputs of the masked codes.
      table: float [vocab, dim], the code-token embedding table.
      targets: int [..., num_codes], the original tokens.
      selected: bool [..., num_codes], positions that were selected for masking.

    Returns:
      scalar loss (0 when nothing is selected): the mean over all selections, or under a
      distribution strategy this replica's share of the mean over every replica's selections.
    """

    def __init__(self, temperature: float = 0.07, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature

    def call(self, hidden, table, targets, selected):
        h = tf.boolean_mask(hidden, selected)                        # [n, dim]
        y = tf.boolean_mask(tf.cast(targets, tf.int32), selected)    # [n]
        # Scored against the code tokens only: rows 1 .. vocab - 2 (not padding, not [MASK]).
        logits = tf.matmul(tf.math.l2_normalize(h, axis=-1), tf.math.l2_normalize(table[1:-1], axis=-1),
                           transpose_b=True) / self.temperature      # [n, vocab - 2]
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y - 1, logits=logits)
        return replica_share(tf.reduce_sum(losses), tf.size(y))

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature)
        return config
