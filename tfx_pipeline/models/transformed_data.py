"""The library's `TrainingData` (`tf_ccfrec.training.inputs`) over Transform's output: examples
whose items are already vocabulary indices."""

from __future__ import annotations

import os
from typing import Dict, List

import numpy as np
import tensorflow as tf

from tf_ccfrec import ranking
from tf_ccfrec.training import inputs
from tfx_pipeline.models import features

TRANSFORMED_FEATURES = {
    features.HISTORY_INDEX: tf.io.RaggedFeature(tf.int64),
    features.TARGET_INDEX: tf.io.FixedLenFeature([], tf.int64),
    features.POSITION: tf.io.FixedLenFeature([], tf.int64),
    features.TARGET_IS_HEAD: tf.io.FixedLenFeature([], tf.int64),
}


def split_files(examples_uri: str, split: str) -> List[str]:
    """The TFRecord files of one split of an Examples artifact (`<uri>/Split-<split>/`)."""
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        raise ValueError(f"{examples_uri}: no files for split {split!r}")
    return files


class TransformedData:
    """`TrainingData` of the transformed examples of splits train/valid/test under
    `examples_uri`.

    Args:
      examples_uri: Transform's `transformed_examples` artifact directory.
      item_ids: the vocabulary, in order (index i + 1 = item_ids[i]).
    """

    def __init__(self, examples_uri: str, item_ids: List[str], max_history: int = 20):
        self.examples_uri, self.item_ids, self.max_history = examples_uri, list(item_ids), \
            max_history
        self._columns: Dict[str, Dict[str, np.ndarray]] = {}

    def _records(self, split: str) -> tf.data.Dataset:
        return tf.data.TFRecordDataset(split_files(self.examples_uri, split),
                                       compression_type="GZIP")

    def dataset(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                repeat: bool = False, drop_remainder: bool = False) -> tf.data.Dataset:
        """Batches {"history": int32 [b, max_history] right-aligned, "target": int32 [b]}."""
        max_history = self.max_history

        def parse(records):
            parsed = tf.io.parse_example(records, TRANSFORMED_FEATURES)
            history = tf.cast(parsed[features.HISTORY_INDEX], tf.int32)
            return {"history": ranking.right_align(history, max_history),
                    "target": tf.cast(parsed[features.TARGET_INDEX], tf.int32)}

        return inputs.batches(self._records(split), parse, batch_size, shuffle=shuffle, seed=seed,
                              repeat=repeat, drop_remainder=drop_remainder)

    def columns(self, split: str) -> Dict[str, np.ndarray]:
        """NumPy columns of a split: target, position, target_is_head, first (history item)."""
        if split not in self._columns:
            parts = {"target": [], "position": [], "target_is_head": [], "first": []}
            for batch in self._records(split).batch(4096):
                parsed = tf.io.parse_example(batch, TRANSFORMED_FEATURES)
                parts["target"].append(parsed[features.TARGET_INDEX].numpy())
                parts["position"].append(parsed[features.POSITION].numpy())
                parts["target_is_head"].append(parsed[features.TARGET_IS_HEAD].numpy())
                parts["first"].append(parsed[features.HISTORY_INDEX][:, :1].to_tensor(0)
                                      .numpy()[:, 0])
            self._columns[split] = {k: np.concatenate(v) if v else np.zeros(0, np.int64)
                                    for k, v in parts.items()}
        return self._columns[split]

    def interactions(self) -> np.ndarray:
        """int [num_items + 1]: `ranking.count_interactions` over the three splits."""
        index = {i: i for i in range(len(self.item_ids) + 1)}
        rows = ((split, int(t), int(p), int(f)) for split in ("train", "valid", "test")
                for t, p, f in zip(*(self.columns(split)[k]
                                     for k in ("target", "position", "first"))))
        counts = ranking.count_interactions(rows, index, len(self.item_ids))
        counts[0] = 0  # unknown ids
        return counts

    def head(self) -> np.ndarray:
        """bool [num_items + 1]: items ExampleGen marked `target_popularity` = head (the
        slices TFMA reads), so the library's head/tail equal TFMA's."""
        head = np.zeros(len(self.item_ids) + 1, bool)
        for split in ("train", "valid", "test"):
            columns = self.columns(split)
            head[columns["target"][columns["target_is_head"] == 1]] = True
        head[0] = False
        return head

    def cold(self):
        """None: the pipeline's splits keep every item in training (no cold-start items)."""
        return None

    def train_examples(self) -> int:
        return int(len(self.columns("train")["target"]))

    def source(self) -> dict:
        return {"transformed_examples": self.examples_uri}
