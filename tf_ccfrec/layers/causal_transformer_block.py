"""One block of the SASRec-style causal sequence encoder (ccfrec.md §4)."""

from __future__ import annotations

import tensorflow as tf

from tf_ccfrec.layers.feed_forward import feed_forward
from tf_ccfrec.layers.layer_norm import LAYER_NORM_EPSILON, LayerNormalization


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class CausalTransformerBlock(tf.keras.layers.Layer):
    """Masked self-attention and feed-forward, each with residual and post-LayerNorm; dropout
    after each sub-layer and, with `inner_dropout`, on the feed-forward's inner activations too.

    Call args:
      x: float [batch, length, dim].
      attention_mask: bool [batch, length, length], True where a query may attend to a key.
      training: dropout on or off.

    Returns:
      float [batch, length, dim].
    """

    def __init__(self, dim: int = 128, num_heads: int = 2, ffn_dim: int = 512,
                 dropout: float = 0.1, inner_dropout: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.ffn_dim, self.dropout = dim, num_heads, ffn_dim, dropout
        self.inner_dropout = inner_dropout
        self.attention = tf.keras.layers.MultiHeadAttention(num_heads, dim // num_heads,
                                                            dropout=dropout, name="attention")
        self.ffn = feed_forward(dim, ffn_dim, dropout, "ffn")
        self.norm1 = LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="ln1")
        self.norm2 = LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="ln2")
        self.drop = tf.keras.layers.Dropout(dropout)

    def call(self, x, attention_mask, training=None):
        attended = self.attention(x, x, attention_mask=attention_mask, training=training)
        h = self.norm1(x + self.drop(attended, training=training))
        inner, inner_drop, outer = self.ffn.layers
        hidden = inner(h)
        if self.inner_dropout:
            hidden = inner_drop(hidden, training=training)
        return self.norm2(h + self.drop(outer(hidden), training=training))

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, num_heads=self.num_heads, ffn_dim=self.ffn_dim,
                      dropout=self.dropout, inner_dropout=self.inner_dropout)
        return config
