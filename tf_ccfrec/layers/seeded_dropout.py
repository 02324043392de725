"""Dropout whose mask is a function of an explicit seed, so that a recomputation in the backward
pass (`tf.recompute_grad`) draws the mask the forward pass drew."""

from __future__ import annotations

import tensorflow as tf

_SEED_MAX = 2**31 - 1


def draw_seed() -> tf.Tensor:
    """A fresh seed int32 [2] from TensorFlow's global random state (so `tf.random.set_seed`
    makes the masks reproducible)."""
    return tf.random.uniform([2], maxval=_SEED_MAX, dtype=tf.int32)


def fold_seed(seed, salt: int):
    """The seed of one of several dropouts sharing `seed` (int [2]); None stays None."""
    return None if seed is None else tf.random.experimental.stateless_fold_in(seed, salt)


def seeded_dropout(x, rate: float, seed, salt: int):
    """Zeroes each element of `x` (float, any shape) with probability `rate` and scales the rest
    by 1 / (1 - rate), the mask drawn from `fold_seed(seed, salt)`. `seed` None: no dropout
    (inference). Same seed and salt, same mask."""
    if seed is None or not rate:
        return x
    return tf.nn.experimental.stateless_dropout(x, rate, fold_seed(seed, salt))
