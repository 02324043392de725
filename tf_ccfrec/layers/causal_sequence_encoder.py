"""The SASRec-style causal sequence encoder (ccfrec.md §4)."""

from __future__ import annotations

import tensorflow as tf

from tf_ccfrec.layers.causal_transformer_block import CausalTransformerBlock
from tf_ccfrec.layers.layer_norm import LAYER_NORM_EPSILON, LayerNormalization


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class CausalSequenceEncoder(tf.keras.layers.Layer):
    """Encodes a user's item history into the user vector.

    Histories are right-aligned: the most recent item is at position length - 1 and padding comes
    first. Learned absolute position embeddings are added, then LayerNorm and dropout, then causal
    transformer blocks that never attend to padding. The user vector is the output at the last
    position. `inner_dropout`: see `CausalTransformerBlock`.

    Call args:
      item_vectors: float [batch, length, dim].
      padding_mask: bool [batch, length], True at real items.
      training: dropout on or off.

    Returns:
      (user vectors float [batch, dim], all outputs float [batch, length, dim]).
    """

    def __init__(self, max_length: int = 20, num_layers: int = 2, dim: int = 128,
                 num_heads: int = 2, ffn_dim: int = 512, dropout: float = 0.1,
                 inner_dropout: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.max_length, self.num_layers, self.dim = max_length, num_layers, dim
        self.num_heads, self.ffn_dim, self.dropout = num_heads, ffn_dim, dropout
        self.inner_dropout = inner_dropout
        self.norm = LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="ln")
        self.drop = tf.keras.layers.Dropout(dropout)
        self.blocks = [CausalTransformerBlock(dim, num_heads, ffn_dim, dropout, inner_dropout,
                                              name=f"block{i}") for i in range(num_layers)]

    def build(self, input_shape):
        self.positions = self.add_weight(
            name="position_embeddings", shape=(self.max_length, self.dim),
            initializer=tf.keras.initializers.TruncatedNormal(stddev=0.02))
        super().build(input_shape)

    def call(self, item_vectors, padding_mask, training=None):
        length = tf.shape(item_vectors)[1]
        x = item_vectors + self.positions[self.max_length - length:]
        x = self.drop(self.norm(x), training=training)
        causal = tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)
        mask = tf.logical_and(causal[tf.newaxis], padding_mask[:, tf.newaxis, :])
        # A padding query with no visible key attends to itself, keeping the softmax defined.
        mask = tf.logical_or(mask, tf.eye(length, dtype=tf.bool)[tf.newaxis])
        for block in self.blocks:
            x = block(x, mask, training=training)
        return x[:, -1], x

    def get_config(self):
        config = super().get_config()
        config.update(max_length=self.max_length, num_layers=self.num_layers, dim=self.dim,
                      num_heads=self.num_heads, ffn_dim=self.ffn_dim, dropout=self.dropout,
                      inner_dropout=self.inner_dropout)
        return config
