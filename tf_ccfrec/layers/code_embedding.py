"""Learnable embeddings of semantic-code tokens (ccfrec.md §2, §3)."""

from __future__ import annotations

import tensorflow as tf

PAD_TOKEN = 0


def codes_to_tokens(codes, codebook_size: int):
    """Semantic codes -> code tokens of one shared table: token = code + position * K + 1.

    Args:
      codes: int [..., num_codes], each in [0, codebook_size).
      codebook_size: K.

    Returns:
      int32 [..., num_codes] tokens in [1, num_codes * K]; 0 stays free for padding.
    """
    codes = tf.cast(codes, tf.int32)
    positions = tf.range(tf.shape(codes)[-1], dtype=tf.int32)
    return codes + positions * codebook_size + 1


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class CodeTokenEmbedding(tf.keras.layers.Layer):
    """Embeds code tokens; one table for every code position, plus padding and [MASK].

    Token ids: 0 = padding, 1 .. num_codes * codebook_size = codes (see `codes_to_tokens`),
    num_codes * codebook_size + 1 = [MASK]. Initialized N(0, 0.02).

    Call args:
      tokens: int [..., num_codes].

    Returns:
      float [..., num_codes, dim].
    """

    def __init__(self, num_codes: int, codebook_size: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.num_codes = num_codes
        self.codebook_size = codebook_size
        self.dim = dim
        self.vocab_size = num_codes * codebook_size + 2
        self.mask_token = num_codes * codebook_size + 1

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.vocab_size, self.dim),
            initializer=tf.keras.initializers.TruncatedNormal(stddev=0.02))
        super().build(input_shape)

    def call(self, tokens):
        return tf.gather(self.embeddings, tf.cast(tokens, tf.int32))

    def get_config(self):
        config = super().get_config()
        config.update(num_codes=self.num_codes, codebook_size=self.codebook_size, dim=self.dim)
        return config
