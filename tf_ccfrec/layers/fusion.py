"""Code-guided semantic fusion (ccfrec.md §3): codes attend to each other, then to the item's
frozen text view vectors."""

from __future__ import annotations

import tensorflow as tf

LAYER_NORM_EPSILON = 1e-12


def _ffn(dim: int, ffn_dim: int, dropout: float, name: str) -> tf.keras.Sequential:
    return tf.keras.Sequential([tf.keras.layers.Dense(ffn_dim, activation="gelu"),
                                tf.keras.layers.Dropout(dropout),
                                tf.keras.layers.Dense(dim)], name=name)


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class CodeGuidedFusionBlock(tf.keras.layers.Layer):
    """One fusion layer: self-attention among codes, cross-attention from codes to the view
    vectors, feed-forward; each sub-layer with residual connection and post-LayerNorm.
    `use_text=False` leaves out the cross-attention (the ablation without text).

    Call args:
      codes: float [batch, num_codes, dim], the code hidden states.
      views: float [batch, num_views, dim], the frozen view vectors (keys and values).
      training: dropout on or off.

    Returns:
      float [batch, num_codes, dim].
    """

    def __init__(self, dim: int = 128, num_heads: int = 2, ffn_dim: int = 512,
                 dropout: float = 0.1, use_text: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.ffn_dim, self.dropout = dim, num_heads, ffn_dim, dropout
        self.use_text = use_text
        head = dim // num_heads
        self.self_attention = tf.keras.layers.MultiHeadAttention(
            num_heads, head, dropout=dropout, name="self_attention")
        self.cross_attention = tf.keras.layers.MultiHeadAttention(
            num_heads, head, dropout=dropout, name="cross_attention")
        self.ffn = _ffn(dim, ffn_dim, dropout, "ffn")
        self.norms = [tf.keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"ln{i}")
                      for i in range(3)]
        self.drop = tf.keras.layers.Dropout(dropout)

    def call(self, codes, views, training=None):
        h = self.norms[0](codes + self.drop(
            self.self_attention(codes, codes, training=training), training=training))
        if self.use_text:
            h = self.norms[1](h + self.drop(
                self.cross_attention(h, views, training=training), training=training))
        return self.norms[2](h + self.drop(self.ffn(h, training=training), training=training))

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, num_heads=self.num_heads, ffn_dim=self.ffn_dim,
                      dropout=self.dropout, use_text=self.use_text)
        return config


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class CodeGuidedFusion(tf.keras.layers.Layer):
    """A stack of fusion blocks and the item vector they give.

    Call args:
      code_embeddings: float [batch, num_codes, dim], H0 (the item's code token embeddings).
      views: float [batch, num_views, dim], the frozen view vectors.
      training: dropout on or off.

    Returns:
      (item vectors float [batch, dim] = mean_j H_L[j] + mean_j H0[j],
       final hidden states H_L float [batch, num_codes, dim]).
    """

    def __init__(self, num_layers: int = 2, dim: int = 128, num_heads: int = 2,
                 ffn_dim: int = 512, dropout: float = 0.1, use_text: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.num_layers, self.dim, self.num_heads = num_layers, dim, num_heads
        self.ffn_dim, self.dropout, self.use_text = ffn_dim, dropout, use_text
        self.blocks = [CodeGuidedFusionBlock(dim, num_heads, ffn_dim, dropout, use_text,
                                             name=f"block{i}") for i in range(num_layers)]

    def call(self, code_embeddings, views, training=None):
        h = code_embeddings
        for block in self.blocks:
            h = block(h, views, training=training)
        item = tf.reduce_mean(h, axis=-2) + tf.reduce_mean(code_embeddings, axis=-2)
        return item, h

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, dim=self.dim, num_heads=self.num_heads,
                      ffn_dim=self.ffn_dim, dropout=self.dropout, use_text=self.use_text)
        return config
