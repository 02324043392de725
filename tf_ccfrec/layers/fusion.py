"""Code-guided semantic fusion (ccfrec.md §3): codes attend to each other, then to the item's
frozen text view vectors."""

from __future__ import annotations

import tensorflow as tf

from tf_ccfrec.layers.gelu import gelu
from tf_ccfrec.layers.layer_norm import LayerNormalization
from tf_ccfrec.layers.seeded_attention import SeededMultiHeadAttention
from tf_ccfrec.layers.seeded_dropout import draw_seed, fold_seed, seeded_dropout

LAYER_NORM_EPSILON = 1e-12


def _ffn(dim: int, ffn_dim: int, dropout: float, name: str, dtype=None) -> tf.keras.Sequential:
    # Called layer by layer (seeded dropout in between); the Dropout layer stays so that the
    # Sequential's layer numbering, and with it the checkpoint layout, is unchanged.
    ffn = tf.keras.Sequential([tf.keras.layers.Dense(ffn_dim, activation=gelu, dtype=dtype),
                               tf.keras.layers.Dropout(dropout, dtype=dtype),
                               tf.keras.layers.Dense(dim, dtype=dtype)], name=name)
    ffn.build((None, None, dim))
    return ffn


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
        self.ffn = _ffn(dim, ffn_dim, dropout, "ffn", policy)
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


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class CodeGuidedFusion(tf.keras.layers.Layer):
    """A stack of fusion blocks and the item vector they give. With `dtype="mixed_bfloat16"` the
    blocks compute in bfloat16 on float32 variables and the outputs are bfloat16.

    Call args:
      code_embeddings: float [batch, num_codes, dim], H0 (the item's code token embeddings).
      views: float [batch, num_views, dim], the frozen view vectors.
      training: dropout on or off.
      seed: int [2], the dropout seed in training (None: a fresh one); the same seed gives the
        same output, which is what lets `tf.recompute_grad` recompute it.
      tokens, token_projections: optional; with code_embeddings = gather(table, tokens) (int
        [batch, num_codes]) and token_projections = `project_tokens(table)`, the first block's
        self-attention gathers its projections instead of projecting every code token: the same
        result, and a projection per table row rather than per code token (a catalog has many
        more code tokens than the table rows).

    Returns:
      (item vectors float [batch, dim] = mean_j H_L[j] + mean_j H0[j],
       final hidden states H_L float [batch, num_codes, dim]).
    """

    def __init__(self, num_layers: int = 2, dim: int = 128, num_heads: int = 2,
                 ffn_dim: int = 512, dropout: float = 0.1, use_text: bool = True,
                 inner_dropout: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.num_layers, self.dim, self.num_heads = num_layers, dim, num_heads
        self.ffn_dim, self.dropout, self.use_text = ffn_dim, dropout, use_text
        self.inner_dropout = inner_dropout
        self.blocks = [CodeGuidedFusionBlock(dim, num_heads, ffn_dim, dropout, use_text,
                                             inner_dropout, name=f"block{i}",
                                             dtype=self.dtype_policy)
                       for i in range(num_layers)]

    def call(self, code_embeddings, views, training=None, seed=None, tokens=None,
             token_projections=None):
        if not training:
            seed = None
        elif seed is None:
            seed = draw_seed()
        first = None
        if token_projections is not None:
            tokens = tf.cast(tokens, tf.int32)
            first = tuple(tf.cast(tf.gather(p, tokens), self.compute_dtype)
                          for p in token_projections)
        h = code_embeddings
        for i, block in enumerate(self.blocks):
            h = block(h, views, training=training, seed=fold_seed(seed, i),
                      self_projections=first if i == 0 else None)
        item = tf.reduce_mean(h, axis=-2) + tf.reduce_mean(code_embeddings, axis=-2)
        return item, h

    def project_tokens(self, table):
        """The first block's self-attention projections of every row of a code-token table
        float32 [vocab, dim]: (q, k, v), each float32 [vocab, heads, dim / heads]."""
        return self.blocks[0].self_attention.project_rows(tf.cast(table, tf.float32))

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, dim=self.dim, num_heads=self.num_heads,
                      ffn_dim=self.ffn_dim, dropout=self.dropout, use_text=self.use_text,
                      inner_dropout=self.inner_dropout)
        return config
