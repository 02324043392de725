"""The prepared dataset on disk: tf.train.Example TFRecords that the pipeline's ExampleGen ingests.

    <dir>/examples/{train,valid,test}/data-00000-of-00001.tfrecord.gz
        user_id: bytes, history: bytes list (oldest first, <= max_history), target: bytes,
        position: int64 (the target's position in the user's sequence)
    <dir>/catalog/items-00000-of-00001.tfrecord.gz
        item_id: bytes, text_<view>: bytes (cleaned text, one per view),
        num_<field>: float (numeric catalog fields, when the item has them)
    <dir>/statistics.json   counts, views, problems skipped, format version

Files are GZIP-compressed and written in a fixed order, so the same input gives the same bytes.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from tf_ccfrec.data.dataset import SequenceDataset
from tf_ccfrec.data.splits import SPLITS, Example

FORMAT_VERSION = 1
EXAMPLES_DIR = "examples"
CATALOG_DIR = "catalog"
STATISTICS_FILE = "statistics.json"
SHARD = "data-00000-of-00001.tfrecord.gz"
CATALOG_SHARD = "items-00000-of-00001.tfrecord.gz"
TEXT_PREFIX = "text_"
NUMERIC_PREFIX = "num_"


def _bytes(values: Iterable[str]):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _int(value: int):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _float(value: float):
    import tensorflow as tf

    return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def example_proto(example: Example):
    import tensorflow as tf

    return tf.train.Example(features=tf.train.Features(feature={
        "user_id": _bytes([example.user_id]), "history": _bytes(example.history),
        "target": _bytes([example.target]), "position": _int(example.position)}))


def item_proto(item_id: str, text: Dict[str, str], numeric: Dict[str, float]):
    import tensorflow as tf

    feature = {"item_id": _bytes([item_id])}
    feature.update({TEXT_PREFIX + view: _bytes([value]) for view, value in text.items()})
    feature.update({NUMERIC_PREFIX + name: _float(value) for name, value in numeric.items()})
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _write(path: str, protos) -> int:
    import tensorflow as tf

    tf.io.gfile.makedirs(os.path.dirname(path))
    count = 0
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for proto in protos:
            writer.write(proto.SerializeToString())
            count += 1
    return count


def write_examples(directory: str, examples: Dict[str, List[Example]]) -> Dict[str, int]:
    """Writes one GZIP TFRecord file per split; returns the example count per split."""
    return {split: _write(os.path.join(directory, EXAMPLES_DIR, split, SHARD),
                          map(example_proto, examples[split])) for split in SPLITS}


def write_catalog(directory: str, data: SequenceDataset) -> int:
    """Writes the item catalog in the dataset's item order; returns the item count."""
    return _write(os.path.join(directory, CATALOG_DIR, CATALOG_SHARD),
                  (item_proto(i, data.items[i], data.numeric.get(i, {})) for i in data.items))


def _records(path: str) -> Iterator[bytes]:
    import tensorflow as tf

    for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
        yield record.numpy()


def read_examples(directory: str, split: str) -> List[Example]:
    """The examples of one split, in file order."""
    import tensorflow as tf

    result = []
    for record in _records(os.path.join(directory, EXAMPLES_DIR, split, SHARD)):
        f = tf.train.Example.FromString(record).features.feature
        result.append(Example(f["user_id"].bytes_list.value[0].decode(),
                              [v.decode() for v in f["history"].bytes_list.value],
                              f["target"].bytes_list.value[0].decode(),
                              f["position"].int64_list.value[0]))
    return result


def read_catalog(directory: str, views: List[str]) -> Tuple[List[str], Dict[str, Dict[str, str]]]:
    """(item ids in file order, {item id: {view: text}}) of a prepared dataset's catalog."""
    order, items, _ = read_catalog_files([os.path.join(directory, CATALOG_DIR, CATALOG_SHARD)],
                                         views)
    return order, items


def read_catalog_files(paths: List[str], views: Optional[List[str]] = None
                       ) -> Tuple[List[str], Dict[str, Dict[str, str]], List[str]]:
    """(item ids in order, {item id: {view: text}}, views) of catalog TFRecord files (a prepared
    catalog, or the pipeline's catalog split); views default to every `text_<view>` feature of
    the first record, sorted."""
    import tensorflow as tf

    order, items = [], {}
    for path in paths:
        for record in _records(path):
            f = tf.train.Example.FromString(record).features.feature
            if views is None:
                views = sorted(name[len(TEXT_PREFIX):] for name in f
                               if name.startswith(TEXT_PREFIX))
            item = f["item_id"].bytes_list.value[0].decode()
            order.append(item)
            items[item] = {view: f[TEXT_PREFIX + view].bytes_list.value[0].decode()
                           for view in views}
    return order, items, views or []
