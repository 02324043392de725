"""Dropout whose mask is a function of an explicit seed, so that a recomputation in the backward
pass (`tf.recompute_grad`) draws the mask the forward pass drew."""

from __future__ import annotations

import tensorflow as tf

_SEED_MAX = 2**31 - 1
# Each 32-bit random word gives two 16-bit draws; a rate is resolved to 1/65536 whatever the
# dtype (a uniform draw in bfloat16 would resolve it to 1/256: rate 0.1 would drop 0.1016).
_DRAW_BITS = 16


def draw_seed() -> tf.Tensor:
    """A fresh seed int32 [2] from TensorFlow's global random state (so `tf.random.set_seed`
    makes the masks reproducible)."""
    return tf.random.uniform([2], maxval=_SEED_MAX, dtype=tf.int32)


def fold_seed(seed, salt: int):
    """The seed of one of several dropouts sharing `seed` (int [2]); None stays None."""
    return None if seed is None else tf.random.experimental.stateless_fold_in(seed, salt)


def keep_mask(shape, rate: float, seed) -> tf.Tensor:
    """bool `shape`: True with probability 1 - rate (to 1/65536), a function of `seed` (int [2]).

    Half as many random words as elements: each 32-bit word is split into two 16-bit draws."""
    size = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform([(size + 1) // 2], seed, minval=None, maxval=None,
                                        dtype=tf.uint32)
    draws = tf.concat([tf.bitwise.bitwise_and(words, 0xFFFF),
                       tf.bitwise.right_shift(words, _DRAW_BITS)], axis=0)[:size]
    threshold = round(rate * 2**_DRAW_BITS)
    return tf.reshape(draws >= threshold, shape)


@tf.custom_gradient
def _dropout(x, keep, scale):
    zeros = tf.zeros_like(x)
    scale = tf.cast(scale, x.dtype)

    def grad(dy):
        return tf.where(keep, dy * scale, tf.zeros_like(dy)), None, None

    return tf.where(keep, x * scale, zeros), grad


def seeded_dropout(x, rate: float, seed, salt: int):
    """Zeroes each element of `x` (float, any shape) with probability `rate` and scales the rest
    by 1 / (1 - rate), the mask drawn from `fold_seed(seed, salt)` (`keep_mask`). `seed` None: no
    dropout (inference). Same seed and salt, same mask. The backward pass keeps the boolean mask,
    not a float copy of it."""
    if seed is None or not rate:
        return x
    keep = keep_mask(tf.shape(x), rate, fold_seed(seed, salt))
    return _dropout(x, keep, tf.constant(1.0 / (1.0 - rate)))
