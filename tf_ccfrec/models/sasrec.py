"""SASRec with item ID embeddings: the baseline CCFRec is compared against, with the same
sequence encoder, scoring and loss."""

from __future__ import annotations

import tensorflow as tf

from tf_ccfrec.models.base import SequentialRetrievalModel
from tf_ccfrec.models.config import ModelConfig


class SASRecModel(SequentialRetrievalModel):
    """Items are learned ID embeddings [num_items + 1, dim] (row 0 padding), N(0, 0.02)."""

    def __init__(self, config: ModelConfig, num_items: int, **kwargs):
        super().__init__(config, num_items, **kwargs)
        self.item_embedding = tf.keras.layers.Embedding(
            num_items + 1, config.dim, name="item_embedding",
            embeddings_initializer=tf.keras.initializers.TruncatedNormal(stddev=0.02))

    def vectors_of(self, items, training=None):
        return self.item_embedding(items)
