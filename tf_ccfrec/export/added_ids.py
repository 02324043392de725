"""Item ids added to an export whose ids another lookup maps (`ccfrec catalog add` on a model
pushed by the TFX pipeline, whose lookup applies the tf.Transform graph): that lookup for the
ids it knows, then a table of the added ids, whose indices follow the export's items.

Added ids are matched as the pipeline's transform matches ids: Unicode-NFKC normalized and
stripped (`normalize_ids`, the same ops as the pipeline's `preprocessing_fn`).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def normalize_ids(ids: tf.Tensor) -> tf.Tensor:
    """string tensor -> the same ids, NFKC-normalized and stripped."""
    import tensorflow_text as tf_text

    return tf.strings.strip(tf_text.normalize_utf8(ids, "NFKC"))


class AddedIdsLookup(tf.Module):
    """string [n] ids -> int32 [n] indices: `base` for the ids it knows (> 0), else
    `first_index + j` for `added_ids[j]`, else 0 (unknown).

    Args:
      base: a callable string [n] -> int32 [n] (0 = unknown): the lookup of an export, as
        `RetrievalModule.lookup_ids` saves it (a restored function is fine).
      added_ids: the ids added since, in index order.
      first_index: the index of `added_ids[0]` (the export's item count + 1).
      owner: what holds the resources `base` reads (tables, vocabulary files): a restored
        export's `id_lookup`; saved with this module so that `base` can be saved again.
    """

    def __init__(self, base, added_ids: Sequence[str], first_index: int, owner=None):
        super().__init__(name="added_ids_lookup")
        self.base, self.owner = base, owner
        self.added_ids = tf.Variable(list(added_ids), dtype=tf.string, trainable=False,
                                     name="added_ids")
        self.first_index = tf.Variable(first_index, dtype=tf.int32, trainable=False,
                                       name="first_index")
        self.added = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            normalize_ids(tf.constant(list(added_ids), tf.string)),
            tf.range(first_index, first_index + len(added_ids), dtype=tf.int32)), 0)

    def __call__(self, ids: tf.Tensor) -> tf.Tensor:
        known = tf.cast(self.base(ids), tf.int32)
        return tf.where(known > 0, known, self.added.lookup(normalize_ids(ids)))


def extend(served, added_ids: Sequence[str]) -> AddedIdsLookup:
    """The lookup of a new version of `served` (a loaded export with `lookup_ids`) with
    `added_ids` appended to its items: one level deep however many times items are added.

    Raises:
      ValueError: the export saved no callable lookup (exported before `lookup_ids`).
    """
    lookup = getattr(served, "lookup_ids", None)
    if lookup is None:
        raise ValueError("the export maps item ids by a lookup it did not save as a function "
                         "(exported by an older tf-ccfrec); export it again")
    earlier = getattr(getattr(served, "id_lookup", None), "added_ids", None)
    if earlier is not None:  # a version that catalog add wrote: extend its list
        inner = served.id_lookup
        previous = [x.decode() for x in inner.added_ids.numpy()]
        return AddedIdsLookup(inner.base, previous + list(added_ids),
                              int(inner.first_index.numpy()), owner=inner.owner)
    return AddedIdsLookup(lookup, added_ids, int(served.item_ids.shape[0]),
                          owner=served.id_lookup)
