"""Code masking for masked code modeling (ccfrec.md §5)."""

from __future__ import annotations

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class CodeMasker(tf.keras.layers.Layer):
    """Selects each non-padding code token with probability `mask_prob`; a selected token becomes
    [MASK] with probability 0.8, a random token of the same code position with 0.1, and stays
    with 0.1 (BERT's 80/10/10).

    Call args:
      tokens: int [..., num_codes] (0 = padding, never selected).
      training: masking happens only in training (or when called with training=True).

    Returns:
      (masked tokens int32 [..., num_codes], selected bool [..., num_codes]).
    """

    def __init__(self, num_codes: int, codebook_size: int, mask_token: int,
                 mask_prob: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_codes, self.codebook_size = num_codes, codebook_size
        self.mask_token, self.mask_prob, self.seed = mask_token, mask_prob, seed

    def build(self, input_shape):
        self._generator = (tf.random.Generator.from_seed(self.seed) if self.seed is not None
                           else tf.random.Generator.from_non_deterministic_state())
        super().build(input_shape)

    def call(self, tokens, training=None):
        tokens = tf.cast(tokens, tf.int32)
        if not training:
            return tokens, tf.zeros_like(tokens, tf.bool)
        rng = self._generator
        shape = tf.shape(tokens)
        selected = tf.logical_and(rng.uniform(shape) < self.mask_prob, tokens > 0)
        action = rng.uniform(shape)
        positions = tf.range(self.num_codes, dtype=tf.int32)
        random_tokens = (rng.uniform(shape, 0, self.codebook_size, dtype=tf.int32)
                         + positions * self.codebook_size + 1)
        replaced = tf.where(action < 0.8, self.mask_token,
                            tf.where(action < 0.9, random_tokens, tokens))
        return tf.where(selected, replaced, tokens), selected

    def get_config(self):
        config = super().get_config()
        config.update(num_codes=self.num_codes, codebook_size=self.codebook_size,
                      mask_token=self.mask_token, mask_prob=self.mask_prob, seed=self.seed)
        return config
