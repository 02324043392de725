"""Learned embeddings of item ids shared by hashing: the item-ID variant of CCFRec
(`ModelConfig.item_id_buckets`), which tells apart items whose texts are identical."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

NO_ID_ROW = 0


def hashed_id_rows(item_ids: Sequence[str], buckets: int) -> np.ndarray:
    """Item ids -> their rows of a hashed-ID table: 1 + Fingerprint64(id) mod `buckets`
    (`tf.strings.to_hash_bucket_fast`, the same in every process and on every machine, and
    independent of the catalog's order); row 0 stays free for "no id".

    Args:
      item_ids: n id strings.
      buckets: B >= 1.

    Returns:
      int32 [n], each in [1, B].
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    rows = tf.strings.to_hash_bucket_fast(tf.constant(list(item_ids), tf.string), buckets)
    return rows.numpy().astype(np.int32) + 1


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class HashedIdEmbedding(tf.keras.layers.Layer):
    """A table of `buckets` learned id vectors plus the "no id" row, which is always zero.

    Initialized to zeros, so that a model that adds these vectors to its item vectors starts
    as the model without them. The rows are multiplied by `scale` (default sqrt(dim), as
    SASRec scales its item embeddings): under Adam a row moves about the learning rate per step
    whatever its gradient's size, so the scale sets how fast the id vectors grow next to item
    vectors of norm about sqrt(dim) (layer-normalized outputs).

    Call args:
      rows: int [...] rows of `hashed_id_rows`, 0 for no id (padding, items without one).

    Returns:
      float [..., dim]; zeros where rows is 0.
    """

    def __init__(self, buckets: int, dim: int, scale: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if buckets < 1:
            raise ValueError(f"buckets must be >= 1, got {buckets}")
        self.buckets = buckets
        self.dim = dim
        self.scale = float(dim) ** 0.5 if scale is None else float(scale)

    def build(self, input_shape):
        self.embeddings = self.add_weight(name="embeddings", shape=(self.buckets, self.dim),
                                          initializer="zeros")
        super().build(input_shape)

    def call(self, rows):
        rows = tf.cast(rows, tf.int32)
        vectors = tf.gather(self.embeddings, tf.maximum(rows - 1, 0)) * self.scale
        return vectors * tf.cast(rows > NO_ID_ROW, vectors.dtype)[..., tf.newaxis]

    def get_config(self):
        config = super().get_config()
        config.update(buckets=self.buckets, dim=self.dim, scale=self.scale)
        return config
