"""The position-wise feed-forward sub-layer of the fusion and causal transformer blocks."""

from __future__ import annotations

import tensorflow as tf

from tf_ccfrec.layers.gelu import gelu


def feed_forward(dim: int, ffn_dim: int, dropout: float, name: str, dtype=None
                 ) -> tf.keras.Sequential:
    """Dense(ffn_dim, GELU), Dropout, Dense(dim), built for inputs float [batch, length, dim].

    The blocks call it layer by layer (their own dropout in between); the Dropout layer stays so
    that the Sequential's layer numbering, and with it the checkpoint layout, is unchanged.
    """
    ffn = tf.keras.Sequential([tf.keras.layers.Dense(ffn_dim, activation=gelu, dtype=dtype),
                               tf.keras.layers.Dropout(dropout, dtype=dtype),
                               tf.keras.layers.Dense(dim, dtype=dtype)], name=name)
    ffn.build((None, None, dim))
    return ffn
