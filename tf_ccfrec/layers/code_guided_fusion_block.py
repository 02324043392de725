"""One block of code-guided semantic fusion (ccfrec.md §3): codes attend to each other, then
to the item's frozen text view vectors."""

from __future__ import annotations

import tensorflow as tf

from tf_ccfrec.layers.feed_forward import feed_forward
from tf_ccfrec.layers.layer_norm import LAYER_NORM_EPSILON, LayerNormalization
from tf_ccfrec.layers.seeded_attention import SeededMultiHeadAttention
from tf_ccfrec.layers.seeded_dropout import draw_seed, fold_seed, seeded_dropout


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class CodeGuidedFusionBlock(tf.keras.layers.Layer):
    """One fusion layer: self-attention among codes, cross-attention from codes to the view
    vectors, feed-forward; each sub-layer with residual connection and post-LayerNorm, dropout
    after each sub-layer and, with `inner_dropout`, on the feed-forward's inner activations too
    (not in the authors' release). `use_text=False` leaves out the cross-attention (the ablation
    without text). Every dropout
    mask is drawn from `seed` (`seeded_dropout`), so a recomputation reproduces the forward pass.
    The block's dtype policy (e.g. `dtype="mixed_bfloat16"`) is its sub-layers' too.

    Call args:
      codes: float [batch, num_codes, dim], the code hidden states.
      views: float [batch, num_views, dim], the frozen view vectors (keys and values).
      training: dropout on or off.
      seed: int [2], the dropout seed in training (None: a fresh one).
      self_projections: optional (q, k, v), each [batch, num_codes, heads, dim / heads], the
        self-attention's projections of `codes` when the caller has them
        (`SeededMultiHeadAttention.project`); None: projected here.

    Returns:
      float [batch, num_codes, dim].
    """

    def __init__(self, dim: int = 128, num_heads: int = 2, ffn_dim: int = 512,
                 dropout: float = 0.1, use_text: bool = True, inner_dropout: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.ffn_dim, self.dropout = dim, num_heads, ffn_dim, dropout
        self.use_text, self.inner_dropout = use_text, inner_dropout
        head = dim // num_heads
        policy = self.dtype_policy
        self.self_attention = SeededMultiHeadAttention(
            num_heads, head, dropout=dropout, name="self_attention", dtype=policy)
        self.cross_attention = SeededMultiHeadAttention(
            num_heads, head, dropout=dropout, name="cross_attention", dtype=policy)
        self.ffn = feed_forward(dim, ffn_dim, dropout, "ffn", policy)
        self.norms = [LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"ln{i}",
                                                         dtype=policy) for i in range(3)]

    def call(self, codes, views, training=None, seed=None, self_projections=None):
        if not training:
            seed = None
        elif seed is None:
            seed = draw_seed()

        def drop(x, salt):
            return seeded_dropout(x, self.dropout, seed, salt)

        if self_projections is None:
            self_projections = self.self_attention.project(codes, codes)
        h = self.norms[0](codes + drop(
            self.self_attention.attend(*self_projections, seed=fold_seed(seed, 1)), 2))
        if self.use_text:
            h = self.norms[1](h + drop(
                self.cross_attention(h, views, seed=fold_seed(seed, 3)), 4))
        inner, _, outer = self.ffn.layers
        hidden = inner(h)
        if self.inner_dropout:
            hidden = drop(hidden, 5)
        return self.norms[2](h + drop(outer(hidden), 6))

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, num_heads=self.num_heads, ffn_dim=self.ffn_dim,
                      dropout=self.dropout, use_text=self.use_text,
                      inner_dropout=self.inner_dropout)
        return config
