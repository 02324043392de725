"""Transform's `preprocessing_fn`: the item vocabulary and item ids -> model indices.

Outputs (per example):
    history         int64 [None]  indices of the history's items, oldest first
    target          int64 []      the target's index
    position        int64 []      passed through (popularity counts need it)
    target_is_head  int64 []      1 for a head target, else 0

Index = position in the `item_ids` vocabulary + 1; 0 means an id the vocabulary does not know,
which the model treats as padding. Item ids are NFKC-normalized and stripped with
tensorflow-text on the way in, at training and, through the exported transform graph, at
serving time.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text
import tensorflow_transform as tft

from tfx_pipeline.models import features


def normalize_ids(ids: tf.Tensor) -> tf.Tensor:
    """string tensor -> the same ids, Unicode-NFKC normalized and stripped."""
    return tf.strings.strip(tf_text.normalize_utf8(ids, "NFKC"))


def _dense(value: tf.Tensor | tf.SparseTensor, default) -> tf.Tensor:
    """A single-valued feature as a [batch] tensor."""
    if isinstance(value, tf.SparseTensor):
        value = tf.sparse.to_dense(value, default_value=default)
    return tf.reshape(value, [-1])


def preprocessing_fn(inputs, custom_config=None):
    """tf.Transform callback. `history` arrives as a SparseTensor [batch, None] of ids, the other
    features as [batch] tensors. `custom_config` carries the code fingerprint (Transform's cache
    key follows this module's code) and is otherwise unused."""
    history = inputs[features.HISTORY]
    history_ids = normalize_ids(history.values)
    target_ids = normalize_ids(_dense(inputs[features.TARGET], ""))
    # Every id of every analyzed example: the vocabulary is the catalog the data knows.
    vocabulary = tft.vocabulary(tf.concat([history_ids, target_ids], 0),
                                vocab_filename=features.ITEM_VOCABULARY)

    def indices(ids):
        return tft.apply_vocabulary(ids, vocabulary, default_value=-1) + 1

    return {
        features.HISTORY_INDEX: tf.SparseTensor(history.indices, indices(history_ids),
                                                history.dense_shape),
        features.TARGET_INDEX: indices(target_ids),
        features.POSITION: _dense(inputs[features.POSITION], 0),
        features.TARGET_IS_HEAD: tf.cast(
            tf.equal(_dense(inputs[features.TARGET_POPULARITY], ""), "head"), tf.int64),
    }
