"""Code-guided semantic fusion (ccfrec.md §3): a stack of fusion blocks and the item vector
they give."""

from __future__ import annotations

import tensorflow as tf

from tf_ccfrec.layers.code_guided_fusion_block import CodeGuidedFusionBlock
from tf_ccfrec.layers.seeded_dropout import draw_seed, fold_seed


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
