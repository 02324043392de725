"""tf.data input pipelines: what training reads (`TrainingData`), from the prepared TFRecords
(`ccfrec data prepare`, `PreparedData`) or any other source of the same batches."""

from __future__ import annotations

import os
from typing import Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_ccfrec import ranking, storage
from tf_ccfrec.data import tfrecords

FEATURES = {
    "user_id": tf.io.FixedLenFeature([], tf.string),
    "history": tf.io.RaggedFeature(tf.string),
    "target": tf.io.FixedLenFeature([], tf.string),
}


def item_index(item_ids: Sequence[str]) -> tf.lookup.StaticHashTable:
    """Item id -> index (position in `item_ids` + 1); unknown ids -> 0 (padding)."""
    keys = tf.constant(list(item_ids))
    values = tf.range(1, len(item_ids) + 1, dtype=tf.int32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), 0)


def batches(records: tf.data.Dataset, parse: Callable, batch_size: int, shuffle: bool = False,
            seed: int = 0, repeat: bool = False, drop_remainder: bool = False) -> tf.data.Dataset:
    """Serialized examples -> parsed batches, shuffled (a 100,000-record buffer, reshuffled each
    pass), repeated and prefetched as asked: what every `TrainingData.dataset` does with its
    records. `parse`: string [b] -> the batch's dict; `drop_remainder` drops a last, smaller
    batch."""
    if shuffle:
        records = records.shuffle(100_000, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        records = records.repeat()
    return (records.batch(batch_size, drop_remainder=drop_remainder)
            .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def make_dataset(prepared_dir: str, split: str, item_ids: Sequence[str], batch_size: int,
                 max_history: int = 20, **options) -> tf.data.Dataset:
    """Batches of {"history": int32 [b, max_history] (right-aligned indices), "target": int32 [b]}
    from `<prepared_dir>/examples/<split>/`; `options`: shuffle, seed, repeat, drop_remainder
    (`batches`)."""
    path = os.path.join(prepared_dir, tfrecords.EXAMPLES_DIR, split, tfrecords.SHARD)
    table = item_index(item_ids)

    def parse(records):
        parsed = tf.io.parse_example(records, FEATURES)
        history = tf.ragged.map_flat_values(table.lookup, parsed["history"])
        return {"history": ranking.right_align(history, max_history),
                "target": table.lookup(parsed["target"])}

    return batches(tf.data.TFRecordDataset(path, compression_type="GZIP"), parse, batch_size,
                   **options)


def training_sequences(examples) -> Dict[str, List[str]]:
    """Each user's training sequence from its training examples (`splits.Example`, any order):
    the first example's history, then every example's target by position. It does not depend on
    the max_history the examples were prepared with."""
    by_user: Dict[str, list] = {}
    for example in examples:
        by_user.setdefault(example.user_id, []).append(example)
    result = {}
    for user, rows in by_user.items():
        rows.sort(key=lambda e: e.position)
        result[user] = list(rows[0].history) + [e.target for e in rows]
    return result


def sequence_arrays(sequences: Iterable[Sequence[int]], length: int) -> Tuple[np.ndarray,
                                                                                np.ndarray]:
    """Index sequences (each at least 2 long) -> (history, target), int32 [n, length] each,
    right-aligned with 0 padding first: history[i] ends with the sequence's next-to-last item,
    target[i, j] is the item after history[i, j] (its last `length` inputs and their targets)."""
    sequences = list(sequences)
    history = np.zeros((len(sequences), length), np.int32)
    target = np.zeros((len(sequences), length), np.int32)
    for row, sequence in enumerate(sequences):
        inputs, outputs = sequence[:-1][-length:], sequence[1:][-length:]
        history[row, length - len(inputs):] = inputs
        target[row, length - len(outputs):] = outputs
    return history, target


class TrainingData(Protocol):
    """What `train.train_model` reads: the splits of one dataset with the items indexed like
    `item_ids` (index i + 1), histories cut to `max_history`. `PreparedData` reads a prepared
    directory; the TFX Trainer passes one over Transform's output. A source of whole training
    sequences (objective "all_positions") also has `PreparedData.sequence_dataset` and
    `train_sequences`."""

    item_ids: List[str]
    max_history: int

    def dataset(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                repeat: bool = False, drop_remainder: bool = False) -> tf.data.Dataset:
        """Batches {"history": int32 [b, max_history] right-aligned, "target": int32 [b]}."""

    def interactions(self) -> np.ndarray:
        """int [num_items + 1]: training interactions per item (`ranking.count_interactions`)."""

    def head(self) -> np.ndarray:
        """bool [num_items + 1]: the head items of the popularity slices."""

    def cold(self) -> Optional[np.ndarray]:
        """bool [num_items + 1] of the cold-start items, or None."""

    def train_examples(self) -> int:
        """How many training examples one pass reads."""

    def source(self) -> dict:
        """Where the data came from, for the run's config.json."""


class PreparedData:
    """`TrainingData` of a prepared directory (`ccfrec data prepare`), with the items indexed like
    `item_ids` (index i + 1)."""

    def __init__(self, prepared_dir: str, item_ids: Sequence[str], max_history: int = 20):
        self.prepared_dir, self.item_ids, self.max_history = prepared_dir, list(item_ids), \
            max_history
        self._sequence_cache = None   # (history, target) of `sequence_arrays`, read once

    def dataset(self, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                repeat: bool = False, drop_remainder: bool = False) -> tf.data.Dataset:
        """Batches {"history": int32 [b, max_history], "target": int32 [b]} of a split."""
        return make_dataset(self.prepared_dir, split, self.item_ids, batch_size,
                            self.max_history, shuffle=shuffle, seed=seed, repeat=repeat,
                            drop_remainder=drop_remainder)

    def sequence_dataset(self, batch_size: int, shuffle: bool = False, seed: int = 0,
                         repeat: bool = False, drop_remainder: bool = False) -> tf.data.Dataset:
        """Batches of whole training sequences, one per user (objective "all_positions"):
        {"history": int32 [b, max_history], "target": int32 [b, max_history]}
        (`sequence_arrays`); an unknown item id is an error."""
        history, target = self._sequences()
        dataset = tf.data.Dataset.from_tensor_slices({"history": history, "target": target})
        if shuffle:
            dataset = dataset.shuffle(len(history), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(
            tf.data.AUTOTUNE)

    def train_sequences(self) -> int:
        """How many users have a training sequence (the batches of one `sequence_dataset` pass
        times the batch size, at most)."""
        return len(self._sequences()[0])

    def _sequences(self):
        if self._sequence_cache is None:
            from tf_ccfrec.data import tfrecords
            from tf_ccfrec.data.errors import DataError

            index = {item: i + 1 for i, item in enumerate(self.item_ids)}
            sequences = training_sequences(tfrecords.read_examples(self.prepared_dir, "train"))
            try:
                indexed = [[index[item] for item in sequence] for sequence in sequences.values()]
            except KeyError as error:
                raise DataError(f"{self.prepared_dir}: training item {error.args[0]!r} is not "
                                f"in the code artifact's catalog") from None
            self._sequence_cache = sequence_arrays(indexed, self.max_history)
        return self._sequence_cache

    def interactions(self):
        """int [num_items + 1]: `ranking.training_interactions`."""
        return ranking.training_interactions(self.prepared_dir, self.item_ids)

    def head(self):
        """bool [num_items + 1]: the head items of the popularity slices."""
        return ranking.head_items(self.interactions())

    def cold(self):
        """bool [num_items + 1] of the cold-start items, or None (`evaluation.cold_items`)."""
        from tf_ccfrec.training import evaluation

        return evaluation.cold_items(self.prepared_dir, self.item_ids)

    def train_examples(self) -> int:
        from tf_ccfrec.data import prepare

        return prepare.load_statistics(self.prepared_dir)["examples"]["train"]

    def source(self) -> dict:
        """Where the data came from, for the run's config.json."""
        return {"prepared": storage.absolute(self.prepared_dir)}
